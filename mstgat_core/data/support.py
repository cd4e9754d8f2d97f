"""Sample support: which cells of a grid were measured, and which were interpolated far from any sample.

A geochemical grid made by interpolation (IDW, kriging) holds values everywhere,
but only cells near a sample are measurements; elsewhere the surface is a smooth
ramp between distant samples. A model, a normaliser or an evaluation that reads
the ramps learns how the grid was made, not the geochemistry. Every grid therefore
carries, where it is known, a boolean coordinate ``support`` (dims ``y, x``):
True on measured ground. :func:`~mstgat_core.preprocess.valid_mask` honours it, so
the normaliser, the graph, pretraining, label-free statistics, novelty, negatives,
outlines and predictions all use supported cells only (predictions are NaN
elsewhere).

Where the support comes from (``attrs["method"]``):

* ``samples`` -- grids made from point samples (:func:`support_from_samples`):
  a cell is supported when a sample lies within the larger of the cell's
  half-diagonal and the survey's typical spacing (the median distance from a
  distinct sample location to the nearest other one). Exact.
* ``file`` -- a mask supplied with the survey (:func:`read_support`): a raster
  (supported where the value is 1/True) or polygons (supported inside),
  reprojected onto the grid.
* ``texture`` -- grids delivered without their samples (:func:`estimate_support`):
  an estimate from the texture of the interpolated surface. Near samples an
  interpolated surface is rough (each sample pulls its cell); far from them it is
  a smooth ramp. The roughness of a cell is the median over elements of
  ``|Laplacian|`` of the robust-standardised log values (4 neighbours), averaged
  in log10 over a ``window`` x ``window`` neighbourhood; Otsu's threshold splits
  it into rough (supported) and smooth cells. The split is kept only when the two
  classes are clearly apart -- the rough class's median roughness at least
  :data:`MIN_SEPARATION` (log10; a factor 2.5) above the smooth class's; otherwise
  the surface has no ramps to find and every cell with data is supported.
  On a synthetic IDW grid of a densely sampled band (samples 0.5-0.8 cells apart)
  and sparse samples elsewhere it finds the cells within 1.5 sample spacings of a
  sample with precision and recall above 0.95 (``tests/test_support.py``); where
  samples are as far apart as the cells or more, the ramps just beside the sampled
  ground are rough too and are counted as supported (precision about 0.6 at 1.5
  cells): the estimate then errs on the side of keeping cells.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from scipy import ndimage
from scipy.spatial import cKDTree

from ..errors import DataError, one_line

SUPPORT = "support"  # the coordinate's name (a reserved layer name in grid files)
SUPPORT_CHOICES = ("auto", "estimate", "none")  # besides a mask file
MIN_SEPARATION = 0.4  # log10 roughness between the classes' medians (a factor 2.5) for ramps to be found
TEXTURE_WINDOW = 5  # cells

__all__ = [
    "SUPPORT",
    "apply_support",
    "estimate_support",
    "read_support",
    "roughness",
    "support_from_samples",
    "support_mask",
    "support_summary",
    "with_support",
    "without_support",
]


# --------------------------------------------------------------------------- the coordinate


def support_mask(ds: xr.Dataset | xr.DataArray) -> np.ndarray | None:
    """The grid's support as a bool (ny, nx) array, or None when it carries none."""
    if SUPPORT not in ds.coords:
        return None
    return np.asarray(ds.coords[SUPPORT].values, dtype=bool)


def with_support(ds: xr.Dataset, support, **attrs) -> xr.Dataset:
    """``ds`` with ``support`` (bool (ny, nx) array or DataArray) as its ``support`` coordinate.

    ``attrs`` (e.g. ``method="texture"``) are stored on the coordinate; a DataArray's own attrs are kept.
    """
    values = np.asarray(getattr(support, "values", support), dtype=bool)
    shape = (ds.sizes["y"], ds.sizes["x"])
    if values.shape != shape:
        raise DataError(f"support mask {values.shape} does not match the grid {shape}")
    merged = {**dict(getattr(support, "attrs", {})), **attrs}
    coordinate = xr.DataArray(values, dims=("y", "x"), attrs=_plain_attrs(merged))
    return ds.assign_coords({SUPPORT: coordinate})


def without_support(ds):
    """``ds`` without its ``support`` coordinate (every cell with data counts)."""
    return ds.drop_vars(SUPPORT) if SUPPORT in ds.coords else ds


def _plain_attrs(attrs: dict) -> dict:
    """Attributes NetCDF can store (bools as ints, None dropped)."""
    plain = {}
    for key, value in attrs.items():
        if value is None:
            continue
        plain[key] = int(value) if isinstance(value, (bool, np.bool_)) else value
    return plain


def _data_cells(ds: xr.Dataset, elements=None) -> np.ndarray:
    names = list(elements) if elements is not None else list(ds.data_vars)
    cells = np.ones((ds.sizes["y"], ds.sizes["x"]), dtype=bool)
    for name in names:
        cells &= np.isfinite(ds[name].values)
    return cells


def support_summary(ds: xr.Dataset, elements=None) -> dict:
    """Plain-JSON summary: ``method``, ``cells_with_data``, ``supported_cells``, ``supported_share`` and,
    for an estimate, its ``threshold`` and ``separation`` (None values where the grid has no support)."""
    data = _data_cells(ds, elements)
    support = support_mask(ds)
    if support is None:
        return {
            "method": None,
            "cells_with_data": int(data.sum()),
            "supported_cells": int(data.sum()),
            "supported_share": 1.0,
        }
    attrs = dict(ds.coords[SUPPORT].attrs)
    kept = int((data & support).sum())
    summary = {
        "method": attrs.get("method"),
        "cells_with_data": int(data.sum()),
        "supported_cells": kept,
        "supported_share": kept / max(int(data.sum()), 1),
    }
    for key in ("threshold", "separation", "max_distance", "source", "note"):
        if key in attrs:
            value = attrs[key]
            summary[key] = value.item() if hasattr(value, "item") else value
    return summary


def describe(summary: dict) -> str:
    """One line for a person: how much of the grid is measured ground, and how that is known."""
    if summary["method"] is None:
        return f"sample support: unknown (all {summary['cells_with_data']:,} cells with data used)"
    how = {
        "samples": "within the sample spacing of a sample",
        "file": f"from {summary.get('source', 'a mask file')}",
        "texture": "estimated from the texture of the interpolated surface",
    }.get(summary["method"], summary["method"])
    return (
        f"sample support: {summary['supported_cells']:,} of {summary['cells_with_data']:,} cells with data "
        f"({summary['supported_share']:.0%}) measured ground, {how}"
    )


# --------------------------------------------------------------------------- from samples


COLOCATED_SHARE = 1e-5  # locations closer than this share of the survey's extent are one location


def typical_spacing(xy: np.ndarray, colocated_share: float = COLOCATED_SHARE) -> float:
    """Median distance from each distinct sample location to the nearest other one (0 for one location).

    Co-located samples (duplicates, field and laboratory repeats) are one location: distances shorter than
    ``colocated_share`` of the survey's extent (:data:`COLOCATED_SHARE`: 1 m on a 100 km survey; 0: only
    identical coordinates) are not a spacing. Surveys compiled
    from several reports repeat most locations (1,095 of the 1,392 OpenGADBench sed1 samples share theirs),
    which made the median nearest distance 0."""
    locations = np.unique(np.asarray(xy, dtype=float), axis=0)
    if len(locations) < 2:
        return 0.0
    tolerance = colocated_share * float(np.hypot(*np.ptp(locations, axis=0)))
    k = min(len(locations), 17)  # the nearest location beyond the tolerance, among 16 neighbours
    distance, _ = cKDTree(locations).query(locations, k=k)
    distance = np.where(distance[:, 1:] > tolerance, distance[:, 1:], np.inf).min(axis=1)
    distance = distance[np.isfinite(distance)]
    return float(np.median(distance)) if distance.size else 0.0


def support_from_samples(ds: xr.Dataset, xy: np.ndarray) -> xr.DataArray:
    """Exact support of a grid made from samples at ``xy`` (map units of the grid's CRS).

    A cell is supported when its centre lies within ``max(half-diagonal of a cell, typical spacing)``
    of a sample (:func:`typical_spacing`; co-located duplicates count once). The DataArray's attrs
    hold ``method="samples"``, ``max_distance`` and ``typical_spacing``.
    """
    xy = np.asarray(xy, dtype=float)
    if len(xy) == 0:
        raise DataError("support from samples needs at least one sample")
    x, y = ds["x"].values, ds["y"].values
    cell = max(abs(float(x[1] - x[0])) if len(x) > 1 else 0.0, abs(float(y[1] - y[0])) if len(y) > 1 else 0.0)
    spacing = typical_spacing(xy)
    limit = max(cell * np.sqrt(2) / 2, spacing)
    gx, gy = np.meshgrid(x, y)
    distance, _ = cKDTree(xy).query(np.column_stack([gx.ravel(), gy.ravel()]), k=1)
    supported = (distance <= limit * (1 + 1e-9)).reshape(gx.shape)
    return xr.DataArray(
        supported,
        dims=("y", "x"),
        coords={"y": y, "x": x},
        name=SUPPORT,
        attrs={"method": "samples", "max_distance": float(limit), "typical_spacing": spacing},
    )


# --------------------------------------------------------------------------- estimated from texture


def roughness(ds: xr.Dataset, elements=None) -> np.ndarray:
    """Per cell: median over elements of ``|Laplacian|`` (4 neighbours) of the robust-standardised log values.

    NaN where a cell or one of its four neighbours has no data. Values are logged after clipping to half the
    element's smallest positive value, then centred on the median and divided by the interquartile range.
    """
    names = list(elements) if elements is not None else list(ds.data_vars)
    data = _data_cells(ds, names)
    if not data.any():
        raise DataError("no cell has data for every element: the support cannot be estimated")
    layers = []
    for name in names:
        values = np.asarray(ds[name].values, dtype=np.float64)
        positive = values[data & (values > 0)]
        floor = positive.min() / 2 if len(positive) else 1e-6
        logs = np.log(np.maximum(values, floor))
        q25, q50, q75 = np.percentile(logs[data], [25, 50, 75])
        z = np.where(data, (logs - q50) / max(q75 - q25, 1e-9), np.nan)
        padded = np.pad(z, 1, constant_values=np.nan)
        laplacian = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * z
        layers.append(np.abs(laplacian))
    stack = np.stack(layers)
    out = np.full(data.shape, np.nan)
    complete = np.isfinite(stack).any(axis=0)
    out[complete] = np.nanmedian(stack[:, complete], axis=0)
    return out


def _local_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the finite values in a window around each cell (NaN where the window has none)."""
    finite = np.isfinite(values)
    total = ndimage.uniform_filter(np.where(finite, values, 0.0), window, mode="constant")
    count = ndimage.uniform_filter(finite.astype(float), window, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 1e-9, total / count, np.nan)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values`` (histogram between their 1st and 99th percentiles)."""
    lo, hi = np.percentile(values, [1, 99])
    if hi <= lo:
        return float(hi)
    counts, edges = np.histogram(np.clip(values, lo, hi), bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(counts).astype(float)
    above = below[-1] - below
    mass = np.cumsum(counts * centres)
    with np.errstate(invalid="ignore", divide="ignore"):
        between = (mass[-1] * below / below[-1] - mass) ** 2 / (below * above)
    between[(below == 0) | (above == 0)] = -np.inf
    return float(centres[int(np.argmax(between))])


def estimate_support(ds: xr.Dataset, elements=None, window: int = TEXTURE_WINDOW) -> xr.DataArray:
    """The support of an interpolated grid estimated from its texture (see the module docstring).

    Returns
    -------
    xr.DataArray
        bool ``(y, x)``: True on rough (measured) cells with data. attrs: ``method="texture"``,
        ``threshold`` and ``separation`` (log10 roughness), ``window``, ``ramps_found`` (False when the
        classes are not :data:`MIN_SEPARATION` apart: then every cell with data is supported).
    """
    window = int(window)
    if window < 1:
        raise DataError(f"the texture window must be at least 1 cell, got {window}")
    names = list(elements) if elements is not None else list(ds.data_vars)
    data = _data_cells(ds, names)
    rough = roughness(ds, names)
    smoothed = _local_mean(np.log10(np.maximum(rough, 1e-12)), window)
    scored = data & np.isfinite(smoothed)
    if scored.sum() < 10:
        raise DataError("too few cells with data to estimate the support (at least 10 needed)")
    values = smoothed[scored]
    threshold = otsu_threshold(values)
    high, low = values[values > threshold], values[values <= threshold]
    separation = float(np.median(high) - np.median(low)) if len(high) and len(low) else 0.0
    ramps = separation >= MIN_SEPARATION
    supported = data & (smoothed > threshold) if ramps else data.copy()
    return xr.DataArray(
        supported,
        dims=("y", "x"),
        coords={"y": ds["y"].values, "x": ds["x"].values},
        name=SUPPORT,
        attrs={
            "method": "texture",
            "threshold": float(threshold),
            "separation": separation,
            "window": window,
            "ramps_found": bool(ramps),
            "note": "" if ramps else "no interpolation ramps found: every cell with data is supported",
        },
    )


# --------------------------------------------------------------------------- from a file


def read_support(path, ds: xr.Dataset) -> xr.DataArray:
    """A support mask from a file, on the grid of ``ds``.

    A raster (``.tif``, ``.tiff``, ``.nc``; band 1 or the variable ``support`` / the first variable) is
    supported where it is 1 (any non-zero finite value), and is reprojected onto the grid (nearest
    neighbour); a vector file (``.gpkg``, ``.geojson``, ``.json``, ``.shp``, ``.fgb``) is supported inside
    its polygons, reprojected to the grid's CRS. A mask without a CRS is taken to be in the grid's CRS when
    the grid has none too; otherwise it is refused, as is a mask that covers no cell of the grid.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"support mask not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".gpkg", ".geojson", ".json", ".shp", ".fgb"):
        values = _support_from_polygons(path, ds)
    elif suffix in (".tif", ".tiff", ".nc"):
        values = _support_from_raster(path, ds)
    else:
        raise DataError(
            f"unknown support mask format: {path.name} (use a .tif/.nc raster or polygons in .gpkg/.geojson/.shp)"
        )
    if not values.any():
        raise DataError(f"the support mask {path.name} covers no cell of the grid (another extent or CRS?)")
    return xr.DataArray(
        values,
        dims=("y", "x"),
        coords={"y": ds["y"].values, "x": ds["x"].values},
        name=SUPPORT,
        attrs={"method": "file", "source": path.name},
    )


def _check_crs(mask_crs, grid_crs, name: str):
    if mask_crs is None and grid_crs is not None:
        raise DataError(f"the support mask {name} has no CRS (the grid is in {grid_crs.to_string()}): add one")
    if mask_crs is not None and grid_crs is None:
        raise DataError(f"the grid has no CRS, so the support mask {name} (in {mask_crs}) cannot be placed on it")


def _support_from_polygons(path: Path, ds: xr.Dataset) -> np.ndarray:
    import geopandas as gpd
    from rasterio.features import geometry_mask

    try:
        shapes = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise DataError(f"cannot read support mask {path.name}: {one_line(exc)}") from None
    shapes = shapes[shapes.geometry.notna()]
    if not shapes.geom_type.isin(["Polygon", "MultiPolygon"]).any():
        raise DataError(f"the support mask {path.name} holds no polygons")
    grid_crs = ds.rio.crs
    _check_crs(shapes.crs, grid_crs, path.name)
    if grid_crs is not None:
        shapes = shapes.to_crs(grid_crs)
    polygons = shapes[shapes.geom_type.isin(["Polygon", "MultiPolygon"])].geometry
    shape = (ds.sizes["y"], ds.sizes["x"])
    return geometry_mask(list(polygons), out_shape=shape, transform=ds.rio.transform(), invert=True)


def _support_from_raster(path: Path, ds: xr.Dataset) -> np.ndarray:
    import rioxarray
    from rasterio.enums import Resampling

    try:
        if path.suffix.lower() == ".nc":
            with xr.open_dataset(path, decode_coords="all") as opened:
                source = opened.load()
            name = SUPPORT if SUPPORT in source.variables else next(iter(source.data_vars), None)
            if name is None:
                raise DataError(f"the support mask {path.name} holds no variable")
            mask = source[name].astype("float32")
            mask = mask.rename({k: v for k, v in {"lat": "y", "lon": "x"}.items() if k in mask.dims})
            if source.rio.crs is not None and mask.rio.crs is None:
                mask = mask.rio.write_crs(source.rio.crs)
        else:
            mask = rioxarray.open_rasterio(path, masked=True).isel(band=0).load()
    except DataError:
        raise
    except Exception as exc:  # rasterio / netCDF readers raise several types
        raise DataError(f"cannot read support mask {path.name}: {one_line(exc)}") from None
    grid_crs = ds.rio.crs
    _check_crs(mask.rio.crs, grid_crs, path.name)
    mask = mask.fillna(0).astype("float32")
    template = xr.DataArray(np.zeros((ds.sizes["y"], ds.sizes["x"]), "float32"), coords={"y": ds["y"], "x": ds["x"]})
    if grid_crs is not None:
        template = template.rio.write_crs(grid_crs)
    else:
        mask = mask.rio.write_crs("EPSG:3857")  # both without CRS: the same plane; any CRS carries it
        template = template.rio.write_crs("EPSG:3857")
    try:
        placed = mask.rio.reproject_match(template, resampling=Resampling.nearest, nodata=0)
    except Exception as exc:
        raise DataError(f"cannot place the support mask {path.name} on the grid: {one_line(exc)}") from None
    values = np.asarray(placed.values, dtype=float)
    return np.isfinite(values) & (values != 0)


# --------------------------------------------------------------------------- what the CLI and dashboard call


def apply_support(ds: xr.Dataset, spec: str | Path | None = "auto", elements=None) -> xr.Dataset:
    """``ds`` with its support set by ``spec``.

    ``"auto"`` (or None): keep the support the grid carries (none if it carries none); ``"estimate"``:
    :func:`estimate_support`; ``"none"``: drop it (every cell with data counts); anything else: a mask file
    (:func:`read_support`).
    """
    spec = "auto" if spec is None else spec
    if isinstance(spec, str) and spec.lower() in SUPPORT_CHOICES:
        choice = spec.lower()
        if choice == "auto":
            return ds
        if choice == "none":
            return without_support(ds)
        return with_support(ds, estimate_support(ds, elements))
    return with_support(ds, read_support(spec, ds))
