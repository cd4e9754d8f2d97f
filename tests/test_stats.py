"""Statistics of the method comparison: capture rates, paired tests, cluster bootstrap, verdicts."""

import numpy as np
import pytest
from scipy.stats import wilcoxon

from mstgat_core.errors import DataError
from mstgat_core.stats import (
    capture_rates,
    cluster_bootstrap_ci,
    compare_methods,
    comparison_markdown,
    paired_comparison,
)

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


# ---------------------------------------------------------------- paired comparison


def test_paired_comparison_by_hand():
    reference = {(0, 0): 0.80, (0, 1): 0.70, (0, 2): 0.60, (1, 0): 0.75, (1, 1): 0.90}
    other = {(0, 0): 0.70, (0, 1): 0.75, (0, 2): 0.60, (1, 0): 0.55}  # (1, 1) only in the reference
    # differences over the 4 common keys: +0.10, -0.05, 0 (tie), +0.20
    result = paired_comparison(reference, other)
    assert (result["n"], result["wins"], result["losses"], result["ties"]) == (4, 2, 1, 1)
    assert result["mean_difference"] == pytest.approx((0.10 - 0.05 + 0.0 + 0.20) / 4)
    assert result["median_difference"] == pytest.approx((0.0 + 0.10) / 2)
    # Wilcoxon ("wilcox" drops the zero): |d| 0.10, 0.05, 0.20 rank 2, 1, 3; W- = 1. Of the 2^3 sign patterns
    # W+ takes 0, 1, 2, 3, 3, 4, 5, 6, so P(min(W+, W-) <= 1) = 2 * 2/8 = 0.5.
    assert result["wilcoxon_p"] == pytest.approx(0.5)
    diffs = [0.80 - 0.70, 0.70 - 0.75, 0.60 - 0.60, 0.75 - 0.55]
    assert result["wilcoxon_p"] == pytest.approx(wilcoxon(diffs, zero_method="wilcox").pvalue)
    assert all(type(result[k]) is int for k in ("n", "wins", "losses", "ties"))
    assert all(type(result[k]) is float for k in ("mean_difference", "median_difference", "wilcoxon_p"))


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


# ---------------------------------------------------------------- compare_methods

# clusters "0".."3" over 3 folds per seed
FOLD_CLUSTERS = {(0, 0): ["0", "1"], (0, 1): ["2"], (0, 2): ["3"], (1, 0): ["0"], (1, 1): ["1", "3"], (1, 2): ["2"]}


def _rows(roc, pr, cluster_auc):
    return [
        {
            "seed": seed,
            "fold": fold,
            "roc_auc": roc[i],
            "pr_auc": pr[i],
            "clusters": {c: cluster_auc(seed, c) for c in clusters},
        }
        for i, ((seed, fold), clusters) in enumerate(FOLD_CLUSTERS.items())
    ]


def _report(deltas, cluster_delta):
    """MSTGAT and "other": other's fold metrics = MSTGAT's minus ``deltas``, clusters minus ``cluster_delta``."""
    ref_roc = [0.80, 0.82, 0.78, 0.81, 0.79, 0.83]
    ref_pr = [0.30, 0.25, 0.35, 0.28, 0.32, 0.27]

    def ref_cluster(seed, c):
        return 0.8 + 0.01 * int(c) + 0.005 * seed

    return {
        "results": {
            "mstgat": {"folds": _rows(ref_roc, ref_pr, ref_cluster)},
            "other": {
                "folds": _rows(
                    [r - d for r, d in zip(ref_roc, deltas)],
                    [r - d / 2 for r, d in zip(ref_pr, deltas)],
                    lambda seed, c: ref_cluster(seed, c) - cluster_delta(seed, c),
                )
            },
        }
    }


def test_compare_methods_clear_win():
    report = _report([0.05, 0.06, 0.07, 0.08, 0.09, 0.10], lambda seed, c: 0.05 + 0.01 * int(c))
    result = compare_methods(report, n_boot=500)
    assert list(result) == ["other"]
    other = result["other"]
    for metric in ("roc_auc", "pr_auc"):
        record = [other[metric][k] for k in ("n", "wins", "losses", "ties")]
        assert record == [6, 6, 0, 0]
    assert other["roc_auc"]["wilcoxon_p"] == pytest.approx(2 / 2**6)  # exact: all 6 signs positive
    assert other["roc_auc"]["mean_difference"] == pytest.approx(0.075)
    lo, hi = other["ci95"]
    assert 0.05 <= lo < hi <= 0.08  # cluster differences are 0.05..0.08
    assert other["verdict"] == "beats"


def test_compare_methods_clear_loss():
    report = _report([-0.05, -0.06, -0.07, -0.08, -0.09, -0.10], lambda seed, c: -0.05)
    other = compare_methods(report, n_boot=500)["other"]
    assert (other["roc_auc"]["wins"], other["roc_auc"]["losses"]) == (0, 6)
    assert other["ci95"] == pytest.approx([-0.05, -0.05])
    assert other["verdict"] == "loses to"


def test_compare_methods_tie():
    # differences +0.05, -0.04, 0, +0.03, -0.02, +0.01: 3 wins, 2 losses, 1 tie
    report = _report([0.05, -0.04, 0.0, 0.03, -0.02, 0.01], lambda seed, c: 0.03 * (-1) ** int(c))
    other = compare_methods(report, n_boot=500)["other"]
    roc = other["roc_auc"]
    assert (roc["wins"], roc["losses"], roc["ties"]) == (3, 2, 1)
    assert roc["wilcoxon_p"] == pytest.approx(wilcoxon([0.05, -0.04, 0.0, 0.03, -0.02, 0.01]).pvalue)
    lo, hi = other["ci95"]
    assert lo < 0 < hi
    assert other["verdict"] == "indistinguishable from"


def test_compare_methods_needs_both_ci_and_p():
    # one seed only: 3 positive pairs cannot reach p < 0.05 (exact p = 0.25) although the CI is above 0
    report = _report([0.05, 0.06, 0.07, 0.08, 0.09, 0.10], lambda seed, c: 0.05)
    for result in report["results"].values():
        result["folds"] = [row for row in result["folds"] if row["seed"] == 0]
    other = compare_methods(report, n_boot=500)["other"]
    assert other["roc_auc"]["wilcoxon_p"] == pytest.approx(0.25)
    assert other["ci95"][0] > 0
    assert other["verdict"] == "indistinguishable from"


def test_compare_methods_errors():
    report = _report([0.05] * 6, lambda seed, c: 0.05)
    with pytest.raises(DataError):
        compare_methods(report, reference="gat")
    for row in report["results"]["other"]["folds"]:
        del row["clusters"]
    with pytest.raises(DataError):
        compare_methods(report)


def test_comparison_markdown_rows():
    win = compare_methods(_report([0.05, 0.06, 0.07, 0.08, 0.09, 0.10], lambda s, c: 0.05), n_boot=200)["other"]
    loss = compare_methods(_report([-0.05] * 6, lambda s, c: -0.05), n_boot=200)["other"]
    text = comparison_markdown({"random_forest": loss, "knn": win})
    lines = text.strip().splitlines()
    assert len(lines) == 2 + 2  # header, separator, one row per method
    assert lines[0].startswith("| method | mean ΔROC-AUC | 95 % CI (deposit clusters) | wins/losses/ties")
    assert lines[2].startswith("| random_forest | -0.050 | [-0.050, -0.050] | 0/6/0 | 0.031 |")
    assert lines[2].endswith("| MSTGAT loses to random_forest |")
    assert lines[3].startswith("| knn | +0.075 |") and "MSTGAT beats knn" in lines[3]


def test_comparison_markdown_p_values():
    entry = compare_methods(_report([0.05, -0.04, 0.0, 0.03, -0.02, 0.01], lambda s, c: 0.0), n_boot=100)["other"]
    for p, text in ((0.003, "0.003"), (0.5712, "0.57"), (0.0312, "0.031")):
        entry["roc_auc"]["wilcoxon_p"] = p
        assert f"| {text} |" in comparison_markdown({"m": entry})
