"""Planted-truth benchmark for explanations: ``mstgat benchmark --suite explain``.

Each scenario plants three kinds of anomaly on a closed composition (every
cell's elements sum to 10^6 ppm, so an enrichment dilutes everything else):

* **ore**: 3 randomly chosen elements at the planted scale; it hosts the deposits;
* **decoy, other elements**: 2 other elements, same scale and peak, no deposits;
* **decoy, same elements**: the ore elements at another scale, no deposits.

Kinds: ``small`` (ore radius 1 cell, same-element decoys radius 3) and
``large`` (ore 3, decoys 1), alternating by seed: the control family
(``enrichment``). Five more families (``association``, ``depletion``,
``ratio``, ``trend``, ``barren``; :mod:`~mstgat_core.data.scenario_families`)
plant ore that the deposits' raw composition does not reveal, scored per family with a
signed top-k rule and exact McNemar tests (:mod:`.explain_paired`). MSTGAT is fitted with the
defaults of :func:`~mstgat_core.pipeline.fit` (what ``mstgat train`` does) and
every explanation method is read at the deposit cells, as ``mstgat explain
--deposits`` does:

Elements (a score per element, higher = more indicative)
    ``attention`` ([CLS] attention inside minus outside the deposit cells),
    ``rollout`` (the same for attention rollout), ``integrated_gradients``
    (mean IG of the deposit cells' logit), ``ig_enrichment`` (the part of IG
    carried by elements above the baseline composition), ``occlusion`` (mean
    logit drop when an element is set to the baseline); two references:
    ``ig_enrichment_shuffled`` (the same ranking from the model with every
    weight shuffled: model randomisation) and ``composition`` (the mean
    normalised value at the deposit cells: the data alone, no model).
Scales (a score per scale)
    ``scale_weights`` (mean per-cell softmax weights), ``scale_occlusion``
    (mean logit drop when a scale is left out of the fusion),
    ``scale_evidence`` (share of the positive neighbour attribution in each
    scale's ring, :func:`~mstgat_core.interpret.scale_evidence`),
    ``scale_contributions`` (each scale's additive share of the logit, models
    with ``scale_readout`` only).
Neighbour weights
    ``neighbour_lift``: the weight a deposit cell gives to neighbours inside
    the planted ore footprint, over the share those neighbours would get with
    uniform weights (geometric mean over cells and scales; 1 = no preference).

Statistics (:func:`score_records`), over the control family: the share of scenarios whose top k (k =
number of ore elements) holds every ore element, the share in which a
decoy-only element ranks above some ore element, and a normalised rank-biased
overlap; each against a permutation null (the same statistic with the element
labels shuffled, 10,000 draws) and with a 95 % interval (Wilson for shares, a
bootstrap over scenarios for means). Scales: the share of scenarios whose
top-ranked scale is the planted one, against chance (1 / scales, one-sided
binomial test).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..data.scenario_families import FAMILIES, close, make_family
from ..errors import DataError
from ..files import write_text_atomically
from .explain_paired import CONTROL, families_markdown, family, family_summary

KINDS = {
    # ore scale, same-element decoy scale, (ore n, other-element decoy n, same-element decoy n)
    "small": (1.0, 3.0, (10, 6, 4)),
    "large": (3.0, 1.0, (6, 3, 10)),
}
N_ELEMENTS = 10
N_ORE, N_DECOY = 3, 2
SHAPE = (72, 72)
CLOSURE = 1e6  # ppm
ELEMENT_METHODS = (
    "attention",
    "rollout",
    "integrated_gradients",
    "ig_enrichment",
    "occlusion",
    "ig_enrichment_shuffled",
    "composition",
)
SCALE_METHODS = ("scale_weights", "scale_occlusion", "scale_evidence", "scale_contributions")
RBO_P = 0.9
BEGIN, END = "<!-- explain-benchmark:begin -->", "<!-- explain-benchmark:end -->"


@dataclass(frozen=True)
class Spec:
    """One scenario of the suite."""

    seed: int
    kind: str


def specs(n: int = 24, first_seed: int = 0) -> list[Spec]:
    """``n`` control scenarios, kinds alternating by seed."""
    kinds = list(KINDS)
    return [Spec(seed, kinds[seed % len(kinds)]) for seed in range(first_seed, first_seed + n)]


def family_specs(families=None, n: int = 24, first_seed: int = 0) -> list[Spec]:
    """``n`` scenarios per family (default: the control, then every family of :data:`FAMILIES`)."""
    families = [CONTROL, *FAMILIES] if families is None else list(families)
    unknown = [f for f in families if f != CONTROL and f not in FAMILIES]
    if unknown:
        raise DataError(f"unknown scenario family {unknown[0]!r}; use {', '.join([CONTROL, *FAMILIES])}")
    out = []
    for fam in families:
        seeds = range(first_seed, first_seed + n)
        out += specs(n, first_seed) if fam == CONTROL else [Spec(seed, fam) for seed in seeds]
    return out


def make(spec: Spec):
    """(scenario, truth) of one spec: a closed composition with ore and both kinds of decoy.

    ``truth``: ``ore`` and ``decoy`` (decoy-only) element names, ``depleted`` (ore
    elements the ore lowers), ``ore_scale``. The kinds of
    :data:`~mstgat_core.data.scenario_families.FAMILIES` come from
    :func:`~mstgat_core.data.scenario_families.make_family`.
    """
    from ..data.synthetic import element_names, make_scenario

    if spec.kind in FAMILIES:
        return make_family(spec.kind, spec.seed, SHAPE, N_ELEMENTS, CLOSURE)
    if spec.kind not in KINDS:
        raise DataError(f"unknown scenario kind {spec.kind!r}; use one of {', '.join([*KINDS, *FAMILIES])}")
    ore_scale, decoy_scale, (n_ore, n_other, n_same) = KINDS[spec.kind]
    names = element_names(N_ELEMENTS)
    picked = [str(e) for e in np.random.default_rng(10_000 + spec.seed).permutation(names)[: N_ORE + N_DECOY]]
    ore, decoy = picked[:N_ORE], picked[N_ORE:]
    anomalies = [
        {"name": "ore", "elements": ore, "scale": ore_scale, "n": n_ore, "hosts_deposits": True},
        {"name": "decoy_other", "elements": decoy, "scale": ore_scale, "n": n_other, "hosts_deposits": False},
        {"name": "decoy_same", "elements": ore, "scale": decoy_scale, "n": n_same, "hosts_deposits": False},
    ]
    scenario = make_scenario(shape=SHAPE, n_elements=N_ELEMENTS, anomalies=anomalies, seed=spec.seed)
    close(scenario.grid, names, CLOSURE)
    return scenario, {"ore": ore, "depleted": [], "decoy": decoy, "ore_scale": ore_scale}


def data_alone(scenario) -> np.ndarray:
    """Mean normalised value (CLR, robust scaling) per element at the deposit cells, without fitting a model.

    What ``composition`` reads from a fitted model's prepared grid, for tests of the scenario design.
    """
    from ..data.io import deposit_cells
    from ..data.preprocess import Normaliser, valid_mask

    normaliser = Normaliser(transform="clr").fit(scenario.grid)
    mask = valid_mask(scenario.grid)
    inside = np.asarray(deposit_cells(scenario.grid, scenario.deposits).values, dtype=bool)[mask]
    return normaliser.transform(scenario.grid, mask)[inside].mean(axis=0)


# ------------------------------------------------------------------ explanations


def element_scores(fitted, prepared, inside: np.ndarray, maps=None) -> tuple[dict, dict]:
    """Per method, a score per element over the cells ``inside`` (bool per node); and per signed method,
    the score of each element as a *depleted* indicator (see :mod:`.explain_paired`).
    """
    from ..interpret import attention_maps, attribute_nodes
    from .indicator_stability import shuffled_weights

    nodes = np.flatnonzero(inside)
    out = {}
    if fitted.config.uses_spectral:
        maps = maps if maps is not None else attention_maps(fitted, prepared)
        mask = prepared.graph.mask
        for name, var in (("attention", "cls_attention"), ("rollout", "rollout")):
            values = maps[var].values[:, mask]
            out[name] = values[:, inside].mean(axis=1) - values[:, ~inside].mean(axis=1)
    ig, _ = attribute_nodes(fitted, prepared, nodes, steps=32)
    out["integrated_gradients"] = ig.mean(axis=0)
    x = prepared.x[nodes].numpy()
    above = x > 0
    out["ig_enrichment"] = (ig * above).mean(axis=0)
    depleted = {"ig_enrichment": (ig * ~above).mean(axis=0)}
    out["occlusion"] = attribute_nodes(fitted, prepared, nodes, method="occlusion")[0].mean(axis=0)
    # references: the same ranking from a model with shuffled weights (model randomisation), and from the
    # data alone (mean normalised value at the deposit cells): what an explanation adds must beat both
    shuffled, _ = attribute_nodes(shuffled_weights(fitted), prepared, nodes, steps=32)
    out["ig_enrichment_shuffled"] = (shuffled * above).mean(axis=0)
    depleted["ig_enrichment_shuffled"] = (shuffled * ~above).mean(axis=0)
    out["composition"] = x.mean(axis=0)
    depleted["composition"] = -out["composition"]
    return out, depleted


def scale_scores(fitted, prepared, inside: np.ndarray, maps) -> dict[str, np.ndarray]:
    """Per method, a score per scale over the cells ``inside``."""
    from ..interpret import scale_contributions, scale_evidence, scale_occlusion

    nodes = np.flatnonzero(inside)
    weights = maps["scale_weights"].values[:, prepared.graph.mask][:, inside]
    extra = {}
    if fitted.model.fused and fitted.config.scale_readout:
        extra["scale_contributions"] = scale_contributions(fitted, prepared, nodes).mean(axis=0)
    return extra | {
        "scale_weights": weights.mean(axis=1),
        "scale_occlusion": scale_occlusion(fitted, prepared, nodes).mean(axis=0),
        "scale_evidence": scale_evidence(fitted, prepared, nodes).mean(axis=0),
    }


def neighbour_lift(fitted, prepared, inside: np.ndarray, footprint: np.ndarray) -> float:
    """Geometric mean over deposit cells and scales of (weight on footprint neighbours) / (their uniform share).

    Head mean of the last GAT layer, self-loop excluded; only cells whose
    neighbours are partly inside and partly outside the footprint count. NaN
    when none does.
    """
    import torch

    from ..graphs.graph import receptive_subgraph

    graph = prepared.graph
    nodes = np.flatnonzero(inside)
    subset, edges, pos = receptive_subgraph(graph, nodes, fitted.model.hops)
    with torch.no_grad():
        _, details = fitted.model(prepared.x[subset], edges, pos, return_details=True)
    in_footprint = footprint[graph.mask][subset.numpy()]
    logs = []
    for per_layer in details.neighbour_attention:
        edge_index, alpha = per_layer[-1]
        src, tgt = edge_index.numpy()
        weight = alpha.mean(dim=1).numpy()
        for p in pos.numpy():
            into = (tgt == p) & (src != p)
            flags = in_footprint[src[into]]
            if 0 < flags.sum() < len(flags):
                w = weight[into]
                logs.append(np.log((w[flags].sum() / w.sum()) / flags.mean()))
    return float(np.exp(np.mean(logs))) if logs else float("nan")


def run_scenario(spec: Spec, fit_options: dict | None = None) -> dict:
    """Fit the default model on one scenario and read every explanation at its deposit cells."""
    from ..data.io import deposit_cells
    from ..interpret import attention_maps
    from ..training.pipeline import fit

    started = time.perf_counter()
    scenario, truth = make(spec)
    cells = deposit_cells(scenario.grid, scenario.deposits)
    fitted = fit(scenario.grid, cells, **(fit_options or {}))
    prepared = fitted.prepare(scenario.grid)
    inside = np.asarray(cells.values, dtype=bool)[prepared.graph.mask]
    maps = attention_maps(fitted, prepared)
    scores, depleted = element_scores(fitted, prepared, inside, maps)
    record = {
        "spec": asdict(spec),
        "truth": truth,
        "elements": list(fitted.elements),
        "scales": [float(s) for s in fitted.config.scales],
        "deposit_cells": int(inside.sum()),
        "finetune": (fitted.metadata.get("finetune") or {}).get("result"),
        "elements_scores": {k: v.tolist() for k, v in scores.items()},
        "depleted_scores": {k: v.tolist() for k, v in depleted.items()},
    }
    if fitted.config.uses_spatial:
        record["scale_scores"] = {k: v.tolist() for k, v in scale_scores(fitted, prepared, inside, maps).items()}
        record["neighbour_lift"] = neighbour_lift(fitted, prepared, inside, scenario.anomaly_mask)
    record["seconds"] = time.perf_counter() - started
    return record


# -------------------------------------------------------------------- statistics


def rank_biased_overlap(order: list, relevant: set, p: float = RBO_P) -> float:
    """Rank-biased overlap of a ranking with a relevant *set*, normalised so that the ideal ranking scores 1.

    Agreement at depth d is |top d ∩ relevant| / min(d, |relevant|); the
    weights ``(1 - p) p^(d-1)`` run over the whole ranking.
    """
    k = len(relevant)
    weights = (1 - p) * p ** np.arange(len(order))
    hits = np.cumsum([e in relevant for e in order])
    depth = np.arange(1, len(order) + 1)
    return float((weights * hits / np.minimum(depth, k)).sum() / weights.sum())


def element_statistics(order: list, ore: set, decoy: set) -> dict:
    """``top_k`` (every ore element in the top |ore|), ``top_5``, ``decoy_above`` and ``rbo`` of one ranking."""
    position = {e: i for i, e in enumerate(order)}
    worst_ore = max(position[e] for e in ore)
    return {
        "top_k": float(worst_ore < len(ore)),
        "top_5": float(worst_ore < 5),
        "decoy_above": float(any(position[e] < worst_ore for e in decoy)),
        "rbo": rank_biased_overlap(order, ore),
    }


def _wilson(successes: int, n: int) -> list:
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(method="wilson")
    return [float(ci.low), float(ci.high)]


def _bootstrap_mean(values: np.ndarray, rng, draws: int = 2000) -> list:
    idx = rng.integers(0, len(values), size=(draws, len(values)))
    means = values[idx].mean(axis=1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def score_records(records: list[dict], permutations: int = 10_000, seed: int = 0) -> dict:
    """The benchmark's figures from scenario records (see the module docstring).

    ``elements``: the control family's figures against the permutation null;
    ``families``: per family, hits and McNemar tests (:func:`.explain_paired.family_summary`).
    """
    from scipy.stats import binomtest, wilcoxon

    rng = np.random.default_rng(seed)
    n = len(records)
    control = [r for r in records if family(r["spec"]["kind"]) == CONTROL]
    out = {"n_scenarios": n, "n_control": len(control), "elements": {}, "scales": {}}
    out["families"] = family_summary(records, ELEMENT_METHODS)
    for method in ELEMENT_METHODS:
        usable = [r for r in control if method in r["elements_scores"]]
        if not usable:
            continue
        observed, null = [], []
        for r in usable:
            names = r["elements"]
            scores = np.asarray(r["elements_scores"][method])
            order = [names[i] for i in np.argsort(-scores, kind="stable")]
            ore, decoy = set(r["truth"]["ore"]), set(r["truth"]["decoy"])
            observed.append(element_statistics(order, ore, decoy))
            picks = [rng.permutation(names) for _ in range(permutations)]
            null.append(
                [element_statistics(order, set(p[: len(ore)]), set(p[len(ore) : len(ore) + len(decoy)])) for p in picks]
            )
        stats = {}
        for key in ("top_k", "top_5", "decoy_above", "rbo"):
            values = np.array([o[key] for o in observed])
            null_means = np.array([[trial[key] for trial in per] for per in null]).mean(axis=0)
            mean = float(values.mean())
            tail = (null_means <= mean).sum() if key == "decoy_above" else (null_means >= mean).sum()
            stats[key] = {
                "value": mean,
                "interval": _wilson(int(values.sum()), len(values)) if key != "rbo" else _bootstrap_mean(values, rng),
                "null_mean": float(null_means.mean()),
                "p": float((1 + tail) / (1 + permutations)),
            }
        out["elements"][method] = stats
    for method in SCALE_METHODS:
        spatial = [r for r in records if method in r.get("scale_scores", {})]
        if not spatial:
            continue
        right = np.array(
            [r["scales"][int(np.argmax(r["scale_scores"][method]))] == r["truth"]["ore_scale"] for r in spatial]
        )
        kinds = np.array([r["spec"]["kind"] for r in spatial])
        hits = int(right.sum())
        chance = 1 / len(spatial[0]["scales"])
        out["scales"][method] = {
            "first": hits / len(spatial),
            "interval": _wilson(hits, len(spatial)),
            "chance": chance,
            "p": float(binomtest(hits, len(spatial), chance, alternative="greater").pvalue),
            "by_kind": {kind: float(right[kinds == kind].mean()) for kind in dict.fromkeys(kinds)},
        }
    lifts = np.array([r["neighbour_lift"] for r in records if np.isfinite(r.get("neighbour_lift", np.nan))])
    if len(lifts):
        out["neighbour_lift"] = {
            "geometric_mean": float(np.exp(np.log(lifts).mean())),
            "above_one": float((lifts > 1).mean()),
            "interval": [float(np.exp(v)) for v in _bootstrap_mean(np.log(lifts), rng)],
            "p": float(wilcoxon(np.log(lifts)).pvalue) if len(lifts) > 1 else float("nan"),
            "n": int(len(lifts)),
        }
    return out


# ------------------------------------------------------------------------- suite


def run_explain_suite(
    out_dir,
    markdown=None,
    n: int = 24,
    first_seed: int = 0,
    fit_options=None,
    progress=None,
    log=print,
    families=None,
    name: str = "explain.json",
) -> dict:
    """Run ``n`` scenarios per family (:func:`family_specs`); write ``out_dir/name`` and, if given, the
    tables into ``markdown``.
    """
    from ..data import scenario_families as sf
    from .benchmark import versions

    started = time.perf_counter()
    records = []
    chosen = family_specs(families, n, first_seed)
    for i, spec in enumerate(chosen):
        records.append(run_scenario(spec, fit_options))
        if progress is not None:
            progress("explain", i + 1, len(chosen), f"seed {spec.seed} ({spec.kind})")
    report = {
        "suite": "explain",
        "summary": score_records(records),
        "records": records,
        "design": {
            "kinds": KINDS,
            "families": {
                "names": list(sf.FAMILIES),
                "ore_scale": sf.ORE_SCALE,
                "weak_strong_peaks": [sf.WEAK, sf.STRONG],
                "context_log": sf.CONTEXT_LOG,
                "host_radius": sf.HOST_RADIUS,
                "trend_log": sf.TREND_LOG,
            },
            "n_elements": N_ELEMENTS,
            "shape": SHAPE,
            "closure_ppm": CLOSURE,
            "rbo_p": RBO_P,
        },
        "fit_options": {k: repr(v) for k, v in (fit_options or {}).items()},
        "versions": versions(),
        "wall_seconds": time.perf_counter() - started,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    write_text_atomically(path, json.dumps(report, indent=1))
    log(f"explanations: {len(chosen)} scenarios in {report['wall_seconds'] / 60:.1f} min -> {path}")
    if markdown is not None:
        rewrite_markdown(out_dir, markdown)
    return report


def rewrite_markdown(out_dir, markdown) -> None:
    """Rewrite the explain tables of ``markdown`` from ``out_dir/explain.json`` (nothing is run)."""
    from .benchmark import update_markdown

    path = Path(out_dir) / "explain.json"
    if not path.is_file():
        raise DataError(f"no explain report in {out_dir}; run the explain suite first")
    report = json.loads(path.read_text())
    update_markdown(markdown, explain_markdown(report, path, Path(markdown).parent), BEGIN, END)


def _interval(values) -> str:
    return f"[{values[0]:.2f}, {values[1]:.2f}]"


def explain_markdown(report: dict, json_path, link_base=".") -> str:
    """The tables between the explain-benchmark markers."""
    import os

    s = report["summary"]
    lines = [
        f"Generated by `mstgat benchmark --suite explain` ({s['n_scenarios']} scenarios, "
        f"{report['wall_seconds'] / 60:.0f} min on this 2-core machine); do not edit by hand. "
        f"Every figure: [{Path(json_path).name}]({os.path.relpath(json_path, link_base)}).",
        "",
        f"Control family ({s.get('n_control', s['n_scenarios'])} scenarios):",
        "",
        "| element method | ore in top k (95 % CI) | null | p | decoy above an ore element | null "
        "| ore in top 5 | RBO (95 % CI) | null | p |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, st in s["elements"].items():
        tk, da, t5, rbo = st["top_k"], st["decoy_above"], st["top_5"], st["rbo"]
        lines.append(
            f"| {method} | {tk['value']:.2f} {_interval(tk['interval'])} | {tk['null_mean']:.3f} | {tk['p']:.4f} "
            f"| {da['value']:.2f} {_interval(da['interval'])} | {da['null_mean']:.2f} | {t5['value']:.2f} "
            f"| {rbo['value']:.2f} {_interval(rbo['interval'])} | {rbo['null_mean']:.2f} | {rbo['p']:.4f} |"
        )
    lines += families_markdown(s.get("families", {}))
    if s["scales"]:
        lines += [
            "",
            "| scale method | planted scale first (95 % CI) | chance | p | by kind |",
            "|---|---|---|---|---|",
        ]
        for method, st in s["scales"].items():
            kinds = ", ".join(f"{k} {v:.2f}" for k, v in st["by_kind"].items())
            lines.append(
                f"| {method} | {st['first']:.2f} {_interval(st['interval'])} | {st['chance']:.2f} "
                f"| {st['p']:.4f} | {kinds} |"
            )
    if "neighbour_lift" in s:
        lift = s["neighbour_lift"]
        lines += [
            "",
            f"Neighbour weights: a deposit cell gives its neighbours inside the planted ore footprint "
            f"{lift['geometric_mean']:.2f}x {_interval(lift['interval'])} the weight uniform weights would "
            f"(above 1 in {lift['above_one']:.0%} of {lift['n']} scenarios; Wilcoxon p = {lift['p']:.4f}).",
        ]
    return "\n".join(lines) + "\n"
