"""Faithfulness of the element explanations: deletion and insertion curves (issue 28, item 3).

For each cell of a set, its elements are ranked by four methods:

``attention``
    the Transformer's [CLS]->element attention, head mean of the last layer
    (``cls_attention`` of :func:`~mstgat_core.interpret.attention_maps`), highest first;
``integrated_gradients``
    IG of the cell's logit w.r.t. its own features
    (:func:`~mstgat_core.interpret.attribution.attribute_nodes`), highest first;
``occlusion``
    the logit drop when one element alone is set to the baseline
    (``attribute_nodes(method="occlusion")``), largest first;
``random``
    seeded random orders, the curves averaged over :data:`RANDOM_DRAWS` draws.

Deletion: for k = 0..E the cell's k top-ranked elements are set to the IG
baseline (normalised value 0, the grid's robust median composition) and the
model's logit is read (the quantity IG and occlusion explain); the cell's
neighbours keep their real values. Insertion: every element of the cell at
the baseline, then the k top-ranked ones restored. AOPC (area over the
perturbation curve) = mean over k = 1..E of the deletion drop
``logit(0) - logit(k)``; the insertion figure is the mean over k = 1..E of the
gain ``logit(k) - logit(all at baseline)``. A faithful ranking puts first the
elements whose removal lowers the score most, so both are larger than random's.

Every curve is computed exactly, batched over cells and steps, on the cells'
receptive subgraphs (:meth:`~mstgat_core.interpret.attribution.Subgraphs.forward_of`:
private copies of each cell, so perturbing one cell never moves another's logit).

Statistics per method against random, paired by cell: Wilcoxon signed-rank
(one-sided, method > random) of the per-cell AOPC, and the share of cells where
the method's AOPC beats random's. A method is called faithful only when its
mean deletion AOPC is above random's with p < :data:`ALPHA`. Cells of one
dataset share one model and often neighbour each other, so the p-values treat
correlated cells as independent: read them as descriptive.

``python -m mstgat_core.experiments.faithfulness --out docs/results/faithfulness.json``
runs it on explanation-benchmark scenarios and on South China.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..files import write_text_atomically
from ..interpret.attribution import Subgraphs, attribute_nodes
from ..interpret.common import model_of
from ..model.spectral import cls_attention as spectral_cls_attention

METHODS = ("attention", "integrated_gradients", "occlusion", "random")
RANDOM_DRAWS = 8
ALPHA = 0.01
TOP_SHARE = 0.01  # the top 1 % scored cells join the deposit cells
DELETED = 3  # the Learn tab's "deleting the 3 elements with the highest attention"


# --------------------------------------------------------------------- rankings


def check_cells(prepared, cells) -> np.ndarray:
    """``cells`` as int64 node indices; DataError when empty or outside the grid's cells with data."""
    cells = np.asarray(cells, dtype=np.int64).ravel()
    n = prepared.graph.num_nodes
    if len(cells) == 0:
        raise DataError("no cells to test the explanations on")
    bad = cells[(cells < 0) | (cells >= n)]
    if len(bad):
        raise DataError(f"cell {int(bad[0])} is outside the grid's {n} cells with data")
    return cells


def cls_attention(fitted, prepared, cells) -> np.ndarray:
    """(cells, E) head-mean [CLS]->element attention of the last layer (what ``attention_maps`` maps)."""
    model = model_of(fitted)
    rows = []
    with torch.no_grad():
        for chunk in torch.split(torch.from_numpy(cells), 1024):
            _, att = model.spectral(prepared.x[chunk], need_weights=True)
            rows.append(spectral_cls_attention(att))
    return torch.cat(rows).numpy()


def element_scores(fitted, prepared, cells, ig_steps: int = 32) -> dict[str, np.ndarray]:
    """(cells, E) scores per explanation method, higher = ranked first (random is not a score)."""
    cells = check_cells(prepared, cells)
    out = {}
    if fitted.config.uses_spectral:
        out["attention"] = cls_attention(fitted, prepared, cells)
    out["integrated_gradients"] = attribute_nodes(fitted, prepared, cells, steps=ig_steps)[0]
    out["occlusion"] = attribute_nodes(fitted, prepared, cells, method="occlusion")[0]
    return out


def orders_of(scores: np.ndarray) -> np.ndarray:
    """(cells, E) element indices, highest score first (ties: lower index first)."""
    return np.argsort(-np.asarray(scores), axis=1, kind="stable")


def random_orders(n_cells: int, n_elements: int, draws: int, seed: int) -> np.ndarray:
    """(draws, cells, E) seeded random element orders."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permuted(np.tile(np.arange(n_elements), (n_cells, 1)), axis=1) for _ in range(draws)])


# ----------------------------------------------------------------------- curves


def perturbation_curves(
    fitted, prepared, cells, orders: np.ndarray, chunk: int = 32, rows: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """(deletion, insertion), each (orders, cells, E + 1): the cells' logits with k elements perturbed.

    ``orders`` (M, cells, E): element indices, most important first. Deletion
    step k sets the first k of a cell's order to the baseline (0); insertion
    step k keeps only those k at their values and the rest at the baseline.
    All M x 2 (E + 1) variants of a chunk of cells go through the model in one batch.
    """
    cells = check_cells(prepared, cells)
    orders = np.asarray(orders, dtype=np.int64)
    if orders.ndim == 2:
        orders = orders[None]
    m, n_cells, n_el = orders.shape
    if n_cells != len(cells) or n_el != prepared.x.shape[1]:
        raise DataError(
            f"orders of shape {orders.shape} do not match {len(cells)} cells x {prepared.x.shape[1]} elements"
        )
    model = model_of(fitted)
    builder = Subgraphs(model, prepared.graph)
    # rank[m, c, j] = position of element j in order m of cell c
    rank = np.empty_like(orders)
    np.put_along_axis(rank, orders, np.arange(n_el)[None, None, :], axis=2)
    steps = np.arange(n_el + 1)
    kept = torch.from_numpy(rank[:, None] >= steps[None, :, None, None])  # (M, K, cells, E): deletion keeps these
    deletion = np.empty((m, n_cells, n_el + 1), np.float32)
    insertion = np.empty_like(deletion)
    for start in range(0, n_cells, chunk):
        part = slice(start, start + chunk)
        ids = cells[part]
        forward = builder.forward_of(prepared.x, ids)
        x = prepared.x[torch.from_numpy(ids)]  # (b, E)
        keep = kept[:, :, part]  # (M, K, b, E)
        # (2M, K, b, E), copies outer and cells inner as ``forward`` reads them; ~keep at step k
        # holds exactly the first k elements of the order: insertion step k
        values = torch.cat([x * keep, x * ~keep])
        b = len(ids)
        per_call = max(rows // b, 1)
        with torch.no_grad():
            logits = torch.cat([forward(v.reshape(-1, n_el)) for v in values.reshape(-1, b, n_el).split(per_call)])
        logits = logits.reshape(2, m, n_el + 1, b).permute(0, 1, 3, 2).numpy()
        deletion[:, part], insertion[:, part] = logits[0], logits[1]
    return deletion, insertion


def aopc(deletion: np.ndarray, insertion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-curve deletion AOPC (mean drop over k = 1..E) and insertion gain (mean rise over k = 1..E)."""
    drop = deletion[..., :1] - deletion[..., 1:]
    gain = insertion[..., 1:] - insertion[..., :1]
    return drop.mean(axis=-1), gain.mean(axis=-1)


def paired(method: np.ndarray, reference: np.ndarray) -> dict:
    """One-sided Wilcoxon signed-rank of per-cell ``method`` > ``reference``, and the share of cells it wins."""
    from scipy.stats import wilcoxon

    diff = np.asarray(method, float) - np.asarray(reference, float)
    if np.all(diff == 0):
        p = 1.0
    else:
        p = float(wilcoxon(diff, alternative="greater", zero_method="wilcox").pvalue)
    return {"p_vs_random": p, "share_beating_random": float(np.mean(diff > 0))}


def faithfulness(fitted, prepared, cells, ig_steps: int = 32, draws: int = RANDOM_DRAWS, seed: int = 0) -> dict:
    """Deletion and insertion curves of every method at ``cells`` (node indices), with paired statistics.

    Returns plain JSON: ``n_cells``, ``n_elements``, ``unperturbed_logit`` and
    ``baseline_logit`` (mean logit with every element of the cell at the
    baseline), and per method ``deletion`` / ``insertion`` (mean logit per k),
    ``deletion_drop`` (mean ``logit(0) - logit(k)``), ``deletion_aopc``,
    ``insertion_aopc``, ``p_vs_random`` and ``share_beating_random`` (deletion
    AOPC, per cell), ``insertion_p_vs_random``, ``insertion_share_beating_random``
    and ``faithful`` (deletion AOPC above random's with p < ALPHA); plus
    ``per_cell`` (method -> per-cell deletion AOPC) for pooling.
    """
    cells = check_cells(prepared, cells)
    scores = element_scores(fitted, prepared, cells, ig_steps)
    n_el = prepared.x.shape[1]
    names = list(scores)
    orders = np.stack([orders_of(scores[k]) for k in names] + list(random_orders(len(cells), n_el, draws, seed)))
    deletion, insertion = perturbation_curves(fitted, prepared, cells, orders)
    m = len(names)
    curves = {k: (deletion[i], insertion[i]) for i, k in enumerate(names)}
    curves["random"] = (deletion[m:].mean(axis=0), insertion[m:].mean(axis=0))
    per_cell = {k: aopc(*v) for k, v in curves.items()}
    out = {
        "n_cells": int(len(cells)),
        "n_elements": int(n_el),
        "unperturbed_logit": float(deletion[0, :, 0].mean()),
        "baseline_logit": float(deletion[0, :, -1].mean()),
        "methods": {},
        "per_cell": {k: v[0].tolist() for k, v in per_cell.items()},
        "per_cell_insertion": {k: v[1].tolist() for k, v in per_cell.items()},
    }
    for k, (d, ins) in curves.items():
        out["methods"][k] = method_summary(d, ins, per_cell[k], per_cell["random"], k == "random")
    return out


def method_summary(deletion, insertion, own, random, is_random: bool) -> dict:
    """A method's mean curves and its per-cell AOPC against random's (``own``/``random``: (deletion, insertion))."""
    entry = {
        "deletion": deletion.mean(axis=0).tolist(),
        "insertion": insertion.mean(axis=0).tolist(),
        "deletion_drop": (deletion[:, :1] - deletion).mean(axis=0).tolist(),
        "deletion_aopc": float(own[0].mean()),
        "insertion_aopc": float(own[1].mean()),
    }
    if not is_random:
        stats = paired(own[0], random[0])
        entry.update(stats)
        ins = paired(own[1], random[1])
        entry["insertion_p_vs_random"] = ins["p_vs_random"]
        entry["insertion_share_beating_random"] = ins["share_beating_random"]
        entry["faithful"] = bool(entry["deletion_aopc"] > float(random[0].mean()) and stats["p_vs_random"] < ALPHA)
    return entry


def pool(results: list[dict]) -> dict:
    """Several datasets' results (same elements count) as one: per-cell curves pooled, statistics redone."""
    methods = list(results[0]["methods"])
    n = sum(r["n_cells"] for r in results)

    def weighted(method, key):
        return np.sum([np.asarray(r["methods"][method][key]) * r["n_cells"] for r in results], axis=0) / n

    def cat(key, method):
        return np.concatenate([r[key][method] for r in results])

    out = {
        "n_cells": int(n),
        "n_elements": results[0]["n_elements"],
        "unperturbed_logit": float(np.sum([r["unperturbed_logit"] * r["n_cells"] for r in results]) / n),
        "baseline_logit": float(np.sum([r["baseline_logit"] * r["n_cells"] for r in results]) / n),
        "methods": {},
    }
    rand = (cat("per_cell", "random"), cat("per_cell_insertion", "random"))
    for method in methods:
        own = (cat("per_cell", method), cat("per_cell_insertion", method))
        d, ins = weighted(method, "deletion"), weighted(method, "insertion")
        entry = method_summary(d[None], ins[None], own, rand, method == "random")
        entry["deletion_drop"] = weighted(method, "deletion_drop").tolist()
        out["methods"][method] = entry
    return out


# ------------------------------------------------------------------ the datasets


def scored_cells(fitted, prepared, deposits, top_share: float = TOP_SHARE) -> tuple[np.ndarray, int, int]:
    """(cells, deposit cells, top cells): the deposit cells plus the top ``top_share`` scored cells."""
    inside = np.nonzero(np.asarray(deposits.values, dtype=bool)[prepared.graph.mask])[0]
    probability = fitted.predict_prepared(prepared).probability.numpy()
    n_top = max(int(round(top_share * len(probability))), 1)
    top = np.argsort(-probability, kind="stable")[:n_top]
    return np.union1d(inside, top), len(inside), n_top


def run_dataset(fitted, grid, deposits, log=print, **options) -> dict:
    """Faithfulness at the deposit cells plus the top 1 % scored cells of one grid."""
    prepared = fitted.prepare(grid)
    cells, n_dep, n_top = scored_cells(fitted, prepared, deposits)
    log(f"  {len(cells)} cells ({n_dep} deposit cells, top {n_top} scored), {prepared.x.shape[1]} elements")
    result = faithfulness(fitted, prepared, cells, **options)
    result.update(n_deposit_cells=n_dep, n_top_cells=n_top)
    return result


def run_scenarios(n: int = 4, log=print) -> dict:
    """Fit the default model on ``n`` explanation-benchmark control scenarios; pool their cells."""
    from ..data.io import deposit_cells
    from ..training.pipeline import fit
    from . import explain_benchmark as eb

    results = []
    for spec in eb.specs(n):
        started = time.perf_counter()
        scenario, _ = eb.make(spec)
        cells = deposit_cells(scenario.grid, scenario.deposits)
        fitted = fit(scenario.grid, cells)
        log(f"scenario {spec.seed} ({spec.kind}): fitted in {time.perf_counter() - started:.0f} s")
        result = run_dataset(fitted, scenario.grid, cells, log=log)
        result["spec"] = {"seed": spec.seed, "kind": spec.kind}
        results.append(result)
        log(f"  done in {time.perf_counter() - started:.0f} s; " + brief(result))
    pooled = pool(results)
    pooled["scenarios"] = [
        {
            "spec": r["spec"],
            "n_cells": r["n_cells"],
            "deletion_aopc": {k: v["deletion_aopc"] for k, v in r["methods"].items()},
            "p_vs_random": {k: v.get("p_vs_random") for k, v in r["methods"].items()},
        }
        for r in results
    ]
    return pooled


def run_south_china(log=print) -> dict:
    """The bundled checkpoint on the bundled grid (as the pathfinder comparison loads them), no refit."""
    from ..data.io import deposit_cells, load_deposits, load_grid
    from ..paths import DEMO_CHECKPOINT, DEMO_DEPOSITS, DEMO_GRID
    from ..training.checkpoint import load_checkpoint

    fitted = load_checkpoint(DEMO_CHECKPOINT)
    grid = load_grid(DEMO_GRID)
    result = run_dataset(fitted, grid, deposit_cells(grid, load_deposits(DEMO_DEPOSITS)), log=log)
    result.pop("per_cell"), result.pop("per_cell_insertion")
    return result


def brief(result: dict) -> str:
    """One line: each method's deletion AOPC and p against random."""
    parts = []
    for k, v in result["methods"].items():
        p = f", p {v['p_vs_random']:.2g}" if "p_vs_random" in v else ""
        parts.append(f"{k} {v['deletion_aopc']:.3f}{p}")
    return "deletion AOPC: " + "; ".join(parts)


def run(out, n_scenarios: int = 4, log=print) -> dict:
    """Both datasets; writes the JSON report to ``out`` and returns it."""
    torch.manual_seed(0)
    started = time.perf_counter()
    report = {
        "description": __doc__.split("\n\n")[0],
        "alpha": ALPHA,
        "random_draws": RANDOM_DRAWS,
        "top_share": TOP_SHARE,
        "deleted": DELETED,
        "score": "the model's logit (ensemble mean), neighbours at their real values",
        "baseline": "normalised value 0 = the grid's robust median composition",
        "datasets": {},
    }
    log("South China (bundled checkpoint)")
    report["datasets"]["south_china"] = run_south_china(log)
    log("  " + brief(report["datasets"]["south_china"]))
    log(f"explanation-benchmark scenarios ({n_scenarios})")
    report["datasets"]["scenarios"] = run_scenarios(n_scenarios, log)
    log("  pooled " + brief(report["datasets"]["scenarios"]))
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_text_atomically(Path(out), json.dumps(report, indent=1) + "\n")
    log(f"wrote {out} in {report['seconds']:.0f} s")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mstgat_core.experiments.faithfulness", description=__doc__)
    parser.add_argument("--out", required=True, help="JSON report to write")
    parser.add_argument("--scenarios", type=int, default=4, help="explanation-benchmark scenarios to fit (default 4)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    run(args.out, args.scenarios, log=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
