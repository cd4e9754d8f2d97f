"""Statistics of the method comparison: capture rates, paired tests over deposit clusters, cluster bootstrap,
verdicts, calibration."""

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata, wilcoxon

from mstgat_core.errors import DataError
from mstgat_core.evaluation.calibration import calibration_figures, calibration_markdown, pool_calibration
from mstgat_core.evaluation.stats import (
    TIE_TOLERANCE,
    capture_rates,
    cluster_bootstrap_ci,
    cluster_comparison,
    cluster_differences,
    compare_methods,
    comparison_markdown,
    exact_wilcoxon_p,
    min_attainable_p,
    paired_comparison,
    sign_test_p,
)

OLD_REPORTS = Path(__file__).resolve().parent / "data" / "reports_before_cluster_statistics.json"

# ---------------------------------------------------------------- capture rates


def test_capture_rates_without_ties_by_hand():
    # Region = nodes 0..9 (N = 10); nodes 10, 11 lie outside with huge scores and must not count.
    # Region ranks by score: node0 (1), node1 (2), node3 (3), node5 (4), node2 (5), node4 (6), node6 (7),
    # node7 (8), node9 (9), node8 (10). Deposits: node1 (rank 2), node2 (rank 5), node8 (rank 10).
    # q = 0.10: top 1 cell -> none captured            -> 0
    # q = 0.20: top 2 cells -> node1                   -> 1/3
    # q = 0.45: top 4.5 cells -> node1, half of node2  -> 1.5/3 = 0.5
    # q = 0.50: top 5 cells -> node1, node2            -> 2/3
    # q = 1.00: everything                             -> 1
    scores = np.array([0.95, 0.9, 0.7, 0.85, 0.6, 0.8, 0.5, 0.4, 0.2, 0.3, 99.0, 98.0])
    rates = capture_rates(scores, [1, 2, 8], np.arange(10), shares=(0.10, 0.20, 0.45, 0.50, 1.0))
    assert rates == pytest.approx({"10": 0.0, "20": 1 / 3, "45": 0.5, "50": 2 / 3, "100": 1.0})


def test_capture_rates_default_keys():
    scores = np.linspace(1, 0, 200)
    rates = capture_rates(scores, [0, 5, 15, 30, 100], np.arange(200))
    assert list(rates) == ["1", "5", "10", "20"]
    # top 2, 10, 20, 40 cells hold deposits of rank 1; 1, 6; 1, 6, 16; 1, 6, 16, 31
    assert rates == pytest.approx({"1": 1 / 5, "5": 2 / 5, "10": 3 / 5, "20": 4 / 5})


def test_capture_rates_tie_group_straddling_the_cutoff():
    # Region scores 5, 4, then a tie group of four cells at 3 (ranks 3..6: a = 2, n = 4), then 2, 1, 0, -1.
    # Deposit node3 is in the tie group: with q*N cells kept it counts clip((q*N - 2) / 4, 0, 1):
    # q = 0.2 -> 0, q = 0.3 -> 1/4, q = 0.5 -> 3/4, q = 0.6 -> 1.  Deposit node0 (rank 1) always counts.
    scores = np.array([5.0, 4, 3, 3, 3, 3, 2, 1, 0, -1])
    region = np.arange(10)
    rates = capture_rates(scores, [3], region, shares=(0.2, 0.3, 0.5, 0.6))
    assert rates == pytest.approx({"20": 0.0, "30": 0.25, "50": 0.75, "60": 1.0})
    both = capture_rates(scores, [0, 3], region, shares=(0.5,))
    assert both["50"] == pytest.approx((1 + 0.75) / 2)


def test_capture_rates_equal_monte_carlo_random_tie_breaking():
    rng = np.random.default_rng(1)
    n_nodes = 260
    scores = rng.integers(0, 12, size=n_nodes).astype(float)  # heavy ties
    region = np.sort(rng.choice(n_nodes, size=200, replace=False))
    test_pos = rng.choice(region, size=15, replace=False)
    shares = (0.01, 0.05, 0.10, 0.20)  # q * N = 2, 10, 20, 40 cells: whole ranks
    expected = capture_rates(scores, test_pos, region, shares)
    is_pos = np.isin(region, test_pos)
    hits = np.zeros(len(shares))
    n_draws = 2000
    for _ in range(n_draws):
        order = np.lexsort((rng.random(len(region)), -scores[region]))  # score descending, random among ties
        ranked_pos = is_pos[order]
        hits += [ranked_pos[: round(q * len(region))].sum() / len(test_pos) for q in shares]
    monte_carlo = hits / n_draws
    assert [expected[k] for k in ("1", "5", "10", "20")] == pytest.approx(monte_carlo, abs=0.02)


def test_capture_rates_errors():
    scores = np.arange(10.0)
    with pytest.raises(DataError):
        capture_rates(scores, [], np.arange(10))
    with pytest.raises(DataError):
        capture_rates(scores, [9], np.arange(5))


# ---------------------------------------------------------------- exact tests by enumeration


def enumerated_wilcoxon_p(d):
    """Exact two-sided signed-rank p by enumerating all 2^n sign flips (midranks of |d|)."""
    d = np.asarray(d, dtype=float)
    ranks = rankdata(np.abs(d))
    centre = ranks.sum() / 2
    observed = abs(ranks[d > 0].sum() - centre)
    extreme = sum(
        abs(ranks[np.array(signs, dtype=bool)].sum() - centre) >= observed - 1e-9
        for signs in itertools.product([0, 1], repeat=len(d))
    )
    return min(1.0, extreme / 2 ** len(d))


def test_exact_wilcoxon_equals_enumeration():
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 6, 9):
        d = rng.normal(0.02, 0.05, size=n)
        assert exact_wilcoxon_p(d) == pytest.approx(enumerated_wilcoxon_p(d))
    tied_magnitudes = [0.1, -0.1, 0.2, 0.3, -0.3, 0.4, 0.5]  # midranks: scipy's "exact" is not exact here
    assert exact_wilcoxon_p(tied_magnitudes) == pytest.approx(enumerated_wilcoxon_p(tied_magnitudes))
    assert exact_wilcoxon_p(tied_magnitudes) == pytest.approx(30 / 128)
    assert wilcoxon(tied_magnitudes, method="exact").pvalue == pytest.approx(28 / 128)  # integer-rank table
    assert exact_wilcoxon_p([]) is None
    with pytest.raises(ValueError, match="drop ties"):
        exact_wilcoxon_p([0.1, 0.0, 0.2])


def test_min_attainable_p_and_sign_test():
    assert min_attainable_p(4) == pytest.approx(2 / 16)
    assert min_attainable_p(5) == pytest.approx(2 / 32) and min_attainable_p(5) > 0.05
    assert min_attainable_p(6) == pytest.approx(2 / 64) and min_attainable_p(6) < 0.05
    assert min_attainable_p(0) == 1.0
    # 4 wins, 1 loss: P(X >= 4) = (5 + 1) / 32, two-sided 12 / 32
    assert sign_test_p(4, 1) == pytest.approx(12 / 32)
    assert sign_test_p(3, 0) == pytest.approx(2 / 8)
    assert sign_test_p(0, 0) == 1.0


# ---------------------------------------------------------------- paired comparison over rows (a description)


def test_paired_comparison_by_hand():
    reference = {(0, 0): 0.80, (0, 1): 0.70, (0, 2): 0.60, (1, 0): 0.75, (1, 1): 0.90}
    other = {(0, 0): 0.70, (0, 1): 0.75, (0, 2): 0.60, (1, 0): 0.55}  # (1, 1) only in the reference
    # differences over the 4 common keys: +0.10, -0.05, 0 (tie), +0.20
    result = paired_comparison(reference, other)
    assert (result["n"], result["wins"], result["losses"], result["ties"]) == (4, 2, 1, 1)
    assert result["mean_difference"] == pytest.approx((0.10 - 0.05 + 0.0 + 0.20) / 4)
    assert result["median_difference"] == pytest.approx((0.0 + 0.10) / 2)
    # exact Wilcoxon over the untied pairs: |d| 0.10, 0.05, 0.20 rank 2, 1, 3; W- = 1. Of the 2^3 sign patterns
    # W+ takes 0, 1, 2, 3, 3, 4, 5, 6, so P(min(W+, W-) <= 1) = 2 * 2/8 = 0.5.
    assert result["wilcoxon_p"] == pytest.approx(0.5)
    assert all(type(result[k]) is int for k in ("n", "wins", "losses", "ties"))
    assert all(type(result[k]) is float for k in ("mean_difference", "median_difference", "wilcoxon_p"))
    assert "wilcoxon_p" not in paired_comparison(reference, other, test=False)


def test_paired_comparison_degenerate_cases():
    same = paired_comparison({1: 0.5, 2: 0.7, 3: 0.9}, {1: 0.5, 2: 0.7, 3: 0.9})
    assert same["wilcoxon_p"] == 1.0 and same["ties"] == 3
    one = paired_comparison({1: 0.9, 2: 0.3}, {1: 0.5})
    assert one["n"] == 1 and one["wilcoxon_p"] is None
    none = paired_comparison({1: 0.9}, {2: 0.5})
    assert none["n"] == 0 and none["mean_difference"] is None and none["wilcoxon_p"] is None
    # an undefined metric (NaN / None) in a fold is left out of the pairs
    nan = paired_comparison({1: 0.9, 2: float("nan"), 3: 0.7}, {1: 0.5, 2: 0.5, 3: None})
    assert nan["n"] == 1


def test_ties_within_tolerance_are_ties():
    # 0.3 - (0.1 + 0.2) = -5.6e-17: a tie, not a loss; 1e-3 is a difference
    rows = paired_comparison({1: 0.3, 2: 0.5, 3: 0.6}, {1: 0.1 + 0.2, 2: 0.5 - 1e-3, 3: 0.6 + 1.1e-16})
    assert (rows["wins"], rows["losses"], rows["ties"]) == (1, 0, 2)
    clusters = cluster_comparison({"a": -1.1e-16, "b": 1e-3, "c": 0.05, "d": -0.02, "e": 0.0, "f": 5e-7})
    assert (clusters["wins"], clusters["losses"], clusters["ties"], clusters["n_untied"]) == (2, 1, 3, 3)
    assert clusters["wilcoxon_p"] == pytest.approx(enumerated_wilcoxon_p([1e-3, 0.05, -0.02]))
    assert clusters["sign_p"] == pytest.approx(sign_test_p(2, 1))
    assert clusters["tie_tolerance"] == TIE_TOLERANCE
    loose = cluster_comparison({"a": -1.1e-16, "b": 1e-3, "c": 0.05}, tie_tolerance=1e-2)
    assert (loose["wins"], loose["ties"]) == (1, 2)


# ---------------------------------------------------------------- cluster bootstrap


def test_cluster_bootstrap_degenerate():
    c = 0.25
    assert cluster_bootstrap_ci({"a": [c, c, c], "b": [c], "c": [c, c]}) == (c, c)
    assert cluster_bootstrap_ci({"only": [0.1, 0.3]}) == pytest.approx((0.2, 0.2))
    with pytest.raises(DataError):
        cluster_bootstrap_ci({})


def test_cluster_bootstrap_coverage_and_width():
    rng = np.random.default_rng(3)
    agree = {str(i): list(0.05 + rng.normal(0, 0.01, size=3)) for i in range(12)}
    centre = np.mean(np.concatenate(list(agree.values())))
    disagree = {k: list(np.array(v) + (0.2 if int(k) % 2 else -0.2)) for k, v in agree.items()}
    lo, hi = cluster_bootstrap_ci(agree)
    assert lo < centre < hi
    lo2, hi2 = cluster_bootstrap_ci(disagree)
    assert lo2 < np.mean(np.concatenate(list(disagree.values()))) < hi2
    assert hi2 - lo2 > 5 * (hi - lo)


def test_cluster_bootstrap_deterministic():
    diffs = {"0": [0.1, 0.2], "1": [-0.05], "2": [0.3, 0.0, 0.1], "3": [0.02]}
    assert cluster_bootstrap_ci(diffs, seed=7) == cluster_bootstrap_ci(diffs, seed=7)
    assert cluster_bootstrap_ci(dict(reversed(diffs.items())), seed=7) == cluster_bootstrap_ci(diffs, seed=7)
    assert cluster_bootstrap_ci(diffs, seed=7) != cluster_bootstrap_ci(diffs, seed=8)


def test_cluster_interval_is_over_the_printed_estimand():
    rng = np.random.default_rng(11)
    values = {str(i): float(v) for i, v in enumerate(rng.normal(0.04, 0.03, size=15))}
    result = cluster_comparison(values, n_boot=4000)
    mean = np.mean(list(values.values()))
    assert result["mean_difference"] == pytest.approx(mean)
    lo, hi = result["ci95"]
    assert lo < mean < hi
    assert (lo + hi) / 2 == pytest.approx(mean, abs=0.25 * (hi - lo))  # centred on the printed mean
    # the interval resamples cluster differences (one per cluster), not (seed, fold) rows
    assert result["ci95"] == list(cluster_bootstrap_ci({c: [v] for c, v in values.items()}, n_boot=4000))
    one = cluster_comparison({"7": 0.12})
    assert one["ci95"] == pytest.approx([0.12, 0.12]) and one["mean_difference"] == pytest.approx(0.12)
    empty = cluster_comparison({})
    assert empty["n"] == 0 and empty["ci95"] is None and empty["wilcoxon_p"] is None


def test_four_clusters_are_unresolvable():
    result = cluster_comparison({"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}, n_boot=500)
    assert result["wilcoxon_p"] == pytest.approx(2 / 16) == result["min_attainable_p"]
    assert result["ci95"][0] > 0  # the interval excludes 0, yet no test can resolve 0.05
    assert result["resolvable"] is False
    assert result["verdict"] == "unresolvable (4 clusters) against"
    assert cluster_comparison({"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4, "e": 0.5, "f": 0.6})["verdict"] == "beats"
    tied = cluster_comparison({"a": 0.1, "b": 0.0, "c": 0.3, "d": 0.4, "e": 0.5, "f": 0.6})
    assert tied["n_untied"] == 5 and tied["verdict"] == "unresolvable (5 untied of 6 clusters) against"
    same = cluster_comparison({str(i): 0.0 for i in range(8)})
    assert same["wilcoxon_p"] == 1.0 and same["verdict"] == "indistinguishable from"


# ---------------------------------------------------------------- compare_methods: a hand-made report

# 2 seeds x 3 folds, 5 clusters; (seed, fold) -> clusters tested there
HAND_FOLDS = {
    (1, 0): ["0", "1"],
    (1, 1): ["2"],
    (1, 2): ["3", "4"],
    (2, 0): ["0", "2"],
    (2, 1): ["1", "3"],
    (2, 2): ["4"],
}
# (seed, cluster) -> reference minus other; cluster 4 of seed 2: the other method's AUC is undefined (NaN)
HAND_DIFFS = {
    (1, "0"): 0.10,
    (2, "0"): 0.06,
    (1, "1"): -0.02,
    (2, "1"): -0.04,
    (1, "2"): 0.05,
    (2, "2"): 0.07,
    (1, "3"): 0.20,
    (2, "3"): 0.10,
    (1, "4"): 0.01,
    (2, "4"): float("nan"),
}


def _hand_report():
    def ref_auc(seed, c):
        return 0.7 + 0.03 * int(c) + 0.01 * seed

    rows = {"mstgat": [], "other": []}
    for (seed, fold), clusters in HAND_FOLDS.items():
        ref = {c: ref_auc(seed, c) for c in clusters}
        other = {c: ref_auc(seed, c) - HAND_DIFFS[(seed, c)] for c in clusters}
        for name, aucs in (("mstgat", ref), ("other", other)):
            finite = [v for v in aucs.values() if math.isfinite(v)]
            roc = float(np.mean(finite)) if finite else float("nan")
            rows[name].append({"seed": seed, "fold": fold, "roc_auc": roc, "pr_auc": 0.1, "clusters": aucs})
    return {"results": {name: {"folds": r} for name, r in rows.items()}}


def test_cluster_statistics_by_hand():
    report = _hand_report()
    # seed-averaged per cluster: 0 -> 0.08, 1 -> -0.03, 2 -> 0.06, 3 -> 0.15, 4 -> 0.01 (seed 1 only)
    expected = {"0": 0.08, "1": -0.03, "2": 0.06, "3": 0.15, "4": 0.01}
    differences = cluster_differences(report["results"]["mstgat"]["folds"], report["results"]["other"]["folds"])
    assert {c: v["difference"] for c, v in differences.items()} == pytest.approx(expected)
    assert {c: v["seeds"] for c, v in differences.items()} == {"0": 2, "1": 2, "2": 2, "3": 2, "4": 1}
    entry = compare_methods(report, n_boot=1000)["other"]
    c = entry["clusters"]
    assert (c["n"], c["wins"], c["losses"], c["ties"]) == (5, 4, 1, 0)
    assert c["mean_difference"] == pytest.approx(0.27 / 5)
    assert c["differences"] == pytest.approx(expected)
    # exact Wilcoxon: |d| 0.01, 0.03, 0.06, 0.08, 0.15 rank 1..5, W- = 2; W+ <= 2 for {}, {1}, {2}: 3 of 32
    # patterns, and as many with W+ >= 13: p = 6/32
    assert c["wilcoxon_p"] == pytest.approx(6 / 32)
    assert c["wilcoxon_p"] == pytest.approx(enumerated_wilcoxon_p(list(expected.values())))
    # sign test, 4 wins of 5: 2 * (C(5,4) + C(5,5)) / 32
    assert c["sign_p"] == pytest.approx(2 * 6 / 32)
    assert c["min_attainable_p"] == pytest.approx(2 / 32)
    assert c["resolvable"] is False and entry["verdict"] == "unresolvable (5 clusters) against"
    assert entry["ci95"] == c["ci95"] and c["ci95"][0] <= 0.054 <= c["ci95"][1]
    rows = entry["roc_auc"]  # the description over (seed, fold) rows
    assert (
        rows["n"] == 5 and "wilcoxon_p" not in rows
    )  # fold (2, 2): the other's ROC-AUC is undefined and "description" in rows["unit"]
    json.dumps(entry)


# ---------------------------------------------------------------- compare_methods: verdicts

# clusters "0".."5": three per fold, two folds per seed, two seeds
FOLD_CLUSTERS = {(0, 0): ["0", "1", "2"], (0, 1): ["3", "4", "5"], (1, 0): ["0", "2", "4"], (1, 1): ["1", "3", "5"]}


def _rows(cluster_auc):
    return [
        {
            "seed": seed,
            "fold": fold,
            "roc_auc": float(np.mean([cluster_auc(seed, c) for c in clusters])),
            "pr_auc": 0.3,
            "clusters": {c: cluster_auc(seed, c) for c in clusters},
        }
        for (seed, fold), clusters in FOLD_CLUSTERS.items()
    ]


def _report(cluster_delta):
    """MSTGAT and "other": other's cluster AUCs are MSTGAT's minus ``cluster_delta(seed, cluster)``."""

    def ref_cluster(seed, c):
        return 0.8 + 0.01 * int(c) + 0.005 * seed

    return {
        "results": {
            "mstgat": {"folds": _rows(ref_cluster)},
            "other": {"folds": _rows(lambda seed, c: ref_cluster(seed, c) - cluster_delta(seed, c))},
        }
    }


def test_compare_methods_clear_win():
    result = compare_methods(_report(lambda seed, c: 0.05 + 0.01 * int(c)), n_boot=500)
    assert list(result) == ["other"]
    other = result["other"]
    c = other["clusters"]
    assert [c[k] for k in ("n", "wins", "losses", "ties")] == [6, 6, 0, 0]
    assert c["wilcoxon_p"] == pytest.approx(2 / 2**6)  # exact: all 6 signs positive
    assert c["mean_difference"] == pytest.approx(0.075)
    lo, hi = other["ci95"]
    assert 0.05 <= lo < hi <= 0.10  # cluster differences are 0.05..0.10
    assert other["verdict"] == "beats"
    assert other["roc_auc"]["wins"] == 4 and other["pr_auc"]["ties"] == 4


def test_compare_methods_clear_loss():
    other = compare_methods(_report(lambda seed, c: -0.05), n_boot=500)["other"]
    assert (other["clusters"]["wins"], other["clusters"]["losses"]) == (0, 6)
    assert other["ci95"] == pytest.approx([-0.05, -0.05])
    assert other["verdict"] == "loses to"


def test_compare_methods_mixed():
    other = compare_methods(_report(lambda seed, c: 0.03 * (-1) ** int(c)), n_boot=500)["other"]
    c = other["clusters"]
    assert (c["wins"], c["losses"], c["ties"]) == (3, 3, 0)
    lo, hi = other["ci95"]
    assert lo < 0 < hi
    assert other["verdict"] == "indistinguishable from"


def test_compare_methods_seeds_do_not_multiply_the_evidence():
    # the same 6 positive cluster differences in 2 seeds are still 6 units: p = 2/64, not 2/2^12
    two_seeds = compare_methods(_report(lambda seed, c: 0.05 + 0.01 * int(c)), n_boot=200)["other"]
    report = _report(lambda seed, c: 0.05 + 0.01 * int(c))
    for result in report["results"].values():
        result["folds"] = [row for row in result["folds"] if row["seed"] == 0]
    one_seed = compare_methods(report, n_boot=200)["other"]
    assert two_seeds["clusters"]["wilcoxon_p"] == one_seed["clusters"]["wilcoxon_p"] == pytest.approx(2 / 64)


def test_compare_methods_errors():
    report = _report(lambda seed, c: 0.05)
    with pytest.raises(DataError):
        compare_methods(report, reference="gat")
    for row in report["results"]["other"]["folds"]:
        del row["clusters"]
    with pytest.raises(DataError):
        compare_methods(report)


def test_comparison_markdown_rows():
    win = compare_methods(_report(lambda s, c: 0.05 + 0.01 * int(c)), n_boot=200)["other"]
    loss = compare_methods(_report(lambda s, c: -0.05), n_boot=200)["other"]
    text = comparison_markdown({"random_forest": loss, "knn": win})
    lines = text.strip().splitlines()
    assert lines[0].startswith(
        "| method | mean ΔROC-AUC (clusters) | 95 % CI (cluster bootstrap) | clusters w/l/t | exact Wilcoxon p"
    )
    assert lines[2].startswith("| random_forest | -0.050 | [-0.050, -0.050] | 0/6/0 | 0.031 | 0.031 |")
    assert "| MSTGAT loses to random_forest | 0/4/0 |" in lines[2]
    assert lines[3].startswith("| knn | +0.075 |") and "MSTGAT beats knn" in lines[3]
    notes = text.split("\n\n", 1)[1]
    assert "6 clusters" in notes and "2/2^6 = 0.031" in notes and "Too few" not in notes
    assert len(comparison_markdown({"knn": win}, notes=False).strip().splitlines()) == 3


def test_comparison_markdown_resolution_note():
    few = {"m": {"clusters": cluster_comparison({"a": 0.1, "b": 0.2, "c": -0.05, "d": 0.3}, n_boot=100)}}
    few["m"]["verdict"] = few["m"]["clusters"]["verdict"]
    text = comparison_markdown(few)
    assert "MSTGAT unresolvable (4 clusters) against m" in text
    assert "Too few (untied) clusters for any exact test to resolve 0.05: m (min attainable p 0.12)" in text


def test_comparison_markdown_p_values():
    entry = compare_methods(_report(lambda s, c: 0.03 * (-1) ** int(c)), n_boot=100)["other"]
    for p, text in ((0.003, "0.003"), (0.5712, "0.57"), (0.0312, "0.031")):
        entry["clusters"]["wilcoxon_p"] = p
        assert f"| {text} |" in comparison_markdown({"m": entry})


@pytest.mark.parametrize(
    "name, other, p",
    [("south_china_li", "logistic_context", 0.275390625), ("lapland_iocg", "mahalanobis", 0.15625)],
)
def test_committed_reports_recomputed_over_clusters(name, other, p):
    """Reports written before the cluster-level statistics (the previous release's fold rows, kept in
    tests/data): recomputed from their fold rows, they give the referee's exact p over clusters."""
    report = json.loads(OLD_REPORTS.read_text())[name]
    entry = compare_methods(report, n_boot=200)[other]
    assert entry["clusters"]["wilcoxon_p"] == pytest.approx(p)
    assert entry["verdict"] == "indistinguishable from"


# ---------------------------------------------------------------- calibration


def test_calibration_figures_by_hand():
    probabilities = np.array([0.05, 0.65, 0.05, 0.15, 0.0, 0.62, 0.99])  # node 6 is not a test cell
    figures = calibration_figures(probabilities, [0, 1], [2, 3, 4, 5], strategy="uniform")
    brier = ((1 - 0.05) ** 2 + (1 - 0.65) ** 2 + 0.05**2 + 0.15**2 + 0.0**2 + 0.62**2) / 6
    assert figures["brier"] == pytest.approx(brier)
    assert figures["prevalence"] == pytest.approx(2 / 6)
    assert figures["brier_prevalence"] == pytest.approx((2 / 6) * (4 / 6))
    assert figures["mean_predicted"] == pytest.approx((0.05 + 0.65 + 0.05 + 0.15 + 0.0 + 0.62) / 6)
    bins = {round(b["lo"], 1): b for b in figures["reliability"]}
    assert len(bins) == 10
    assert (bins[0.0]["count"], bins[0.0]["mean_predicted"], bins[0.0]["observed"]) == pytest.approx(
        (3, 0.1 / 3, 1 / 3)
    )
    assert (bins[0.1]["count"], bins[0.1]["mean_predicted"], bins[0.1]["observed"]) == pytest.approx((1, 0.15, 0))
    assert (bins[0.6]["count"], bins[0.6]["mean_predicted"], bins[0.6]["observed"]) == pytest.approx((2, 0.635, 0.5))
    assert bins[0.9]["count"] == 0 and bins[0.9]["observed"] is None
    last = calibration_figures(np.array([1.0, 0.0]), [0], [1], strategy="uniform")["reliability"][9]
    assert last["count"] == 1  # p = 1 in the last bin
    with pytest.raises(DataError):
        calibration_figures(np.array([1.5, 0.0]), [0], [1])


def test_calibration_quantile_bins_by_hand():
    # 10 test cells; the two tied at 0.3 share their average rank 7.5 and so their bin
    p = np.array([0.9, 0.01, 0.02, 0.3, 0.3, 0.05, 0.06, 0.07, 0.08, 0.5])
    figures = calibration_figures(p, [0, 3], [1, 2, 4, 5, 6, 7, 8, 9], bins=5)  # 5 bins of 2 cells
    rel = figures["reliability"]
    # ranks: 0.01 1, 0.02 2, 0.05 3, 0.06 4, 0.07 5, 0.08 6, 0.3 7.5 (x2), 0.5 9, 0.9 10
    # bin = floor((rank - 1) * 5 / 10): [0.01, 0.02] 0; [0.05, 0.06] 1; [0.07, 0.08] 2; [0.3, 0.3] 3; [0.5, 0.9] 4
    assert [b["count"] for b in rel] == [2, 2, 2, 2, 2]
    assert [b["mean_predicted"] for b in rel] == pytest.approx([0.015, 0.055, 0.075, 0.3, 0.7])
    assert [b["observed"] for b in rel] == pytest.approx([0, 0, 0, 0.5, 0.5])
    assert (rel[4]["lo"], rel[4]["hi"]) == (0.5, 0.9)
    assert figures["strategy"] == "quantile"
    brier = (0.1**2 + 0.7**2 + 0.01**2 + 0.02**2 + 0.3**2 + 0.05**2 + 0.06**2 + 0.07**2 + 0.08**2 + 0.5**2) / 10
    assert figures["brier"] == pytest.approx(brier) and figures["brier_prevalence"] == pytest.approx(0.16)


def test_pool_calibration_by_hand():
    a = calibration_figures(np.array([0.05, 0.65, 0.05, 0.15]), [1], [0, 2, 3], strategy="uniform")  # 0 0 6 1
    b = calibration_figures(np.array([0.02, 0.9]), [1], [0], strategy="uniform")  # bins 0, 9
    rows = [{"calibration": a}, {"calibration": b}, {"calibration": None}, {"roc_auc": 0.5}]
    pooled = pool_calibration(rows)
    assert (pooled["folds"], pooled["folds_uncalibrated"], pooled["n"], pooled["n_pos"]) == (2, 1, 6, 2)
    assert pooled["mean_brier"] == pytest.approx((a["brier"] + b["brier"]) / 2)
    assert pooled["pooled_brier"] == pytest.approx((a["brier"] * 4 + b["brier"] * 2) / 6)
    assert pooled["mean_brier_prevalence"] == pytest.approx((0.25 * 0.75 + 0.5 * 0.5) / 2)
    assert pooled["brier_skill"] == pytest.approx(1 - pooled["mean_brier"] / pooled["mean_brier_prevalence"])
    first = pooled["reliability"][0]
    assert (first["count"], first["mean_predicted"], first["observed"]) == pytest.approx((3, 0.12 / 3, 0))
    assert pooled["reliability"][6]["observed"] == 1.0 and pooled["reliability"][9]["observed"] == 1.0
    assert pool_calibration([{"calibration": None}, {}]) is None
    text = calibration_markdown({"mstgat": pooled, "spatial": None})
    assert "| mstgat | 2/3 |" in text and "| spatial | — |" in text
    assert "Reliability of mstgat" in text and "| 1 | 0.0000-0.1000 | 3 | 0.0400 | 0.0000 |" in text
    with pytest.raises(DataError):
        pool_calibration([{"calibration": a}, {"calibration": calibration_figures(np.array([0.02, 0.9]), [1], [0])}])


def test_holm_adjustment_equals_a_hand_computation():
    """p = 0.01, 0.04, 0.03, None over 3 tests: sorted 0.01, 0.03, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.03),
    max(0.06, 1 x 0.04)."""
    from mstgat_core.evaluation.stats import holm

    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": None})
    assert adjusted == {"a": pytest.approx(0.03), "b": pytest.approx(0.06), "c": pytest.approx(0.06), "d": None}
    assert holm({"a": 0.6, "b": 0.9}) == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
