"""Fine-tuning's readouts, registered by name: what each head reads and how its members are fitted.

A readout is one kind of supervised head of the fused readout. Each entry of
:data:`READOUTS` knows

* its head (:data:`~mstgat_core.model.readouts.HEADS`, built from
  ``ModelConfig.head``): which per-cell features it reads from the frozen
  backbone (:meth:`~mstgat_core.model.MSTGAT.grid_features` with residuals,
  computed once per backbone), their standardisation (``fit_design``) and how
  it is stored (its ``state_dict``, so checkpoints carry it) and evaluated;
* how one member is fitted on training positives and negatives for an L2
  strength ``C`` (``fit``: an object with ``coef_``, ``intercept_`` and
  ``decision_function``, as scikit-learn's);

:func:`~mstgat_core.training.finetune.finetune` is the one fit procedure for
every readout (inner CV over share and C, members, calibration), so
:func:`~mstgat_core.training.pipeline.fit` and the cross-validation fit them
alike. The readout is a setting (``FineTuneConfig.readout``, default
``embedding``) and not yet a dimension of the inner CV: see
:data:`~mstgat_core.evaluation.crossval.RESIDUAL` for the comparison.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from ..model.readouts import HEADS


def _samples(features, positives, negatives):
    X = np.concatenate([features[positives], features[negatives]])
    y = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    return X, y


def logistic(features, positives, negatives, C) -> LogisticRegression:
    """L2 logistic regression over every column (classes balanced): the ``embedding`` readout's member."""
    X, y = _samples(features, positives, negatives)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs may stop at max_iter on tiny samples; the head is used as it is
        return LogisticRegression(C=C, class_weight="balanced", max_iter=500).fit(X, y)


class NonNegativeLogistic:
    """L2 logistic regression whose weights are all >= 0 (the intercept is free), classes balanced.

    Minimises ``0.5 |w|² + C Σ s_i log(1 + exp(-t_i (x_i·w + b)))`` with
    ``t = ±1`` and scikit-learn's balanced weights ``s_i = n / (2 n_class)``
    (so ``C`` means what it means for :func:`logistic`), by L-BFGS-B with
    bounds. A column whose excess does not help the deposits gets weight 0.
    """

    def __init__(self, C: float):
        self.C = float(C)

    def fit(self, X: np.ndarray, y: np.ndarray) -> NonNegativeLogistic:
        X = np.asarray(X, dtype=np.float64)
        t = np.where(y > 0, 1.0, -1.0)
        counts = {1.0: max(int((t > 0).sum()), 1), -1.0: max(int((t < 0).sum()), 1)}
        s = np.where(t > 0, len(t) / (2 * counts[1.0]), len(t) / (2 * counts[-1.0]))
        d = X.shape[1]

        def objective(theta):
            w, b = theta[:d], theta[d]
            margin = t * (X @ w + b)
            loss = 0.5 * w @ w + self.C * float(s @ np.logaddexp(0.0, -margin))
            dl = -self.C * s * t * expit(-margin)  # d loss / d logit
            return loss, np.r_[w + X.T @ dl, dl.sum()]

        bounds = [(0.0, None)] * d + [(None, None)]
        theta = minimize(objective, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds).x
        self.coef_, self.intercept_ = theta[None, :d], theta[d:]
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The logit of every row of ``X``."""
        return (np.asarray(X, dtype=np.float64) @ self.coef_.T).ravel() + self.intercept_[0]


def nonnegative_logistic(features, positives, negatives, C) -> NonNegativeLogistic:
    """:class:`NonNegativeLogistic` on the training samples: the ``residual`` readout's member."""
    return NonNegativeLogistic(C).fit(*_samples(features, positives, negatives))


@dataclass(frozen=True)
class Readout:
    """One registered readout: its head class and how one member is fitted."""

    name: str
    head: type
    fit: Callable  # (design, positives, negatives, C) -> coef_, intercept_, decision_function
    summary: str


READOUTS = {
    "embedding": Readout(
        "embedding",
        HEADS["embedding"],
        logistic,
        "logistic members over the standardised embedding and label-free score (width + 1 weights)",
    ),
    "residual": Readout(
        "residual",
        HEADS["residual"],
        nonnegative_logistic,
        "non-negative logistic members over each element's signed reconstruction residual, the label-free "
        "score and the log Mahalanobis distance (elements + 2 weights, read per element)",
    ),
}
