"""HoloViews figures of the map: a grid layer as an image, the unsupported ground, outlines, deposits,
samples, a cross-validation fold, the planted truth, the clicked cell's neighbours and brushed cells, and
the basemap's tiles and axes (no Panel here)."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr
from bokeh.models import HoverTool

from .plots_explain import neighbour_weights

# Every overlay on the map keeps one label and one style whether empty or not: HoloViews matches the layers
# of a frame to the plot's renderers by type and label, and a layer whose label changed (a deposits layer
# once empty, the planted truth once absent) was drawn by another layer's renderer (the clicked cell's
# square stopped moving after a box selection). And a click or a box selects glyphs on every renderer: a
# layer drawn as information must not be dimmed by it (one click hid every planted circle but the clicked one).
KEEP_SELECTED = {"selection_alpha": 1.0, "nonselection_alpha": 1.0}


def image(da: xr.DataArray | None, title: str = "", cmap: str = "viridis", kind: str = "value", log: bool = False):
    """A grid layer as an image whose colour bar names the layer and its units.

    ``kind``: ``probability`` or ``share`` (fixed 0-1 scale), ``from zero`` (0 to the 99th percentile, e.g.
    attention), ``signed`` (diverging map centred on 0, e.g. attributions) or ``value`` (1st-99th
    percentile, said in the colour bar's title; ``log`` for a log scale, values at or below 0 shown as the
    smallest positive value).
    """
    if da is None:
        return hv.Image(np.full((2, 2), np.nan), kdims=["x", "y"], vdims=["value"]).opts(title=title)
    da = da.reset_coords(drop=True)
    if da["y"].values[0] > da["y"].values[-1]:
        da = da.isel(y=slice(None, None, -1))
    name = str(da.name or "value")
    units = da.attrs.get("units")
    label = f"{title or name} ({units})" if units and units != "1" else (title or name)
    values = np.asarray(da.values, dtype=np.float32)
    finite = values[np.isfinite(values)]
    log = bool(log and kind == "value" and (finite > 0).any())
    if log:  # a log scale has no place for 0 or below: such cells take the lowest colour
        values = np.where(np.isfinite(values), np.maximum(values, finite[finite > 0].min()), np.nan)
        finite = values[np.isfinite(values)]
    img = hv.Image(
        (da["x"].values, da["y"].values, values), kdims=["x", "y"], vdims=[hv.Dimension("value", label=name)]
    )
    clim = colour_limits(finite, kind, log)
    if kind == "signed":
        cmap = "RdBu_r"
    elif kind == "value" and finite.size:  # a stretch says so: 0.93-1.0 drawn as full contrast misled
        label = f"{label} · colours stretched over {clim[0]:.3g} to {clim[1]:.3g} (1st-99th percentile)"

    def name_colour_bar(plot, element):  # HoloViews sets the title once; a new layer must rename it
        colour_bar = plot.handles.get("colorbar")
        if colour_bar is not None:
            colour_bar.title = label

    return img.opts(
        cmap=cmap,
        colorbar=True,
        clim=clim,
        clabel=label,
        hooks=[name_colour_bar, colour_scale(log, clim)],
        title=title,
        tools=["hover"],
        clipping_colors={"NaN": (0, 0, 0, 0)},
    )


def colour_limits(finite: np.ndarray, kind: str = "value", log: bool = False) -> tuple:
    """The colour limits :func:`image` gives a layer's finite values (the exported PNG uses them too)."""
    if kind in ("probability", "share"):
        clim = (0.0, 1.0)
    elif kind == "from zero":
        clim = (0.0, float(np.nanpercentile(finite, 99)) if finite.size else 1.0)
    elif kind == "signed":
        bound = float(np.nanpercentile(np.abs(finite), 99)) if finite.size else 1.0
        clim = (-(bound or 1e-9), bound or 1e-9)
    else:
        clim = (float(np.nanpercentile(finite, 1)), float(np.nanpercentile(finite, 99))) if finite.size else (0, 1)
    if clim[0] == clim[1]:
        clim = (clim[0], clim[0] * 1.001 if log else clim[0] + 1e-9)
    return clim


def colour_scale(log: bool, clim: tuple):
    """A plot hook that colours the image on a log (``log``) or linear scale over ``clim``.

    HoloViews picks a plot's colour mapper once, when the plot is first drawn, and only updates its
    limits afterwards: a map first drawn linear stays linear whatever ``logz`` its later frames ask for.
    The hook swaps the glyph's and the colour bar's mapper for a log mapper of the same palette (kept in
    the plot's handles) and back, on every frame."""

    def hook(plot, element):
        from bokeh.models import BasicTicker, LogColorMapper, LogTicker

        glyph, linear = plot.handles.get("glyph"), plot.handles.get("color_mapper")
        if glyph is None or linear is None or not hasattr(glyph, "color_mapper"):
            return
        mapper = linear
        if log:
            mapper = plot.handles.get("log_color_mapper")
            if mapper is None:
                mapper = plot.handles["log_color_mapper"] = LogColorMapper()
            mapper.update(palette=linear.palette, low=clim[0], high=clim[1], nan_color=linear.nan_color)
        if glyph.color_mapper is not mapper:
            glyph.color_mapper = mapper
        colour_bar = plot.handles.get("colorbar")
        if colour_bar is not None and colour_bar.color_mapper is not mapper:
            colour_bar.color_mapper = mapper
            colour_bar.ticker = LogTicker() if log else BasicTicker()

    return hook


UNSUPPORTED_COLOUR = "#7f7f7f"


def unsupported_ground(ds: xr.Dataset | None) -> hv.Image:
    """The cells with data off the grid's sample support (interpolated far from any sample), as a flat grey
    veil over the layer beneath: never coloured as a score. Transparent where the grid has no support."""
    from ..data.preprocess import valid_mask
    from ..data.support import support_mask, without_support

    support = support_mask(ds) if ds is not None else None
    if support is None:
        return hv.Image(np.full((2, 2), np.nan), kdims=["x", "y"], vdims=["unsupported"]).opts(
            colorbar=False, tools=[], alpha=0
        )
    veil = np.where(valid_mask(without_support(ds)) & ~support, 1.0, np.nan).astype(np.float32)
    y = ds["y"].values
    if y[0] > y[-1]:
        veil, y = veil[::-1], y[::-1]
    return hv.Image((ds["x"].values, y, veil), kdims=["x", "y"], vdims=["unsupported"]).opts(
        cmap=[UNSUPPORTED_COLOUR],
        clim=(0, 1),
        colorbar=False,
        alpha=0.75,
        tools=[],
        clipping_colors={"NaN": (0, 0, 0, 0)},
    )


def extent(da: xr.DataArray | None, to_web_mercator=None) -> dict:
    """``xlim``/``ylim`` options covering a grid's cells (edges, not centres); {} without data.
    With ``to_web_mercator`` (the grid's CRS), the limits of the grid projected onto web tiles."""
    if da is None or da.sizes.get("x", 0) < 1 or da.sizes.get("y", 0) < 1:
        return {}
    limits = {}
    for axis in ("x", "y"):
        v = np.asarray(da[axis].values, dtype=float)
        half = abs(float(v[1] - v[0])) / 2 if len(v) > 1 else 0.5
        limits[f"{axis}lim"] = (float(v.min()) - half, float(v.max()) + half)
    if to_web_mercator is not None:
        from pyproj import Transformer

        edge = np.linspace(0, 1, 21)  # along each edge: a projected rectangle's sides are curves
        (x0, x1), (y0, y1) = limits["xlim"], limits["ylim"]
        xs = np.concatenate([x0 + (x1 - x0) * edge, np.full(21, x1), x1 - (x1 - x0) * edge, np.full(21, x0)])
        ys = np.concatenate([np.full(21, y0), y0 + (y1 - y0) * edge, np.full(21, y1), y1 - (y1 - y0) * edge])
        mx, my = Transformer.from_crs(to_web_mercator, "EPSG:3857", always_xy=True).transform(xs, ys)
        limits = {"xlim": (float(np.min(mx)), float(np.max(mx))), "ylim": (float(np.min(my)), float(np.max(my)))}
    return limits


def on_basemap(element, crs, bounds=None):
    """``element`` (drawn in the grid's ``crs``) as its GeoViews counterpart, which GeoViews projects onto
    web-Mercator tiles and whose clicks and boxes it reports back in ``crs``; options are kept. ``bounds``
    (x0, x1, y0, y1 in ``crs``: the grid's extent) widen the projection's domain to the whole grid."""
    import geoviews as gv

    from .projection import grid_projection

    projection = grid_projection(crs, bounds)
    if isinstance(element, hv.Overlay):
        return hv.Overlay([on_basemap(part, crs, bounds) for part in element])
    return element.clone(new_type=getattr(gv, type(element).__name__), crs=projection)


def tiles(url: str):
    """Web-map tiles from an XYZ URL template (``{Z}/{X}/{Y}``), under every other layer."""
    import geoviews as gv

    return gv.WMTS(url, name="basemap").opts(alpha=0.8)


def crs_axes(crs) -> dict:
    """Axis options naming the map's CRS: ticks in km for a projected CRS in metres (raw northings such
    as 7,000,000 are unreadable), degrees for a geographic one, plain x and y without a CRS."""
    if crs is None:
        return {"xlabel": "x (no CRS)", "ylabel": "y (no CRS)"}
    from bokeh.models import CustomJSTickFormatter
    from pyproj import CRS

    crs = CRS.from_user_input(crs)
    code = crs.to_epsg()
    name = f"EPSG:{code}" if code else crs.name
    if crs.is_geographic:
        return {"xlabel": f"longitude (°) · {name}", "ylabel": f"latitude (°) · {name}"}
    if crs.axis_info and crs.axis_info[0].unit_name == "metre":
        km = CustomJSTickFormatter(code="return (tick / 1000).toLocaleString('en-GB')")
        return {
            "xlabel": f"easting (km) · {name} {crs.name}",
            "ylabel": f"northing (km) · {name}",
            "xformatter": km,
            "yformatter": km,
        }
    unit = crs.axis_info[0].unit_name if crs.axis_info else "map units"
    return {"xlabel": f"easting ({unit}) · {name}", "ylabel": f"northing ({unit}) · {name}"}


def selection_box(bounds=None) -> hv.Rectangles:
    """The last box drawn with the box-select tool, outlined (an empty element before the first)."""
    boxes = [] if bounds is None else [tuple(bounds)]
    return hv.Rectangles(boxes).opts(fill_alpha=0, line_color="cyan", line_width=2, line_dash="dashed")


def zones(probability: xr.DataArray | None, threshold: float):
    """The outline of the cells scoring at least ``threshold`` (white contours; empty without a model, of the
    same structure: an outline emptied by new data must be updated in place, not left behind)."""
    if probability is None:
        lines = hv.Contours([], vdims=["value"])
    else:
        lines = hv.operation.contours(image(probability), levels=[float(threshold)], filled=False, overlaid=False)
    return lines.opts(
        line_color="white",
        line_width=1.5,
        cmap=["white"],
        colorbar=False,
        show_legend=False,
        selection_alpha=1.0,
        nonselection_alpha=1.0,
    )


def deposit_points(gdf, crs=None) -> hv.Points:
    """The deposits as red triangles, in ``crs`` (the grid's) when given; never dimmed by a selection."""
    if gdf is None or len(gdf) == 0:
        df = pd.DataFrame({"x": [], "y": []})
    else:
        if crs is not None and gdf.crs is not None:
            gdf = gdf.to_crs(crs)
        df = pd.DataFrame({"x": gdf.geometry.x.values, "y": gdf.geometry.y.values})
    # one label, empty or not: a layer whose label changes is not updated in place (see KEEP_SELECTED)
    return hv.Points(df, kdims=["x", "y"], label="deposits").opts(
        color="red",
        marker="triangle",
        size=9,
        line_color="white",
        tools=["hover"],
        **KEEP_SELECTED,  # a click or a box on the map must not hide the other deposits
    )


HELD_OUT_COLOUR, TRAINED_COLOUR = "#e377c2", "#2ca02c"


def fold_overlay(role: dict | None, x: np.ndarray, y: np.ndarray, deposits: np.ndarray | None):
    """One cross-validation fold on the map: its test region outlined (dashed), the deposit cells it held
    out (magenta squares), those it trained on (green dots) and those the buffer dropped (grey crosses).
    Always the same four elements (empty without a fold), so that the map's overlay keeps one structure."""

    def cells(mask, label, **style):
        rows, cols = np.nonzero(mask) if mask is not None else ((), ())
        # a constant label (an overlay whose labels change is not updated in place), in the legend while drawn
        return hv.Points((x[list(cols)], y[list(rows)]), kdims=["x", "y"], label=label).opts(
            nonselection_alpha=1.0, tools=["hover"], **style
        )

    if role is None:
        outline = hv.Contours([]).opts(line_color=HELD_OUT_COLOUR)
        held, trained, dropped = None, None, None
    else:
        region = hv.Image((x, y, role["test_region"].astype(np.float32)), kdims=["x", "y"])
        if y[0] > y[-1]:
            region = hv.Image((x, y[::-1], role["test_region"][::-1].astype(np.float32)), kdims=["x", "y"])
        outline = hv.operation.contours(region, levels=[0.5], filled=False, overlaid=False)
        held, trained = role["test_deposits"], role["train_deposits"]
        dropped = deposits & ~held & ~trained if deposits is not None else None
    return (
        outline.opts(
            line_color=HELD_OUT_COLOUR, line_width=2, line_dash="dashed", cmap=[HELD_OUT_COLOUR], colorbar=False
        )
        * cells(held, "held out", marker="square", size=12, fill_alpha=0, line_color=HELD_OUT_COLOUR, line_width=2)
        * cells(trained, "trained on", color=TRAINED_COLOUR, size=6)
        * cells(dropped, "dropped by the buffer", color="#555555", marker="x", size=9)
    )


def truth_overlay(table: pd.DataFrame | None):
    """A synthetic scenario's planted anomalies: circles of their radius (red: ore, orange dashed:
    decoy) labelled with their elements. Always the same three elements (empty without truth), so
    that the map's overlay keeps one structure."""
    angle = np.linspace(0, 2 * np.pi, 48)
    parts = []
    for kind, colour, dash in (("ore", "#d62728", "solid"), ("decoy", "#ff7f0e", "dashed")):
        rows = [] if table is None else list(table[table["kind"].str.startswith(kind)].itertuples())
        circles = [{"x": r.x + r.radius * np.cos(angle), "y": r.y + r.radius * np.sin(angle)} for r in rows]
        parts.append(
            hv.Polygons(circles, label=f"{kind} (planted)").opts(
                fill_alpha=0, line_color=colour, line_width=2, line_dash=dash, **KEEP_SELECTED
            )
        )
    labels = pd.DataFrame(columns=["x", "y", "elements"]) if table is None else table
    if len(labels):
        labels = labels.assign(y=labels["y"] + 1.3 * labels["radius"])
    text = hv.Labels(labels, kdims=["x", "y"], vdims=["elements"]).opts(text_font_size="8pt", text_color="white")
    return parts[0] * parts[1] * text


SAMPLE_GLYPHS = 5000  # above this many samples in view, the samples are rasterised (datashader), below drawn as dots


def _in_view(table: pd.DataFrame, x_range=None, y_range=None) -> pd.DataFrame:
    """The rows of ``table`` (columns x, y) inside the view's ranges (all of them without a range)."""
    keep = np.ones(len(table), dtype=bool)
    for column, bounds in (("x", x_range), ("y", y_range)):
        if bounds is not None and None not in bounds and np.isfinite(bounds).all():
            low, high = sorted(bounds)
            keep &= table[column].between(low, high).to_numpy()
    return table[keep] if not keep.all() else table


SAMPLE_COLUMNS = ["x", "y", "sample", "lon", "lat", "anomaly_score", "percentile", "top_elements"]
SAMPLE_HOVER = [
    ("sample", "@sample"),
    ("lon, lat", "@lon{0.00000}, @lat{0.00000}"),
    ("score", "@anomaly_score{0.000}"),
    ("percentile", "@percentile{0.0}"),
    ("leading elements", "@top_elements"),
]


def sample_points(
    samples_xy: pd.DataFrame | None,
    scores: pd.DataFrame | None,
    x_range=None,
    y_range=None,
    max_glyphs: int | None = SAMPLE_GLYPHS,
) -> hv.Points:
    """Sample locations (small dark dots), or the scored samples coloured by their label-free score with a
    colour bar, with hover (name, lon/lat, score). Only the samples in the view (``x_range``, ``y_range``);
    none when more than ``max_glyphs`` are in it (:func:`sample_raster` draws them then; None: always every
    sample, without hover above :data:`SAMPLE_GLYPHS`).

    Always one element of one structure (every column of :data:`SAMPLE_COLUMNS`, a score mapped to colour and a
    colour bar, hidden until there are scores): the map's plot is drawn once and keeps its colour bar."""
    table = scores if scores is not None else samples_xy
    table = pd.DataFrame(columns=SAMPLE_COLUMNS) if table is None else table
    table = table.reindex(columns=SAMPLE_COLUMNS).astype({"anomaly_score": float, "percentile": float})
    table["sample"] = table["sample"].fillna("").astype(str)
    table["top_elements"] = table["top_elements"].fillna("").astype(str)
    shown = _in_view(table, x_range, y_range)
    if max_glyphs is not None and len(shown) > max_glyphs:
        shown = shown.iloc[:0]
    tools = [] if max_glyphs is None and len(shown) > SAMPLE_GLYPHS else [HoverTool(tooltips=SAMPLE_HOVER)]
    scored = scores is not None and len(scores) > 0
    title = "samples: label-free score" if scored else ""

    def show_colour_bar(plot, element):  # shown for scores only; HoloViews draws a colour bar once
        # points coloured by a column keep it as "color_colorbar" (an image's is "colorbar")
        colour_bar = plot.handles.get("color_colorbar", plot.handles.get("colorbar"))
        if colour_bar is not None:
            colour_bar.visible, colour_bar.title = scored, title

    return hv.Points(shown, kdims=["x", "y"], vdims=SAMPLE_COLUMNS[2:], label="samples").opts(
        color="anomaly_score",
        cmap="inferno",
        clim=_score_range(scores) if scored else (0.0, 1.0),
        colorbar=True,
        colorbar_position="bottom",
        clabel=title,
        clipping_colors={"NaN": "#000000"},  # unscored samples: dark dots
        size=6 if scored else 3,
        alpha=1.0 if scored else 0.6,
        line_color="white",
        line_width=0.3 if scored else 0.0,
        tools=tools,
        hooks=[show_colour_bar],
        **KEEP_SELECTED,
    )


def sample_marker(sample: dict | None) -> hv.Points:
    """The clicked sample, ringed in cyan (an empty element of the same structure before a click)."""
    xy = [(sample["x"], sample["y"])] if sample else []
    return hv.Points(xy, kdims=["x", "y"], label="clicked sample").opts(
        marker="circle", size=16, fill_alpha=0, line_color="cyan", line_width=3, show_legend=False, **KEEP_SELECTED
    )


def cell_marker(explanation) -> hv.Points:
    """The clicked cell, squared in cyan (an empty element of the same structure before a click)."""
    xy = [(explanation.attrs["x"], explanation.attrs["y"])] if explanation is not None else []
    return hv.Points(xy, kdims=["x", "y"], label="clicked cell").opts(
        marker="square", size=14, fill_alpha=0, line_color="cyan", line_width=3, show_legend=False, **KEEP_SELECTED
    )


def legend_of_drawn_layers(plot, element):
    """An overlay hook: legend entries only for layers with something drawn (every layer keeps its label,
    empty or not, so that it is updated in place)."""
    for legend in plot.state.legend:
        for item in legend.items:
            item.visible = any(len(next(iter(r.data_source.data.values()), [])) for r in item.renderers)


def _score_range(scores: pd.DataFrame) -> tuple:
    values = scores["anomaly_score"].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return (0.0, 1.0)
    low, high = float(values.min()), float(values.max())
    return (low, high if high > low else low + 1e-9)


def sample_raster(
    samples_xy: pd.DataFrame | None,
    scores: pd.DataFrame | None,
    x_range=None,
    y_range=None,
    width: int = 600,
    height: int = 600,
    min_points: int = SAMPLE_GLYPHS,
) -> hv.Image:
    """The samples in the view rasterised by datashader when more than ``min_points`` are in it (else an
    empty, transparent image, :func:`sample_points` draws them): scored samples as the highest label-free
    score per pixel (a lone anomaly stays visible), unscored ones as a dark mask. No hover, no tools."""
    import datashader as ds

    table = scores if scores is not None else samples_xy
    empty = hv.Image(np.full((2, 2), np.nan), kdims=["x", "y"], vdims=["samples"]).opts(
        colorbar=False, tools=[], alpha=0
    )
    if table is None or len(table) == 0:
        return empty
    shown = _in_view(table, x_range, y_range)
    if len(shown) <= min_points:
        return empty
    x0, x1 = sorted(x_range) if x_range is not None and None not in x_range else (shown.x.min(), shown.x.max())
    y0, y1 = sorted(y_range) if y_range is not None and None not in y_range else (shown.y.min(), shown.y.max())
    if not (x1 > x0 and y1 > y0):
        return empty
    canvas = ds.Canvas(plot_width=int(width), plot_height=int(height), x_range=(x0, x1), y_range=(y0, y1))
    if scores is not None:
        grid = canvas.points(shown, "x", "y", agg=ds.max("anomaly_score"))
        style = {
            "cmap": "inferno",
            "clim": _score_range(scores),
            "colorbar": True,
            "clabel": "samples: label-free score (max per pixel)",
        }
    else:
        grid = canvas.points(shown, "x", "y", agg=ds.any()).astype(np.float32).where(lambda g: g > 0)
        style = {"cmap": ["#000000"], "clim": (0, 1), "colorbar": False}
    values = np.asarray(grid.values, dtype=np.float32)
    image = hv.Image((grid["x"].values, grid["y"].values, values), kdims=["x", "y"], vdims=[hv.Dimension("samples")])
    return image.opts(tools=[], alpha=1.0, clipping_colors={"NaN": (0, 0, 0, 0)}, **style)


def neighbour_segments(exp: xr.Dataset | None, head: str, x: np.ndarray, y: np.ndarray) -> hv.Segments:
    """The clicked cell's GAT neighbours at its dominant scale (largest scale weight), drawn on the map as
    segments from the cell whose width grows with the neighbour's attention weight. Always ``Segments``
    (empty before a click or without a GAT branch), so that the map updates it in place."""
    columns = {"x0": [], "y0": [], "x1": [], "y1": [], "weight": [], "width": []}
    nw = neighbour_weights(exp, head)
    if nw is not None and "scale_weights" in exp:
        scale = int(exp["scale_weights"]["scale"].values[int(np.argmax(exp["scale_weights"].values))])
        sub = nw.sel(scale=scale).sel(dy=slice(-scale, scale), dx=slice(-scale, scale))
        row, col = int(exp.attrs["row"]), int(exp.attrs["col"])
        top = float(np.nanmax(sub.values)) if np.isfinite(sub.values).any() else 1.0
        for dy in sub["dy"].values:
            for dx in sub["dx"].values:
                weight = float(sub.sel(dy=dy, dx=dx))
                r, c = row + int(dy), col + int(dx)
                if not np.isfinite(weight) or (dy == 0 and dx == 0) or not (0 <= r < len(y) and 0 <= c < len(x)):
                    continue
                for key, value in zip(columns, (x[col], y[row], x[c], y[r], weight, 0.5 + 6 * weight / top)):
                    columns[key].append(float(value))
    segments = hv.Segments(
        pd.DataFrame(columns), kdims=["x0", "y0", "x1", "y1"], vdims=["weight", "width"], label="GAT neighbours"
    )
    return segments.opts(color="cyan", alpha=0.9, line_width="width", show_legend=False)  # no hover: GeoViews fails
