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


def extent(da: xr.DataArray | None) -> dict:
    """``xlim``/``ylim`` options covering a grid's cells (edges, not centres); {} without data."""
    if da is None or da.sizes.get("x", 0) < 1 or da.sizes.get("y", 0) < 1:
        return {}
    limits = {}
    for axis in ("x", "y"):
        v = np.asarray(da[axis].values, dtype=float)
        half = abs(float(v[1] - v[0])) / 2 if len(v) > 1 else 0.5
        limits[f"{axis}lim"] = (float(v.min()) - half, float(v.max()) + half)
    return limits


def selection_box(bounds=None) -> hv.Rectangles:
    """The last box drawn with the box-select tool, outlined (an empty element before the first)."""
    boxes = [] if bounds is None else [tuple(bounds)]
    return hv.Rectangles(boxes).opts(fill_alpha=0, line_color="cyan", line_width=2, line_dash="dashed")


def layer_kind(layer: str | None) -> str:
    """How a map layer's values are coloured (see :func:`image`)."""
    if layer == "probability" or layer in ("model: calibrated", "model: top_agreement"):
        return "probability"
    if layer and layer.startswith("attribution"):
        return "signed"
    return "value"


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


def contribution_bars(exp: dict | None) -> hv.Element:
    """A scored sample's largest element contributions, red where richer than predicted, grey-blue where poorer."""
    if not exp:
        return empty("Score the samples, then click one", height=260)
    top = exp["contributions"].iloc[:TOP]
    df = pd.DataFrame(
        {
            "sample_element": [str(e) for e in top.index],
            "contribution": top.values,
            "residual": exp["residuals"][top.index].values,
        }
    )
    df["colour"] = np.where(df["residual"] >= 0, "#c0392b", "#5d7a99")
    element = hv.Dimension("sample_element", label="element")
    return hv.Bars(df, kdims=[element], vdims=["contribution", "residual", "colour"]).opts(
        title=f"sample {exp['sample']}: element contributions (red: richer than predicted)",
        color="colour",
        xrotation=45,
        height=260,
        responsive=True,
        tools=["hover"],
        default_tools=[],
    )


def _bars(series: pd.Series, title: str, label: str, key: str, color="#3b6ea5", uniform: float | None = None):
    """Every element as a horizontal bar, largest on top; ``key`` names the category dimension so that
    bar plots of different quantities never share (link) their axes; ``uniform`` draws a reference line."""
    series = series.dropna().sort_values()
    element = hv.Dimension(key, label="element")
    df = pd.DataFrame({key: [str(i) for i in series.index], label: series.values})
    bars = hv.Bars(df, kdims=[element], vdims=[label]).opts(
        color=color, tools=["hover"], default_tools=[], invert_axes=True
    )
    overlay = bars
    if uniform is not None:
        overlay = bars * hv.HLine(uniform).opts(color="#888888", line_dash="dashed", line_width=1)
    return overlay.opts(
        hv.opts.Overlay(title=title, height=max(220, 14 * len(df) + 70), responsive=True, invert_axes=True)
    )


def cls_bars(exp: xr.Dataset, layer: str, head: str) -> hv.Element:
    if exp is None:
        return empty("click a cell of the map")
    if exp is None or "cls_attention" not in exp:
        return empty("no Transformer in this model variant")
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


def attention_heatmap(exp: xr.Dataset, layer: str, head: str) -> hv.Element:
    if exp is None:
        return empty("click a cell of the map")
    if exp is None or "element_attention" not in exp:
        return empty("no Transformer in this model variant")
    att = exp["element_attention"]
    lay = "mean" if layer == "rollout" else layer
    att = att.mean("layer") if lay == "mean" else att.sel(layer=int(lay))
    att = att.mean("head") if head == "mean" else att.sel(head=int(head))
    q = [str(v) for v in att["query"].values]
    k = [str(v) for v in att["key"].values]
    vals = np.asarray(att.values)
    rows = [(k[j], q[i], float(vals[i, j])) for i in range(len(q)) for j in range(len(k))]
    df = pd.DataFrame(rows, columns=["key", "query", "attention"])
    return hv.HeatMap(df, kdims=["key", "query"], vdims=["attention"]).opts(
        title=f"element x element attention (layer {lay}, head {head}); rows = queries",
        cmap="magma",
        colorbar=True,
        xrotation=90,
        tools=["hover"],
        height=420,
        responsive=True,
        invert_yaxis=True,
        fontsize={"xticks": 7, "yticks": 7},
    )


def neighbour_images(exp: xr.Dataset, head: str) -> list:
    """Neighbour weights into the clicked cell, one fixed-size heatmap per scale on one colour scale
    (a single colour bar, on the last); grey cells have no edge."""
    if exp is None:
        return [empty("click a cell of the map")]
    if exp is None or "neighbour_weights" not in exp:
        return [empty("no GAT branch in this model variant")]
    nw = exp["neighbour_weights"]
    layer_dim = [d for d in nw.dims if d not in ("scale", "dy", "dx") and "layer" in d]
    head_dim = [d for d in nw.dims if d not in ("scale", "dy", "dx") and "head" in d]
    if layer_dim:
        nw = nw.isel({layer_dim[0]: -1})
    if head_dim:
        nw = nw.mean(head_dim[0], skipna=False) if head == "mean" else nw.isel({head_dim[0]: int(head)})
    vmax = float(np.nanmax(nw.values)) if np.isfinite(nw.values).any() else 1.0
    scales = [int(s) for s in nw["scale"].values]
    plots = []
    for i, r in enumerate(scales):
        sub = nw.sel(scale=r).sel(dy=slice(-r, r), dx=slice(-r, r))
        dx, dy = hv.Dimension(f"dx{r}", label="dx (cells)"), hv.Dimension(f"dy{r}", label="dy (cells)")
        rows = [
            (int(x), int(y), float(v))
            for y, row in zip(sub["dy"].values, sub.values)
            for x, v in zip(sub["dx"].values, row)
        ]
        df = pd.DataFrame(rows, columns=[dx.name, dy.name, "weight"])
        last = i == len(scales) - 1
        plots.append(
            hv.HeatMap(df, kdims=[dx, dy], vdims=["weight"]).opts(
                title=f"scale {r} (cells)",
                xticks=list(range(-r, r + 1)),
                yticks=list(range(-r, r + 1)),
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
        )
    return plots


def scale_bars(exp: xr.Dataset) -> hv.Element:
    if exp is None:
        return empty("click a cell of the map")
    if exp is None or "scale_weights" not in exp:
        return empty("no GAT branch in this model variant")
    sw = exp["scale_weights"]
    df = pd.DataFrame({"scale": [str(int(s)) for s in sw["scale"].values], "weight": sw.values})
    return hv.Bars(df, kdims=["scale"], vdims=["weight"]).opts(
        title="scale weights", color="#5a9e6f", height=260, width=260, tools=["hover"], ylim=(0, 1)
    )


ENRICHED_COLOUR, DEPLETED_COLOUR = "#b5442e", "#8a9bb5"


def attribution_bars(exp: xr.Dataset) -> hv.Element:
    """IG bars, red where the element is above the median composition (an indicator), grey-blue where below."""
    if exp is None:
        return empty("click a cell of the map")
    if exp is None or "attribution" not in exp:
        return empty("no attribution")
    series = exp["attribution"].to_series().dropna()
    series = series.reindex(series.abs().sort_values(ascending=False).index).iloc[:TOP].sort_values()
    enriched = exp["attribution_enriched"].to_series().reindex(series.index) != 0
    element = hv.Dimension("ig_element", label="element")
    df = pd.DataFrame(
        {
            "ig_element": [str(e) for e in series.index],
            "attribution": series.values,
            "composition": np.where(enriched.values, "enriched", "depleted"),
        }
    )
    colours = {"enriched": ENRICHED_COLOUR, "depleted": DEPLETED_COLOUR}
    title = f"IG on the logit, top {TOP} (red: enriched)"
    bars = hv.Bars(df, kdims=[element], vdims=["attribution", "composition"]).opts(
        color=hv.dim("composition").categorize(colours), tools=["hover"], default_tools=[]
    )
    layout = hv.opts.Overlay(height=max(220, 14 * len(df) + 70), responsive=True, invert_axes=True)
    if "attribution_spread" not in exp:
        return (bars * hv.HLine(0).opts(color="#444444", line_width=1)).opts(layout, hv.opts.Overlay(title=title))
    df["spread"] = exp["attribution_spread"].to_series().reindex(series.index).values
    whiskers = hv.ErrorBars(df, kdims=[element], vdims=["attribution", "spread"]).opts(color="#333333")
    title = f"IG (logit) ± spread, {len(exp['member'])} members; red: enriched"
    return (bars * whiskers).opts(layout, hv.opts.Overlay(title=title))


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
