"""HoloViews figures built from plain xarray / pandas objects (no Panel here)."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr

TOP = 15


def empty(text: str = "", height: int = 200) -> hv.Text:
    """A message in place of a plot; its own dimensions, so that no real plot links its axes to it."""
    return hv.Text(0, 0, text, kdims=["message_x", "message_y"]).opts(
        xaxis=None, yaxis=None, toolbar=None, height=height, responsive=True, show_frame=False
    )


def image(da: xr.DataArray | None, title: str = "", cmap: str = "viridis", kind: str = "value", log: bool = False):
    """A grid layer as an image whose colour bar names the layer and its units.

    ``kind``: ``probability`` (fixed 0-1 scale), ``signed`` (diverging map
    centred on 0, e.g. attributions) or ``value`` (1st-99th percentile; ``log``
    for a log scale when every value is positive).
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
    img = hv.Image(
        (da["x"].values, da["y"].values, values), kdims=["x", "y"], vdims=[hv.Dimension("value", label=name)]
    )
    finite = values[np.isfinite(values)]
    logz = False
    if kind == "probability":
        clim = (0.0, 1.0)
    elif kind == "signed":
        bound = float(np.nanpercentile(np.abs(finite), 99)) if finite.size else 1.0
        clim, cmap = (-(bound or 1e-9), bound or 1e-9), "RdBu_r"
    else:
        clim = (float(np.nanpercentile(finite, 1)), float(np.nanpercentile(finite, 99))) if finite.size else (0, 1)
        logz = bool(log and finite.size and clim[0] > 0)
    if clim[0] == clim[1]:
        clim = (clim[0], clim[0] + 1e-9)

    def name_colour_bar(plot, element):  # HoloViews sets the title once; a new layer must rename it
        colour_bar = plot.handles.get("colorbar")
        if colour_bar is not None:
            colour_bar.title = label

    return img.opts(
        cmap=cmap,
        colorbar=True,
        clim=clim,
        logz=logz,
        clabel=label,
        hooks=[name_colour_bar],
        title=title,
        tools=["hover"],
        clipping_colors={"NaN": (0, 0, 0, 0)},
    )


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


def on_basemap(element, crs):
    """``element`` (drawn in the grid's ``crs``) as its GeoViews counterpart, which GeoViews projects onto
    web-Mercator tiles and whose clicks and boxes it reports back in ``crs``; options are kept."""
    import geoviews as gv
    from cartopy import crs as ccrs
    from pyproj import CRS

    crs = CRS.from_user_input(crs)
    code = crs.to_epsg()
    projection = ccrs.epsg(code) if code and not crs.is_geographic else ccrs.PlateCarree()
    if isinstance(element, hv.Overlay):
        return hv.Overlay([on_basemap(part, crs) for part in element])
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
    if probability is None:
        return hv.Contours([]).opts(line_color="white")
    img = image(probability)
    return hv.operation.contours(img, levels=[float(threshold)], filled=False, overlaid=False).opts(
        line_color="white",
        line_width=1.5,
        cmap=["white"],
        colorbar=False,
        show_legend=False,
        selection_alpha=1.0,
        nonselection_alpha=1.0,
    )


def deposit_points(gdf, crs=None) -> hv.Points:
    if gdf is None or len(gdf) == 0:
        return hv.Points([], kdims=["x", "y"])
    if crs is not None and gdf.crs is not None:
        gdf = gdf.to_crs(crs)
    df = pd.DataFrame({"x": gdf.geometry.x.values, "y": gdf.geometry.y.values})
    return hv.Points(df, kdims=["x", "y"], label="deposits").opts(
        color="red",
        marker="triangle",
        size=9,
        line_color="white",
        tools=["hover"],
        selection_alpha=1.0,
        nonselection_alpha=1.0,  # a click or a box on the map must not hide the other deposits
    )


HELD_OUT_COLOUR, TRAINED_COLOUR = "#e377c2", "#2ca02c"


def fold_overlay(role: dict | None, x: np.ndarray, y: np.ndarray, deposits: np.ndarray | None):
    """One cross-validation fold on the map: its test region outlined (dashed), the deposit cells it held
    out (magenta squares), those it trained on (green dots) and those the buffer dropped (grey crosses).
    Always the same four elements (empty without a fold), so that the map's overlay keeps one structure."""

    def cells(mask, label, **style):
        rows, cols = np.nonzero(mask) if mask is not None else ((), ())
        # a constant label (an overlay whose labels change is not updated in place), kept out of the legend
        return hv.Points((x[list(cols)], y[list(rows)]), kdims=["x", "y"], label=label).opts(
            nonselection_alpha=1.0, show_legend=False, tools=["hover"], **style
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
            hv.Polygons(circles, label=f"{kind} (planted)" if rows else "").opts(
                fill_alpha=0, line_color=colour, line_width=2, line_dash=dash
            )
        )
    labels = pd.DataFrame(columns=["x", "y", "elements"]) if table is None else table
    if len(labels):
        labels = labels.assign(y=labels["y"] + 1.3 * labels["radius"])
    text = hv.Labels(labels, kdims=["x", "y"], vdims=["elements"]).opts(text_font_size="8pt", text_color="white")
    return parts[0] * parts[1] * text


def sample_points(samples_xy: pd.DataFrame | None, scores: pd.DataFrame | None) -> hv.Points:
    """Sample locations (small dark dots), or the scored samples coloured by their label-free score."""
    if scores is not None:
        return hv.Points(
            scores, kdims=["x", "y"], vdims=["anomaly_score", "percentile", "top_elements"], label="samples"
        ).opts(color="anomaly_score", cmap="inferno", size=6, line_color="white", line_width=0.3, tools=["hover"])
    if samples_xy is None or len(samples_xy) == 0:
        return hv.Points([], kdims=["x", "y"])
    return hv.Points(samples_xy, kdims=["x", "y"], label="samples").opts(color="black", size=2, alpha=0.6)


def contribution_bars(exp: dict | None, elements=()) -> hv.Bars:
    """A scored sample's largest element contributions, red where richer than predicted, grey-blue where poorer.

    Always a ``Bars``, so that a DynamicMap updates it in place; before a click, the first ``elements``
    without values (a categorical axis from the start: Bokeh cannot turn a numeric one into it)."""
    element = hv.Dimension("sample_element", label="element")
    if exp:
        top = exp["contributions"].iloc[:TOP]
        df = pd.DataFrame(
            {
                "sample_element": [str(e) for e in top.index],
                "contribution": top.values,
                "residual": exp["residuals"][top.index].values,
            }
        )
        title = f"sample {exp['sample']}: element contributions (red: richer than predicted)"
    else:
        names = [str(e) for e in list(elements)[:TOP]]
        df = pd.DataFrame({"sample_element": names, "contribution": np.nan, "residual": np.nan})
        title = "Score the samples, then click one"
    df["colour"] = np.where(df["residual"] >= 0, "#c0392b", "#5d7a99")
    return hv.Bars(df, kdims=[element], vdims=["contribution", "residual", "colour"]).opts(
        title=title, color="colour", xrotation=45, height=260, responsive=True, tools=["hover"], default_tools=[]
    )


def bar_height(n_bars: int) -> int:
    """Pixels for ``n_bars`` horizontal bars with legible labels."""
    return max(220, 14 * n_bars + 70)


def _blank(elements) -> pd.Series:
    """No value for each of ``elements``: the categories of a bar plot before a click."""
    return pd.Series(np.nan, index=[str(e) for e in elements], dtype=float)


def _bars(series: pd.Series, title: str, label: str, key: str, color="#3b6ea5", uniform: float = np.nan):
    """Every element as a horizontal bar, largest on top; ``key`` names the category dimension so that
    bar plots of different quantities never share (link) their axes; ``uniform`` draws a dashed reference
    line (none when NaN). Always ``Bars * HLine``, so that a DynamicMap updates it in place; an all-NaN
    ``series`` keeps its categories (a placeholder whose axis is categorical from the start)."""
    series = series.sort_values() if series.isna().all() else series.dropna().sort_values()
    element = hv.Dimension(key, label="element")
    df = pd.DataFrame({key: [str(i) for i in series.index], label: series.values})
    bars = hv.Bars(df, kdims=[element], vdims=[label]).opts(
        color=color, tools=["hover"], default_tools=[], invert_axes=True
    )
    line = hv.HLine(uniform).opts(color="#888888", line_dash="dashed", line_width=1)
    return (bars * line).opts(hv.opts.Overlay(title=title, responsive=True, invert_axes=True))


def cls_bars(exp: xr.Dataset | None, layer: str, head: str, elements=()):
    """[CLS] attention over the cell's elements (a layer and head, their mean, or the rollout); before a
    click, the model's ``elements`` without bars."""
    if exp is None or "cls_attention" not in exp:
        title = "click a cell of the map" if exp is None else "no Transformer in this model variant"
        return _bars(_blank(elements), title, "attention", key="attention_element")
    if layer == "rollout":
        values = exp["rollout"].to_series()
        title = "[CLS] attention rollout (dashed: 1/n)"
    else:
        att = exp["cls_attention"]
        att = att.mean("layer") if layer == "mean" else att.sel(layer=int(layer))
        att = att.mean("head") if head == "mean" else att.sel(head=int(head))
        values = att.to_series()
        title = "[CLS] attention (dashed: 1/n)"  # the layer and head are in the menus above
    return _bars(values, title, "attention", key="attention_element", uniform=1.0 / len(values))


def composition_bars(exp: xr.Dataset | None, elements=()):
    """The clicked cell's composition as each element's percentile in the grid (value and units on hover),
    with a dashed line at the median: the geochemistry beside the model's reading of it. Before a click,
    the model's ``elements`` without bars."""
    key = hv.Dimension("composition_element", label="element")
    table = exp.attrs.get("composition") if exp is not None else None
    if table is None:
        names = [str(e) for e in elements]
        table = pd.DataFrame({"element": names, "value": np.nan, "units": "", "percentile": np.nan})
        title = "click a cell of the map"
    else:
        table = table.sort_values("percentile")
        title = "composition: percentile in the grid (dashed: median)"
    df = pd.DataFrame(
        {
            "composition_element": table["element"].astype(str).values,
            "percentile": table["percentile"].values,
            "value": table["value"].values,
            "units": table["units"].astype(str).values,
        }
    )
    bars = hv.Bars(df, kdims=[key], vdims=["percentile", "value", "units"]).opts(
        color="#7a6a9e", tools=["hover"], default_tools=[], invert_axes=True, ylim=(0, 100)
    )
    line = hv.HLine(50).opts(color="#888888", line_dash="dashed", line_width=1)
    return (bars * line).opts(hv.opts.Overlay(title=title, responsive=True, invert_axes=True))


def attention_heatmap(exp: xr.Dataset | None, layer: str, head: str, elements: list[str] = ()) -> hv.HeatMap:
    """Element x element attention of one layer and head (or their means); rows are queries. Before a
    click, ``elements`` x ``elements`` without values, so that the axes are categorical from the start."""
    dims = dict(kdims=["key", "query"], vdims=["attention"])
    if exp is None or "element_attention" not in exp:
        title = "click a cell of the map" if exp is None else "no Transformer in this model variant"
        key, query = np.meshgrid(list(elements), list(elements))
        table = pd.DataFrame({"key": key.ravel(), "query": query.ravel(), "attention": np.nan})
        heatmap = hv.HeatMap(table, **dims).opts(title=title)
    else:
        att = exp["element_attention"]
        lay = "mean" if layer == "rollout" else layer
        att = att.mean("layer") if lay == "mean" else att.sel(layer=int(lay))
        att = att.mean("head") if head == "mean" else att.sel(head=int(head))
        table = att.rename("attention").to_dataframe().reset_index()[["key", "query", "attention"]]
        table[["key", "query"]] = table[["key", "query"]].astype(str)
        title = f"element x element attention (layer {lay}, head {head}); rows = queries"
        heatmap = hv.HeatMap(table, **dims).opts(title=title)
    return heatmap.opts(
        cmap="magma",
        colorbar=True,
        xrotation=90,
        tools=["hover"],
        height=420,
        responsive=True,
        invert_yaxis=True,
        fontsize={"xticks": 7, "yticks": 7},
    )


def neighbour_weights(exp: xr.Dataset | None, head: str) -> xr.DataArray | None:
    """The last GAT layer's weights into the clicked cell, (scale, dy, dx), one head or their mean."""
    if exp is None or "neighbour_weights" not in exp:
        return None
    nw = exp["neighbour_weights"]
    layer_dim = [d for d in nw.dims if d not in ("scale", "dy", "dx") and "layer" in d]
    head_dim = [d for d in nw.dims if d not in ("scale", "dy", "dx") and "head" in d]
    if layer_dim:
        nw = nw.isel({layer_dim[0]: -1})
    if head_dim:
        nw = nw.mean(head_dim[0], skipna=False) if head == "mean" else nw.isel({head_dim[0]: int(head)})
    return nw


def neighbour_image(exp: xr.Dataset | None, head: str, radius: int, last: bool = False) -> hv.HeatMap:
    """Neighbour weights into the clicked cell at the scale of ``radius`` cells, as a fixed-size heatmap on
    the colour scale shared by every scale (grey: no edge, or nothing clicked yet); ``last`` draws the one
    colour bar. Always a ``HeatMap`` of the same cells, so that a DynamicMap updates it in place."""
    nw = neighbour_weights(exp, head)
    offsets = np.arange(-radius, radius + 1)
    weights = np.full((len(offsets), len(offsets)), np.nan)
    vmax = 1.0
    if nw is not None and radius in [int(s) for s in nw["scale"].values]:
        sub = nw.sel(scale=radius).sel(dy=slice(-radius, radius), dx=slice(-radius, radius))
        weights = np.asarray(sub.transpose("dy", "dx").values, dtype=float)
        if np.isfinite(nw.values).any():
            vmax = float(np.nanmax(nw.values))
    dx, dy = hv.Dimension(f"dx{radius}", label="dx (cells)"), hv.Dimension(f"dy{radius}", label="dy (cells)")
    yy, xx = np.meshgrid(offsets, offsets, indexing="ij")
    df = pd.DataFrame({dx.name: xx.ravel(), dy.name: yy.ravel(), "weight": weights.ravel()})
    return hv.HeatMap(df, kdims=[dx, dy], vdims=["weight"]).opts(
        title=f"scale {radius} (cells)",
        xticks=list(offsets),
        yticks=list(offsets),
        toolbar=None,
        cmap="viridis",
        clim=(0, vmax),
        colorbar=last,
        clabel="weight" if last else "",
        xlabel="",
        ylabel="",
        tools=["hover"],
        frame_width=110,
        frame_height=110,
        invert_yaxis=True,
        clipping_colors={"NaN": "lightgrey"},
        default_tools=[],
    )


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


def scale_bars(exp: xr.Dataset | None, scales: list[int] = ()) -> hv.Bars:
    """The cell's softmax weights over scales (no bars before a click, but the ``scales`` on the axis)."""
    if exp is None or "scale_weights" not in exp:
        df = pd.DataFrame({"scale": [str(int(s)) for s in scales], "weight": np.nan})
        title = "scale weights" if exp is None else "no GAT branch in this model variant"
    else:
        sw = exp["scale_weights"]
        df = pd.DataFrame({"scale": [str(int(s)) for s in sw["scale"].values], "weight": sw.values})
        title = "scale weights"
    return hv.Bars(df, kdims=["scale"], vdims=["weight"]).opts(
        title=title, color="#5a9e6f", height=260, width=260, tools=["hover"], ylim=(0, 1)
    )


ENRICHED_COLOUR, DEPLETED_COLOUR = "#b5442e", "#8a9bb5"


def attribution_bars(exp: xr.Dataset | None, elements=()):
    """IG bars, red where the element is above the median composition (an indicator), grey-blue where below,
    with the ensemble members' spread as whiskers when there is one. Always ``Bars * ErrorBars * HLine``,
    so that a DynamicMap updates it in place."""
    element = hv.Dimension("ig_element", label="element")
    if exp is None or "attribution" not in exp:  # before a click: the first elements, without bars
        names = [str(e) for e in list(elements)[:TOP]]
        df = pd.DataFrame({"ig_element": names, "attribution": np.nan, "composition": "enriched", "spread": np.nan})
        title = "click a cell of the map" if exp is None else "no attribution"
    else:
        series = exp["attribution"].to_series().dropna()
        series = series.reindex(series.abs().sort_values(ascending=False).index).iloc[:TOP].sort_values()
        enriched = exp["attribution_enriched"].to_series().reindex(series.index) != 0
        spread = np.full(len(series), np.nan)
        title = f"IG on the logit, top {TOP} (red: enriched)"
        if "attribution_spread" in exp:
            spread = exp["attribution_spread"].to_series().reindex(series.index).values
            title = f"IG (logit) ± spread, {len(exp['member'])} members; red: enriched"
        df = pd.DataFrame(
            {
                "ig_element": [str(e) for e in series.index],
                "attribution": series.values,
                "composition": np.where(enriched.values, "enriched", "depleted"),
                "spread": spread,
            }
        )
    colours = {"enriched": ENRICHED_COLOUR, "depleted": DEPLETED_COLOUR}
    bars = hv.Bars(df, kdims=[element], vdims=["attribution", "composition"]).opts(
        color=hv.dim("composition").categorize(colours), tools=["hover"], default_tools=[]
    )
    whiskers = hv.ErrorBars(df, kdims=[element], vdims=["attribution", "spread"]).opts(color="#333333")
    zero = hv.HLine(0).opts(color="#444444", line_width=1)
    return (bars * whiskers * zero).opts(hv.opts.Overlay(title=title, responsive=True, invert_axes=True))


def training_curves(history: list) -> hv.Element:
    if not history:
        return empty("training progress appears here", height=260)
    df = pd.DataFrame(history)
    loss = hv.Curve(df, "epoch", "loss", label="training loss").opts(color="#3b6ea5")
    if df["val_auc"].isna().all():  # pretraining: a reconstruction loss, no validation
        return loss.relabel("reconstruction loss (pretraining)").opts(
            height=260, responsive=True, tools=["hover"], show_grid=True
        )
    auc = hv.Curve(df, "epoch", "val_auc", label="validation AUC").opts(color="#c44e52")
    return (loss + auc).opts(hv.opts.Curve(height=260, responsive=True, tools=["hover"], show_grid=True))


def roc_curves(report: dict | None) -> hv.Element:
    if not report:
        return empty("run a cross-validation")
    curves = []
    for m, r in report.get("results", {}).items():
        c = r.get("roc_curve") or {}
        if c.get("fpr") is not None:
            curves.append(hv.Curve((c["fpr"], c["tpr"]), "false positive rate", "true positive rate", label=m))
    curves.append(hv.Curve(([0, 1], [0, 1])).opts(color="grey", line_dash="dashed"))
    return hv.Overlay(curves).opts(
        title="ROC (pooled held-out folds)", height=360, responsive=True, legend_position="bottom_right"
    )


def success_curves(report: dict | None) -> hv.Element:
    if not report:
        return empty("")
    curves = []
    for m, r in report.get("results", {}).items():
        c = r.get("success_curve") or {}
        if c.get("area") is not None:
            curves.append(
                hv.Curve((c["area"], c["captured"]), "fraction of area", "fraction of deposit cells", label=m)
            )
    curves.append(hv.Curve(([0, 1], [0, 1])).opts(color="grey", line_dash="dashed"))
    return hv.Overlay(curves).opts(
        title="success-rate curves", height=360, responsive=True, legend_position="bottom_right"
    )


def histogram(da: xr.DataArray | None) -> hv.Element:
    if da is None:
        return empty("")
    v = np.asarray(da.values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return empty("no positive values")
    freq, edges = np.histogram(np.log10(v), bins=50)
    return hv.Histogram((edges, freq), kdims=[f"log10 {da.name}"], vdims=["cells"]).opts(
        height=300, responsive=True, title=f"{da.name}: distribution (log10)", tools=["hover"]
    )


BRUSH_COLOUR, CELL_COLOUR, DEPOSIT_COLOUR = "#ff7f0e", "#9a9a9a", "#d62728"


def _log10(values) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(np.asarray(values, dtype=float))
    out[~np.isfinite(out)] = np.nan
    return out


def _some(mask: np.ndarray, limit: int) -> np.ndarray:
    """Flat indices of at most ``limit`` of the True cells of ``mask`` (a fixed random subset above it)."""
    index = np.flatnonzero(mask)
    if len(index) > limit:
        index = np.sort(np.random.default_rng(0).choice(index, limit, replace=False))
    return index


def brush_scatter(ds: xr.Dataset, x_element: str, y_element: str, brushed=None, deposits=None, limit=50_000):
    """ioGAS-style scatter of two elements (log10) over the grid's cells: ``cells`` grey (a fixed random
    ``limit`` of them on a large grid; it owns the box-select tool), ``picked`` (the brushed cells) orange,
    ``deposits`` (the deposit cells) red. Returned as a dict of the three ``Points`` layers, so that the
    dashboard can update the picked cells alone; ``hv.Overlay(list(layers.values()))`` draws them."""
    lx, ly = _log10(ds[x_element].values).ravel(), _log10(ds[y_element].values).ravel()
    valid = np.isfinite(lx) & np.isfinite(ly)

    def dim(name, element):
        units = ds[element].attrs.get("units")
        return hv.Dimension(name, label=f"log10 {element}" + (f" ({units})" if units else ""))

    xdim, ydim = dim("brush_x", x_element), dim("brush_y", y_element)

    def points(mask, **style):
        index = _some(mask, limit)
        return hv.Points((lx[index], ly[index]), kdims=[xdim, ydim]).opts(**style)

    picked = valid & (np.asarray(brushed, dtype=bool).ravel() if brushed is not None else False)
    on_deposits = valid & (np.asarray(deposits, dtype=bool).ravel() if deposits is not None else False)
    title = f"{y_element} vs {x_element}: {min(int(valid.sum()), limit):,} of {int(valid.sum()):,} cells"
    return {
        "cells": points(
            valid,
            color=CELL_COLOUR,
            size=2,
            alpha=0.5,
            tools=["box_select", "hover"],
            title=title,
            height=320,
            responsive=True,
            show_legend=False,
            nonselection_alpha=0.5,
        ),
        "picked": points(picked, color=BRUSH_COLOUR, size=3),
        "deposits": points(on_deposits, color=DEPOSIT_COLOUR, marker="triangle", size=8, line_color="white"),
    }


def brush_histogram(da: xr.DataArray | None, brushed=None, deposits=None, log: bool = False, bins: int = 50):
    """Histogram of a map layer over the grid's cells (grey), the brushed cells' share of each bar
    (orange) and the deposit cells' values as red spikes. Always ``Histogram * Histogram * Spikes``."""
    dim = hv.Dimension("brush_value", label="value")
    if da is None:
        values = np.array([np.nan])
    else:
        values = np.asarray(da.values, dtype=float).ravel()
        positive = values[np.isfinite(values)]
        log = log and positive.size and positive.min() > 0
        values = _log10(values) if log else values
        name = str(da.name or "value")
        dim = hv.Dimension("brush_value", label=f"log10 {name}" if log else name)
    valid = np.isfinite(values)
    edges = np.histogram_bin_edges(values[valid], bins=bins) if valid.any() else np.linspace(0, 1, bins + 1)
    picked = valid & (np.asarray(brushed, dtype=bool).ravel() if brushed is not None else False)
    on_deposits = valid & (np.asarray(deposits, dtype=bool).ravel() if deposits is not None else False)
    counts = np.histogram(values[valid], edges)[0]
    total = hv.Histogram((edges, counts), kdims=[dim], vdims=["cells"])
    part = hv.Histogram((edges, np.histogram(values[picked], edges)[0]), kdims=[dim], vdims=["cells"])
    rug = hv.Spikes(values[on_deposits], kdims=[dim]).opts(
        color=DEPOSIT_COLOUR, line_width=2, spike_length=0.2 * max(int(counts.max(initial=0)), 1)
    )
    return (
        total.opts(color=CELL_COLOUR, line_color=None, tools=["hover"])
        * part.opts(color=BRUSH_COLOUR, line_color=None)
        * rug
    ).opts(hv.opts.Overlay(title="cells (grey), picked (orange), deposit cells (red)", height=320, responsive=True))


def correlation(ds: xr.Dataset | None, elements: list) -> hv.Element:
    if ds is None or len(elements) < 2:
        return empty("select two or more elements")
    mat = np.stack([ds[e].values.ravel() for e in elements], axis=1).astype(float)
    mat = mat[np.isfinite(mat).all(axis=1)]
    mat = np.log10(np.clip(mat, 1e-9, None))
    corr = np.corrcoef(mat, rowvar=False)
    rows = [(a, b, float(corr[i, j])) for i, a in enumerate(elements) for j, b in enumerate(elements)]
    df = pd.DataFrame(rows, columns=["a", "b", "r"])
    return hv.HeatMap(df, kdims=["a", "b"], vdims=["r"]).opts(
        cmap="RdBu_r",
        clim=(-1, 1),
        colorbar=True,
        xrotation=90,
        height=520,
        responsive=True,
        tools=["hover"],
        title="correlation of log10 values",
        fontsize={"xticks": 7, "yticks": 7},
    )


def matrix_heatmap(summary: dict | None) -> hv.Element:
    if not summary or not summary.get("attention_matrix"):
        return empty("no attention matrix for this variant")
    labels = [str(e) for e in summary.get("matrix_elements", [])]
    m = np.asarray(summary["attention_matrix"], dtype=float)
    if m.shape[0] == len(labels) + 1:
        labels = ["[CLS]"] + labels
    rows = [(labels[j], labels[i], float(m[i, j])) for i in range(m.shape[0]) for j in range(m.shape[1])]
    df = pd.DataFrame(rows, columns=["key", "query", "attention"])
    return hv.HeatMap(df, kdims=["key", "query"], vdims=["attention"]).opts(
        cmap="magma",
        colorbar=True,
        xrotation=90,
        height=380,
        responsive=True,
        invert_yaxis=True,
        title="mean element attention in the region",
        tools=["hover"],
        fontsize={"xticks": 7, "yticks": 7},
    )
