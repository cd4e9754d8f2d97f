"""A region compared with the rest of the grid, and the text report of ``mstgat explain``."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from ..errors import DataError
from .attribution import attribute_nodes, enrichment_split
from .cell import explain_cell
from .common import model_of
from .maps import attention_maps
from .scales import scale_contributions

IG_BASELINE = (
    "all-zero normalised input = the grid's robust median composition "
    "(global centre of the normaliser); other cells held at their real values"
)
CLS = "[CLS]"


# -------------------------------------------------------------------- summarise


def region_nodes(prepared, region) -> np.ndarray:
    """Bool per node: the cells of ``region`` ((ny, nx), nonzero and not NaN) among the valid cells."""
    mask = prepared.graph.mask
    values = np.asarray(region.values if isinstance(region, xr.DataArray) else region)
    if values.shape != mask.shape:
        raise DataError(f"region grid {values.shape} does not match the data grid {mask.shape}")
    values = np.nan_to_num(values.astype(float)) != 0
    return values[mask]  # bool per node


def summarise(
    fitted,
    prepared,
    region,
    maps: xr.Dataset | None = None,
    attributions: xr.DataArray | None = None,
    max_attributed: int | None = None,
    progress=None,
    cancel=None,
) -> dict:
    """Compare a region (bool (y, x): deposits, a box, a threshold) with the rest of the grid.

    Elements are ranked by mean [CLS] attention (head mean, last layer)
    inside minus outside the region, by mean signed IG attribution inside
    the region, and by the part of it carried by enriched elements (the
    indicator ranking). Only cells with data count.

    Parameters
    ----------
    fitted : FittedModel
        The model.
    prepared : PreparedGrid
        ``fitted.prepare(grid)``.
    region : xr.DataArray or array-like
        ``(ny, nx)`` on the same grid; nonzero, non-NaN cells are inside.
    maps : xr.Dataset, optional
        :func:`attention_maps` of ``prepared`` (computed when not given).
    attributions : xr.DataArray, optional
        :func:`attribution_maps` of ``prepared`` (default: IG computed for the
        region's cells only, 16 steps).
    max_attributed : int, optional
        Without ``attributions``, compute IG on a random sample of at most this
        many of the region's cells (seeded; the means over the region are then
        sample means, unbiased). A box of a few thousand cells takes minutes
        in full; the rankings rest on means, which a few hundred cells already
        pin down. ``attributed_cells`` in the result says how many were used.
    progress, cancel
        Passed to :func:`attribute_nodes` (``progress(done, total)`` per batch).

    Returns
    -------
    dict
        Plain JSON types: ``n_cells``, ``variant``, ``elements_by_attention``,
        ``attention_inside``/``attention_outside`` (element -> mean [CLS]
        attention; outside is 0 when the region holds every cell),
        ``attention_matrix`` (E x E mean head-mean last-layer element->element
        attention over the region, rows = queries; None without a spectral
        branch), ``matrix_elements``, ``scale_weights`` (scale -> mean weight
        inside), ``scale_contributions`` (scale -> mean inside; models with
        ``scale_readout`` only), ``elements_by_attribution``, ``attribution_inside``
        (element -> mean IG inside), ``elements_by_enrichment`` and
        ``enrichment_inside`` (the same for the IG carried by enriched
        elements, :func:`enrichment_split`: the indicator ranking),
        ``attributed_cells`` (the cells those rest on). Entries of a missing
        branch are empty.

    Raises
    ------
    DataError
        If ``region`` is not on the data grid or holds no cell with data.

    Examples
    --------
    What the bundled model reads at the deposit cells of a window of the demo:

    >>> import mstgat_core as mst
    >>> from mstgat_core.paths import DEMO_CHECKPOINT, DEMO_DEPOSITS, DEMO_GRID
    >>> fitted = mst.load_checkpoint(DEMO_CHECKPOINT)  # 5 members on 39 elements
    >>> grid = mst.load_grid(DEMO_GRID).isel(y=slice(50, 70), x=slice(80, 100))  # 20 x 20 cells, 6 of them deposits
    >>> deposits = mst.deposit_cells(grid, mst.load_deposits(DEMO_DEPOSITS))
    >>> prepared = fitted.prepare(grid)
    >>> summary = mst.summarise(fitted, prepared, deposits)
    >>> summary["n_cells"], summary["variant"], len(summary["elements_by_enrichment"])
    (6, 'mstgat', 39)
    >>> sorted(summary["scale_weights"])  # plain JSON: the scales' radii as text
    ['1', '2', '3']
    """
    inside = region_nodes(prepared, region)
    n_cells = int(inside.sum())
    if n_cells == 0:
        raise DataError("the region holds no cell with data")
    config = fitted.config
    elements = fitted.elements
    maps = maps if maps is not None else attention_maps(fitted, prepared)
    mask = prepared.graph.mask
    out = {
        "n_cells": n_cells,
        "variant": config.variant,
        "elements_by_attention": [],
        "attention_inside": {},
        "attention_outside": {},
        "attention_matrix": None,
        "matrix_elements": elements,
        "scale_weights": {},
    }
    if "cls_attention" in maps:
        cls = maps["cls_attention"].values[:, mask]  # (E, nodes)
        a_in = cls[:, inside].mean(axis=1)
        a_out = cls[:, ~inside].mean(axis=1) if (~inside).any() else np.zeros(len(elements))
        order = np.argsort(-(a_in - a_out), kind="stable")
        out["elements_by_attention"] = [elements[i] for i in order]
        out["attention_inside"] = {e: float(v) for e, v in zip(elements, a_in)}
        out["attention_outside"] = {e: float(v) for e, v in zip(elements, a_out)}
        nodes = torch.from_numpy(np.nonzero(inside)[0])
        model = model_of(fitted)
        total = torch.zeros(len(elements), len(elements))
        with torch.no_grad():
            for chunk in torch.split(nodes, 4096):
                _, att = model.spectral(prepared.x[chunk], need_weights=True)
                total += att[:, -1, :, 1:, 1:].mean(dim=1).sum(dim=0)
        out["attention_matrix"] = (total / n_cells).tolist()
    if "scale_weights" in maps:
        sw = maps["scale_weights"].values[:, mask][:, inside].mean(axis=1)
        out["scale_weights"] = {str(s): float(v) for s, v in zip(config.scales, sw)}
    if fitted.model.fused and config.uses_spatial and config.scale_readout:
        contributions = scale_contributions(fitted, prepared, np.nonzero(inside)[0]).mean(axis=0)
        out["scale_contributions"] = {str(s): float(v) for s, v in zip(config.scales, contributions)}
    nodes = np.nonzero(inside)[0]
    if attributions is not None:
        values = np.asarray(attributions.values)[:, mask][:, inside].T
    else:
        if max_attributed is not None and len(nodes) > int(max_attributed):
            nodes = np.sort(np.random.default_rng(0).choice(nodes, int(max_attributed), replace=False))
        values, _ = attribute_nodes(fitted, prepared, nodes, progress=progress, cancel=cancel)
    out["attributed_cells"] = len(nodes)
    attr = values.mean(axis=0)
    enriched = enrichment_split(values, prepared.x[torch.from_numpy(nodes)].numpy())[0].mean(axis=0)
    out["elements_by_attribution"] = [elements[i] for i in np.argsort(-attr, kind="stable")]
    out["attribution_inside"] = {e: float(v) for e, v in zip(elements, attr)}
    out["elements_by_enrichment"] = [elements[i] for i in np.argsort(-enriched, kind="stable")]
    out["enrichment_inside"] = {e: float(v) for e, v in zip(elements, enriched)}
    return out


# ------------------------------------------------------------------- reporting


def ranked(values: dict) -> list:
    """The keys of ``values``, largest value first."""
    return sorted(values, key=lambda e: -values[e])


def explain_report(
    fitted, grid: xr.Dataset, row=None, col=None, x=None, y=None, region=None, top: int = 5
) -> tuple[dict, str]:
    """(JSON-ready dict, text) explaining one cell, or summarising ``region`` when given (for the CLI)."""
    prepared = fitted.prepare(grid)
    top = max(int(top), 1)
    if region is not None:
        report = summarise(fitted, prepared, region)
        lines = [f"region: {report['n_cells']} cells ({report['variant']})"]
        if report["elements_by_attention"]:
            lines.append(
                "elements by [CLS] attention, inside minus outside: "
                + ", ".join(
                    f"{e} {report['attention_inside'][e] - report['attention_outside'][e]:+.4f}"
                    for e in report["elements_by_attention"][:top]
                )
            )
        lines.append(
            "indicator elements (mean IG carried by enriched elements inside): "
            + ", ".join(f"{e} {report['enrichment_inside'][e]:+.3f}" for e in report["elements_by_enrichment"][:top])
        )
        lines.append(
            "elements by attribution (mean IG inside, depletions included): "
            + ", ".join(f"{e} {report['attribution_inside'][e]:+.3f}" for e in report["elements_by_attribution"][:top])
        )
        if report["scale_weights"]:
            lines.append("scale weights: " + ", ".join(f"r={s} {w:.3f}" for s, w in report["scale_weights"].items()))
        if report.get("scale_contributions"):
            lines.append(
                "scale contributions to the score (logit): "
                + ", ".join(f"r={s} {v:+.3f}" for s, v in report["scale_contributions"].items())
            )
        return report, "\n".join(lines)

    ds = explain_cell(fitted, prepared, row=row, col=col, x=x, y=y)
    a = ds.attrs
    attribution = {e: float(v) for e, v in zip(fitted.elements, ds["attribution"].values)}
    enriched = {e: float(v) for e, v in zip(fitted.elements, ds["attribution_enriched"].values)}
    report = {
        "row": a["row"],
        "col": a["col"],
        "x": a["x"],
        "y": a["y"],
        "probability": a["probability"],
        "variant": a["variant"],
        "elements_by_attribution": ranked(attribution),
        "attribution": attribution,
        "elements_by_enrichment": ranked(enriched),
        "attribution_enriched": enriched,
        "ig_baseline": a["ig_baseline"],
        "ig_delta": a["ig_delta"],
        "elements_by_attention": [],
        "cls_attention": {},
        "scale_weights": {},
        "neighbour_weights": {},
    }
    lines = [
        f"cell row {a['row']}, col {a['col']} (x {a['x']:g}, y {a['y']:g}): "
        f"probability {a['probability']:.4f} ({a['variant']})"
    ]
    if "cls_attention_mean" in ds:
        cls = {e: float(v) for e, v in zip(fitted.elements, ds["cls_attention_mean"].values[-1])}
        report["cls_attention"] = cls
        report["elements_by_attention"] = ranked(cls)
        lines.append(
            "elements by [CLS] attention (last layer, head mean): "
            + ", ".join(f"{e} {cls[e]:.3f}" for e in report["elements_by_attention"][:top])
        )
    lines.append(
        "indicator elements (IG carried by elements above the median composition): "
        + ", ".join(f"{e} {enriched[e]:+.3f}" for e in report["elements_by_enrichment"][:top] if enriched[e] > 0)
    )
    if "attribution_spread" in ds:
        spread = {e: float(v) for e, v in zip(fitted.elements, ds["attribution_spread"].values)}
        report["attribution_spread"] = spread
        report["member_attribution"] = ds["member_attribution"].values.tolist()
        lines.append(
            f"elements by attribution (IG, ensemble mean logit; ± spread over {len(ds['member'])} members): "
            + ", ".join(f"{e} {attribution[e]:+.3f} ± {spread[e]:.3f}" for e in report["elements_by_attribution"][:top])
        )
    else:
        lines.append(
            "elements by attribution (IG): "
            + ", ".join(f"{e} {attribution[e]:+.3f}" for e in report["elements_by_attribution"][:top])
        )
    if "scale_weights" in ds:
        report["scale_weights"] = {str(s): float(w) for s, w in zip(ds["scale"].values, ds["scale_weights"].values)}
        lines.append("scale weights: " + ", ".join(f"r={s} {w:.3f}" for s, w in report["scale_weights"].items()))
        if "scale_contributions" in ds:
            report["scale_contributions"] = {
                str(s): float(v) for s, v in zip(ds["scale"].values, ds["scale_contributions"].values)
            }
            lines.append(
                "scale contributions to the score (logit): "
                + ", ".join(f"r={s} {v:+.3f}" for s, v in report["scale_contributions"].items())
            )
        weights = ds["neighbour_weights"].isel(gat_layer=-1).mean("gat_head")
        for scale in ds["scale"].values:
            image = weights.sel(scale=scale)
            r = int(scale)
            image = image.sel(dy=slice(-r, r), dx=slice(-r, r)).values
            report["neighbour_weights"][str(int(scale))] = [
                [None if np.isnan(v) else float(v) for v in line] for line in image
            ]
            lines.append(f"neighbour weights, scale r={r} (head mean, last GAT layer; rows dy, columns dx):")
            lines += ["  " + " ".join("  .  " if np.isnan(v) else f"{v:.3f}" for v in line) for line in image]
    return report, "\n".join(lines)
