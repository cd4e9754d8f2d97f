"""Readouts over the branch embeddings: masked-element reconstruction and the fused ensemble head."""

from __future__ import annotations

import torch
from torch import nn


class Reconstruction(nn.Module):
    """Predicts every element of a cell from its branch embeddings (masked pretraining, label-free score)."""

    def __init__(self, width: int, n_elements: int, d_model: int | None):
        super().__init__()
        self.mask_token = nn.Parameter(torch.zeros(d_model)) if d_model else None
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, n_elements))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """(cells, width) embeddings -> (cells, E) predicted normalised element values."""
        return self.mlp(embedding)


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

    def __init__(self, width: int, members: int):
        super().__init__()
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

    def forward(self, embedding: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """(cells, members) logits."""
        f = self.standardise(embedding, score)
        supervised = (f @ self.weight.T + self.bias - self.logit_center) / self.logit_scale
        return self.share * supervised + (1 - self.share) * f[:, -1:]

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
