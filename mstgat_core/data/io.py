"""Read and write grids, point samples and deposits.

A grid is an ``xarray.Dataset`` with one float32 variable per element, dims
``("y", "x")``, 1-D cell-centre coordinates, NaN outside valid cells and the CRS
attached with rioxarray.

GeoTIFF folders and zips: every ``*.tif``/``*.tiff`` file is one element, named
after its file. Two kinds of file are skipped:

* label rasters, whose name contains one of :data:`LABEL_WORDS`
  (``Li_deposits0.tif``, ``non_deposits.tif``);
* coordinate helper layers, whose element name is one of :data:`COORD_NAMES`
  (``Idw_xx.tif``, ``Idw_yy.tif``). The match is case-sensitive and the names
  are lower case, so ``Idw_Y.tif`` (yttrium) is kept.

A prefix that all remaining files share and that ends with ``_`` (``Idw_``) is
stripped from the element names.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine

from ..errors import DataError, one_line
from ..files import atomic_output
from .points import PointSamples, load_points, points_to_grid
from .preprocess import valid_mask
from .sites import load_sites
from .support import SUPPORT, support_summary, with_support, without_support
from .tables import PARQUET_SUFFIXES

__all__ = [
    "load_grid",
    "save_grid",
    "grid_info",
    "PointSamples",
    "load_points",
    "points_to_grid",
    "load_deposits",
    "deposit_cells",
    "LABEL_WORDS",
    "COORD_NAMES",
]

LABEL_WORDS = ("deposit", "mask", "label")
COORD_NAMES = {"x", "y", "xx", "yy", "lon", "lat", "longitude", "latitude"}
TIF_SUFFIXES = (".tif", ".tiff")
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb")
SITE_SUFFIXES = (".csv", *VECTOR_SUFFIXES, *PARQUET_SUFFIXES)


# --------------------------------------------------------------------------- grids


def load_grid(path, elements=None) -> xr.Dataset:
    """Load a grid from NetCDF, Zarr or GeoTIFF (a folder, a zip or one multi-band file).

    The format is chosen by name: ``*.nc`` NetCDF, ``*.zarr`` Zarr store, any
    other folder a GeoTIFF folder (one element per file, see the module
    docstring), ``*.zip`` a zip whose GeoTIFFs sit in one folder, ``*.tif``/``*.tiff``
    one file whose bands are the elements (named by band description, else
    ``band_<i>``; a single undescribed band takes the file's stem). NetCDF and
    Zarr keep only 2-D variables with dims exactly ``("y", "x")`` (``lat``/``lon``
    dims are renamed to ``y``/``x``) and drop other coordinates. The result is
    loaded into memory.

    Parameters
    ----------
    path : str or path-like
        The file, store or folder.
    elements : sequence of str, optional
        Keep only these variables, in this order (default: all).

    Returns
    -------
    xr.Dataset
        float32 ``(y, x)`` variables on cell-centre coordinates; nodata and
        fill values are NaN; the CRS is attached (rioxarray) when the source
        has one; GeoTIFF band units go to ``attrs["units"]``.

    Raises
    ------
    DataError
        If the path does not exist, the format is unknown or unreadable,
        GeoTIFF layers are not on one grid (shape, CRS, transform), a zip does
        not hold its layers in exactly one folder, an element is unknown, no
        layer is found, or a layer has no finite value.

    Examples
    --------
    The bundled demo grid (:data:`~mstgat_core.paths.DEMO_GRID`), three of its 39 elements:

    >>> from mstgat_core import load_grid
    >>> from mstgat_core.paths import DEMO_GRID
    >>> grid = load_grid(DEMO_GRID, elements=["Li", "Be", "Nb"])
    >>> list(grid.data_vars), dict(grid.sizes)
    (['Li', 'Be', 'Nb'], {'y': 163, 'x': 141})
    >>> grid.rio.crs.to_string(), grid["Li"].dtype
    ('EPSG:32650', dtype('float32'))
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    name = path.name.lower()
    if name.endswith(".nc"):
        ds = _read_netcdf(path)
    elif name.endswith(".zarr"):
        ds = _read_zarr(path)
    elif path.is_dir():
        ds = _read_tif_folder(path)
    elif name.endswith(".zip"):
        ds = _read_tif_zip(path)
    elif name.endswith(TIF_SUFFIXES):
        ds = _read_multiband_tif(path)
    else:
        raise DataError(f"unknown grid format: {path.name} (use .nc, .zarr, .tif, a folder or a .zip of GeoTIFFs)")
    ds = _select_elements(ds, elements)
    _check_not_empty(ds, path)
    return ds


def _select_elements(ds: xr.Dataset, elements) -> xr.Dataset:
    if elements is None:
        return ds
    unknown = [e for e in elements if e not in ds.data_vars]
    if unknown:
        raise DataError(f"unknown element(s): {', '.join(unknown)} (available: {', '.join(ds.data_vars)})")
    return ds[list(elements)]


def _check_not_empty(ds: xr.Dataset, path: Path) -> None:
    if not ds.data_vars:
        raise DataError(f"no element layers found in {path}")
    for name, var in ds.data_vars.items():
        if not np.isfinite(var.values).any():
            raise DataError(f"layer {name} in {path.name} has no valid values (all NaN/nodata)")


def memory_budget() -> int:
    """Bytes a grid may take in memory: ``MSTGAT_MEMORY_BUDGET`` (bytes), else half the machine's memory."""
    try:
        return int(float(os.environ["MSTGAT_MEMORY_BUDGET"]))
    except (KeyError, ValueError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().total // 2)
    except ImportError:  # pragma: no cover
        return 8 * 1024**3


def check_grid_size(name: str, shape, layers: int) -> None:
    """Refuse, before reading, a grid whose float32 layers would not fit in :func:`memory_budget`."""
    ny, nx = (int(n) for n in shape)
    need = ny * nx * int(layers) * 4
    budget = memory_budget()
    if need > budget:
        raise DataError(
            f"{name} declares {ny:,} x {nx:,} cells x {layers} layer(s) = {need / 1024**3:,.1f} GiB as float32; "
            f"the memory budget is {budget / 1024**3:,.1f} GiB (MSTGAT_MEMORY_BUDGET): cut or tile the grid first"
        )


def _check_declared(ds: xr.Dataset, path: Path) -> None:
    dims = {"lat": "y", "lon": "x"}
    grids = [v for v in ds.data_vars.values() if tuple(dims.get(d, d) for d in v.dims) == ("y", "x")]
    if grids:
        check_grid_size(path.name, grids[0].shape, len(grids))


def _read_netcdf(path: Path) -> xr.Dataset:
    try:
        with xr.open_dataset(path, decode_coords="all") as ds:
            _check_declared(ds, path)
            ds = ds.load()
    except DataError:
        raise
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read NetCDF {path.name}: {one_line(exc)}") from None
    return _tidy_dataset(ds)


def _read_zarr(path: Path) -> xr.Dataset:
    try:
        ds = xr.open_zarr(path, decode_coords="all", consolidated=False)
        _check_declared(ds, path)
        ds = ds.load()
    except DataError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read Zarr {path.name}: {one_line(exc)}") from None
    return _tidy_dataset(ds)


def _tidy_dataset(ds: xr.Dataset) -> xr.Dataset:
    """Keep 2-D (y, x) variables as float32, the CRS, and a ``support`` layer as the support coordinate."""
    crs = ds.rio.crs
    ds = ds.rename({k: v for k, v in {"lat": "y", "lon": "x"}.items() if k in ds.dims})
    support = ds[SUPPORT] if SUPPORT in ds.variables and ds[SUPPORT].dims == ("y", "x") else None
    keep = [n for n, v in ds.data_vars.items() if v.dims == ("y", "x") and n != SUPPORT]
    out = xr.Dataset({n: ds[n].astype("float32") for n in keep}, attrs=ds.attrs)
    out = out.drop_vars([c for c in out.coords if c not in ("x", "y")])
    for n in keep:
        out[n].attrs = {k: v for k, v in ds[n].attrs.items() if k != "grid_mapping"}
        out[n].encoding = {}
    if crs is not None:
        out = out.rio.write_crs(crs)
    return _support_layer_to_coordinate(out, support)


def _support_layer_to_coordinate(ds: xr.Dataset, support) -> xr.Dataset:
    """A layer named ``support`` (1 = measured ground) becomes the grid's support coordinate."""
    if support is None:
        return ds
    values = np.asarray(support.values, dtype=float)
    attrs = {k: v for k, v in support.attrs.items() if k not in ("grid_mapping", "dtype")}
    return with_support(ds, np.isfinite(values) & (values != 0), **attrs)


def _element_name(stem: str, prefix: str) -> str:
    return stem[len(prefix) :] if prefix and stem.startswith(prefix) else stem


def _layer_files(folder: Path) -> dict[str, Path]:
    """Map element name -> GeoTIFF file, following the rule in the module docstring."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in TIF_SUFFIXES and p.is_file())
    files = [p for p in files if not any(w in p.stem.lower() for w in LABEL_WORDS)]
    prefix = os.path.commonprefix([p.stem for p in files]) if len(files) > 1 else ""
    prefix = prefix[: prefix.rfind("_") + 1]
    layers = {}
    for p in files:
        name = _element_name(p.stem, prefix)
        if name not in COORD_NAMES:
            layers[name] = p
    return layers


def _read_band(src, band: int) -> np.ndarray:
    values = src.read(band, masked=True).astype("float32")
    return values.filled(np.nan)


def _grid_coords(transform: Affine, shape) -> dict:
    ny, nx = shape
    x = transform.c + transform.a * (np.arange(nx) + 0.5)
    y = transform.f + transform.e * (np.arange(ny) + 0.5)
    return {"y": y, "x": x}


def _grid_key(src) -> tuple:
    return src.shape, src.crs, src.transform


def _same_grid(a: tuple, b: tuple) -> bool:
    (shape_a, crs_a, tr_a), (shape_b, crs_b, tr_b) = a, b
    tolerance = 1e-6 * abs(tr_a.a)
    return shape_a == shape_b and crs_a == crs_b and tr_a.almost_equals(tr_b, precision=tolerance)


def _read_tif_folder(folder: Path) -> xr.Dataset:
    layers = _layer_files(folder)
    if not layers:
        raise DataError(f"no GeoTIFF element layers in folder {folder}")
    data, ref = {}, None
    for name, file in layers.items():
        with _open_raster(file) as src:
            if ref is None:
                check_grid_size(folder.name, src.shape, len(layers))
                ref = _grid_key(src)
                coords, crs = _grid_coords(src.transform, src.shape), src.crs
            elif not _same_grid(ref, _grid_key(src)):
                raise DataError(f"{file.name} is not on the same grid as {layers[next(iter(layers))].name}")
            data[name] = _layer(src, 1)
    return _make_dataset(data, coords, crs)


@contextmanager
def _open_raster(path: Path):
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"cannot read raster {Path(path).name}: {one_line(exc)}") from None
    with src:
        yield src


def _layer(src, band: int) -> xr.DataArray:
    attrs = {}
    units = src.units[band - 1] if src.units else None
    if units:
        attrs["units"] = units
    return xr.DataArray(_read_band(src, band), dims=("y", "x"), attrs=attrs)


def _make_dataset(data: dict, coords: dict, crs) -> xr.Dataset:
    support = data.pop(SUPPORT, None)
    ds = xr.Dataset(data, coords=coords)
    ds = ds.rio.write_crs(crs) if crs else ds
    return _support_layer_to_coordinate(ds, support)


def _read_tif_zip(path: Path) -> xr.Dataset:
    from .archives import extract_members

    with tempfile.TemporaryDirectory() as tmp:
        extracted = extract_members(path, tmp, TIF_SUFFIXES)
        folders = {p.parent for p in extracted}
        if len(folders) != 1:
            raise DataError(f"{path.name} must hold GeoTIFF layers in exactly one folder")
        return _read_tif_folder(folders.pop()).load()


def _read_multiband_tif(path: Path) -> xr.Dataset:
    with _open_raster(path) as src:
        check_grid_size(path.name, src.shape, src.count)
        names = [d or f"band_{i + 1}" for i, d in enumerate(src.descriptions)]
        if len(names) == 1 and not src.descriptions[0]:
            names = [path.stem]
        data = {n: _layer(src, i + 1) for i, n in enumerate(names)}
        return _make_dataset(data, _grid_coords(src.transform, src.shape), src.crs)


def save_grid(ds: xr.Dataset, path) -> None:
    """Write a grid to NetCDF, Zarr or a multi-band GeoTIFF, atomically.

    The output is written to a temporary path beside ``path`` and renamed
    (:func:`~mstgat_core.files.atomic_output`): a failure leaves any earlier
    ``path`` as it was and no partial file.

    Parameters
    ----------
    ds : xr.Dataset
        A grid of ``(y, x)`` variables; its rioxarray CRS, if any, is written.
    path : str or path-like
        The output; its suffix picks the format: ``.nc`` (netCDF4, zlib level
        4, float32), ``.zarr`` (unconsolidated, source encodings dropped),
        ``.tif``/``.tiff`` (one float32 band per variable, in order, named by
        band description, units kept, nodata NaN, deflate). GeoTIFF needs
        regularly spaced coordinates.

    Raises
    ------
    DataError
        If the suffix is none of these or the output folder does not exist.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from mstgat_core import load_grid, make_scenario, save_grid
    >>> grid = make_scenario(n_elements=5, seed=0).grid
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_grid(grid, Path(folder) / "survey.nc")
    ...     again = load_grid(Path(folder) / "survey.nc")
    >>> list(again.data_vars), again.rio.crs == grid.rio.crs, bool(again.equals(grid))
    (['Li', 'Be', 'Nb', 'Sn', 'W'], True, True)
    """
    path = Path(path)
    writers = {".nc": _write_netcdf, ".zarr": _write_zarr, ".tif": _write_tif, ".tiff": _write_tif}
    writer = writers.get(path.suffix.lower())
    if writer is None:
        raise DataError(f"unknown output format: {path.name} (use .nc, .zarr or .tif)")
    with atomic_output(path) as tmp:
        writer(ds, tmp)


def _write_netcdf(ds: xr.Dataset, path: Path) -> None:
    if ds.rio.crs is not None:
        ds = ds.rio.write_crs(ds.rio.crs)  # makes sure every variable points at spatial_ref
    encoding = {
        n: {
            "zlib": True,
            "complevel": 4,
            "dtype": "float32",
            "grid_mapping": ds[n].encoding.get("grid_mapping", ds[n].attrs.get("grid_mapping")),
        }
        for n in ds.data_vars
    }
    encoding = {n: {k: v for k, v in e.items() if v is not None} for n, e in encoding.items()}
    ds.to_netcdf(path, encoding=encoding, engine="netcdf4")


def _write_zarr(ds: xr.Dataset, path: Path) -> None:
    ds = ds.copy()
    for n in ds.variables:
        ds[n].encoding = {}
    ds.to_zarr(path, mode="w", consolidated=False)


def _write_tif(ds: xr.Dataset, path: Path) -> None:
    if SUPPORT in ds.coords:  # a band of its own, read back as the coordinate
        support = np.asarray(ds.coords[SUPPORT].values, dtype="float32")
        ds = ds.drop_vars(SUPPORT).assign({SUPPORT: (("y", "x"), support)})
    names = list(ds.data_vars)
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    profile = dict(
        driver="GTiff",
        width=nx,
        height=ny,
        count=len(names),
        dtype="float32",
        crs=ds.rio.crs,
        transform=ds.rio.transform(),
        nodata=np.nan,
        compress="deflate",
    )
    with rasterio.open(path, "w", **profile) as dst:
        for i, n in enumerate(names, start=1):
            dst.write(ds[n].values.astype("float32"), i)
            dst.set_band_description(i, n)
            if ds[n].attrs.get("units"):
                dst.set_band_unit(i, ds[n].attrs["units"])


def grid_info(ds: xr.Dataset) -> dict:
    """Plain-JSON summary of a grid (what ``mstgat info`` prints).

    Parameters
    ----------
    ds : xr.Dataset
        A grid with ``y``/``x`` coordinates.

    Returns
    -------
    dict
        ``elements`` (variable names), ``shape`` ``[ny, nx]``, ``crs`` (string
        or None), ``cell_size`` ``[abs dx, abs dy]`` in map units,
        ``valid_cells`` (cells where every variable is finite, on supported
        ground: see :func:`~mstgat_core.preprocess.valid_mask`), ``nan_count``
        (element -> NaN cells) and ``support``
        (:func:`~mstgat_core.support.support_summary`).

    Examples
    --------
    >>> from mstgat_core import grid_info, load_grid
    >>> from mstgat_core.paths import DEMO_GRID
    >>> info = grid_info(load_grid(DEMO_GRID))
    >>> len(info["elements"]), info["shape"], info["crs"], info["valid_cells"]
    (39, [163, 141], 'EPSG:32650', 7533)
    """
    transform = ds.rio.transform()
    crs = ds.rio.crs
    return {
        "elements": list(ds.data_vars),
        "shape": [int(ds.sizes["y"]), int(ds.sizes["x"])],
        "crs": crs.to_string() if crs else None,
        "cell_size": [abs(float(transform.a)), abs(float(transform.e))],
        "valid_cells": int(valid_mask(ds).sum()),
        "nan_count": {n: int(np.isnan(ds[n].values).sum()) for n in ds.data_vars},
        "support": support_summary(ds),
    }


# ------------------------------------------------------------------------ deposits


def load_deposits(
    path,
    crs=None,
    x_col=None,
    y_col=None,
    *,
    default_crs=None,
    commodity=None,
    commodity_columns=None,
    site_type=None,
    status=None,
    where=None,
) -> gpd.GeoDataFrame:
    """Read known deposits (sites) as points from a table, a vector file or a raster mask.

    Tables and vector files are read like samples (:mod:`~mstgat_core.data.tables`: formats,
    coordinate columns, CRS, lon/lat) and chosen by commodity, site type and status
    (:mod:`~mstgat_core.data.sites`).

    Parameters
    ----------
    path : str or path-like
        ``.csv`` or ``.parquet`` (coordinate columns or a geometry; other columns kept), a vector
        file (``.gpkg``, ``.geojson``, ``.json``, ``.shp``, ``.fgb``; non-point geometries become one
        representative point each) or a ``.tif``/``.tiff`` mask (one point at the centre of each
        cell of band 1 equal to 1, nodata counting as 0; columns ``row``, ``col``; the raster's CRS).
    crs : str, optional
        The CRS of the coordinates (``--crs``); for a vector file used only where it has none.
        Ignored for a raster.
    x_col, y_col : str, optional
        Coordinate columns (default: detected).
    default_crs : optional
        The CRS taken when the file and its column names give none (the grid's).
    commodity, commodity_columns, site_type, status : optional
        Choose sites (:func:`~mstgat_core.data.sites.select_sites`).
    where : str, optional
        A row filter (:func:`~mstgat_core.data.tables.where_mask`).

    Returns
    -------
    gpd.GeoDataFrame
        Point geometries with their CRS; ``attrs["import_report"]`` says how they were read and chosen.

    Raises
    ------
    DataError
        If the file is missing, unreadable or of an unknown format, its coordinates or CRS cannot
        be found, or a filter chooses no site.

    Examples
    --------
    The demo's 23 known lithium deposits (:data:`~mstgat_core.paths.DEMO_DEPOSITS`, a CSV with a ``crs`` column):

    >>> from mstgat_core import load_deposits
    >>> from mstgat_core.paths import DEMO_DEPOSITS
    >>> deposits = load_deposits(DEMO_DEPOSITS)
    >>> len(deposits), deposits.crs.to_string(), deposits.geom_type.unique().tolist()
    (23, 'EPSG:32650', ['Point'])
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in SITE_SUFFIXES:
        return load_sites(
            path,
            crs=crs,
            x_col=x_col,
            y_col=y_col,
            default_crs=default_crs,
            commodity=commodity,
            commodity_columns=commodity_columns,
            site_type=site_type,
            status=status,
            where=where,
        )
    if suffix in TIF_SUFFIXES:
        if commodity or site_type or status or where:
            raise DataError(f"{path.name} is a raster mask: it has no columns to choose sites by")
        return _deposits_from_raster(path)
    raise DataError(f"unknown deposits format: {path.name} (use .csv, .parquet, .gpkg, .geojson, .shp or a .tif mask)")


def _deposits_from_raster(path) -> gpd.GeoDataFrame:
    with _open_raster(path) as src:
        values = src.read(1, masked=True).filled(0)
        rows, cols = np.nonzero(values == 1)
        xs, ys = rasterio.transform.xy(src.transform, rows, cols, offset="center")
        crs = src.crs
    table = pd.DataFrame({"row": rows, "col": cols})
    return gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(xs, ys), crs=crs)


def deposit_cells(grid: xr.Dataset, deposits: gpd.GeoDataFrame) -> xr.DataArray:
    """Mark the grid cells that hold at least one deposit.

    Deposits are reprojected to the grid's CRS when both have one; otherwise
    their coordinates are taken to be in the grid's. Each point goes to the
    cell containing it (through the grid's affine transform). Deposits outside
    the grid extent (``n_outside``) or on invalid cells (``n_masked``, see
    :func:`~mstgat_core.preprocess.valid_mask`) are dropped; the counts are
    kept in the attrs.

    Parameters
    ----------
    grid : xr.Dataset
        The survey grid.
    deposits : gpd.GeoDataFrame
        Point deposits (see :func:`load_deposits`).

    Returns
    -------
    xr.DataArray
        bool ``(y, x)`` named ``deposits`` on the grid's coordinates (no CRS
        attached), attrs ``n_deposits``, ``n_inside``, ``n_outside``,
        ``n_masked`` (``n_unsupported`` of them on interpolated ground outside
        the grid's sample support), ``n_cells`` and a one-line ``summary``.

    Raises
    ------
    DataError
        If no deposit falls on a valid cell.

    Examples
    --------
    >>> from mstgat_core import deposit_cells, load_deposits, load_grid
    >>> from mstgat_core.paths import DEMO_DEPOSITS, DEMO_GRID
    >>> cells = deposit_cells(load_grid(DEMO_GRID), load_deposits(DEMO_DEPOSITS))
    >>> cells.attrs["summary"]
    '23 of 23 deposits in 21 cells; 0 outside the grid, 0 on invalid cells'
    >>> cells.dims, cells.dtype, int(cells.sum())
    (('y', 'x'), dtype('bool'), 21)
    """
    if grid.rio.crs is not None and deposits.crs is not None:
        deposits = deposits.to_crs(grid.rio.crs)
    ny, nx = grid.sizes["y"], grid.sizes["x"]
    rows, cols = rasterio.transform.rowcol(
        grid.rio.transform(), deposits.geometry.x.values, deposits.geometry.y.values, op=np.floor
    )
    rows, cols = np.asarray(rows, dtype=int), np.asarray(cols, dtype=int)
    inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
    valid = valid_mask(grid)
    unsupported = valid_mask(without_support(grid)) & ~valid  # data, but interpolated far from any sample
    on_valid = np.zeros_like(inside)
    on_valid[inside] = valid[rows[inside], cols[inside]]
    on_unsupported = np.zeros_like(inside)
    on_unsupported[inside] = unsupported[rows[inside], cols[inside]]
    marks = np.zeros((ny, nx), dtype=bool)
    marks[rows[on_valid], cols[on_valid]] = True
    attrs = {
        "n_deposits": int(len(deposits)),
        "n_inside": int(on_valid.sum()),
        "n_outside": int((~inside).sum()),
        "n_masked": int((inside & ~on_valid).sum()),
        "n_unsupported": int(on_unsupported.sum()),
        "n_cells": int(marks.sum()),
    }
    if attrs["n_inside"] == 0:
        where = (
            f" ({attrs['n_unsupported']} lie on interpolated ground outside the sample support)"
            if attrs["n_unsupported"]
            else ""
        )
        raise DataError(f"none of the {attrs['n_deposits']} deposits falls on a valid cell of the grid{where}")
    attrs["summary"] = (
        f"{attrs['n_inside']} of {attrs['n_deposits']} deposits in {attrs['n_cells']} cells; "
        f"{attrs['n_outside']} outside the grid, {attrs['n_masked']} on invalid cells"
        + (f" ({attrs['n_unsupported']} of them outside the sample support)" if attrs["n_unsupported"] else "")
    )
    return xr.DataArray(marks, dims=("y", "x"), coords={"y": grid["y"], "x": grid["x"]}, name="deposits", attrs=attrs)
