"""Label-free scores written out: ``mstgat score DATA --out SCORES`` for point files and grids.

Points (CSV or any OGR point file): MSTGAT is pretrained on the samples
themselves (:mod:`~mstgat_core.point_model`) and the output keeps **every
input column as read, coordinates as given**, then adds:

* ``anomaly_score``: the label-free score (higher = less like its own other
  elements and its neighbours predict);
* ``anomaly_percentile``: its rank among the samples (100 = highest);
* ``top_elements``: the three largest contributions with the sign of their
  residual (``As+`` richer than predicted, ``Cr-`` poorer);
* ``contrib_<El>``: each element's contribution (they add up to
  ``exp(anomaly_score)``, up to 1e-6);
* ``scale_weight_<k>``: the sample's weight on each neighbourhood scale;
* with a target element (``--target Au``), ``target_residual``: its value
  minus what the sample's other elements and neighbours predict. Of the
  label-free readouts this one ranked known sites best on Lapland and South
  China, where it was chosen (docs/results.md).

A ``.csv`` output is plain text; a ``.gpkg`` output holds the points in the
input's own CRS. Grids: the label-free model of a checkpoint, or one
pretrained on the grid, gives ``anomaly_score`` and ``contrib_<El>`` layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import rankdata

from ..data.support import SUPPORT
from ..errors import DataError
from ..files import atomic_output
from .pipeline import SUPPORT_ATTRS, grid_array

POINT_OUTPUTS = (".csv", ".gpkg")
GRID_OUTPUTS = (".nc",)


def read_raw_points(path) -> pd.DataFrame:
    """The input table exactly as read (every column; a vector file keeps its geometry)."""
    import geopandas as gpd

    path = Path(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, low_memory=False)
    return gpd.read_file(path)


def point_score_table(raw: pd.DataFrame, scores, scales, target: str | None = None) -> pd.DataFrame:
    """``raw`` with the score columns of the module docstring appended (same rows, same order)."""
    if len(raw) != len(scores.anomaly_score):
        raise DataError(f"{len(scores.anomaly_score)} scores for {len(raw)} rows")
    added = {
        "anomaly_score": scores.anomaly_score,
        "anomaly_percentile": 100.0 * rankdata(scores.anomaly_score) / len(scores.anomaly_score),
        "top_elements": scores.top_elements(3),
    }
    if target is not None:
        added["target_residual"] = scores.residuals[target].to_numpy()
    added.update({f"contrib_{e}": scores.contributions[e].to_numpy() for e in scores.contributions.columns})
    added.update({f"scale_weight_{k}": scores.scale_weights[:, i] for i, k in enumerate(scales)})
    clash = [name for name in added if name in raw.columns]
    if clash:
        raise DataError(f"the input already has column(s) {', '.join(clash)}; rename them first")
    return pd.concat([raw.reset_index(drop=True), pd.DataFrame(added)], axis=1)


def write_point_scores(table: pd.DataFrame, out, samples) -> None:
    """Write a score table as CSV, or as GeoPackage in the input's CRS (atomically)."""
    import geopandas as gpd

    out = Path(out)
    with atomic_output(out) as tmp:
        if out.suffix.lower() == ".csv":
            frame = table.drop(columns="geometry") if isinstance(table, gpd.GeoDataFrame) else table
            frame.to_csv(tmp, index=False)
            return
        if isinstance(table, gpd.GeoDataFrame):
            frame = table
        else:  # a CSV input: its points in the CRS its coordinates were given in
            geometry = samples.table.geometry.to_crs(samples.source_crs or samples.crs)
            frame = gpd.GeoDataFrame(table, geometry=geometry.values, crs=geometry.crs)
        frame.to_file(tmp, driver="GPKG", layer="scores")


def grid_scores(fitted, ds: xr.Dataset) -> xr.Dataset:
    """``anomaly_score`` and ``contrib_<El>`` layers of a label-free (fused) model on a whole grid (NaN off the
    grid's sample support), with the ``support`` layer (1 measured, 0 interpolated far from any sample)."""
    import torch

    if not fitted.model.fused:
        raise DataError("label-free scores need a pretrained (fused) model; this checkpoint is supervised only")
    prepared = fitted.prepare(ds)
    model = fitted.model.eval()
    stencil = prepared.graph.stencil if fitted.config.uses_spatial else None
    with torch.no_grad():
        predicted = model.masked_predictions(
            lambda hidden: model._embed_grid(prepared.x, stencil, hidden)[0], prepared.x
        )
    contributions = ((prepared.x - predicted).square() / prepared.x.shape[1]).numpy()
    score = np.log(contributions.sum(axis=1) + 1e-6)
    layers = {
        "anomaly_score": prepared.to_grid(
            score, "anomaly_score", long_name="label-free score: log mean squared masked reconstruction error"
        )
    }
    for i, e in enumerate(fitted.elements):
        layers[f"contrib_{e}"] = prepared.to_grid(
            contributions[:, i], f"contrib_{e}", long_name=f"{e}'s share of exp(anomaly_score)"
        )
    layers[SUPPORT] = grid_array(fitted.support_layer(ds), prepared.template, SUPPORT, **SUPPORT_ATTRS)
    return xr.Dataset(layers)
