"""Statistics for an honest spatial cross-validation comparison of methods.

Capture rates of held-out deposit cells in the top cells of a test region, paired
(seed, fold) comparisons with a Wilcoxon signed-rank test, and a bootstrap
over deposit clusters (the independent units of a spatial study) for the
confidence interval of the ROC-AUC difference. No plotting, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import wilcoxon

from .errors import DataError

__all__ = [
    "capture_rates",
    "cluster_bootstrap_ci",
    "compare_methods",
    "comparison_markdown",
    "paired_comparison",
]

DISPLAY_NAMES = {"mstgat": "MSTGAT"}


def _share_key(q: float) -> str:
    """``0.05 -> "5"``, ``0.025 -> "2.5"``: a share as percent text."""
    return f"{round(q * 100, 10):g}"


def capture_rates(
    scores, test_pos, region_nodes, shares: Sequence[float] = (0.01, 0.05, 0.10, 0.20)
) -> dict[str, float]:
    """Expected share of test deposits ranked within the top ``q`` of the test region.

    Parameters
    ----------
    scores : array_like
        Score of every node (higher = more prospective).
    test_pos : array_like of int
        Node ids of the test deposit cells; all must lie in ``region_nodes``.
    region_nodes : array_like of int
        Node ids of the test region (N cells).
    shares : sequence of float
        Shares ``q`` in (0, 1]; the top ``q * N`` cells (fractional allowed).

    Returns
    -------
    dict of str to float
        Percent as text (``"1"``, ``"5"``, ...) -> expected captured share.
        Ties are broken at random in expectation: a deposit tied with ``n``
        cells at ranks ``a+1..a+n`` counts with probability
        ``clip((q*N - a) / n, 0, 1)``.

    Raises
    ------
    DataError
        If ``test_pos`` is empty, the region is empty, or a deposit lies outside it.
    """
    scores = np.asarray(scores, dtype=np.float64)
    test_pos = np.asarray(test_pos, dtype=np.int64).ravel()
    region_nodes = np.asarray(region_nodes, dtype=np.int64).ravel()
    if len(test_pos) == 0:
        raise DataError("no test deposit cells: capture rates are undefined")
    if len(region_nodes) == 0:
        raise DataError("empty test region: capture rates are undefined")
    if not np.isin(test_pos, region_nodes).all():
        raise DataError("some test deposit cells lie outside the test region")
    region_sorted = np.sort(scores[region_nodes])
    pos_scores = scores[test_pos]
    n_cells = len(region_sorted)
    below_or_tied = np.searchsorted(region_sorted, pos_scores, side="right")
    higher = n_cells - below_or_tied  # a: strictly higher scores
    tied = below_or_tied - np.searchsorted(region_sorted, pos_scores, side="left")  # n >= 1 (the deposit itself)
    rates = {}
    for q in shares:
        if not 0 < q <= 1:
            raise ValueError(f"share {q} is not in (0, 1]")
        prob = np.clip((q * n_cells - higher) / tied, 0.0, 1.0)
        rates[_share_key(q)] = float(prob.mean())
    return rates


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)


def paired_comparison(reference: Mapping, other: Mapping) -> dict:
    """Paired comparison of two methods over the keys both have (e.g. (seed, fold)).

    Pairs where either value is missing (None) or not finite are left out.

    Parameters
    ----------
    reference, other : mapping
        Key -> metric value.

    Returns
    -------
    dict
        ``n``, ``wins`` (reference > other), ``losses``, ``ties``,
        ``mean_difference`` and ``median_difference`` (reference - other; None
        when n == 0), ``wilcoxon_p`` (two-sided, ``zero_method="wilcox"``; 1.0
        when every difference is zero, None when n < 2). Plain Python types.
    """
    keys = [k for k in reference if k in other and _finite(reference[k]) and _finite(other[k])]
    diffs = np.array([float(reference[k]) - float(other[k]) for k in keys], dtype=np.float64)
    n = len(diffs)
    if n < 2:
        p = None
    elif not np.any(diffs != 0):
        p = 1.0
    else:
        p = float(wilcoxon(diffs, zero_method="wilcox", alternative="two-sided").pvalue)
    return {
        "n": n,
        "wins": int(np.sum(diffs > 0)),
        "losses": int(np.sum(diffs < 0)),
        "ties": int(np.sum(diffs == 0)),
        "mean_difference": float(diffs.mean()) if n else None,
        "median_difference": float(np.median(diffs)) if n else None,
        "wilcoxon_p": p,
    }


def cluster_bootstrap_ci(
    differences: Mapping, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean difference, resampling clusters.

    Parameters
    ----------
    differences : mapping
        Cluster id -> list of paired differences observed for that cluster
        (e.g. over seeds). Empty lists and non-finite values are ignored.
    n_boot : int
        Bootstrap replicates.
    level : float
        Coverage of the interval, in (0, 1).
    seed : int
        Seed of the resampling (the result is deterministic for a seed and does
        not depend on the order of the clusters).

    Returns
    -------
    tuple of float
        ``(lo, hi)``. Each replicate draws as many cluster ids as there are,
        with replacement, and takes the mean of all differences of the drawn
        clusters (a cluster drawn twice counts twice). One cluster: its mean twice.

    Raises
    ------
    DataError
        If no cluster has a finite difference.
    """
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    sums, counts = [], []
    for key in sorted(differences, key=str):
        values = np.asarray(list(differences[key]), dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        if len(values):
            sums.append(values.sum())
            counts.append(len(values))
    if not sums:
        raise DataError("no cluster differences to bootstrap")
    sums, counts = np.array(sums), np.array(counts, dtype=np.float64)
    if len(sums) == 1:
        mean = float(sums[0] / counts[0])
        return mean, mean
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(n_boot, len(sums)))
    stats = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _verdict(ci, p) -> str:
    if ci is not None and p is not None and p < 0.05:
        if ci[0] > 0:
            return "beats"
        if ci[1] < 0:
            return "loses to"
    return "indistinguishable from"


def compare_methods(
    report: Mapping,
    reference: str = "mstgat",
    metrics: Sequence[str] = ("roc_auc", "pr_auc"),
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """Compare the reference method with every other method of a cross-validation report.

    Fold rows are paired on (seed, fold). The bootstrap interval always uses
    the per-cluster ROC-AUC (fold row ``"clusters"``: deposit-cluster id -> that
    cluster's ROC-AUC in the fold), whatever ``metrics`` holds: differences
    reference minus other are grouped by cluster id across seeds and clusters
    are resampled (:func:`cluster_bootstrap_ci`).

    Parameters
    ----------
    report : mapping
        Cross-validation report with ``report["results"][method]["folds"]``.
    reference : str
        The method compared with all others.
    metrics : sequence of str
        Fold-row metrics given a :func:`paired_comparison`. ``"roc_auc"`` is
        always compared as well (the verdict uses its Wilcoxon p).
    n_boot, seed : int
        Bootstrap replicates and seed.

    Returns
    -------
    dict
        ``{method: {metric: paired_comparison, "ci95": [lo, hi], "verdict": str}}``;
        ``verdict`` reads "<reference> <verdict> <method>": "beats" when the
        interval lies entirely above 0 and the ROC-AUC Wilcoxon p < 0.05,
        "loses to" when entirely below 0 and p < 0.05, else
        "indistinguishable from".

    Raises
    ------
    DataError
        If the reference is missing, or fold rows lack per-cluster ROC-AUCs.
    """
    results = report.get("results", {}) if isinstance(report, Mapping) else {}
    if reference not in results:
        raise DataError(f"reference method {reference!r} is not in the report")
    metrics = list(metrics) if "roc_auc" in metrics else ["roc_auc", *metrics]

    def rows_by_key(method):
        return {(row["seed"], row["fold"]): row for row in results[method].get("folds", [])}

    ref_rows = rows_by_key(reference)
    comparison = {}
    for method in results:
        if method == reference:
            continue
        rows = rows_by_key(method)
        entry = {
            metric: paired_comparison(
                {k: r.get(metric) for k, r in ref_rows.items()}, {k: r.get(metric) for k, r in rows.items()}
            )
            for metric in metrics
        }
        cluster_diffs: dict[str, list[float]] = {}
        for key in ref_rows.keys() & rows.keys():
            ref_clusters, clusters = ref_rows[key].get("clusters"), rows[key].get("clusters")
            if ref_clusters is None or clusters is None:
                raise DataError(f"fold rows lack per-cluster ROC-AUC ('clusters'): rerun the cross-validation ({key})")
            ref_clusters = {str(c): v for c, v in ref_clusters.items()}
            for cluster, value in clusters.items():
                ref_value = ref_clusters.get(str(cluster))
                if _finite(ref_value) and _finite(value):
                    cluster_diffs.setdefault(str(cluster), []).append(float(ref_value) - float(value))
        ci = list(cluster_bootstrap_ci(cluster_diffs, n_boot=n_boot, seed=seed)) if cluster_diffs else None
        entry["ci95"] = ci
        entry["verdict"] = _verdict(ci, entry["roc_auc"]["wilcoxon_p"])
        comparison[method] = entry
    return comparison


def _format_p(p) -> str:
    if p is None:
        return "–"
    return np.format_float_positional(p, precision=2, unique=False, fractional=False, trim="-")


def comparison_markdown(comparison: Mapping, reference: str = "mstgat") -> str:
    """Markdown table of :func:`compare_methods`, one row per compared method.

    Parameters
    ----------
    comparison : mapping
        Output of :func:`compare_methods`.
    reference : str
        Name of the reference method (``"mstgat"`` is shown as "MSTGAT").

    Returns
    -------
    str
        Columns: method, mean ΔROC-AUC (reference - method), 95 % CI over
        deposit clusters, wins/losses/ties over (seed, fold), Wilcoxon p, reading.
    """
    name = DISPLAY_NAMES.get(reference, reference)
    lines = [
        "| method | mean ΔROC-AUC | 95 % CI (deposit clusters) | wins/losses/ties | Wilcoxon p | reading |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for method, entry in comparison.items():
        roc = entry["roc_auc"]
        mean = "–" if roc["mean_difference"] is None else f"{roc['mean_difference']:+.3f}"
        ci = entry.get("ci95")
        ci_text = "–" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
        record = f"{roc['wins']}/{roc['losses']}/{roc['ties']}"
        reading = f"{name} {entry['verdict']} {method}"
        lines.append(f"| {method} | {mean} | {ci_text} | {record} | {_format_p(roc['wilcoxon_p'])} | {reading} |")
    return "\n".join(lines) + "\n"
