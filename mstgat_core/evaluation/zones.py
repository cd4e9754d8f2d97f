"""Target zones: the top share of a score map as polygons with what a geologist asks of each, written as a
GeoPackage.

A zone is a connected region (4-connected: cells that share an edge, so every polygon is valid) of the
measured-ground cells whose score is at least the cut of the top ``share`` -- the same cut as the map's
outline: the ``1 - share`` quantile of the finite scores on measured ground. Each zone carries:

* ``zone`` (1 = the highest maximum score), ``n_cells``, ``area_km2`` (from the polygon in the grid's CRS: in
  its linear unit for a projected CRS, in the equal-area EPSG:6933 for a geographic one; NaN without a CRS),
  ``max_score``, ``mean_score`` and ``score_cut``;
* ``leading_elements``: the elements with the highest robust z-score inside the zone -- per element, log10
  values standardised over the grid's valid cells by median and IQR/1.349
  (:class:`~mstgat_core.data.preprocess.Normaliser` with the ``log`` transform), the median over the zone's
  cells, the ``n_leading`` largest as ``"Cu 2.4, As 1.9"``. These describe the chemistry of the zone, not the
  model's reasons (its explanation is per cell, and too slow over every zone of a large map);
* ``n_deposits``: the known deposits inside (points: each counted once; a deposit-cell mask: its cells).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import DataError
from ..files import atomic_output

LAYER = "target_zones"  # the GeoPackage layer
EQUAL_AREA = "EPSG:6933"  # for areas on a geographic CRS
COLUMNS = (
    "zone",
    "n_cells",
    "area_km2",
    "max_score",
    "mean_score",
    "score_cut",
    "leading_elements",
    "n_deposits",
)

__all__ = ["LAYER", "read_zones", "target_zones", "top_share_cut", "write_zones"]


def top_share_cut(scores, share: float, ground=None) -> float:
    """The score at or above which a cell is in the top ``share`` (0-1] of the finite scores on ``ground``."""
    if not 0 < share <= 1:
        raise DataError(f"the top share must be in (0, 1], got {share:g}", setting="share")
    values = np.asarray(getattr(scores, "values", scores), dtype=np.float64)
    region = np.isfinite(values) if ground is None else np.isfinite(values) & np.asarray(ground, dtype=bool)
    if not region.any():
        raise DataError("the score map has no finite value on measured ground")
    return float(np.quantile(values[region], 1 - share))


def _robust_z(grid: xr.Dataset, elements) -> tuple[np.ndarray, list[str]]:
    """Robust z-scores of log10 values, (elements, y, x), NaN off the grid's valid cells."""
    from ..data.preprocess import Normaliser, valid_mask

    normaliser = Normaliser(transform="log", elements=list(elements) if elements else None).fit(grid)
    names = list(normaliser.elements)
    mask = valid_mask(grid, names)
    z = np.full((len(names), *mask.shape), np.nan)
    z[:, mask] = np.asarray(normaliser.transform(grid), dtype=np.float64).T
    return z, names


def _leading(z: np.ndarray, names: list[str], labels: np.ndarray, n_zones: int, n_leading: int) -> list[str]:
    texts = []
    for k in range(1, n_zones + 1):
        inside = z[:, labels == k]
        with np.errstate(all="ignore"):
            medians = np.array([np.nanmedian(row) if np.isfinite(row).any() else np.nan for row in inside])
        order = [i for i in np.argsort(-np.nan_to_num(medians, nan=-np.inf)) if np.isfinite(medians[i])]
        texts.append(", ".join(f"{names[i]} {medians[i]:.1f}" for i in order[:n_leading]))
    return texts


def _areas_km2(polygons, crs) -> np.ndarray:
    if crs is None:
        return np.full(len(polygons), np.nan)
    from pyproj import CRS

    crs = CRS.from_user_input(crs)
    if crs.is_geographic:
        return polygons.to_crs(EQUAL_AREA).area.to_numpy() / 1e6
    metres = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return polygons.area.to_numpy() * metres**2 / 1e6


def _deposit_counts(deposits, labels: np.ndarray, polygons, n_zones: int) -> np.ndarray:
    import geopandas as gpd

    if deposits is None:
        return np.zeros(n_zones, dtype=int)
    if isinstance(deposits, gpd.GeoDataFrame):
        points = deposits[["geometry"]].reset_index(drop=True)
        if points.crs is not None and polygons.crs is not None:
            points = points.to_crs(polygons.crs)
        else:  # one side has no CRS: the coordinates are taken to be the grid's (as deposit_cells does)
            points = gpd.GeoDataFrame(geometry=points.geometry.values, crs=polygons.crs)
        zones = gpd.GeoDataFrame({"zone": np.arange(1, n_zones + 1)}, geometry=polygons.values, crs=polygons.crs)
        hits = gpd.sjoin(points, zones, predicate="intersects").reset_index()
        hits = hits.drop_duplicates(subset="index")  # a point on the corner two zones share counts once
        return np.bincount(hits["zone"].to_numpy(), minlength=n_zones + 1)[1:]
    cells = np.asarray(getattr(deposits, "values", deposits), dtype=bool)
    if cells.shape != labels.shape:
        raise DataError(f"the deposit cells {cells.shape} do not match the score map {labels.shape}")
    return np.bincount(labels[cells], minlength=n_zones + 1)[1:]


def target_zones(
    scores: xr.DataArray,
    share: float = 0.05,
    *,
    ground=None,
    grid: xr.Dataset | None = None,
    elements=None,
    deposits=None,
    n_leading: int = 3,
    crs=None,
):
    """The target zones of a score map (y, x) as a GeoDataFrame, one polygon per zone; see the module.

    ``ground`` (bool, y, x): measured ground (default: the finite scores); ``grid``: the survey, for the
    leading elements (``elements`` of it; none without a grid); ``deposits``: points (GeoDataFrame) or deposit
    cells (bool, y, x); ``crs``: default the score map's, else the grid's.
    """
    import geopandas as gpd
    import shapely
    from rasterio.features import shapes
    from scipy import ndimage

    values = np.asarray(scores.values, dtype=np.float64)
    if values.ndim != 2:
        raise DataError(f"a score map has two dimensions (y, x), this one {values.ndim}")
    cut = top_share_cut(values, share, ground)
    cells = np.isfinite(values) & (values >= cut)
    if ground is not None:
        cells &= np.asarray(getattr(ground, "values", ground), dtype=bool)
    labels, n_zones = ndimage.label(cells)  # 4-connected
    index = np.arange(1, n_zones + 1)
    max_score = np.asarray(ndimage.maximum(values, labels, index), dtype=np.float64)
    order = np.argsort(-max_score, kind="stable")  # zone 1: the highest score
    renumber = np.zeros(n_zones + 1, dtype=np.int32)
    renumber[order + 1] = index
    labels = renumber[labels]
    crs = crs or scores.rio.crs or (grid.rio.crs if grid is not None else None)
    transform = scores.rio.transform()
    pieces: dict[int, list] = {}
    for geometry, value in shapes(labels, mask=cells, connectivity=4, transform=transform):
        pieces.setdefault(int(value), []).append(shapely.geometry.shape(geometry))
    polygons = gpd.GeoSeries([shapely.union_all(pieces[k]) for k in index], crs=crs)
    table = {
        "zone": index,
        "n_cells": np.bincount(labels.ravel(), minlength=n_zones + 1)[1:],
        "area_km2": _areas_km2(polygons, crs),
        "max_score": np.asarray(ndimage.maximum(values, labels, index), dtype=np.float64),
        "mean_score": np.asarray(ndimage.mean(values, labels, index), dtype=np.float64),
        "score_cut": np.full(n_zones, cut),
        "leading_elements": [""] * n_zones,
        "n_deposits": _deposit_counts(deposits, labels, polygons, n_zones),
    }
    if grid is not None:
        z, names = _robust_z(grid, elements)
        table["leading_elements"] = _leading(z, names, labels, n_zones, n_leading)
    return gpd.GeoDataFrame(table, geometry=polygons.values, crs=crs)


def write_zones(zones, path) -> None:
    """Write target zones as a GeoPackage (layer ``target_zones``), atomically."""
    with atomic_output(path) as tmp:
        zones.to_file(tmp, driver="GPKG", layer=LAYER)


def read_zones(path):
    """Target zones written by :func:`write_zones`."""
    import geopandas as gpd

    return gpd.read_file(path, layer=LAYER)
