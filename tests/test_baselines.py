"""Baselines recover planted signals from training labels alone."""

import numpy as np
import pytest

from mstgat_core.baselines import (
    BASELINES,
    BestSingleElement,
    IsolationForestBaseline,
    RandomForestBaseline,
    RobustMahalanobis,
)
from mstgat_core.errors import DataError
from mstgat_core.evaluate import baseline_method, roc_auc, spatial_folds


def _planted(element=2, shift=3.0, n_elements=6, seed=0):
    """A 50 x 40 grid of noise; 40 scattered deposits where ``element`` is shifted by ``shift``."""
    rows, cols = np.nonzero(np.ones((50, 40), dtype=bool))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(len(rows), n_elements)).astype(np.float32)
    pos = np.sort(rng.choice(len(rows), 40, replace=False))
    X[pos, element] += shift
    return X, rows, cols, pos


def _folds(rows, cols, pos):
    return spatial_folds(rows, cols, pos, n_folds=4, seed=0)


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


FAST_OPTIONS = {"random_forest": {"n_estimators": 50}, "isolation_forest": {"n_estimators": 50}}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_scores_every_node(name):
    X, rows, cols, pos = _planted()
    fold = _folds(rows, cols, pos)[0]
    scores = baseline_method(name, **FAST_OPTIONS.get(name, {}))(X, fold, 0)
    assert scores.shape == (len(X),) and np.isfinite(scores).all()


@pytest.mark.parametrize("baseline", [BestSingleElement, RandomForestBaseline])
def test_supervised_baselines_need_both_classes(baseline):
    X, _, _, _ = _planted()
    with pytest.raises(DataError):
        baseline().fit(X, np.array([], dtype=int), np.arange(10))


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
