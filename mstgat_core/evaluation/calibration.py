"""The calibration of a probability layer on test cells: Brier score and reliability curve per fold,
pooled over folds, as a markdown table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

from ..errors import DataError

RELIABILITY_BINS = 10


def calibration_figures(
    probabilities, test_pos, test_neg, bins: int = RELIABILITY_BINS, strategy: str = "quantile"
) -> dict:
    """Brier score and reliability curve of probabilities on one fold's test cells.

    Parameters
    ----------
    probabilities : array_like
        Probability of every node (e.g. the ``calibrated`` layer).
    test_pos, test_neg : array_like of int
        Test deposit cells (label 1) and test negatives (label 0).
    bins : int
        Bins of predicted probability.
    strategy : {"quantile", "uniform"}
        ``"quantile"`` (default): equal-count bins, bin ``k`` holding the
        cells whose average rank r (1..n) of predicted probability has
        ``floor((r - 1) * bins / n) = k`` (tied cells share a bin). With
        deposits on well under 1 % of the cells nearly every probability is
        below 0.1, so ``"uniform"`` bins (``k/bins <= p < (k+1)/bins``, 1 in
        the last) would put almost every cell in the first bin.

    Returns
    -------
    dict
        ``n``, ``n_pos``, ``prevalence`` (n_pos / n), ``mean_predicted``,
        ``brier`` (mean squared difference of probability and label),
        ``brier_prevalence`` (the Brier score of the constant prevalence
        predictor on these cells, prevalence x (1 - prevalence)),
        ``strategy`` and ``reliability``: per bin ``lo`` and ``hi`` (the
        bin's edges for uniform bins, its smallest and largest predicted
        probability for quantile bins), ``count``, ``mean_predicted`` and
        ``observed`` (share of deposit cells; None for an empty bin).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    pos, neg = np.asarray(test_pos, dtype=np.int64).ravel(), np.asarray(test_neg, dtype=np.int64).ravel()
    p = np.concatenate([probabilities[pos], probabilities[neg]])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    if len(p) == 0:
        raise DataError("no test cells: calibration is undefined")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise DataError("calibration needs probabilities in [0, 1]")
    if strategy == "quantile":
        index = np.minimum(np.floor((rankdata(p) - 1) * bins / len(p)).astype(np.int64), bins - 1)
    elif strategy == "uniform":
        index = np.minimum(np.floor(p * bins).astype(np.int64), bins - 1)
    else:
        raise ValueError(f"unknown strategy {strategy!r}: 'quantile' or 'uniform'")
    prevalence = float(y.mean())
    reliability = []
    for k in range(bins):
        inside = index == k
        count = int(inside.sum())
        if strategy == "uniform":
            lo, hi = k / bins, (k + 1) / bins
        else:
            lo, hi = (float(p[inside].min()), float(p[inside].max())) if count else (None, None)
        reliability.append(
            {
                "lo": lo,
                "hi": hi,
                "count": count,
                "mean_predicted": float(p[inside].mean()) if count else None,
                "observed": float(y[inside].mean()) if count else None,
            }
        )
    return {
        "n": int(len(p)),
        "n_pos": int(len(pos)),
        "prevalence": prevalence,
        "mean_predicted": float(p.mean()),
        "brier": float(np.mean((p - y) ** 2)),
        "brier_prevalence": prevalence * (1.0 - prevalence),
        "strategy": strategy,
        "reliability": reliability,
    }


def pool_calibration(fold_rows: Sequence[Mapping]) -> dict | None:
    """Pool the fold rows' ``"calibration"`` (:func:`calibration_figures`) over folds and seeds.

    Returns
    -------
    dict or None
        None when no row has calibration figures; else ``folds`` (rows with
        figures), ``folds_uncalibrated`` (rows whose model had no calibration:
        ``"calibration": None``), ``n``, ``n_pos``, ``prevalence``,
        ``mean_predicted`` (pooled cells), ``mean_brier`` and
        ``mean_brier_prevalence`` (means over folds of the fold's Brier score
        and of its constant-prevalence Brier score), ``brier_skill`` (1 -
        their ratio: > 0 beats the constant), ``pooled_brier`` (over the pooled
        cells) and ``reliability`` (per bin: the pooled count, mean predicted
        probability and observed share of deposit cells; quantile bins
        are pooled by their index: the k-th tenth of every fold's cells).
    """
    figures = [row["calibration"] for row in fold_rows if row.get("calibration")]
    if not figures:
        return None
    if len({(f.get("strategy", "uniform"), len(f["reliability"])) for f in figures}) > 1:
        raise DataError("fold rows bin their reliability curves differently: they cannot be pooled")
    n = sum(f["n"] for f in figures)
    n_pos = sum(f["n_pos"] for f in figures)
    reliability = []
    for k in range(len(figures[0]["reliability"])):
        cells = [f["reliability"][k] for f in figures if f["reliability"][k]["count"]]
        count = sum(b["count"] for b in cells)
        reliability.append(
            {
                "lo": min((b["lo"] for b in cells), default=None),
                "hi": max((b["hi"] for b in cells), default=None),
                "count": count,
                "mean_predicted": sum(b["mean_predicted"] * b["count"] for b in cells) / count if count else None,
                "observed": sum(b["observed"] * b["count"] for b in cells) / count if count else None,
            }
        )
    mean_brier = float(np.mean([f["brier"] for f in figures]))
    mean_reference = float(np.mean([f["brier_prevalence"] for f in figures]))
    return {
        "folds": len(figures),
        "folds_uncalibrated": sum(1 for row in fold_rows if "calibration" in row and not row["calibration"]),
        "n": n,
        "n_pos": n_pos,
        "prevalence": n_pos / n,
        "mean_predicted": sum(f["mean_predicted"] * f["n"] for f in figures) / n,
        "mean_brier": mean_brier,
        "mean_brier_prevalence": mean_reference,
        "brier_skill": 1.0 - mean_brier / mean_reference if mean_reference > 0 else None,
        "pooled_brier": sum(f["brier"] * f["n"] for f in figures) / n,
        "strategy": figures[0].get("strategy", "uniform"),
        "reliability": reliability,
    }


def calibration_markdown(summaries: Mapping, reliability_of: str | None = None) -> str:
    """Markdown of pooled calibration figures (:func:`pool_calibration`) per method.

    A table of the Brier scores (one row per method; "—" where a method's
    summary is None) and the reliability table of ``reliability_of`` (default:
    the first method with figures).
    """
    lines = [
        "| method | folds calibrated | mean Brier | constant-prevalence Brier | Brier skill | mean predicted "
        "| deposit share (prevalence) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for method, s in summaries.items():
        if not s:
            lines.append(f"| {method} | — | — | — | — | — | — |")
            continue
        skill = "–" if s["brier_skill"] is None else f"{s['brier_skill']:+.3f}"
        folds = f"{s['folds']}/{s['folds'] + s['folds_uncalibrated']}"
        lines.append(
            f"| {method} | {folds} | {s['mean_brier']:.5f} | {s['mean_brier_prevalence']:.5f} | {skill} "
            f"| {s['mean_predicted']:.4f} | {s['prevalence']:.4f} |"
        )
    chosen = reliability_of if summaries.get(reliability_of) else next((m for m, s in summaries.items() if s), None)
    if chosen is not None:
        summary = summaries[chosen]
        how = (
            "tenths of each fold's test cells by predicted probability"
            if summary.get("strategy") == "quantile"
            else f"{len(summary['reliability'])} equal-width bins of predicted probability"
        )
        lines += [
            "",
            f"Reliability of {chosen} (test cells of every fold pooled; {how}):",
            "",
            "| bin | predicted range | cells | mean predicted | observed deposit share |",
            "|---:|---|---:|---:|---:|",
        ]
        for k, b in enumerate(summary["reliability"], start=1):
            if b["count"]:
                lines.append(
                    f"| {k} | {b['lo']:.4f}-{b['hi']:.4f} | {b['count']} | {b['mean_predicted']:.4f} "
                    f"| {b['observed']:.4f} |"
                )
    return "\n".join(lines) + "\n"
