"""Metrics against brute force, honesty of spatial folds, cross-validation plumbing."""

import json
import threading

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import rankdata

from mstgat_core.errors import Cancelled, DataError
from mstgat_core.evaluation.evaluate import (
    baseline_method,
    cross_validate_arrays,
    pr_auc,
    report_markdown,
    roc_auc,
    success_rate_auc,
    success_rate_curve,
)
from mstgat_core.training.folds import FoldSettings, spatial_folds


def folds_of(rows, cols, pos, seed=0, **settings):
    """Folds with plain-blocking defaults (no buffer; scattered deposits are single-cell clusters)."""
    options = {"method": "blocks", "n_folds": 4, "buffer": 0.0, "link_distance": 1.0, **settings}
    return spatial_folds(rows, cols, pos, FoldSettings(**options), seed=seed)


# ---------------------------------------------------------------- metrics


def test_roc_auc_equals_mann_whitney_count_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=60).astype(float)  # many ties
    pos, neg = np.arange(0, 15), np.arange(15, 60)
    diff = scores[pos][:, None] - scores[neg][None, :]
    expected = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert roc_auc(scores, pos, neg) == pytest.approx(expected)


def test_pr_auc_equals_mean_precision_at_each_positive():
    rng = np.random.default_rng(1)
    scores = rng.permutation(50).astype(float)
    pos, neg = np.arange(0, 8), np.arange(8, 50)
    ranked = np.argsort(-scores[np.concatenate([pos, neg])])
    is_pos = ranked < len(pos)
    precision_at_hits = np.cumsum(is_pos)[is_pos] / (np.flatnonzero(is_pos) + 1)
    assert pr_auc(scores, pos, neg) == pytest.approx(precision_at_hits.mean())


def test_success_rate_auc_equals_average_rank_formula_with_ties():
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 7, size=80).astype(float)
    region = np.arange(10, 80)
    pos = np.array([12, 30, 31, 55, 79])
    ranks = rankdata(-scores[region], method="average")
    mean_rank = ranks[np.isin(region, pos)].mean()
    expected = 1 - (mean_rank - 0.5) / len(region)
    assert success_rate_auc(scores, pos, region) == pytest.approx(expected)


def test_success_rate_auc_extremes_and_random():
    n = 1000
    scores = np.arange(n, dtype=float)
    assert success_rate_auc(scores, [n - 1]) == pytest.approx(1 - 0.5 / n)  # best cell
    assert success_rate_auc(scores, [0]) == pytest.approx(0.5 / n)  # worst cell
    rng = np.random.default_rng(3)
    random_scores = rng.random(20000)
    assert success_rate_auc(random_scores, rng.choice(20000, 500, replace=False)) == pytest.approx(0.5, abs=0.03)


def test_success_rate_curve_shape():
    scores = np.array([0.1, 0.9, 0.9, 0.5, 0.2])
    area, captured = success_rate_curve(scores, [2, 3])
    assert area[0] == 0 and captured[0] == 0 and area[-1] == 1 and captured[-1] == 1
    assert np.all(np.diff(area) > 0) and np.all(np.diff(captured) >= 0)
    # the two tied top cells form one vertex: 40 % of area, half the deposits
    assert area[1] == pytest.approx(0.4) and captured[1] == pytest.approx(0.5)


# ---------------------------------------------------------------- folds


def _survey(seed=0, n_pos=40):
    """An irregular 60 x 50 grid (a corner and a hole invalid) with scattered deposits."""
    mask = np.ones((60, 50), dtype=bool)
    mask[:12, :15] = False
    mask[30:36, 20:28] = False
    rows, cols = np.nonzero(mask)
    pos = np.random.default_rng(seed).choice(len(rows), n_pos, replace=False)
    return rows, cols, np.sort(pos)


def _coords(rows, cols, nodes):
    return np.column_stack([rows[nodes], cols[nodes]])


@pytest.mark.parametrize("method", ["blocks", "clusters"])
@pytest.mark.parametrize("seed", [0, 1])
def test_folds_keep_test_labels_out_of_training(method, seed):
    rows, cols, pos = _survey()
    min_neg_distance = 3
    folds = folds_of(rows, cols, pos, seed=seed, method=method, min_neg_distance=min_neg_distance)
    assert len(folds) == 4
    for fold in folds:
        region = fold.test_region
        assert not region[fold.train_pos].any()
        assert not region[fold.train_neg_pool].any()
        assert region[fold.test_pos].all() and region[fold.test_neg].all()
        assert set(fold.test_pos) == set(pos[region[pos]])
        assert not np.isin(fold.train_neg_pool, pos).any() and not np.isin(fold.test_neg, pos).any()
        train_gap = cdist(_coords(rows, cols, fold.train_neg_pool), _coords(rows, cols, fold.train_pos))
        assert train_gap.min() >= min_neg_distance
        test_gap = cdist(_coords(rows, cols, fold.test_neg), _coords(rows, cols, fold.test_pos))
        assert test_gap.min() >= min_neg_distance
    regions = np.array([fold.test_region for fold in folds])
    assert np.all(regions.sum(axis=0) == 1)  # disjoint, and together they cover every node
    assert sum(len(fold.test_pos) for fold in folds) == len(pos)


def test_training_negatives_ignore_test_positives():
    """A training cell next to a test deposit stays a candidate negative: only training deposits decide."""
    rows, cols, pos = _survey()
    for fold in folds_of(rows, cols, pos):
        outside = np.flatnonzero(~fold.test_region & ~np.isin(np.arange(len(rows)), pos))
        gap = cdist(_coords(rows, cols, outside), _coords(rows, cols, fold.train_pos)).min(axis=1)
        assert set(fold.train_neg_pool) == set(outside[gap >= 3])


def test_buffer_keeps_training_away_from_test_region():
    rows, cols, pos = _survey()
    for fold in folds_of(rows, cols, pos, buffer=4):
        region = _coords(rows, cols, np.flatnonzero(fold.test_region))
        for train_nodes in (fold.train_pos, fold.train_neg_pool):
            assert cdist(_coords(rows, cols, train_nodes), region).min() > 4


def test_folds_are_deterministic_by_seed_and_spread_deposits():
    rows, cols, pos = _survey()
    first = folds_of(rows, cols, pos, seed=5, block_size=8)
    again = folds_of(rows, cols, pos, seed=5, block_size=8)
    other = folds_of(rows, cols, pos, seed=6, block_size=8)
    assert all(np.array_equal(a.test_region, b.test_region) for a, b in zip(first, again))
    assert not all(np.array_equal(a.test_region, b.test_region) for a, b in zip(first, other))
    counts = [len(fold.test_pos) for fold in first]
    assert max(counts) - min(counts) <= 3  # 40 scattered deposits in 8-cell blocks: near-even


def test_blocks_are_whole_squares():
    """Some shift of a 10-cell lattice puts every block wholly in one fold."""
    rows, cols, pos = _survey()
    block_size = 10
    folds = folds_of(rows, cols, pos, n_folds=3, block_size=block_size)
    fold_of_node = np.argmax([fold.test_region for fold in folds], axis=0)

    def blocks_are_pure(shift_row, shift_col):
        block = ((rows - rows.min() + shift_row) // block_size) * 1000 + (cols - cols.min() + shift_col) // block_size
        return all(len(np.unique(fold_of_node[block == b])) == 1 for b in np.unique(block))

    shifts = [(r, c) for r in range(block_size) for c in range(block_size)]
    assert any(blocks_are_pure(r, c) for r, c in shifts)


def test_folds_without_test_positives_are_skipped_with_warning():
    rows, cols, _ = _survey()
    corners = [(12, 0), (59, 0), (0, 49), (59, 49)]  # four deposits far apart: at most four deposit blocks
    pos = np.array([np.flatnonzero((rows == r) & (cols == c))[0] for r, c in corners[:3]])
    with pytest.warns(UserWarning, match="no test deposit; skipped"):
        folds = folds_of(rows, cols, pos, n_folds=4, block_size=10)
    assert len(folds) == 3


def test_a_fold_holding_every_deposit_is_an_error():
    rows, cols, _ = _survey()
    pos = np.array([0, 1])  # two adjacent deposits: one block, so no training positive in its fold
    with pytest.raises(DataError, match="no training positives"):
        folds_of(rows, cols, pos)


def test_bad_fold_method_is_a_data_error():
    rows, cols, pos = _survey()
    with pytest.raises(DataError):
        folds_of(rows, cols, pos, method="random")


# ---------------------------------------------------------------- cross-validation


def _planted_problem():
    rows, cols, pos = _survey(n_pos=30)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(rows), 5)).astype(np.float32)
    X[pos, 2] += 4.0
    return X, rows, cols, pos


def _oracle(X, fold, seed):
    return X[:, 2]


def _random(X, fold, seed):
    return np.random.default_rng(seed + 1000).random(len(X))


def test_cross_validate_arrays_orders_methods_and_is_json():
    X, rows, cols, pos = _planted_problem()
    calls = []
    settings = FoldSettings(n_folds=3, link_distance=1.0, buffer=2.0)
    report = cross_validate_arrays(
        {"oracle": _oracle, "random": _random, "best_single_element": baseline_method("best_single_element")},
        X,
        rows,
        cols,
        pos,
        settings=settings,
        seeds=(0, 1),
        reference="oracle",
        progress=lambda done, total, message: calls.append((done, total)),
    )
    json.dumps(report)
    results = report["results"]
    assert results["oracle"]["roc_auc_mean"] > 0.95 > 0.7 > results["random"]["roc_auc_mean"]
    assert results["best_single_element"]["roc_auc_mean"] == pytest.approx(results["oracle"]["roc_auc_mean"])
    assert results["oracle"]["success_rate_auc_mean"] > results["random"]["success_rate_auc_mean"]
    assert len(results["oracle"]["folds"]) == 6
    row = results["oracle"]["folds"][0]
    assert set(row) == {
        "seed",
        "fold",
        "roc_auc",
        "pr_auc",
        "prevalence",
        "success_rate_auc",
        "capture",
        "clusters",
        "n_test_pos",
        "n_test_neg",
        "seconds",
    }
    assert row["prevalence"] == pytest.approx(row["n_test_pos"] / (row["n_test_pos"] + row["n_test_neg"]))
    assert set(row["capture"]) == {"1", "5", "10", "20"}
    assert results["oracle"]["capture_20_mean"] > results["random"]["capture_20_mean"]
    # every test deposit is a one-cell cluster here (link distance 1): one per-cluster AUC each
    assert len(row["clusters"]) == row["n_test_pos"]
    for curve, (x, y) in (("roc_curve", ("fpr", "tpr")), ("success_curve", ("area", "captured"))):
        points = results["oracle"][curve]
        assert len(points[x]) == len(points[y]) <= 101
        assert points[x][0] == 0 and points[x][-1] == 1
    assert calls == [(done, 18) for done in range(1, 19)]
    protocol = report["protocol"]
    assert protocol["n_nodes"] == len(rows) and protocol["n_deposit_cells"] == len(pos)
    assert protocol["buffer"] == 2.0 and protocol["method"] == "clusters"
    deposits = [d for fold in protocol["folds"]["0"] for d in fold["test_deposits"]]
    assert len(deposits) == len(pos) and min(d["distance_to_training"] for d in deposits) > 2.0
    assert report["comparison"]["random"]["verdict"] == "beats"
    assert report["comparison"]["random"]["roc_auc"]["wins"] == 6
    table = report_markdown(report)
    assert table.index("| oracle") < table.index("| random")
    assert "PR-AUC (chance)" in table and "Paired against oracle" in table


def test_cross_validate_arrays_can_be_cancelled():
    X, rows, cols, pos = _planted_problem()
    cancel = threading.Event()
    with pytest.raises(Cancelled):
        cross_validate_arrays(
            {"oracle": _oracle},
            X,
            rows,
            cols,
            pos,
            FoldSettings(n_folds=3, link_distance=1.0),
            seeds=(0,),
            progress=lambda done, total, message: cancel.set(),
            cancel=cancel,
        )
    cancel.set()
    with pytest.raises(Cancelled):
        cross_validate_arrays(
            {"oracle": _oracle},
            X,
            rows,
            cols,
            pos,
            FoldSettings(n_folds=3, link_distance=1.0),
            seeds=(0,),
            cancel=cancel,
        )


def test_unknown_baseline_is_a_data_error():
    with pytest.raises(DataError):
        baseline_method("deep_magic")


def test_seed_means_give_the_seed_to_seed_spread():
    from mstgat_core.evaluation.evaluate import seed_means

    rows = [{"seed": s, "roc_auc": v} for s, v in [(1, 0.9), (1, 0.7), (2, 0.6), (2, 0.6), (3, 1.0), (3, 0.9)]]
    assert seed_means(rows) == pytest.approx({1: 0.8, 2: 0.6, 3: 0.95})


def test_method_extras_reach_the_fold_rows():
    """A method may return extras with its scores (MethodScores or a tuple); baselines return arrays."""
    from mstgat_core.evaluation.evaluate import MethodScores

    X, rows, cols, pos = _planted_problem()

    def with_extras(X, fold, seed):
        probability = 1 / (1 + np.exp(-(X[:, 2] - 4)))
        return MethodScores(X[:, 2], inner={"share": 0.5, "C": 0.1}, calibrated=probability)

    def as_tuple(X, fold, seed):
        return X[:, 2], {"inner": {"share": 0.0}, "calibrated": None}

    report = cross_validate_arrays(
        {"oracle": _oracle, "extras": with_extras, "tuple": as_tuple},
        X,
        rows,
        cols,
        pos,
        settings=FoldSettings(n_folds=3, link_distance=1.0, buffer=2.0),
        seeds=(0,),
        reference="extras",
    )
    json.dumps(report)
    results = report["results"]
    assert all("inner" not in row and "calibration" not in row for row in results["oracle"]["folds"])
    assert "calibration" not in results["oracle"]
    for row in results["extras"]["folds"]:
        assert row["inner"] == {"share": 0.5, "C": 0.1}
        assert row["calibration"]["n"] == row["n_test_pos"] + row["n_test_neg"]
        assert row["roc_auc"] == pytest.approx(results["oracle"]["folds"][row["fold"]]["roc_auc"])
    assert results["extras"]["calibration"]["folds"] == 3
    assert all(row["calibration"] is None for row in results["tuple"]["folds"])
    assert results["tuple"]["calibration"] is None
    table = report_markdown(report)
    assert "over deposit clusters, seed-averaged" in table
    assert "Calibration of the `calibrated` layer on test folds" in table and "| extras | 3/3 |" in table
    assert "| tuple | — |" in table and "Inner-CV choices per fold" in table


def test_report_markdown_of_a_report_without_cluster_statistics():
    """Reports written before the cluster-level statistics: recomputed from the fold rows, '—' for the rest."""
    from pathlib import Path

    path = Path(__file__).resolve().parent / "data" / "reports_before_cluster_statistics.json"
    report = json.loads(path.read_text())["lapland_iocg"]  # the previous release's fold rows
    assert "clusters" not in report["comparison"]["mahalanobis"]  # the old layout
    table = report_markdown(report)
    assert "Paired against mstgat over deposit clusters, seed-averaged" in table
    assert "| mahalanobis | -0.126 | [-0.239, -0.015] | 2/4/0 | 0.16 |" in table
    assert "6 clusters" in table and "2/2^6 = 0.031" in table
    assert table.count("— (not recorded in this report)") == 2


def test_inner_choices_and_calibration_reach_the_fold_rows():
    """A small grid-level cross-validation: every fine-tuned fold row holds what its inner CV chose, every
    inner figure, and the calibration of its `calibrated` layer on the test cells; baseline rows do not."""
    from mstgat_core.data.io import deposit_cells
    from mstgat_core.data.synthetic import make_scenario
    from mstgat_core.evaluation.crossval import cross_validate_grid
    from mstgat_core.training.finetune import FineTuneConfig, paired_one_standard_error, route_of
    from mstgat_core.training.pretrain import PretrainConfig

    scenario = make_scenario(shape=(48, 48), n_elements=6, seed=3)  # (32, 32) has no room for its anomalies
    report = cross_validate_grid(
        scenario.grid,
        deposit_cells(scenario.grid, scenario.deposits),
        ("mstgat", "best_single_element"),
        folds=2,
        seeds=(1,),
        model_config={"scales": (1,), "d_model": 16, "gat_hidden": 16},
        pretrain_config=PretrainConfig(epochs=2, steps_per_epoch=2),
    )
    json.dumps(report)
    config = FineTuneConfig()
    candidates = {f"{s:g},{C:g}" for s in config.shares for C in config.strengths}
    rows = report["results"]["mstgat"]["folds"]
    assert len(rows) == 2
    for row in rows:
        inner = row["inner"]
        assert inner["chosen_by"] == "inner-cv" and inner["inner_folds"] >= 2
        assert inner["share"] in config.shares and inner["C"] in config.strengths
        assert set(inner["inner_scores"]) == candidates
        best = inner["inner_scores"][inner["inner_best"]]
        for key, figures in inner["inner_scores"].items():
            assert len(figures["aucs"]) == len(figures["figures"]) == inner["inner_folds"]
            assert np.mean(figures["aucs"]) == pytest.approx(inner["inner_auc"][key])
            assert figures["mean"] == pytest.approx(np.mean(figures["figures"])) and figures["mean"] <= best["mean"]
            gaps = np.subtract(best["figures"], figures["figures"])
            assert figures["gap"] == pytest.approx(gaps.mean())
            assert figures["gap_se"] == pytest.approx(np.std(gaps, ddof=1) / np.sqrt(len(gaps)))
            assert figures["within"] == (figures["gap"] <= figures["gap_se"])
        per_fold = {tuple(map(float, k.split(","))): v["figures"] for k, v in inner["inner_scores"].items()}
        chosen = paired_one_standard_error(per_fold)
        assert chosen == (inner["share"], inner["C"])  # the stored figures give the choice
        assert inner["route"] == route_of(inner["share"])
        assert inner["calibrated"] and len(inner["calibration"]) == 2
        calibration = row["calibration"]
        assert calibration["n"] == row["n_test_pos"] + row["n_test_neg"]
        assert calibration["n_pos"] == row["n_test_pos"]
        assert sum(b["count"] for b in calibration["reliability"]) == calibration["n"]
        assert len(calibration["reliability"]) == 10
        assert 0 <= calibration["brier"] <= 1
    assert report["results"]["mstgat"]["calibration"]["folds"] == 2
    for row in report["results"]["best_single_element"]["folds"]:
        assert "inner" not in row and "calibration" not in row
    assert "calibration" not in report["results"]["best_single_element"]
    table = report_markdown(report)
    assert "| mstgat | 2/2 |" in table and "Reliability of mstgat" in table
