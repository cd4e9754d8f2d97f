"""Baselines that the MSTGAT model must beat.

Every baseline has the same two methods:

- ``fit(X, train_pos, train_neg, seed) -> self``: ``X`` is the (n_nodes, E)
  feature array of *all* nodes, ``train_pos``/``train_neg`` are node ids of the
  training labels of one fold. Supervised baselines use only those labels;
  unsupervised ones ignore them (using unlabelled features of every node is
  fair: the map itself is not a label).
- ``score(X) -> (n_nodes,)``: higher means more anomalous / more prospective.

``uses_labels`` says whether a baseline reads the labels; the scores of one
that does not depend only on ``X`` and the seed, so folds may share them.
"""

from __future__ import annotations

import numpy as np
from sklearn.covariance import MinCovDet
from sklearn.ensemble import IsolationForest, RandomForestClassifier
from sklearn.metrics import roc_auc_score

from .errors import DataError


def _labelled_rows(X, train_pos, train_neg):
    """Features and 0/1 targets of the training nodes."""
    train_pos = np.asarray(train_pos, dtype=np.int64)
    train_neg = np.asarray(train_neg, dtype=np.int64)
    if len(train_pos) == 0 or len(train_neg) == 0:
        raise DataError("a supervised baseline needs at least one training positive and one negative")
    features = np.concatenate([X[train_pos], X[train_neg]])
    targets = np.concatenate([np.ones(len(train_pos)), np.zeros(len(train_neg))])
    return features, targets


class BestSingleElement:
    """The one element (high or low) that best separates the training labels.

    What a geochemist does first: pick the pathfinder element. ``sign_`` is +1
    when high values are prospective and -1 when low values are.
    """

    uses_labels = True

    def fit(self, X, train_pos, train_neg, seed=0):
        features, targets = _labelled_rows(X, train_pos, train_neg)
        aucs = np.array([roc_auc_score(targets, features[:, e]) for e in range(features.shape[1])])
        oriented = np.maximum(aucs, 1.0 - aucs)
        self.element_index_ = int(np.argmax(oriented))  # first index wins ties
        self.sign_ = 1 if aucs[self.element_index_] >= 0.5 else -1
        self.train_auc_ = float(oriented[self.element_index_])
        return self

    def score(self, X):
        return self.sign_ * np.asarray(X[:, self.element_index_], dtype=np.float64)


class RobustMahalanobis:
    """Mahalanobis distance from a robust (MCD) centre and covariance.

    Unsupervised: fitted on the features of a seeded random subsample of all
    nodes (at most ``max_samples``), because FastMCD time grows steeply with
    size (about 3 s for 5000 x 39, over a minute for 20000 x 39) and a
    subsample of thousands estimates a 39-element covariance well enough.
    """

    uses_labels = False

    def __init__(self, max_samples=5000):
        self.max_samples = max_samples

    def fit(self, X, train_pos=None, train_neg=None, seed=0):
        rng = np.random.default_rng(seed)
        n_nodes = len(X)
        sample = rng.choice(n_nodes, size=min(n_nodes, self.max_samples), replace=False)
        self.mcd_ = MinCovDet(random_state=seed).fit(np.asarray(X[sample], dtype=np.float64))
        return self

    def score(self, X):
        squared = self.mcd_.mahalanobis(np.asarray(X, dtype=np.float64))
        return np.sqrt(np.maximum(squared, 0.0))


class IsolationForestBaseline:
    """Isolation Forest on all nodes (unsupervised); score = -score_samples."""

    uses_labels = False

    def __init__(self, n_estimators=200):
        self.n_estimators = n_estimators

    def fit(self, X, train_pos=None, train_neg=None, seed=0):
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, random_state=seed).fit(X)
        return self

    def score(self, X):
        return -self.forest_.score_samples(X)


class RandomForestBaseline:
    """Random forest on per-cell features, training positives vs negatives."""

    uses_labels = True

    def __init__(self, n_estimators=300, min_samples_leaf=1, n_jobs=2):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.n_jobs = n_jobs

    def fit(self, X, train_pos, train_neg, seed=0):
        features, targets = _labelled_rows(X, train_pos, train_neg)
        self.forest_ = RandomForestClassifier(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            class_weight="balanced",
            random_state=seed,
            n_jobs=self.n_jobs,
        ).fit(features, targets)
        return self

    def score(self, X):
        return self.forest_.predict_proba(X)[:, 1]


BASELINES = {
    "best_single_element": BestSingleElement,
    "mahalanobis": RobustMahalanobis,
    "isolation_forest": IsolationForestBaseline,
    "random_forest": RandomForestBaseline,
}
