"""HoloViews charts beside the map: an element's distribution and the elements' correlation (Data tab),
training curves, cross-validation ROC and success-rate curves, and the scatter plot and histogram of linked
brushing (no Panel here)."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr
from bokeh.models import HoverTool


def empty(text: str = "", height: int = 200) -> hv.Text:
    """A message in place of a plot; its own dimensions, so that no real plot links its axes to it."""
    return hv.Text(0, 0, text, kdims=["message_x", "message_y"]).opts(
        xaxis=None, yaxis=None, toolbar=None, height=height, responsive=True, show_frame=False
    )


def training_curves(history: list) -> hv.Element:
    """The loss per epoch (pretraining), or the loss beside the validation ROC-AUC (from scratch)."""
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
    """Each method's ROC curve over the pooled held-out folds of a cross-validation report."""
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
    """Each method's success-rate curve: the share of deposit cells captured per share of the area."""
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
    """The distribution of an element's positive values (log10)."""
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
    """The correlation matrix of the elements' log10 values over the cells where all are measured."""
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


BRUSH_COLOUR, CELL_COLOUR, DEPOSIT_COLOUR = "#ff7f0e", "#9a9a9a", "#d62728"


def _log10(values) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(np.asarray(values, dtype=float))
    out[~np.isfinite(out)] = np.nan
    return out


def some_cells(mask: np.ndarray, limit: int) -> np.ndarray:
    """Flat indices of at most ``limit`` of the True cells of ``mask`` (a fixed random subset above it)."""
    index = np.flatnonzero(mask)
    if len(index) > limit:
        index = np.sort(np.random.default_rng(0).choice(index, limit, replace=False))
    return index


def brush_scatter(ds: xr.Dataset, x_element: str, y_element: str, brushed=None, deposits=None, limit=50_000):
    """ioGAS-style scatter of two elements (log10) over the grid's cells: ``cells`` grey (a fixed random
    ``limit`` of them on a large grid; it owns the box- and lasso-select tools), ``picked`` (the brushed cells) orange,
    ``deposits`` (the deposit cells) red. Returned as a dict of the three ``Points`` layers, so that the
    dashboard can update the picked cells alone; ``hv.Overlay(list(layers.values()))`` draws them."""
    lx, ly = _log10(ds[x_element].values).ravel(), _log10(ds[y_element].values).ravel()
    valid = np.isfinite(lx) & np.isfinite(ly)

    def dim(name, element):
        units = ds[element].attrs.get("units")
        return hv.Dimension(name, label=f"log10 {element}" + (f" ({units})" if units else ""))

    xdim, ydim = dim("brush_x", x_element), dim("brush_y", y_element)

    def points(mask, **style):
        index = some_cells(mask, limit)
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
            tools=["box_select", "lasso_select", "hover"],
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
    (orange) and the deposit cells' values as red triangles on the base. Always ``Histogram * Histogram * Scatter``."""
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
    # marks at the base, sized in pixels: spikes in the "cells" axis read as bars of 190 cells
    marks = values[on_deposits]
    rug = hv.Scatter((marks, np.zeros(len(marks))), kdims=[dim], vdims=["cells"]).opts(
        color=DEPOSIT_COLOUR, marker="triangle", size=8, line_color="white"
    )
    return (
        total.opts(color=CELL_COLOUR, line_color=None, tools=["hover"])
        * part.opts(color=BRUSH_COLOUR, line_color=None)
        * rug
    ).opts(
        hv.opts.Overlay(title="cells (grey), picked (orange);\nred triangles: deposits", height=320, responsive=True)
    )


def kept_points(kept, place, kdims, limit: int = 20_000, size: int = 4) -> hv.Points:
    """The kept selections as see-through squares, each in its colour, hover naming it: ``kept`` is a list of
    :class:`~.state_selection.KeptSelection`, ``place(flat_index)`` gives the (x, y) of its cells in the plot
    (NaN: not drawn), at most ``limit`` cells in all (a fixed random subset of each). Always one element of one
    structure, labelled "kept selections" (updated in place, see :data:`~.plots_map.KEEP_SELECTED`)."""
    frames = [pd.DataFrame({"x": [], "y": [], "selection": [], "colour": []})]
    share = limit // max(len(kept), 1)
    for selection in kept:
        xs, ys = place(some_cells(selection.cells, share))
        frames.append(pd.DataFrame({"x": xs, "y": ys, "selection": selection.name, "colour": selection.colour}))
    table = pd.concat(frames, ignore_index=True).astype({"x": float, "y": float, "selection": str, "colour": str})
    table = table[np.isfinite(table["x"]) & np.isfinite(table["y"])]
    xdim, ydim = (hv.Dimension(d) if isinstance(d, str) else d for d in kdims)
    table = table.rename(columns={"x": xdim.name, "y": ydim.name})
    return hv.Points(table, kdims=[xdim, ydim], vdims=["selection", "colour"], label="kept selections").opts(
        color="colour",
        marker="square",
        size=size,
        fill_alpha=0.25,
        line_alpha=0.8,
        tools=[HoverTool(tooltips=[("kept selection", "@selection")])],
        selection_alpha=1.0,
        nonselection_alpha=1.0,
        show_legend=False,  # one legend entry cannot show a colour per selection; the list beside the plots does
    )


FAITHFULNESS_COLOURS = {
    "attention": "#d95f02",
    "integrated_gradients": "#1b9e77",
    "occlusion": "#7570b3",
    "random": "#666666",
}


FAITHFULNESS_NAMES = {"south_china": "South China", "scenarios": "benchmark scenarios"}


def faithfulness_curves(report: dict | None) -> hv.Element | None:
    """Deletion curves of the faithfulness report (``docs/results/faithfulness.json``): per dataset, the cells'
    mean logit as each method's top-k elements are set to the baseline (random dashed). None without a report."""
    datasets = (report or {}).get("datasets") or {}
    panels = []
    for name, result in datasets.items():
        curves = []
        for method, figures in result.get("methods", {}).items():
            deletion = figures.get("deletion")
            if not deletion:
                continue
            label = method.replace("_", " ")
            curves.append(
                hv.Curve((np.arange(len(deletion)), deletion), "elements deleted", "mean logit", label=label).opts(
                    color=FAITHFULNESS_COLOURS.get(method, "black"),
                    line_dash="dashed" if method == "random" else "solid",
                )
            )
        if curves:
            title = f"{FAITHFULNESS_NAMES.get(name, name)}: {result.get('n_cells', '?')} cells"
            panels.append(hv.Overlay(curves).opts(title=title, legend_position="right"))
    if not panels:
        return None
    return (
        hv.Layout(panels)
        .opts(hv.opts.Curve(height=260, width=640, tools=["hover"], show_grid=True), hv.opts.Layout(shared_axes=False))
        .cols(1)
    )
