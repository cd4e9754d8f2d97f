"""The explanation part of a dashboard session: what the model says about a clicked cell or sample, its
attention and attribution maps over the grid, and a region's summary (Panel-free; see :mod:`.state`)."""

from __future__ import annotations

import numpy as np
import param

from ..errors import DataError
from .activity import Activity
from .server import set_threads
from .state_data import DataState
from .state_model import ModelState

# a box's indicator ranking rests on IG over at most this many of its cells (a seeded random sample): the
# whole of a 2,000-cell box took 50-140 s on 2 cores, 256 cells take about 15 s
REGION_SAMPLE = 256


def nearest_cell(xs: np.ndarray, ys: np.ndarray, x: float, y: float) -> tuple[int, int]:
    """(row, col) of the cell centre nearest to (x, y) on a grid with centres ``xs``, ``ys``; DataError when
    (x, y) is more than half a cell outside the grid."""
    half_x = abs(float(xs[1] - xs[0])) / 2 if len(xs) > 1 else np.inf
    half_y = abs(float(ys[1] - ys[0])) / 2 if len(ys) > 1 else np.inf
    if not (xs.min() - half_x <= x <= xs.max() + half_x and ys.min() - half_y <= y <= ys.max() + half_y):
        raise DataError("the click is outside the grid: click a cell of the map")
    return int(np.abs(ys - y).argmin()), int(np.abs(xs - x).argmin())


class ExplanationState(param.Parameterized):
    """The model's explanations: the clicked cell's (element attention, neighbour and scale weights,
    integrated gradients, composition), a scored sample's, the attention and attribution maps of the
    whole grid, and the summary of a region drawn on the map; which attention layer and heads to show.
    Everything is dropped with the model or the data it explains."""

    att_layer = param.Selector(default="mean", objects=["mean"], label="Attention layer")
    att_head = param.Selector(default="mean", objects=["mean"], label="Attention head")
    gat_head = param.Selector(default="mean", objects=["mean"], label="GAT head")

    cell = param.Parameter(default=None, precedence=-1)  # the clicked cell's explain_cell Dataset
    clicked = param.Parameter(default=None, precedence=-1)  # (row, col) of the last click on the grid, model or not
    sample = param.Parameter(default=None, precedence=-1)  # dict, see explain_sample_at
    maps = param.Parameter(default=None, precedence=-1)  # attention_maps Dataset
    attributions = param.Parameter(default=None, precedence=-1)  # DataArray (element, y, x)
    region = param.Parameter(default=None, precedence=-1)  # dict, see summarise_region

    def __init__(self, activity: Activity, data: DataState, model: ModelState, **params):
        super().__init__(**params)
        self.activity, self.data, self.model = activity, data, model

    def clear(self) -> None:
        """Drop the explanations of the current model (the clicked sample's is kept)."""
        self.maps = None
        self.attributions = None
        self.cell = None
        self.region = None

    def set_options(self, fitted) -> None:
        """Offer the attention layers and heads of ``fitted`` (None: the means only), each set to the mean."""
        cfg = fitted.config if fitted is not None else None
        layers = ["mean", "rollout"] + ([str(i) for i in range(cfg.layers)] if cfg and cfg.uses_spectral else [])
        heads = ["mean"] + ([str(i) for i in range(cfg.heads)] if cfg and cfg.uses_spectral else [])
        gheads = ["mean"] + ([str(i) for i in range(cfg.gat_heads)] if cfg and cfg.uses_spatial else [])
        self.param.att_layer.objects = layers
        self.param.att_head.objects = heads
        self.param.gat_head.objects = gheads
        self.att_layer, self.att_head, self.gat_head = "mean", "mean", "mean"

    # ------------------------------------------------------------------ one cell or sample

    def explain_at(self, x: float, y: float):
        """Explanation of the cell nearest to map coordinates (x, y) (blocking, changes no param).

        Safe to run in a worker thread; the caller assigns the result to ``cell`` on the event loop.

        Parameters
        ----------
        x, y : float
            A point of the map, in the grid's CRS.

        Returns
        -------
        xarray.Dataset
            :func:`~mstgat_core.interpret.explain_cell`'s explanation, its attrs holding the model's layers
            at the cell (:meth:`.ModelState.cell_outputs`) and its ``composition`` (a DataFrame).
        """
        from .. import interpret

        set_threads()
        fitted, prepared = self.model.fitted, self.model.prepared
        if fitted is None or prepared is None:
            raise DataError("no model yet: train or load one to explain cells")
        row, col = nearest_cell(prepared.template["x"].values, prepared.template["y"].values, x, y)
        if not prepared.graph.mask[row, col]:
            raise DataError(f"cell row {row}, col {col} has no data: click inside the survey area")
        exp = interpret.explain_cell(fitted, prepared, row=row, col=col, ig_steps=16)
        exp.attrs.update(self.model.cell_outputs(row, col))
        exp.attrs["composition"] = self.data.cell_composition(row, col, fitted.elements)
        return exp

    def explain(self, x: float, y: float):
        """Explain the cell nearest to (x, y) and store it in ``cell`` and ``clicked`` (blocking)."""
        exp = self.explain_at(x, y)
        self.cell = exp
        self.clicked = (exp.attrs["row"], exp.attrs["col"])
        return exp

    def cell_at(self, x: float, y: float) -> tuple[int, int]:
        """(row, col) of the data's cell nearest to map coordinates (x, y), with a model or without;
        DataError without data or outside the grid."""
        if self.data.ds is None:
            raise DataError("no data yet: load some first")
        return nearest_cell(self.data.ds["x"].values, self.data.ds["y"].values, x, y)

    def explain_sample_at(self, x: float, y: float) -> dict:
        """The scored sample nearest to (x, y), explained (see :meth:`explain_sample`). The sample is found by
        the scored model's KD-tree and explained on its receptive subgraph only (``subgraph_nodes`` samples),
        so a click costs the same on a survey of 30,000 samples as on one of 1,000."""
        model = self.model
        if model.point_scores is None:
            raise DataError("no scored samples: press 'Score the samples' first")
        return self.explain_sample(model.point_model.nearest(x, y))

    def explain_sample(self, sample: int) -> dict:
        """A scored sample (its row in the scores' table): its name, place (map CRS and lon/lat), score,
        percentile, contributions and residuals, element attention and neighbour weights per scale (named
        samples) (blocking, changes no param)."""
        model = self.model
        if model.point_scores is None:
            raise DataError("no scored samples: press 'Score the samples' first")
        set_threads()
        table, scores = model.point_scores, model.point_outputs
        sample = int(sample)
        out = model.point_model.explain(sample)
        names = table["sample"].to_numpy()
        for scale in out["neighbours"]:
            scale["name"] = [str(names[int(i)]) for i in scale["sample"]]
        out.update(
            name=str(names[sample]),
            x=float(table["x"][sample]),
            y=float(table["y"][sample]),
            lon=float(table["lon"][sample]),
            lat=float(table["lat"][sample]),
            anomaly_score=float(table["anomaly_score"][sample]),
            percentile=float(table["percentile"][sample]),
            contributions=scores.contributions.iloc[sample].sort_values(ascending=False),
            residuals=scores.residuals.iloc[sample],
            reach=list(model.point_model.graph.reach),
        )
        return out

    # ------------------------------------------------------------------ the whole grid, a region

    def compute_maps(self, progress=None):
        """Attention maps of every cell (CLS attention, scale weights, neighbour entropy), stored in ``maps``
        (blocking; ``progress(done, total, msg)`` is called per chunk)."""
        from .. import interpret

        set_threads()
        if self.model.fitted is None:
            raise DataError("no model yet")
        self.maps = interpret.attention_maps(
            self.model.fitted, self.model.prepared, progress=progress, cancel=self.activity.cancel_event
        )
        return self.maps

    def compute_attributions(self, progress=None):
        """Integrated-gradients maps of every element, stored in ``attributions`` (blocking, slow)."""
        from .. import interpret

        set_threads()
        if self.model.fitted is None:
            raise DataError("no model yet")
        self.activity.cancel_event.clear()
        self.attributions = interpret.attribution_maps(
            self.model.fitted, self.model.prepared, steps=8, progress=progress, cancel=self.activity.cancel_event
        )
        return self.attributions

    def summarise_region(self, x0, y0, x1, y1) -> dict:
        """Summary of the box (x0, y0)-(x1, y1) (blocking; the caller stores it in ``region``)."""
        if self.model.prepared is None:
            raise DataError("no model yet: train or load one to summarise a region")
        xs = self.model.prepared.template["x"].values
        ys = self.model.prepared.template["y"].values
        inx = (xs >= min(x0, x1)) & (xs <= max(x0, x1))
        iny = (ys >= min(y0, y1)) & (ys <= max(y0, y1))
        return self.summarise_cells(np.outer(iny, inx))

    def summarise_cells(self, picked: np.ndarray) -> dict:
        """Summary of the picked cells (bool (y, x): a box, a lasso, a kept selection) that are on measured
        ground (the model's cells; blocking, the caller stores it in ``region``). ``n_cells`` counts those,
        ``n_picked`` every picked cell."""
        from .. import interpret

        set_threads()
        fitted, prepared = self.model.fitted, self.model.prepared
        if fitted is None or prepared is None:
            raise DataError("no model yet: train or load one to summarise a region")
        picked = np.asarray(picked, dtype=bool)
        if picked.shape != prepared.graph.mask.shape:
            raise DataError("the picked cells are not on the model's grid: pick them again")
        region = picked & prepared.graph.mask
        if not region.any():
            raise DataError("the selection holds no cell on measured ground")
        summary = interpret.summarise(
            fitted, prepared, region, maps=self.maps, attributions=self.attributions, max_attributed=REGION_SAMPLE
        )
        summary["n_cells"] = int(region.sum())
        summary["n_picked"] = int(picked.sum())
        summary["mean_probability"] = float(np.nanmean(self.model.probability.values[region]))
        return summary
