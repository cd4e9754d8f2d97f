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

``uses_context`` says whether a baseline expects neighbourhood features
(:func:`mstgat_core.neighbourhood.neighbourhood_features`: each cell's own
values plus the window mean and max at the model's radii) instead of the
per-cell ``X``. The class does not compute them: the caller passes them as
``X``. With them a baseline sees the same information as the MSTGAT model,
whose graph attention looks at those windows.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from sklearn.covariance import MinCovDet
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import DataError


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
    uses_context = False

    def fit(self, X, train_pos, train_neg, seed=0):
        """Fit on the labelled nodes ``train_pos`` (1) and ``train_neg`` (0) of ``X``; returns self."""
        features, targets = _labelled_rows(X, train_pos, train_neg)
        aucs = np.array([roc_auc_score(targets, features[:, e]) for e in range(features.shape[1])])
        oriented = np.maximum(aucs, 1.0 - aucs)
        self.element_index_ = int(np.argmax(oriented))  # first index wins ties
        self.sign_ = 1 if aucs[self.element_index_] >= 0.5 else -1
        self.train_auc_ = float(oriented[self.element_index_])
        return self

    def score(self, X):
        """(n_nodes,) scores: the chosen element's values, sign-flipped when low values are prospective."""
        return self.sign_ * np.asarray(X[:, self.element_index_], dtype=np.float64)


class RobustMahalanobis:
    """Mahalanobis distance from a robust (MCD) centre and covariance.

    Unsupervised: fitted on the features of a seeded random subsample of all
    nodes (at most ``max_samples``), because FastMCD time grows steeply with
    size (about 3 s for 5000 x 39, over a minute for 20000 x 39) and a
    subsample of thousands estimates a 39-element covariance well enough.
    """

    uses_labels = False
    uses_context = False

    def __init__(self, max_samples=5000):
        self.max_samples = max_samples

    def fit(self, X, train_pos=None, train_neg=None, seed=0):
        """Fit on the features of every node of ``X`` (labels ignored); returns self."""
        rng = np.random.default_rng(seed)
        n_nodes = len(X)
        sample = rng.choice(n_nodes, size=min(n_nodes, self.max_samples), replace=False)
        with warnings.catch_warnings():  # FastMCD's "determinant has increased" notes, one per C-step
            warnings.simplefilter("ignore", RuntimeWarning)
            self.mcd_ = MinCovDet(random_state=seed).fit(np.asarray(X[sample], dtype=np.float64))
        return self

    def score(self, X):
        """(n_nodes,) scores: the robust (MCD) Mahalanobis distance of each node to the fitted centre."""
        squared = self.mcd_.mahalanobis(np.asarray(X, dtype=np.float64))
        return np.sqrt(np.maximum(squared, 0.0))


class IsolationForestBaseline:
    """Isolation Forest on all nodes (unsupervised); score = -score_samples."""

    uses_labels = False
    uses_context = False

    def __init__(self, n_estimators=200):
        self.n_estimators = n_estimators

    def fit(self, X, train_pos=None, train_neg=None, seed=0):
        """Fit on the features of every node of ``X`` (labels ignored); returns self."""
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, random_state=seed).fit(X)
        return self

    def score(self, X):
        """(n_nodes,) scores: the negated isolation-forest score (higher: more isolated, more anomalous)."""
        return -self.forest_.score_samples(X)


def baseline_jobs() -> int:
    """Processes a random forest uses: ``MSTGAT_JOBS`` if set (the tests set 1: two workers on two cores
    would otherwise run four), else 2."""
    return max(int(os.environ.get("MSTGAT_JOBS", "2")), 1)


class RandomForestBaseline:
    """Random forest on per-cell features, training positives vs negatives."""

    uses_labels = True
    uses_context = False

    def __init__(self, n_estimators=300, min_samples_leaf=1, n_jobs=None):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.n_jobs = n_jobs if n_jobs is not None else baseline_jobs()

    def fit(self, X, train_pos, train_neg, seed=0):
        """Fit on the labelled nodes ``train_pos`` (1) and ``train_neg`` (0) of ``X``; returns self."""
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
        """(n_nodes,) scores, higher more prospective: predicted probability of the positive class."""
        return self.forest_.predict_proba(X)[:, 1]


class GradientBoostingBaseline:
    """Histogram gradient boosting on per-cell features, training positives vs negatives.

    The usual strong tabular learner. scikit-learn's settings (learning rate
    0.1, 31 leaves, at least 20 samples a leaf, ``max_iter=100`` rounds)
    with ``early_stopping=False``: early stopping would hold
    out part of the training labels as a validation split, and its default
    switches on above 10000 samples, so the model would read its labels
    differently from fold to fold. ``class_weight="balanced"`` because
    deposits are a small minority. Scores are the raw log-odds
    (``decision_function``): same ranking as the probability, without ties
    where the probability saturates.
    """

    uses_labels = True
    uses_context = False

    def __init__(self, max_iter=100, learning_rate=0.1):
        self.max_iter = max_iter
        self.learning_rate = learning_rate

    def fit(self, X, train_pos, train_neg, seed=0):
        """Fit on the labelled nodes ``train_pos`` (1) and ``train_neg`` (0) of ``X``; returns self."""
        features, targets = _labelled_rows(X, train_pos, train_neg)
        self.model_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            early_stopping=False,
            class_weight="balanced",
            random_state=seed,
        ).fit(features, targets)
        return self

    def score(self, X):
        """(n_nodes,) scores, higher more prospective: decision function (log-odds) of the positive class."""
        return self.model_.decision_function(X)


class LogisticBaseline:
    """Standardised features and L2 logistic regression, training positives vs negatives.

    The simplest supervised model: a weighted sum of the elements. ``C=1.0``
    (scikit-learn's default, mild regularisation) and
    ``class_weight="balanced"`` because deposits are a small minority;
    ``max_iter=2000`` so lbfgs converges on many correlated columns such as
    neighbourhood features. The seed is unused (the fit is deterministic).
    Scores are the linear predictor (``decision_function``): same ranking as
    the probability, without ties where it saturates.
    """

    uses_labels = True
    uses_context = False

    def __init__(self, C=1.0, max_iter=2000):
        self.C = C
        self.max_iter = max_iter

    def fit(self, X, train_pos, train_neg, seed=0):
        """Fit on the labelled nodes ``train_pos`` (1) and ``train_neg`` (0) of ``X``; returns self."""
        features, targets = _labelled_rows(X, train_pos, train_neg)
        self.model_ = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=self.C, class_weight="balanced", max_iter=self.max_iter),
        ).fit(features, targets)
        return self

    def score(self, X):
        """(n_nodes,) scores, higher more prospective: decision function (log-odds) of the positive class."""
        return self.model_.decision_function(X)


class MLPBaseline:
    """A per-cell neural network: standardised features and a two-layer MLP.

    A neural model with no spatial context, to tell how much of the MSTGAT
    model's skill comes from the neighbourhood rather than from being a
    neural network. Hidden layers of 64 and 32 units (small: a few hundred
    deposits at most), ``alpha=1e-3`` (slightly stronger L2 than the default
    1e-4 against overfitting the few positives), ``max_iter=300`` epochs of
    Adam. ``MLPClassifier`` takes no class weights, so the training positives
    are repeated (a seeded draw with replacement, on top of each positive
    once) until they match the negatives in number. A ``ConvergenceWarning``
    when the epochs run out is silenced: the model is used as it stands.
    """

    uses_labels = True
    uses_context = False

    def __init__(self, hidden_layer_sizes=(64, 32), alpha=1e-3, max_iter=300):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.max_iter = max_iter

    def fit(self, X, train_pos, train_neg, seed=0):
        """Fit on the labelled nodes ``train_pos`` (1) and ``train_neg`` (0) of ``X``; returns self."""
        train_pos = np.asarray(train_pos, dtype=np.int64)
        train_neg = np.asarray(train_neg, dtype=np.int64)
        if 0 < len(train_pos) < len(train_neg):
            rng = np.random.default_rng(seed)
            extra = rng.choice(train_pos, size=len(train_neg) - len(train_pos), replace=True)
            train_pos = np.concatenate([train_pos, extra])
        features, targets = _labelled_rows(X, train_pos, train_neg)
        self.model_ = make_pipeline(
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=self.hidden_layer_sizes,
                alpha=self.alpha,
                max_iter=self.max_iter,
                random_state=seed,
            ),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_.fit(features, targets)
        return self

    def score(self, X):
        """(n_nodes,) scores, higher more prospective: predicted probability of the positive class."""
        return self.model_.predict_proba(X)[:, 1]


class RandomForestContext(RandomForestBaseline):
    """:class:`RandomForestBaseline` on neighbourhood features (the caller passes them as ``X``)."""

    uses_context = True


class GradientBoostingContext(GradientBoostingBaseline):
    """:class:`GradientBoostingBaseline` on neighbourhood features (the caller passes them as ``X``)."""

    uses_context = True


class LogisticContext(LogisticBaseline):
    """:class:`LogisticBaseline` on neighbourhood features (the caller passes them as ``X``)."""

    uses_context = True


BASELINES = {
    "best_single_element": BestSingleElement,
    "mahalanobis": RobustMahalanobis,
    "isolation_forest": IsolationForestBaseline,
    "random_forest": RandomForestBaseline,
    "gradient_boosting": GradientBoostingBaseline,
    "mlp": MLPBaseline,
    "random_forest_context": RandomForestContext,
    "gradient_boosting_context": GradientBoostingContext,
    "logistic_context": LogisticContext,
}
