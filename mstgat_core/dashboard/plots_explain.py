"""HoloViews figures of an explanation: the clicked cell's attention, composition and attribution bars,
its element x element attention and neighbour weights per scale, its scale weights, a scored sample's
contributions and a region's attention matrix (no Panel here). Each is always the same element type, so
that a DynamicMap updates it in place."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr

from .plots_charts import empty

TOP = 15
NEIGHBOUR_FRAME = 110  # px: each scale's heatmap, fixed (two per row in the explanation column)
MIN_TICK_PX = 18  # px between two x ticks: "-3-2-10 1 2 3" ran together at scale 3 (16 px a cell)


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
        title = "[CLS] attention rollout\n(dashed: 1/n)"
    else:
        att = exp["cls_attention"]
        att = att.mean("layer") if layer == "mean" else att.sel(layer=int(layer))
        att = att.mean("head") if head == "mean" else att.sel(head=int(head))
        values = att.to_series()
        title = "[CLS] attention\n(dashed: 1/n)"  # the layer and head are in the menus above
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
        title = "composition: percentile in\nthe grid (dashed: median)"
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
        title = f"element x element\nattention (layer {lay},\nhead {head}); rows: queries"
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
    # every offset while the labels have room, else the centre and the two edges
    xticks = list(offsets) if NEIGHBOUR_FRAME / len(offsets) >= MIN_TICK_PX else [-radius, 0, radius]
    df = pd.DataFrame({dx.name: xx.ravel(), dy.name: yy.ravel(), "weight": weights.ravel()})
    return hv.HeatMap(df, kdims=[dx, dy], vdims=["weight"]).opts(
        title=f"scale {radius} (cells)",
        xticks=xticks,
        yticks=list(offsets),
        toolbar=None,
        cmap="viridis",
        clim=(0, vmax),
        colorbar=last,
        clabel="weight" if last else "",
        xlabel="",
        ylabel="",
        tools=["hover"],
        frame_width=NEIGHBOUR_FRAME,
        frame_height=NEIGHBOUR_FRAME,
        invert_yaxis=True,
        clipping_colors={"NaN": "lightgrey"},
        default_tools=[],
    )


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
        title=title, color="#5a9e6f", frame_height=180, frame_width=180, tools=["hover"], ylim=(0, 1)
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
        title = f"IG on the logit, top {TOP}\n(red: enriched)"
        if "attribution_spread" in exp:
            spread = exp["attribution_spread"].to_series().reindex(series.index).values
            title = f"IG (logit) ± spread,\n{len(exp['member'])} members; red: enriched"
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


def matrix_heatmap(summary: dict | None) -> hv.Element:
    """A region summary's mean element x element attention (rows are queries)."""
    if not summary or summary.get("pending"):
        return empty("a region's attention matrix")
    if not summary.get("attention_matrix"):
        return empty("no attention matrix for this variant")
    labels = [str(e) for e in summary.get("matrix_elements", [])]
    m = np.asarray(summary["attention_matrix"], dtype=float)
    if m.shape[0] == len(labels) + 1:
        labels = ["[CLS]"] + labels
    rows = [(labels[j], labels[i], float(m[i, j])) for i in range(m.shape[0]) for j in range(m.shape[1])]
    df = pd.DataFrame(rows, columns=["key", "query", "attention"])
    top = float(np.nanmax(m)) if np.isfinite(m).any() else 1.0
    return hv.HeatMap(df, kdims=["key", "query"], vdims=["attention"]).opts(
        cmap="magma",
        colorbar=True,
        clim=(0.0, top or 1.0),  # from 0: 0.023-0.0265 stretched to full contrast looked like strong contrasts
        clabel=f"attention (0 to {top:.3g})",
        xrotation=90,
        height=380,
        responsive=True,
        invert_yaxis=True,
        title="mean element attention in the region",
        tools=["hover"],
        fontsize={"xticks": 7, "yticks": 7},
    )
