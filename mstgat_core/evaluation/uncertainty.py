"""Does the ensemble's spread say where the map is wrong? Figures on test folds.

The ``uncertainty`` layer is the standard deviation of the members' scores
(:meth:`~mstgat_core.training.pipeline.FittedModel.predict_layers`). The
members differ by a bootstrap of the training deposit clusters where the
fused score reads the heads, and by the element grouping the label-free score
hides where it does not (share 0, the label-free route:
:mod:`~mstgat_core.model.grouping`); the label-free method's rows carry the
latter. On each test fold of a cross-validation this module
records (:func:`uncertainty_figures`):

* the share of test-region cells with a spread above :data:`SPREAD_ZERO`;
* for every held-out deposit cell: its percentile in the test region by
  score (100 = top; ``percentile > 100 - top`` is *well ranked*) and by spread.

:func:`uncertainty_summary` pools a method's fold rows. Each deposit cell is
held out once per seed, so its figures are first averaged over seeds; a cell
is *misranked* when it is outside the top ``top`` % of its test region in
most seeds. The question is whether misranked cells carry a higher spread
percentile than well-ranked ones (one-sided Mann-Whitney over deposit cells;
cells of one cluster are not independent, so the p-value is descriptive).
The spread is lowest at the very top of a map (on South China the top 5 % of
cells sit near the 7th spread percentile), so well-ranked cells carry a low
spread by their rank alone: the comparison is not conditioned on the score.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import mannwhitneyu

SPREAD_ZERO = 1e-9  # below this the members agree (float noise of identical members)
TOP = 5.0  # percent of the test region counted as "well ranked"


def _percentile_in(values: np.ndarray, region: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Percentile (100 = highest) of ``values[nodes]`` among ``values[region]``: the average rank (1..n, ties
    sharing the mean of their ranks, as ``scipy.stats.rankdata``) over n."""
    region_sorted = np.sort(values[region])
    below = np.searchsorted(region_sorted, values[nodes], side="left")
    equal = np.searchsorted(region_sorted, values[nodes], side="right") - below
    return 100.0 * (below + (equal + 1) / 2.0) / len(region)


def uncertainty_figures(spread, scores, fold) -> dict:
    """One fold's figures of the members' ``spread`` (every node) against the method's ``scores``.

    Returns
    -------
    dict
        ``nonzero_share`` (test-region cells with spread > :data:`SPREAD_ZERO`),
        ``mean_spread`` over the test region, and ``deposits``: per test deposit cell
        ``node``, ``percentile`` (by score) and ``spread_percentile``, in the test region.
    """
    spread = np.asarray(spread, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    region = np.flatnonzero(fold.test_region)
    nodes = np.asarray(fold.test_pos, dtype=np.int64)
    score_pct = _percentile_in(scores, region, nodes)
    spread_pct = _percentile_in(spread, region, nodes)
    return {
        "nonzero_share": float(np.mean(spread[region] > SPREAD_ZERO)),
        "mean_spread": float(np.mean(spread[region])),
        "deposits": [
            {"node": int(n), "percentile": float(p), "spread_percentile": float(s)}
            for n, p, s in zip(nodes, score_pct, spread_pct)
        ],
    }


def uncertainty_summary(fold_rows, top: float = TOP) -> dict | None:
    """Pooled figures of a method's fold rows that hold ``uncertainty`` (None if none does).

    Returns ``rows``, ``nonzero_share`` (mean over rows), ``rows_all_zero`` (rows whose spread is 0 on
    every test cell: the label-free route), ``cells``, ``misranked`` and ``well_ranked`` (deposit cells,
    seed-averaged, outside / inside the top ``top`` % in most seeds), their mean spread percentiles,
    and ``p`` (one-sided Mann-Whitney: misranked cells have the higher spread; None without both
    groups), all over the rows whose spread is not 0 everywhere.
    """
    records = [row["uncertainty"] for row in fold_rows if row.get("uncertainty")]
    if not records:
        return None
    informative = [r for r in records if r["nonzero_share"] > 0]
    cells: dict[int, list] = {}
    for record in informative:
        for d in record["deposits"]:
            cells.setdefault(d["node"], []).append((d["percentile"] > 100.0 - top, d["spread_percentile"]))
    well, mis = [], []
    for values in cells.values():
        ranked = np.mean([v[0] for v in values])
        spread = float(np.mean([v[1] for v in values]))
        (well if ranked > 0.5 else mis).append(spread)
    p = None
    if well and mis:
        p = float(mannwhitneyu(mis, well, alternative="greater").pvalue)
    return {
        "rows": len(records),
        "rows_all_zero": len(records) - len(informative),
        "nonzero_share": float(np.mean([r["nonzero_share"] for r in records])),
        "cells": len(cells),
        "misranked": len(mis),
        "well_ranked": len(well),
        "misranked_spread_percentile": float(np.mean(mis)) if mis else None,
        "well_ranked_spread_percentile": float(np.mean(well)) if well else None,
        "p": p,
        "top": top,
    }


def uncertainty_markdown(summaries: dict) -> list[str]:
    """Lines of a markdown table: one row per method with a summary."""
    shown = {name: s for name, s in summaries.items() if s}
    if not shown:
        return []
    lines = [
        "",
        "Does the members' spread (the `uncertainty` layer) mark the deposits the map misses? On each test fold, "
        "deposit cells ranked outside the top 5 % of their test region (misranked, in most seeds) against those "
        "inside it, by their spread's percentile in the test region (50 = typical; the top of a map has a low "
        "spread, so this is not conditioned on the score); rows whose spread is 0 everywhere are counted "
        "and left out. One-sided Mann-Whitney over deposit cells; "
        "cells of one cluster are not independent, so p is descriptive:",
        "",
        "| method | rows with spread > 0 | cells with spread > 0 | misranked: spread pct | well ranked: spread pct "
        "| p |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in shown.items():
        p = "–" if s["p"] is None else f"{s['p']:.3g}"
        lines.append(
            f"| {name} | {s['rows'] - s['rows_all_zero']}/{s['rows']} | {100 * s['nonzero_share']:.0f} % "
            f"| {_pct(s['misranked_spread_percentile'])} (n = {s['misranked']}) "
            f"| {_pct(s['well_ranked_spread_percentile'])} (n = {s['well_ranked']}) | {p} |"
        )
    return lines


def _pct(value) -> str:
    return "–" if value is None else f"{value:.0f}"
