"""HoloViews charts of the current model against the loaded deposits: the prediction-area (P-A) plot and the
success-rate curve (no Panel here; the numbers come from :mod:`mstgat_core.evaluation.prediction_area`)."""

from __future__ import annotations

import holoviews as hv
import numpy as np

from .plots_charts import empty

MAX_POINTS = 400  # vertices drawn per curve: the plots stay light on grids of millions of cells


def _thin(*arrays):
    n = len(arrays[0])
    keep = np.unique(np.linspace(0, n - 1, min(n, MAX_POINTS)).round().astype(int))
    return [np.asarray(a)[keep] for a in arrays]


def prediction_area_plot(pa) -> hv.Element:
    """The P-A plot: percent of deposit cells predicted and percent of the area occupied (score >= threshold),
    against the threshold; the area is drawn as 100 - occupied (the reversed right axis of Yousefi and
    Carranza), so the curves cross where P % of the deposit cells lie in (100 - P) % of the area."""
    if pa is None:
        return empty("a model and deposits give the prediction-area plot", height=320)
    t, predicted, occupied = _thin(pa.threshold, pa.predicted, pa.occupied)
    crossing = (pa.crossing, 100 * pa.prediction_rate)
    title = (
        f"P-A: {100 * pa.prediction_rate:.0f} % of deposit cells in {100 * (1 - pa.prediction_rate):.0f} % "
        f"of the area at score {pa.crossing:.3g} (Nd {pa.normalised_density:.2f})"
    )
    return hv.Overlay(
        [
            hv.Curve((t, 100 * predicted), "score threshold", "percent", label="deposit cells predicted").opts(
                color="#c44e52"
            ),
            hv.Curve((t, 100 - 100 * occupied), "score threshold", "percent", label="100 - area occupied").opts(
                color="#3b6ea5"
            ),
            hv.Scatter([crossing], "score threshold", "percent", label="crossing").opts(color="black", size=8),
        ]
    ).opts(title=title, height=320, responsive=True, legend_position="right", show_grid=True)


def success_rate_plot(curve) -> hv.Element:
    """The success-rate curve: the share of deposit cells captured against the share of the area, cells ranked
    by descending score; the diagonal is chance."""
    if curve is None:
        return empty("a model and deposits give the success-rate curve", height=320)
    area, captured, auc = curve
    area, captured = _thin(area, captured)
    return hv.Overlay(
        [
            hv.Curve((area, captured), "fraction of area", "fraction of deposit cells", label="model").opts(
                color="#c44e52"
            ),
            hv.Curve(([0, 1], [0, 1]), "fraction of area", "fraction of deposit cells", label="chance").opts(
                color="grey", line_dash="dashed"
            ),
        ]
    ).opts(title=f"success rate (AUC {auc:.3f})", height=320, responsive=True, legend_position="bottom_right")
