"""The selection part of a dashboard session: which layer the map shows and how, the outlined top share,
the cells picked by linked brushing and the kept (named) selections (Panel-free; see :mod:`.state`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import param
import xarray as xr

from ..data.preprocess import valid_mask
from ..data.support import support_mask
from ..errors import DataError
from .activity import Activity
from .state_data import DEMO_ELEMENT, DataState
from .state_explain import ExplanationState
from .state_model import ModelState

BASEMAP_MAX_CELLS = 1_000_000
LAYER_GROUPS = ("Model outputs", "Uncertainty", "Explanations", "Interpolation", "Elements")
TOP_SHARES = {"top 1 %": 0.01, "top 5 %": 0.05, "top 10 %": 0.10, "top 20 %": 0.20}


@dataclass(frozen=True)
class MapLayer:
    """A map layer as a typed key: its ``kind`` and which one (``key``: an element, a scale, a model output).
    ``label`` is its name in the menu; the session finds a layer by comparing labels, never by parsing one."""

    kind: str  # probability, model, element, CLS attention, scale weight, neighbour entropy, attribution, interpolation
    key: str = ""

    @property
    def label(self) -> str:
        """Its name in the layer menu ("element: Li")."""
        return f"{self.kind}: {self.key}" if self.key else self.kind

    @property
    def group(self) -> str:
        """Its group in the layer menu (one of :data:`LAYER_GROUPS`)."""
        if self.kind == "model" and self.key in ("uncertainty", "top_agreement", "novelty"):
            return "Uncertainty"
        return {
            "probability": "Model outputs",
            "model": "Model outputs",
            "element": "Elements",
            "interpolation": "Interpolation",
        }.get(self.kind, "Explanations")

    @property
    def colours(self) -> str:
        """How its values are coloured (:func:`~.plots_map.image`): on a fixed 0-1 scale (probabilities, and the
        entropy and scale weights, which are bounded by 0 and 1), from 0 (attention), diverging, or by value.
        A narrow range of a bounded layer (entropy 0.93-1.0) is then not drawn as full contrast."""
        if self.kind == "probability" or (self.kind == "model" and self.key in ("calibrated", "top_agreement")):
            return "probability"
        if self.kind in ("neighbour entropy", "scale weight"):
            return "share"
        if self.kind == "CLS attention":
            return "from zero"
        return "signed" if self.kind == "attribution" else "value"


# the kept selections' colours: Category10 without the current pick's orange and the deposits' red, the
# fold colours (green, pink) last; none of them in the layers' colour maps (viridis, inferno, RdBu)
KEPT_COLOURS = ("#1f77b4", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#7f7f7f", "#2ca02c", "#e377c2")


@dataclass(frozen=True)
class KeptSelection:
    """A pick kept under a name: its colour (one of :data:`KEPT_COLOURS`), its cells (bool (y, x)) and where
    they were picked."""

    name: str
    colour: str
    cells: np.ndarray
    origin: str = ""

    @property
    def count(self) -> int:
        """How many cells it holds."""
        return int(self.cells.sum())


def cells_in_polygon(x: np.ndarray, y: np.ndarray, geometry) -> np.ndarray:
    """Which points (x, y) (flat arrays) fall inside the polygon ``geometry`` ((n, 2) vertices, closed or not):
    a bool array like ``x``. Only the points inside the polygon's bounding box are tested."""
    from matplotlib.path import Path

    vertices = np.asarray(geometry, dtype=float)
    if vertices.ndim != 2 or vertices.shape[1] != 2 or len(vertices) < 3 or not np.isfinite(vertices).all():
        raise DataError("a lasso needs at least three points: draw it again")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    (x0, y0), (x1, y1) = vertices.min(axis=0), vertices.max(axis=0)
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    candidates = np.flatnonzero(inside)
    if candidates.size:
        inside[candidates] = Path(vertices).contains_points(np.column_stack([x[candidates], y[candidates]]))
    return inside


SUPPORT = MapLayer("interpolation", "distance to the nearest sample")
SUPPORT_LAYER = SUPPORT.label


class SelectionState(param.Parameterized):
    """What the map shows and what is picked on it: the layer (among every layer the data, the model and
    its explanations have), the outlined top share, what is drawn over the map, the Data tab's element,
    the cells brushed by a box or a lasso on the map or on the scatter plot of two elements, and the picks
    kept under a name (:class:`KeptSelection`)."""

    layer = param.Selector(default=None, objects=[], label="Map layer")
    top_share = param.Selector(default="top 5 %", objects=list(TOP_SHARES), label="Outline (share of the area)")
    show_zones = param.Boolean(default=True, label="Outline anomaly zones")
    log_elements = param.Boolean(default=False, label="Log colour scale (element layers)")
    show_truth = param.Boolean(default=True, label="Show the planted truth (synthetic scenarios)")
    show_deposits = param.Boolean(default=True, label="Show deposits")
    basemap = param.Boolean(default=False, label="Basemap (web tiles: needs internet)")
    show_samples = param.Boolean(default=True, label="Show samples (point surveys; coloured once scored)")
    explore_element = param.Selector(default=None, objects=[], label="Element")
    brush_x = param.Selector(default=None, objects=[], label="Scatter x (log10)")
    brush_y = param.Selector(default=None, objects=[], label="Scatter y (log10)")
    brushed = param.Parameter(default=None, precedence=-1)  # bool (y, x): cells picked by a box
    brush_origin = param.String(default="", precedence=-1)  # where they were picked: the map or the scatter
    kept = param.List(default=[], item_type=KeptSelection, precedence=-1)  # the named selections, in order
    version = param.Integer(default=0, precedence=-1)  # bumped when the map's layers change: the views redraw

    def __init__(self, activity: Activity, data: DataState, model: ModelState, explanation: ExplanationState, **params):
        super().__init__(**params)
        self.activity, self.data, self.model, self.explanation = activity, data, model, explanation
        self.param.watch(self._basemap_needs_a_crs, "basemap")
        data.param.watch(self._basemap_needs_a_crs, "ds")

    # ------------------------------------------------------------------ layers

    def layer_keys(self) -> list[MapLayer]:
        """Every map layer the session has, as typed keys (in menu order)."""
        model, explanation = self.model, self.explanation
        keys = []
        if model.probability is not None:
            keys.append(MapLayer("probability"))
        if model.layers is not None:
            keys += [MapLayer("model", name) for name in model.layers.data_vars if name != "probability"]
        maps = explanation.maps
        if maps is not None:
            if "cls_attention" in maps:
                keys += [MapLayer("CLS attention", str(e)) for e in maps["element"].values]
            if "scale_weights" in maps:
                keys += [MapLayer("scale weight", str(s)) for s in maps["scale"].values]
            if "neighbour_entropy" in maps:
                keys += [MapLayer("neighbour entropy", str(s)) for s in maps["scale"].values]
        if explanation.attributions is not None:
            keys += [MapLayer("attribution", str(e)) for e in explanation.attributions["element"].values]
        if self.data.support is not None:
            keys.append(SUPPORT)
        return keys + [MapLayer("element", e) for e in self.data.grid_elements]

    def layer_options(self) -> list[str]:
        """The map layers' menu labels."""
        return [key.label for key in self.layer_keys()]

    def layer_key(self, label: str | None) -> MapLayer | None:
        """The typed key of a menu label (None if the session has no such layer)."""
        return next((key for key in self.layer_keys() if key.label == label), None)

    def layer_groups(self) -> dict[str, list[str]]:
        """The map layers' labels by group, for a grouped menu (empty groups left out)."""
        groups = {group: [] for group in LAYER_GROUPS}
        for key in self.layer_keys():
            groups[key.group].append(key.label)
        return {group: labels for group, labels in groups.items() if labels}

    def layer_data(self, label: str | None) -> xr.DataArray | None:
        """The values of the layer named ``label`` in the menu (None if there is no such layer)."""
        key = self.layer_key(label) if self.data.ds is not None else None
        if key is None:
            return None
        scale = int(key.key) if key.kind in ("scale weight", "neighbour entropy") else None
        maps = self.explanation.maps
        return {
            "probability": lambda: self.model.probability,
            "model": lambda: self.model.layers[key.key],
            "element": lambda: self.data.ds[key.key],
            "CLS attention": lambda: maps["cls_attention"].sel(element=key.key),
            "scale weight": lambda: maps["scale_weights"].sel(scale=scale),
            "neighbour entropy": lambda: maps["neighbour_entropy"].sel(scale=scale),
            "attribution": lambda: self.explanation.attributions.sel(element=key.key),
            "interpolation": lambda: self.data.support,
        }[key.kind]()

    def refresh(self, prefer: str | None = None) -> None:
        """Offer the layers and elements the session has now, keeping the choices still offered (the map
        layer ``prefer`` if given), and redraw the views."""
        opts = self.layer_options()
        self.param.layer.objects = opts
        current = self.layer
        if prefer in opts:
            self.layer = prefer
        elif current not in opts:
            self.layer = opts[0] if opts else None
        elements = self.data.grid_elements
        self.param.explore_element.objects = elements
        if self.explore_element not in elements:
            self.explore_element = DEMO_ELEMENT if DEMO_ELEMENT in elements else (elements[0] if elements else None)
        self.param.brush_x.objects = self.param.brush_y.objects = elements
        # the menus' widgets may already have reset both to the first element when their options changed
        same = self.brush_x == self.brush_y and len(elements) > 1
        if self.brush_x not in elements or self.brush_y not in elements or same:
            first = self.explore_element
            others = [e for e in elements if e != first]
            self.param.update(brush_x=first, brush_y=others[0] if others else first)  # both at once
        self.version += 1

    def _basemap_needs_a_crs(self, *events):
        """Web tiles are placed by the grid's CRS: without one the basemap is switched off, saying why; so
        it is for a grid too large to project whole (the basemap map is not resampled to the screen)."""
        ds = self.data.ds
        if not self.basemap or ds is None:
            return
        cells = ds.sizes.get("y", 0) * ds.sizes.get("x", 0)
        if ds.rio.crs is None:
            self.basemap = False
            self.activity.error = "these data have no coordinate reference system: a basemap needs one"
        elif cells > BASEMAP_MAX_CELLS:
            self.basemap = False
            self.activity.error = (
                f"the basemap projects the whole grid: at most {BASEMAP_MAX_CELLS:,} cells, this one has {cells:,}"
            )

    # ------------------------------------------------------------------ the outline

    def zone_cut(self) -> float | None:
        """The score above which a cell is in the chosen top share of the valid cells (None without a model)."""
        probability = self.model.probability
        if probability is None:
            return None
        values = probability.values[np.isfinite(probability.values)]
        return float(np.quantile(values, 1 - TOP_SHARES[self.top_share])) if values.size else None

    def zone_readout(self) -> str:
        """One line: the outlined share, its score cut and the deposit cells it captures."""
        cut = self.zone_cut()
        if cut is None:
            return "No model yet: the outline appears once a model is trained or loaded."
        area = "of the measured ground" if support_mask(self.data.ds) is not None else "of the area"
        line = f"Outlined: the {self.top_share} {area} (score >= {cut:.3g})"
        probability, deposit_mask = self.model.probability.values, self.data.deposit_mask
        if deposit_mask is None:
            line += "; no deposits loaded."
        else:
            inside = np.asarray(deposit_mask.values, dtype=bool) & np.isfinite(probability)
            captured = int((probability[inside] >= cut).sum())
            line += f"; it holds {captured} of {int(inside.sum())} deposit cells."
        return line + self.data.support_readout()

    # ------------------------------------------------------------------ linked brushing

    def clear_brush(self) -> None:
        """Pick no cell (the kept selections stay)."""
        self.param.update(brushed=None, brush_origin="")

    def _pick(self, picked: np.ndarray, origin: str) -> np.ndarray:
        self.param.update(brushed=picked, brush_origin=origin)  # together: the readout watches both
        return picked

    def brush_map_box(self, x0, y0, x1, y1) -> np.ndarray:
        """Pick the cells inside a box drawn on the map (blocking; changes ``brushed``)."""
        ds = self.data.ds
        if ds is None:
            raise DataError("no data loaded")
        inx = (ds["x"].values >= min(x0, x1)) & (ds["x"].values <= max(x0, x1))
        iny = (ds["y"].values >= min(y0, y1)) & (ds["y"].values <= max(y0, y1))
        return self._pick(np.outer(iny, inx) & self.data.valid_cells(), "a box on the map")

    def brush_map_lasso(self, geometry) -> np.ndarray:
        """Pick the cells with data whose centres fall inside a lasso drawn on the map (``geometry``: its (n, 2)
        vertices in the grid's CRS; changes ``brushed``)."""
        ds = self.data.ds
        if ds is None:
            raise DataError("no data loaded")
        x, y = np.meshgrid(ds["x"].values, ds["y"].values)
        inside = cells_in_polygon(x.ravel(), y.ravel(), geometry).reshape(x.shape)
        return self._pick(inside & self.data.valid_cells(), "a lasso on the map")

    def _scatter_values(self) -> tuple[np.ndarray, np.ndarray]:
        """The log10 values of ``brush_x`` and ``brush_y`` (y, x), NaN where not positive."""
        ds = self.data.ds
        if ds is None or self.brush_x is None:
            raise DataError("no data loaded")
        with np.errstate(divide="ignore", invalid="ignore"):
            lx = np.log10(np.asarray(ds[self.brush_x].values, dtype=float))
            ly = np.log10(np.asarray(ds[self.brush_y].values, dtype=float))
        return lx, ly

    def brush_scatter_box(self, x0, y0, x1, y1) -> np.ndarray:
        """Pick the cells whose log10 values of ``brush_x`` and ``brush_y`` fall inside a box drawn on the
        scatter plot, to show them on the map (changes ``brushed``)."""
        lx, ly = self._scatter_values()
        picked = (lx >= min(x0, x1)) & (lx <= max(x0, x1)) & (ly >= min(y0, y1)) & (ly <= max(y0, y1))
        return self._pick(picked, "a box on the scatter plot")

    def brush_scatter_lasso(self, geometry) -> np.ndarray:
        """Pick the cells whose log10 values of ``brush_x`` and ``brush_y`` fall inside a lasso drawn on the
        scatter plot (changes ``brushed``)."""
        lx, ly = self._scatter_values()
        finite = np.isfinite(lx) & np.isfinite(ly)
        inside = cells_in_polygon(np.where(finite, lx, np.inf).ravel(), np.where(finite, ly, np.inf).ravel(), geometry)
        return self._pick(inside.reshape(lx.shape) & finite, "a lasso on the scatter plot")

    def measured_cells(self) -> np.ndarray:
        """The cells on measured ground (y, x): the model's cells (every element it reads measured, on the
        grid's support) once there is a model, else those with every element the model would read. The region
        summary describes these; a pick may hold more (cells with some elements only, or interpolated far
        from any sample)."""
        ds = self.data.ds
        prepared = self.model.prepared
        shape = (ds.sizes["y"], ds.sizes["x"])
        if prepared is not None and getattr(prepared.graph, "mask", np.zeros(0)).shape == shape:
            return np.asarray(prepared.graph.mask, dtype=bool)
        elements = [e for e in self.data.elements if e in ds.data_vars] or None
        return valid_mask(ds, elements)

    def brush_readout(self) -> str:
        """One line: how many cells are brushed, where they were picked, how many of them are on measured
        ground (what the region summary counts), and the deposit cells among them."""
        if self.brushed is None:
            return (
                "Draw a box or a lasso on the map (box-select or lasso-select tool) to highlight its cells in the "
                "scatter plot and the histogram, or on the scatter plot to show its cells on the map."
            )
        measured = int((self.brushed & self.measured_cells()).sum())
        line = f"{int(self.brushed.sum()):,} cells picked by {self.brush_origin}, {measured:,} on measured ground"
        if self.data.deposit_mask is not None:
            deposits = np.asarray(self.data.deposit_mask.values, dtype=bool)
            line += f"; {int((deposits & self.brushed).sum())} of {int(deposits.sum())} deposit cells among them"
        return line + "."

    # ------------------------------------------------------------------ kept (named) selections

    def keep_selection(self, name: str) -> KeptSelection:
        """Keep the current pick under ``name``, in the first colour no kept selection has (changes ``kept``;
        the current pick stays)."""
        name = (name or "").strip()
        if self.brushed is None or not self.brushed.any():
            raise DataError("nothing picked to keep: draw a box or a lasso on the map or the scatter plot first")
        if not name:
            raise DataError("name the selection to keep it")
        if any(kept.name == name for kept in self.kept):
            raise DataError(f"a selection named '{name}' is kept already: choose another name or remove it")
        used = {kept.colour for kept in self.kept}
        free = [colour for colour in KEPT_COLOURS if colour not in used]
        if not free:
            raise DataError(f"at most {len(KEPT_COLOURS)} kept selections: remove one first")
        kept = KeptSelection(name, free[0], np.array(self.brushed, dtype=bool), self.brush_origin)
        self.kept = [*self.kept, kept]
        return kept

    def remove_kept(self, name: str) -> None:
        """Forget the kept selection named ``name`` (changes ``kept``)."""
        if not any(kept.name == name for kept in self.kept):
            raise DataError(f"no kept selection named '{name}'")
        self.kept = [kept for kept in self.kept if kept.name != name]

    def forget_selections(self) -> None:
        """Pick no cell and keep no selection (new data: the old cells mean nothing on them)."""
        self.param.update(brushed=None, brush_origin="", kept=[])

    def kept_table(self):
        """The kept selections' cells, one row per cell and selection: row, col, x, y, selection (its name) and
        colour (a cell in two selections is listed twice)."""
        import pandas as pd

        ds = self.data.ds
        frames = []
        for kept in self.kept if ds is not None else []:
            rows, cols = np.nonzero(kept.cells)
            frames.append(
                pd.DataFrame(
                    {
                        "row": rows,
                        "col": cols,
                        "x": ds["x"].values[cols],
                        "y": ds["y"].values[rows],
                        "selection": kept.name,
                        "colour": kept.colour,
                    }
                )
            )
        columns = ["row", "col", "x", "y", "selection", "colour"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
