"""Readouts over the branch embeddings: masked-element reconstruction and the fused ensemble heads.

The fused readout's supervised heads come in kinds (:data:`HEADS`, chosen by
``ModelConfig.head``), which differ in the per-cell features their linear
members read; all share the label-free route, the standardisation statistics
that pretraining sets and the Mahalanobis novelty:

* ``embedding`` (:class:`FusedHead`): the standardised embedding and score.
* ``residual`` (:class:`ResidualHead`): each element's signed reconstruction
  residual, the score and the log Mahalanobis distance, with non-negative
  weights (fitted by :mod:`~mstgat_core.training.readouts`): a few numbers
  per element that say which elements' excess the deposits need.
"""

from __future__ import annotations

import torch
from torch import nn


class Reconstruction(nn.Module):
    """Predicts every element of a cell from its branch embeddings (masked pretraining, label-free score).

    It reads the first ``width`` columns of the embedding: the branch embeddings, without the per-scale
    blocks a ``scale_readout`` model appends for its heads. So pretraining, and the label-free score, do
    not depend on ``scale_readout``: the scale readout is a head over the same backbone.
    """

    def __init__(self, width: int, n_elements: int, d_model: int | None):
        super().__init__()
        self.width = width
        self.mask_token = nn.Parameter(torch.zeros(d_model)) if d_model else None
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, n_elements))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """(cells, width or wider) embeddings -> (cells, E) predicted normalised element values."""
        return self.mlp(embedding[:, : self.width])


class FusedHead(nn.Module):
    """``members`` linear heads over [standardised embedding, standardised label-free score].

    Member ``k``'s logit is ``share * (head_k - logit_center_k) / logit_scale_k
    + (1 - share) * z`` where ``z`` is the standardised label-free score. The
    standardisation (``center``, ``scale``: mean and deviation over the
    training grid's cells) and ``novelty_limit`` are set after pretraining;
    the heads, ``share`` and ``calibration`` (a, b of ``sigmoid(a * logit +
    b)``; NaN: none) by fine-tuning.
    """

    STATISTICS = ("center", "scale", "precision", "novelty_limit", "score_limit")  # set by pretraining

    def __init__(self, width: int, members: int, n_elements: int | None = None):
        super().__init__()  # n_elements: read by heads over the residuals
        self.weight = nn.Parameter(torch.zeros(members, width + 1))
        self.bias = nn.Parameter(torch.zeros(members))
        self.register_buffer("center", torch.zeros(width + 1))
        self.register_buffer("scale", torch.ones(width + 1))
        self.register_buffer("logit_center", torch.zeros(members))
        self.register_buffer("logit_scale", torch.ones(members))
        self.register_buffer("share", torch.tensor(0.0))
        self.register_buffer("precision", torch.eye(width))  # inverse covariance of the training embeddings
        self.register_buffer("novelty_limit", torch.tensor(1.0))  # 99.5th pct of their Mahalanobis distance²
        self.register_buffer("score_limit", torch.tensor(0.0))  # 99.5th pct of the label-free score
        self.register_buffer("calibration", torch.full((2,), float("nan")))

    def standardise(self, embedding: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """[embedding, label-free score] standardised with the training grid's ``center`` and ``scale``."""
        return (torch.cat([embedding, score.unsqueeze(1)], dim=1) - self.center) / self.scale

    def design(self, embedding: torch.Tensor, score: torch.Tensor, residual: torch.Tensor | None = None):
        """(cells, features) what the linear members read: here the standardised [embedding, score]."""
        return self.standardise(embedding, score)

    def fit_design(self, embedding: torch.Tensor, score: torch.Tensor, residual: torch.Tensor | None = None):
        """Set the statistics of :meth:`design` on the training grid: pretraining already set this head's."""

    def forward(self, embedding: torch.Tensor, score: torch.Tensor, residual: torch.Tensor | None = None):
        """(cells, members) logits (``residual``: observed minus reconstructed values, read by other heads)."""
        f = self.standardise(embedding, score)
        supervised = (f @ self.weight.T + self.bias - self.logit_center) / self.logit_scale
        return self.share * supervised + (1 - self.share) * f[:, -1:]

    def grouping_members(self, scores: torch.Tensor) -> torch.Tensor:
        """(cells, draws) probabilities of label-free ``scores`` under several element groupings
        (:meth:`~mstgat_core.model.MSTGAT.grouping_scores`): what the members are on the label-free route,
        each ``sigmoid`` of the standardised score as the route's logit (:mod:`~mstgat_core.model.grouping`)."""
        return torch.sigmoid((scores - self.center[-1]) / self.scale[-1])

    def distance(self, embedding: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance of embeddings to the training grid's (mean, covariance)."""
        d = embedding - self.center[:-1]
        return ((d @ self.precision) * d).sum(dim=1)

    def novelty(self, embedding: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """How unlike the training grid a cell is: 1 = the 99.5th percentile there, in either of two ways.

        The larger of the embedding's Mahalanobis distance² and the reconstruction
        error (``exp`` of the label-free score), each over its 99.5th percentile on
        the training grid: > 1 means the model has seen few cells like this one, or
        cannot reconstruct its composition as it could almost every training cell's.
        """
        return torch.maximum(self.distance(embedding) / self.novelty_limit, torch.exp(score - self.score_limit))

    def calibrate(self, logits: torch.Tensor) -> torch.Tensor | None:
        """Calibrated probabilities ``sigmoid(a * logits + b)``, or None when fine-tuning set no calibration."""
        a, b = self.calibration
        return None if torch.isnan(a) else torch.sigmoid(a * logits + b)


class ResidualHead(FusedHead):
    """``members`` linear heads over [signed residuals, label-free score, log Mahalanobis distance].

    The residuals are each element's observed minus reconstructed normalised
    value when its mask group is hidden (the reconstruction the label-free
    score reads), so a positive weight on an element says the deposits sit
    where that element is in excess of what its neighbours and the other
    elements predict. Every column is standardised over the training grid
    (``feature_center``, ``feature_scale``, set by :meth:`fit_design` at
    fine-tuning); the distance enters as ``log1p`` (its tail is long).
    The fused logit is :class:`FusedHead`'s, with these members.
    """

    def __init__(self, width: int, members: int, n_elements: int):
        super().__init__(width, members)
        self.weight = nn.Parameter(torch.zeros(members, n_elements + 2))
        self.register_buffer("feature_center", torch.zeros(n_elements + 2))
        self.register_buffer("feature_scale", torch.ones(n_elements + 2))

    def _raw(self, embedding, score, residual):
        if residual is None:
            raise ValueError("the residual head reads the reconstruction residuals")
        distance = torch.log1p(self.distance(embedding).clamp(min=0))
        return torch.cat([residual, score.unsqueeze(1), distance.unsqueeze(1)], dim=1)

    def design(self, embedding, score, residual=None):
        """(cells, E + 2) standardised [residuals, score, log1p Mahalanobis distance²]."""
        return (self._raw(embedding, score, residual) - self.feature_center) / self.feature_scale

    def fit_design(self, embedding, score, residual=None):
        """Mean and deviation of every column of :meth:`design` over the cells given (the training grid)."""
        raw = self._raw(embedding, score, residual).double()
        self.feature_center.copy_(raw.mean(dim=0))
        self.feature_scale.copy_(raw.std(dim=0).clamp(min=1e-6))

    def forward(self, embedding, score, residual=None):
        """(cells, members) logits."""
        f = self.design(embedding, score, residual)
        supervised = (f @ self.weight.T + self.bias - self.logit_center) / self.logit_scale
        return self.share * supervised + (1 - self.share) * self.standardise(embedding, score)[:, -1:]


# ModelConfig.head -> the fused readout's head class, built as cls(width, members, n_elements)
HEADS = {"embedding": FusedHead, "residual": ResidualHead}
