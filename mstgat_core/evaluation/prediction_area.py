"""The prediction-area (P-A) plot and the success-rate curve of a score map against known deposits.

Both count area on measured ground only: the cells where the score is finite and, when given, ``ground`` is
True (pass :func:`~mstgat_core.data.preprocess.valid_mask` of the grid, which honours its sample support;
predictions are NaN off it anyway). Deposits are cells (:func:`~mstgat_core.data.io.deposit_cells`); deposit
cells off measured ground are left out of both counts.

* **P-A plot** (Yousefi and Carranza 2015): against the score threshold ``t``, the share of deposit cells
  predicted (score >= t) and the share of the area occupied (score >= t). Read with the area axis reversed,
  the curves cross where P % of the deposits lie in (100 - P) % of the area; the normalised density there,
  ``Nd = P / (100 - P)``, says how many times better than chance the map is at that cut (1: no better), and
  ``ln Nd`` is the weight Yousefi and Carranza give the map when maps are combined. The crossing is
  interpolated linearly between the two distinct scores it falls between.
* **Success-rate curve**: the share of deposit cells captured against the share of the area, cells ranked by
  descending score (:func:`~mstgat_core.evaluation.evaluate.success_rate_curve`, ties counted as broken at
  random), and the area under it (0.5 = chance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .evaluate import success_rate_auc, success_rate_curve

__all__ = ["PACurve", "ground_scores", "prediction_area", "success_rate"]


def _grid(values) -> np.ndarray:
    """A DataArray's values, or the array itself."""
    return np.asarray(getattr(values, "values", values))


def ground_scores(scores, deposits, ground=None) -> tuple[np.ndarray, np.ndarray]:
    """The scores of the measured-ground cells (row-major) and whether each holds a deposit."""
    scores = np.asarray(_grid(scores), dtype=np.float64)
    deposits = np.asarray(_grid(deposits), dtype=bool)
    if deposits.shape != scores.shape:
        raise DataError(f"the deposit cells {deposits.shape} do not match the score map {scores.shape}")
    region = np.isfinite(scores)
    if ground is not None:
        ground = np.asarray(_grid(ground), dtype=bool)
        if ground.shape != scores.shape:
            raise DataError(f"the measured-ground mask {ground.shape} does not match the score map {scores.shape}")
        region &= ground
    is_deposit = deposits[region]
    if not is_deposit.any():
        raise DataError("no deposit cell lies on measured ground with a score: nothing to compare the map with")
    return scores[region], is_deposit


@dataclass(frozen=True)
class PACurve:
    """A P-A plot: per ``threshold`` (ascending distinct scores) the share of deposit cells ``predicted`` and
    the share of the area ``occupied`` (both 0-1, score >= threshold); where the curves cross (area reversed):
    ``crossing`` (the score), ``prediction_rate`` (P as a share), ``normalised_density`` (P / (1 - P)) and
    ``weight`` (its natural log)."""

    threshold: np.ndarray
    predicted: np.ndarray
    occupied: np.ndarray
    crossing: float
    prediction_rate: float
    normalised_density: float
    weight: float
    n_deposit_cells: int
    n_cells: int


def _share_at_or_above(sorted_values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    return (len(sorted_values) - np.searchsorted(sorted_values, levels, side="left")) / len(sorted_values)


def prediction_area(scores, deposits, ground=None) -> PACurve:
    """The P-A plot of a score map (y, x) against deposit cells (bool, y, x) on ``ground``; see the module."""
    region, is_deposit = ground_scores(scores, deposits, ground)
    levels = np.unique(region)
    predicted = _share_at_or_above(np.sort(region[is_deposit]), levels)
    occupied = _share_at_or_above(np.sort(region), levels)
    gap = predicted + occupied - 1  # >= 0 at the lowest level (1 + 1 - 1), falls as the threshold rises
    i = int(np.flatnonzero(gap >= 0)[-1])
    if i + 1 < len(levels):
        f = gap[i] / (gap[i] - gap[i + 1])
        crossing = levels[i] + f * (levels[i + 1] - levels[i])
        rate = predicted[i] + f * (predicted[i + 1] - predicted[i])
    else:  # every deposit at the top score: the curves meet there
        crossing, rate = levels[i], predicted[i]
    rate = float(min(rate, 1.0))
    density = rate / (1 - rate) if rate < 1 else float("inf")
    return PACurve(
        threshold=levels,
        predicted=predicted,
        occupied=occupied,
        crossing=float(crossing),
        prediction_rate=rate,
        normalised_density=float(density),
        weight=float(np.log(density)) if density > 0 else float("-inf"),
        n_deposit_cells=int(is_deposit.sum()),
        n_cells=int(len(region)),
    )


def success_rate(scores, deposits, ground=None) -> tuple[np.ndarray, np.ndarray, float]:
    """``(area share, captured share, area under the curve)`` of a score map against deposit cells on
    ``ground``; see the module."""
    region, is_deposit = ground_scores(scores, deposits, ground)
    pos = np.flatnonzero(is_deposit)
    area, captured = success_rate_curve(region, pos)
    return area, captured, success_rate_auc(region, pos)
