"""How stable the indicator-element ranking is on a real survey: ``mstgat benchmark --suite stability``.

The ranking is the one ``mstgat explain --deposits`` prints first: elements by
the mean integrated gradients carried by enriched elements over the deposit
cells (:func:`~mstgat_core.interpret.enrichment_split`). It is recomputed

* for each **seed** (pretraining and fine-tuning seeds 1, 2, 3; all deposits),
* for each **fold** (seed 1's backbone, heads fine-tuned without the deposits
  of one whole-cluster fold and its buffer, as in cross-validation),
* for each **ensemble member** (seed 1),

and compared within each group by the mean pairwise Kendall's tau and top-5
overlap. A **model-randomisation check** (Adebayo et al., 2018) shuffles every
weight of the seed-1 model (statistics kept) and compares its ranking with the
trained one: an explanation that survives the shuffle explains the data, not
the model.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..files import write_text_atomically

SEEDS = (1, 2, 3)
TOP = 5
BEGIN, END = "<!-- stability:begin -->", "<!-- stability:end -->"


def indicator_scores(fitted, prepared, nodes, member: int | None = None) -> np.ndarray:
    """(E,) mean IG carried by enriched elements over ``nodes`` (the indicator ranking's scores)."""
    from ..interpret import attribute_nodes, enrichment_split

    attribution, _ = attribute_nodes(fitted, prepared, nodes, steps=16, member=member)
    return enrichment_split(attribution, prepared.x[torch.from_numpy(nodes)].numpy())[0].mean(axis=0)


def agreement(scores: list[np.ndarray], top: int = TOP) -> dict:
    """Mean pairwise Kendall's tau and top-``top`` overlap (share) of several score vectors."""
    from scipy.stats import kendalltau

    if len(scores) < 2:
        return {"kendall_tau": float("nan"), "top_overlap": float("nan"), "pairs": 0}
    taus, overlaps = [], []
    for a, b in itertools.combinations(scores, 2):
        taus.append(kendalltau(a, b).statistic)
        overlaps.append(len(set(np.argsort(-a)[:top]) & set(np.argsort(-b)[:top])) / top)
    return {"kendall_tau": float(np.mean(taus)), "top_overlap": float(np.mean(overlaps)), "pairs": len(taus)}


def shuffled_weights(fitted, seed: int = 0):
    """A copy of ``fitted`` whose every learned weight is randomly permuted (buffers such as statistics kept)."""
    out = copy.deepcopy(fitted)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in out.model.parameters():
            flat = parameter.view(-1)
            flat.copy_(flat[torch.randperm(flat.numel(), generator=generator)])
    return out


def _fold_cells(cells, prepared, fold):
    kept = np.zeros(prepared.graph.mask.shape, dtype=bool)
    rows, cols = prepared.graph.rows_cols
    kept[rows[fold.train_pos], cols[fold.train_pos]] = True
    return cells.copy(data=kept)


def stability(
    grid, cells, model_config: dict | None = None, seeds=SEEDS, folds=None, pretrain_config=None, progress=None
) -> dict:
    """The indicator ranking's agreement across seeds, folds and members, and the randomisation check.

    ``folds``: as in :func:`~mstgat_core.benchmark.choose_folds` (default: 5
    whole-cluster folds, or leave-one-cluster-out below 10 clusters);
    ``pretrain_config``: the pretraining protocol (its seed is replaced).
    """
    import dataclasses

    from ..training.finetune import FineTuneConfig
    from ..training.folds import FoldSettings, spatial_folds
    from ..training.pipeline import fit, pretrain_backbone
    from ..training.pretrain import PretrainConfig
    from .benchmark import choose_folds

    if len(seeds) < 2:
        raise DataError("stability needs at least 2 seeds", setting="seeds")
    started = time.perf_counter()
    by_seed, by_fold, by_member, fitted_first = [], [], [], None
    shares = {"seeds": [], "folds": []}  # the heads' share in each fit: at 0 the score reads no label
    prepared = nodes = None
    steps = [0]

    def step(message):
        steps[0] += 1
        if progress is not None:
            progress(steps[0], message)

    for seed in seeds:
        protocol = dataclasses.replace(pretrain_config or PretrainConfig(), seed=seed)
        backbone = pretrain_backbone(grid, model_config, protocol)
        fitted = fit(grid, cells, backbone=backbone, finetune_config=FineTuneConfig(seed=seed))
        if prepared is None:
            prepared = fitted.prepare(grid)
            nodes = np.flatnonzero(np.asarray(cells.values, dtype=bool)[prepared.graph.mask])
            if len(nodes) == 0:
                raise DataError("no deposit cell with data")
        by_seed.append(indicator_scores(fitted, prepared, nodes))
        shares["seeds"].append(float(fitted.model.head.share))
        step(f"seed {seed}")
        if fitted_first is not None:
            continue
        fitted_first = fitted
        by_member = [indicator_scores(fitted, prepared, nodes, member=k) for k in range(fitted.config.members)]
        rows, cols = prepared.graph.rows_cols
        options = {"model_config": model_config or {}} | ({"folds": folds} if folds else {})
        chosen = choose_folds(grid, cells, options)
        settings = FoldSettings.for_config(
            fitted.config, method="loco" if chosen == "loco" else "clusters", n_folds=chosen
        )
        for i, fold in enumerate(spatial_folds(rows, cols, nodes, settings, seed=seed)):
            refit = fit(
                grid, _fold_cells(cells, prepared, fold), backbone=backbone, finetune_config=FineTuneConfig(seed=seed)
            )
            by_fold.append(indicator_scores(refit, prepared, nodes))
            shares["folds"].append(float(refit.model.head.share))
            step(f"fold {i + 1}")
    elements = list(fitted_first.elements)
    shuffled = indicator_scores(shuffled_weights(fitted_first), prepared, nodes)
    consensus = np.mean(by_seed, axis=0)
    top_share = {e: float(np.mean([i in np.argsort(-s)[:TOP] for s in by_seed])) for i, e in enumerate(elements)}
    order = np.argsort(-consensus, kind="stable")
    from scipy.stats import kendalltau

    return {
        "elements": elements,
        "deposit_cells": int(len(nodes)),
        "shares": shares,
        "consensus": [
            {"element": elements[i], "score": float(consensus[i]), "top5_share": top_share[elements[i]]} for i in order
        ],
        "seeds": agreement(by_seed) | {"n": len(by_seed)},
        "folds": agreement(by_fold) | {"n": len(by_fold)},
        "members": agreement(by_member) | {"n": len(by_member)},
        "randomised": {
            "kendall_tau": float(kendalltau(by_seed[0], shuffled).statistic),
            "top_overlap": len(set(np.argsort(-by_seed[0])[:TOP]) & set(np.argsort(-shuffled)[:TOP])) / TOP,
        },
        "scores": {
            "seeds": [s.tolist() for s in by_seed],
            "folds": [s.tolist() for s in by_fold],
            "members": [s.tolist() for s in by_member],
            "randomised": shuffled.tolist(),
        },
        "seconds": time.perf_counter() - started,
    }


def run_stability_suite(out_dir, markdown=None, datasets=None, progress=None, log=print) -> dict:
    """Stability on the datasets of the default benchmark suite; ``out_dir/stability.json`` and the markdown table."""
    from .benchmark import select, update_markdown, versions

    reports = {}
    for dataset in select("default", datasets):
        grid, cells, description = dataset.load()

        def step(done, message, name=dataset.name):
            if progress is not None:
                progress(name, done, message)

        report = stability(grid, cells, dataset.options.get("model_config"), progress=step)
        report["title"], report["description"] = dataset.title, description
        reports[dataset.name] = report
        log(f"{dataset.title}: {report['seconds'] / 60:.1f} min")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "stability.json"
    write_text_atomically(path, json.dumps({"datasets": reports, "versions": versions()}, indent=1))
    if markdown is not None:
        update_markdown(markdown, stability_markdown(reports, path, Path(markdown).parent), BEGIN, END)
    return reports


def _no_share(shares: dict) -> str:
    return ", ".join(f"{sum(v == 0 for v in values)} of {len(values)} {group}" for group, values in shares.items())


def stability_markdown(reports: dict, json_path, link_base=".") -> str:
    """Key indicators with their stability beside them."""
    import os

    lines = [
        "Generated by `mstgat benchmark --suite stability`; do not edit by hand. Every figure: "
        f"[stability.json]({os.path.relpath(json_path, link_base)}).",
        "",
        "| survey | indicator elements (share of the seeds with it in their top 5) "
        "| seeds: tau / top-5 overlap | folds: tau / overlap | members: tau / overlap "
        "| shuffled weights: tau / overlap | fits whose heads got no share (score = label-free) |",
        "|---|---|---|---|---|---|---|",
    ]
    for report in reports.values():
        key = ", ".join(f"{c['element']} ({c['top5_share']:.0%})" for c in report["consensus"][:TOP])

        def pair(group):
            return f"{group['kendall_tau']:.2f} / {group['top_overlap']:.2f} (n = {group.get('n', 1)})"

        lines.append(
            f"| {report['title']} | {key} | {pair(report['seeds'])} | {pair(report['folds'])} "
            f"| {pair(report['members'])} | {report['randomised']['kendall_tau']:.2f} / "
            f"{report['randomised']['top_overlap']:.2f} | {_no_share(report['shares'])} |"
        )
    return "\n".join(lines) + "\n"
