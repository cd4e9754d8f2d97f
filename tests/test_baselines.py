"""Baselines recover planted signals from training labels alone."""

import numpy as np
import pytest

from mstgat_core.errors import DataError
from mstgat_core.evaluation.baselines import (
    BASELINES,
    BestSingleElement,
    GradientBoostingBaseline,
    GradientBoostingContext,
    IsolationForestBaseline,
    LogisticBaseline,
    LogisticContext,
    MLPBaseline,
    RandomForestBaseline,
    RandomForestContext,
    RobustMahalanobis,
)
from mstgat_core.evaluation.evaluate import baseline_method, roc_auc
from mstgat_core.graphs.neighbourhood import feature_names, neighbourhood_features
from mstgat_core.training.folds import FoldSettings, spatial_folds

SUPERVISED = [
    BestSingleElement,
    RandomForestBaseline,
    GradientBoostingBaseline,
    LogisticBaseline,
    MLPBaseline,
    RandomForestContext,
    GradientBoostingContext,
    LogisticContext,
]
CONTEXT_TWINS = [  # (per-cell baseline, its context twin, options that keep the test fast)
    (RandomForestBaseline, RandomForestContext, {"n_estimators": 100}),
    (GradientBoostingBaseline, GradientBoostingContext, {"max_iter": 50}),
    (LogisticBaseline, LogisticContext, {}),
]


def _planted(element=2, shift=3.0, n_elements=6, seed=0):
    """A 50 x 40 grid of noise; 40 scattered deposits where ``element`` is shifted by ``shift``."""
    rows, cols = np.nonzero(np.ones((50, 40), dtype=bool))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(len(rows), n_elements)).astype(np.float32)
    pos = np.sort(rng.choice(len(rows), 40, replace=False))
    X[pos, element] += shift
    return X, rows, cols, pos


def _folds(rows, cols, pos):
    return spatial_folds(rows, cols, pos, FoldSettings(method="blocks", n_folds=4, buffer=0.0), seed=0)


@pytest.mark.parametrize("element, shift, sign", [(2, 3.0, 1), (4, -3.0, -1)])
def test_best_single_element_finds_planted_element_and_sign(element, shift, sign):
    X, rows, cols, pos = _planted(element, shift)
    for fold in _folds(rows, cols, pos):
        model = BestSingleElement().fit(X, fold.train_pos, fold.train_neg_pool)
        assert (model.element_index_, model.sign_) == (element, sign)
        assert 0.9 < model.train_auc_ <= 1.0
        assert np.array_equal(model.score(X), sign * X[:, element].astype(np.float64))


def test_best_single_element_uses_only_the_labels_it_is_given():
    """Labels saying element 0 is the signal win over the planted element 2 the model never hears of."""
    X, rows, cols, pos = _planted(element=2)
    told_pos = np.argsort(X[:, 0])[-30:]
    told_neg = np.argsort(X[:, 0])[:300]
    assert BestSingleElement().fit(X, told_pos, told_neg).element_index_ == 0


def test_random_forest_ranks_held_out_deposits_high_and_is_seeded():
    X, rows, cols, pos = _planted()
    fold = _folds(rows, cols, pos)[0]
    model = RandomForestBaseline(n_estimators=100).fit(X, fold.train_pos, fold.train_neg_pool, seed=0)
    scores = model.score(X)
    assert roc_auc(scores, fold.test_pos, fold.test_neg) > 0.9
    again = RandomForestBaseline(n_estimators=100).fit(X, fold.train_pos, fold.train_neg_pool, seed=0).score(X)
    assert np.array_equal(scores, again)


@pytest.mark.parametrize("baseline", [RobustMahalanobis, IsolationForestBaseline])
def test_unsupervised_baselines_find_multivariate_outliers(baseline):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 5)).astype(np.float32)
    outliers = np.arange(30)
    X[outliers] += rng.choice([-5.0, 5.0], size=(30, 5))
    scores = baseline().fit(X, seed=0).score(X)
    assert roc_auc(scores, outliers, np.arange(30, 3000)) > 0.95


def test_mahalanobis_is_a_distance_from_the_robust_centre():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2000, 3))
    model = RobustMahalanobis(max_samples=1000).fit(X, seed=0)
    centred = X - model.mcd_.location_
    expected = np.sqrt(np.einsum("ij,jk,ik->i", centred, model.mcd_.get_precision(), centred))
    assert np.allclose(model.score(X), expected)


FAST_OPTIONS = {
    "random_forest": {"n_estimators": 50},
    "random_forest_context": {"n_estimators": 50},
    "isolation_forest": {"n_estimators": 50},
    "gradient_boosting": {"max_iter": 50},
    "gradient_boosting_context": {"max_iter": 50},
    "mlp": {"max_iter": 50},
}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_scores_every_node(name):
    X, rows, cols, pos = _planted()
    fold = _folds(rows, cols, pos)[0]
    scores = baseline_method(name, **FAST_OPTIONS.get(name, {}))(X, fold, 0)
    assert scores.shape == (len(X),) and np.isfinite(scores).all()


@pytest.mark.parametrize("baseline", SUPERVISED, ids=lambda b: b.__name__)
def test_supervised_baselines_need_both_classes(baseline):
    X, _, _, _ = _planted()
    with pytest.raises(DataError):
        baseline().fit(X, np.array([], dtype=int), np.arange(10))
    with pytest.raises(DataError):
        baseline().fit(X, np.arange(10), np.array([], dtype=int))


def test_unsupervised_baseline_is_fitted_once_per_seed():
    X, rows, cols, pos = _planted()
    folds = _folds(rows, cols, pos)
    fit_predict = baseline_method("isolation_forest", n_estimators=20)
    first, second = fit_predict(X, folds[0], 0), fit_predict(X, folds[1], 0)
    assert first is second
    assert not np.array_equal(first, fit_predict(X, folds[0], 1))
    changed = X.copy()
    changed[0] += 100.0  # other features: fitted afresh, the planted outlier shows
    assert fit_predict(changed, folds[0], 0)[0] > first[0]


# ---------------------------------------------------------------- neighbourhood features and context baselines


def _irregular_mask(seed=3):
    """A 9 x 11 grid with a ragged right edge, a missing corner and scattered holes."""
    rng = np.random.default_rng(seed)
    mask = rng.random((9, 11)) > 0.2
    for row in range(9):
        mask[row, 11 - row % 4 :] = False  # ragged right edge
    mask[:2, :2] = False
    return mask


def test_neighbourhood_features_match_a_brute_force_loop():
    mask = _irregular_mask()
    rows, cols = np.nonzero(mask)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(len(rows), 3)).astype(np.float32) * 10 + 5
    radii = (1, 2)
    features = neighbourhood_features(X, mask, radii)
    assert features.dtype == np.float32 and features.shape == (len(rows), 3 * 5)

    node_of = -np.ones(mask.shape, dtype=int)
    node_of[rows, cols] = np.arange(len(rows))
    expected = np.zeros(features.shape)
    for node, (row, col) in enumerate(zip(rows, cols)):
        parts = [X[node].astype(np.float64)]
        for r in radii:
            window = node_of[max(row - r, 0) : row + r + 1, max(col - r, 0) : col + r + 1]
            inside = X[window[window >= 0]].astype(np.float64)
            parts += [inside.mean(axis=0), inside.max(axis=0)]
        expected[node] = np.concatenate(parts)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)


def test_neighbourhood_features_check_their_input():
    mask = _irregular_mask()
    X = np.zeros((int(mask.sum()) + 1, 2), dtype=np.float32)
    with pytest.raises(DataError):
        neighbourhood_features(X, mask, (1,))
    with pytest.raises(DataError):
        neighbourhood_features(X[:-1], mask, (0,))
    assert np.array_equal(neighbourhood_features(X[:-1], mask, ()), X[:-1])


def test_feature_names_follow_the_column_order():
    names = feature_names(["Li", "Cs"], (1, 3))
    assert names == [
        "Li",
        "Cs",
        "Li_mean_r1",
        "Cs_mean_r1",
        "Li_max_r1",
        "Cs_max_r1",
        "Li_mean_r3",
        "Cs_mean_r3",
        "Li_max_r3",
        "Cs_max_r3",
    ]
    mask = _irregular_mask()
    X = np.zeros((int(mask.sum()), 2), dtype=np.float32)
    assert len(names) == neighbourhood_features(X, mask, (1, 3)).shape[1]


def _two_feature_signal(seed=5):
    """2000 nodes of 8 noise features; 40 positives shifted on features 1 and 6; half are held out."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2000, 8)).astype(np.float32)
    pos = np.arange(40)
    X[pos[:, None], [1, 6]] += 2.5
    train_pos, test_pos = pos[:20], pos[20:]
    train_neg, test_neg = np.arange(40, 540), np.arange(540, 2000)
    return X, train_pos, train_neg, test_pos, test_neg


@pytest.mark.parametrize("baseline", SUPERVISED, ids=lambda b: b.__name__)
def test_supervised_baselines_find_a_planted_signal_and_are_seeded(baseline):
    X, train_pos, train_neg, test_pos, test_neg = _two_feature_signal()
    scores = baseline().fit(X, train_pos, train_neg, seed=0).score(X)
    assert scores.shape == (len(X),)
    assert roc_auc(scores, test_pos, test_neg) > 0.9
    assert np.array_equal(scores, baseline().fit(X, train_pos, train_neg, seed=0).score(X))


def test_only_context_variants_use_context():
    context = {RandomForestContext, GradientBoostingContext, LogisticContext}
    for name, baseline in BASELINES.items():
        assert baseline.uses_context is (baseline in context), name
    assert [name for name, baseline in BASELINES.items() if baseline.uses_context] == [
        "random_forest_context",
        "gradient_boosting_context",
        "logistic_context",
    ]


def _ring_deposits(seed=6):
    """A 60 x 60 grid of 3 noise features; 64 deposits on a jittered lattice.

    Each deposit's own values are plain noise, but its 8 neighbours have
    element 0 raised by 2: the signal is only in the neighbourhood.
    """
    mask = np.ones((60, 60), dtype=bool)
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(60, 60, 3))
    centres = [(r + rng.integers(-1, 2), c + rng.integers(-1, 2)) for r in range(4, 60, 7) for c in range(4, 60, 7)]
    for row, col in centres:
        saved = image[row, col, 0]
        image[row - 1 : row + 2, col - 1 : col + 2, 0] += 2.0
        image[row, col, 0] = saved
    rows, cols = np.nonzero(mask)
    pos = np.array([row * 60 + col for row, col in centres])
    return image[mask].astype(np.float32), mask, rows, cols, pos


@pytest.mark.parametrize("cell, context, options", CONTEXT_TWINS, ids=[twin.__name__ for _, twin, _ in CONTEXT_TWINS])
def test_context_baseline_sees_a_signal_only_in_the_neighbourhood(cell, context, options):
    """Per-cell twin at chance (its fold-mean AUC over seeds 0-5 of this grid spans 0.40-0.62), context near 1."""
    X, mask, rows, cols, pos = _ring_deposits()
    features = neighbourhood_features(X, mask, (1, 2))
    cell_aucs, context_aucs = [], []
    for fold in _folds(rows, cols, pos):
        cell_scores = cell(**options).fit(X, fold.train_pos, fold.train_neg_pool, seed=0).score(X)
        context_model = context(**options).fit(features, fold.train_pos, fold.train_neg_pool, seed=0)
        cell_aucs.append(roc_auc(cell_scores, fold.test_pos, fold.test_neg))
        context_aucs.append(roc_auc(context_model.score(features), fold.test_pos, fold.test_neg))
    cell_auc, context_auc = np.mean(cell_aucs), np.mean(context_aucs)
    assert abs(cell_auc - 0.5) < 0.2, cell_aucs
    assert context_auc > cell_auc + 0.1 and context_auc > 0.8, context_aucs
