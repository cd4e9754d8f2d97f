"""Statistics for an honest spatial cross-validation comparison of methods.

Capture rates of held-out deposit cells in the top cells of a test region;
paired comparisons whose unit is the **deposit cluster** (the independent unit
of a spatial study: every (seed, fold) row reuses the same clusters, and
leave-one-cluster-out folds are even identical across seeds): each cluster's
ROC-AUC difference averaged over seeds, then over clusters the mean
difference, its cluster-bootstrap interval (the same estimand), exact
Wilcoxon signed-rank and sign tests with near-zero differences counted as
ties, and the smallest p the exact test can reach with that many clusters.
Wins/losses over (seed, fold) rows are kept as a description only (the
calibration of a probability layer: :mod:`.calibration`). No plotting, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import binomtest, rankdata, wilcoxon

from ..errors import DataError

__all__ = [
    "ALPHA",
    "TIE_TOLERANCE",
    "capture_rates",
    "cluster_bootstrap_ci",
    "cluster_comparison",
    "cluster_differences",
    "comparison_notes",
    "compare_methods",
    "comparison_markdown",
    "exact_wilcoxon_p",
    "holm",
    "min_attainable_p",
    "paired_comparison",
    "reading",
    "sign_test_p",
]

DISPLAY_NAMES = {"mstgat": "MSTGAT"}
TIE_TOLERANCE = 1e-6  # |difference| <= this counts as a tie (ROC-AUCs equal up to rounding)
ALPHA = 0.05  # significance level of the verdicts


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


def _record(diffs: np.ndarray, tie_tolerance: float) -> dict:
    """Wins (> tolerance), losses (< -tolerance) and ties (|d| <= tolerance) of paired differences."""
    return {
        "wins": int(np.sum(diffs > tie_tolerance)),
        "losses": int(np.sum(diffs < -tie_tolerance)),
        "ties": int(np.sum(np.abs(diffs) <= tie_tolerance)),
    }


def min_attainable_p(n_untied: int) -> float:
    """Smallest two-sided p an exact signed-rank (or sign) test can give with ``n_untied`` differences.

    ``2 / 2**n`` (every difference of one sign), at most 1: with 5 or fewer
    untied units no exact test can reach p < 0.05 (2/32 = 0.0625).
    """
    return min(1.0, 2.0 / 2.0 ** int(n_untied))


def exact_wilcoxon_p(differences) -> float | None:
    """Exact two-sided Wilcoxon signed-rank p of non-zero paired differences.

    Drop ties (zero or near-zero differences) before calling: this function
    refuses them, because with zeros scipy's ``method="exact"`` silently drops
    them (scipy 1.17) and ``method="auto"`` switches to a permutation or a
    normal approximation. Without tied magnitudes the p is scipy's
    ``wilcoxon(d, method="exact")``; with tied magnitudes (midranks) scipy's
    "exact" reads the table of untied integer ranks, which is not exact
    (either way), so the exact distribution of the signed midrank sum is
    enumerated instead (all ``2**n`` sign patterns, by dynamic
    programming over doubled midranks). None for no difference.
    """
    d = np.asarray(differences, dtype=np.float64).ravel()
    if len(d) == 0:
        return None
    if np.any(d == 0) or not np.all(np.isfinite(d)):
        raise ValueError("exact_wilcoxon_p takes non-zero finite differences: drop ties first")
    magnitudes = np.abs(d)
    if len(np.unique(magnitudes)) == len(d):
        return float(wilcoxon(d, method="exact", alternative="two-sided").pvalue)
    doubled = np.rint(2 * rankdata(magnitudes)).astype(np.int64)  # midranks are multiples of 1/2
    total = int(doubled.sum())
    dist = np.zeros(total + 1)
    dist[0] = 1.0
    for r in doubled:  # distribution of the (doubled) positive rank sum under random signs
        dist = 0.5 * (dist + np.concatenate([np.zeros(r), dist[:-r]]))
    observed = int(doubled[d > 0].sum())
    extreme = np.abs(2 * np.arange(total + 1) - total) >= abs(2 * observed - total)
    return float(min(1.0, dist[extreme].sum()))


def sign_test_p(wins: int, losses: int) -> float | None:
    """Exact two-sided sign test (binomial, p = 1/2) of ``wins`` against ``losses``; 1.0 for none, ties excluded."""
    n = int(wins) + int(losses)
    if n == 0:
        return 1.0
    return float(binomtest(int(wins), n, 0.5, alternative="two-sided").pvalue)


def paired_comparison(
    reference: Mapping, other: Mapping, tie_tolerance: float = TIE_TOLERANCE, test: bool = True
) -> dict:
    """Paired comparison of two methods over the keys both have (e.g. (seed, fold)).

    Pairs where either value is missing (None) or not finite are left out.
    The test treats the keys as independent units: give it one value per
    independent unit (see :func:`cluster_comparison`); over (seed, fold) rows,
    which reuse the same deposit clusters, use ``test=False`` (a description).

    Parameters
    ----------
    reference, other : mapping
        Key -> metric value.
    tie_tolerance : float
        ``|difference| <= tie_tolerance`` counts as a tie.
    test : bool
        Add ``wilcoxon_p``.

    Returns
    -------
    dict
        ``n``, ``wins`` (reference - other > tolerance), ``losses``, ``ties``,
        ``mean_difference`` and ``median_difference`` (reference - other; None
        when n == 0); with ``test``, ``wilcoxon_p``: exact two-sided over the
        untied pairs (:func:`exact_wilcoxon_p`), 1.0 when every pair is tied,
        None when n < 2. Plain Python types.
    """
    keys = [k for k in reference if k in other and _finite(reference[k]) and _finite(other[k])]
    diffs = np.array([float(reference[k]) - float(other[k]) for k in keys], dtype=np.float64)
    n = len(diffs)
    result = {
        "n": n,
        **_record(diffs, tie_tolerance),
        "mean_difference": float(diffs.mean()) if n else None,
        "median_difference": float(np.median(diffs)) if n else None,
    }
    if test:
        untied = diffs[np.abs(diffs) > tie_tolerance]
        result["wilcoxon_p"] = None if n < 2 else (exact_wilcoxon_p(untied) if len(untied) else 1.0)
    return result


def cluster_bootstrap_ci(
    differences: Mapping, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean difference, resampling clusters.

    Parameters
    ----------
    differences : mapping
        Cluster id -> list of paired differences observed for that cluster
        (e.g. over seeds). Empty lists and non-finite values are ignored.
        Give one value per cluster (its seed average) for the mean of the
        cluster differences, the estimand of :func:`cluster_comparison`.
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


def cluster_differences(reference_rows: Sequence[Mapping], other_rows: Sequence[Mapping]) -> dict[str, dict]:
    """Each deposit cluster's ROC-AUC difference (reference - other), averaged over seeds.

    Rows are paired on (seed, fold); within a pair, every cluster both rows
    scored (fold row ``"clusters"``: cluster id -> that cluster's ROC-AUC
    against the fold's test negatives) gives one difference. Differences are
    averaged per (cluster, seed) (a cluster in several folds of one seed, as
    block folds allow, counts once per seed), then over the seeds.

    Returns
    -------
    dict
        Cluster id (str) -> ``{"difference": float, "seeds": int}``, ordered by id.

    Raises
    ------
    DataError
        If a paired row lacks per-cluster ROC-AUCs.
    """
    ref = {(row["seed"], row["fold"]): row for row in reference_rows}
    oth = {(row["seed"], row["fold"]): row for row in other_rows}
    per_seed: dict[str, dict] = {}
    for key in sorted(ref.keys() & oth.keys(), key=str):
        ref_clusters, clusters = ref[key].get("clusters"), oth[key].get("clusters")
        if ref_clusters is None or clusters is None:
            raise DataError(f"fold rows lack per-cluster ROC-AUC ('clusters'): rerun the cross-validation ({key})")
        ref_clusters = {str(c): v for c, v in ref_clusters.items()}
        for cluster, value in clusters.items():
            ref_value = ref_clusters.get(str(cluster))
            if _finite(ref_value) and _finite(value):
                per_seed.setdefault(str(cluster), {}).setdefault(key[0], []).append(float(ref_value) - float(value))
    ordered = sorted(per_seed, key=lambda c: (0, int(c)) if c.lstrip("-").isdigit() else (1, c))
    return {
        c: {"difference": float(np.mean([np.mean(v) for v in per_seed[c].values()])), "seeds": len(per_seed[c])}
        for c in ordered
    }


def _verdict(ci, p, n_untied: int, n: int, alpha: float = ALPHA) -> str:
    if n_untied == 0 and n > 0:
        return "indistinguishable from"  # equal (within the tolerance) on every cluster
    if min_attainable_p(n_untied) >= alpha:
        untied = f"{n_untied} untied of {n} clusters" if n_untied < n else f"{n} clusters"
        return f"unresolvable ({untied}) against"
    if ci is not None and p is not None and p < alpha:
        if ci[0] > 0:
            return "beats"
        if ci[1] < 0:
            return "loses to"
    return "indistinguishable from"


def cluster_comparison(
    differences: Mapping,
    tie_tolerance: float = TIE_TOLERANCE,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    alpha: float = ALPHA,
) -> dict:
    """Paired statistics over deposit clusters, one (seed-averaged) difference per cluster.

    Parameters
    ----------
    differences : mapping
        Cluster id -> difference (reference - other), or the output of
        :func:`cluster_differences`. Non-finite values are left out.
    tie_tolerance : float
        ``|difference| <= tie_tolerance`` is a tie: counted as such, and left
        out of both tests (Wilcoxon's treatment of zeros).
    n_boot, level, seed : int, float, int
        The cluster bootstrap (:func:`cluster_bootstrap_ci`).
    alpha : float
        Level of the verdict.

    Returns
    -------
    dict
        ``n`` clusters, ``wins``/``losses``/``ties``, ``tie_tolerance``;
        ``mean_difference`` (the mean of the cluster differences: the printed
        estimand), ``median_difference``; ``ci95``: percentile bootstrap
        interval of that same mean, resampling clusters (zero width for one
        cluster; None for none); ``n_untied``; ``wilcoxon_p``: exact two-sided
        signed-rank p over the untied clusters (:func:`exact_wilcoxon_p`; 1.0
        when all are tied, None for no cluster); ``sign_p``: exact two-sided
        sign test of wins against losses; ``min_attainable_p`` (with
        ``n_untied`` clusters, :func:`min_attainable_p`) and ``resolvable``
        (it is below ``alpha``); ``verdict``: "beats" / "loses to" when the
        Wilcoxon p < ``alpha`` and the interval excludes 0 on that side,
        "unresolvable (n clusters) against" when no exact test could reach
        ``alpha``, else "indistinguishable from" (also when every cluster is
        tied); ``differences``: cluster -> difference. Plain Python types.
    """
    values = {
        str(c): float(v["difference"] if isinstance(v, Mapping) else v)
        for c, v in differences.items()
        if _finite(v["difference"] if isinstance(v, Mapping) else v)
    }
    d = np.array(list(values.values()), dtype=np.float64)
    n = len(d)
    record = _record(d, tie_tolerance)
    untied = d[np.abs(d) > tie_tolerance]
    ci = list(cluster_bootstrap_ci({c: [v] for c, v in values.items()}, n_boot, level, seed)) if n else None
    p = (exact_wilcoxon_p(untied) if len(untied) else 1.0) if n else None
    min_p = min_attainable_p(len(untied))
    return {
        "n": n,
        **record,
        "tie_tolerance": float(tie_tolerance),
        "mean_difference": float(d.mean()) if n else None,
        "median_difference": float(np.median(d)) if n else None,
        "ci95": ci,
        "n_untied": len(untied),
        "wilcoxon_p": p,
        "sign_p": sign_test_p(record["wins"], record["losses"]) if n else None,
        "min_attainable_p": min_p,
        "resolvable": bool(min_p < alpha),
        "verdict": _verdict(ci, p, len(untied), n, alpha),
        "differences": values,
    }


def compare_methods(
    report: Mapping,
    reference: str = "mstgat",
    metrics: Sequence[str] = ("roc_auc", "pr_auc"),
    n_boot: int = 2000,
    seed: int = 0,
    tie_tolerance: float = TIE_TOLERANCE,
    alpha: float = ALPHA,
) -> dict:
    """Compare the reference method with every other method of a cross-validation report.

    The unit is the deposit cluster: each cluster's ROC-AUC difference
    (:func:`cluster_differences`: fold rows' ``"clusters"``, averaged over
    seeds), then :func:`cluster_comparison` over clusters; that is the
    reading and the verdict. Works on any report whose fold rows hold
    ``"clusters"`` (older reports included: only fold rows are read).

    Parameters
    ----------
    report : mapping
        Cross-validation report with ``report["results"][method]["folds"]``.
    reference : str
        The method compared with all others.
    metrics : sequence of str
        Fold-row metrics also described over (seed, fold) rows
        (:func:`paired_comparison` with ``test=False``); ``"roc_auc"`` always.
    n_boot, seed : int
        Bootstrap replicates and seed.
    tie_tolerance, alpha : float
        Ties and the verdict's level (both levels: clusters and rows).

    Returns
    -------
    dict
        ``{method: entry}``, entry: ``clusters`` (the
        :func:`cluster_comparison`, the main reading), ``verdict`` and
        ``ci95`` (copied from it; the reading is "<reference> <verdict>
        <method>"; the verdict reads the Wilcoxon p adjusted by :func:`holm`
        over every method of the table, ``clusters["holm_p"]``: a table of 14
        comparisons would otherwise find a "difference" by chance), and per metric the (seed, fold) row description
        (``n``, wins/losses/ties with the same tolerance, mean and median
        difference; no test: rows reuse the same clusters).

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
        differences = cluster_differences(list(ref_rows.values()), list(rows.values()))
        clusters = cluster_comparison(differences, tie_tolerance, n_boot=n_boot, seed=seed, alpha=alpha)
        clusters["seeds"] = {c: v["seeds"] for c, v in differences.items()}
        entry = {"clusters": clusters, "verdict": clusters["verdict"], "ci95": clusters["ci95"]}
        for metric in metrics:
            entry[metric] = paired_comparison(
                {k: r.get(metric) for k, r in ref_rows.items()},
                {k: r.get(metric) for k, r in rows.items()},
                tie_tolerance,
                test=False,
            )
            entry[metric]["unit"] = "(seed, fold) row: a description, not a test"
        comparison[method] = entry
    adjusted = holm({method: entry["clusters"]["wilcoxon_p"] for method, entry in comparison.items()})
    for method, entry in comparison.items():
        c = entry["clusters"]
        c["holm_p"] = adjusted[method]
        c["verdict"] = entry["verdict"] = _verdict(c["ci95"], c["holm_p"], c["n_untied"], c["n"], alpha)
    return comparison


def holm(pvalues: Mapping) -> dict:
    """Holm-Bonferroni adjusted p-values (step-down) of a family of tests; None stays None.

    The i-th smallest of m p-values becomes ``max over j <= i of min(1, (m - j + 1) p_(j))``.
    """
    ordered = sorted((p, key) for key, p in pvalues.items() if p is not None)
    adjusted, running = {}, 0.0
    for i, (p, key) in enumerate(ordered):
        running = max(running, min(1.0, (len(ordered) - i) * p))
        adjusted[key] = running
    return {key: adjusted.get(key) for key in pvalues}


def _format_p(p) -> str:
    if p is None:
        return "–"
    return np.format_float_positional(p, precision=2, unique=False, fractional=False, trim="-")


def reading(reference: str, method: str, verdict: str) -> str:
    """ "MSTGAT beats x", "MSTGAT unresolvable (4 clusters) against x": the verdict as a sentence."""
    return f"{DISPLAY_NAMES.get(reference, reference)} {verdict} {method}"


def _clusters_of(entry: Mapping) -> Mapping:
    if "clusters" not in entry:
        raise DataError("a comparison without cluster-level statistics (an older report): run compare_methods again")
    return entry["clusters"]


def comparison_notes(comparison: Mapping) -> list[str]:
    """The lines under the comparison table: the unit, the resolution of the exact tests, an AUC's noise."""
    entries = [_clusters_of(e) for e in comparison.values()]
    if not entries:
        return []
    n = max(e["n"] for e in entries)
    lines = [
        f"Unit: the deposit cluster ({n} clusters, each cluster's ROC-AUC difference averaged over seeds; "
        f"|Δ| <= {entries[0]['tie_tolerance']:g} is a tie, left out of the tests). The smallest two-sided p an "
        f"exact test can give with {n} clusters is 2/2^{n} = {_format_p(min_attainable_p(n))}. With 7-30 test "
        "deposit cells a single ROC-AUC has a standard error of about 0.04-0.11. The reading uses the Wilcoxon "
        f"p adjusted (Holm) for the {len(entries)} comparisons of the table, and the interval."
    ]
    unresolved = [m for m, e in zip(comparison, entries) if not e["resolvable"] and e["n_untied"] > 0]
    if unresolved:
        lines.append(
            f"Too few (untied) clusters for any exact test to resolve {ALPHA:g}: {', '.join(unresolved)} "
            "(min attainable p "
            f"{', '.join(_format_p(_clusters_of(comparison[m])['min_attainable_p']) for m in unresolved)})."
        )
    return lines


def comparison_markdown(comparison: Mapping, reference: str = "mstgat", notes: bool = True) -> str:
    """Markdown table of :func:`compare_methods`, one row per compared method.

    Parameters
    ----------
    comparison : mapping
        Output of :func:`compare_methods`.
    reference : str
        Name of the reference method (``"mstgat"`` is shown as "MSTGAT").
    notes : bool
        Add :func:`comparison_notes` below the table.

    Returns
    -------
    str
        Columns: method, mean ΔROC-AUC over deposit clusters (reference -
        method), its 95 % cluster-bootstrap interval, wins/losses/ties over
        clusters, exact Wilcoxon p over clusters, the same adjusted over the
        table (Holm), sign-test p, reading, and
        wins/losses/ties over (seed, fold) rows (a description only).
    """
    lines = [
        "| method | mean ΔROC-AUC (clusters) | 95 % CI (cluster bootstrap) | clusters w/l/t | exact Wilcoxon p "
        "(clusters) | Holm p | sign-test p | reading | (seed, fold) rows w/l/t (description) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for method, entry in comparison.items():
        c = _clusters_of(entry)
        mean = "–" if c["mean_difference"] is None else f"{c['mean_difference']:+.3f}"
        ci = c.get("ci95")
        ci_text = "–" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
        record = f"{c['wins']}/{c['losses']}/{c['ties']}"
        roc = entry.get("roc_auc")
        rows = "–" if roc is None else f"{roc['wins']}/{roc['losses']}/{roc['ties']}"
        lines.append(
            f"| {method} | {mean} | {ci_text} | {record} | {_format_p(c['wilcoxon_p'])} | {_format_p(c.get('holm_p'))} "
            f"| {_format_p(c['sign_p'])} "
            f"| {reading(reference, method, entry['verdict'])} | {rows} |"
        )
    text = "\n".join(lines) + "\n"
    if notes:
        text += "".join(f"\n{line}\n" for line in comparison_notes(comparison))
    return text
