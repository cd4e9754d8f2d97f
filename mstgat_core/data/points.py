"""Point samples: reading them, below-detection values, gridding.

Rules (documented here because they change numbers):

* **Formats, coordinates, CRS and the row filter** (``where=``, ``--where``) are read as
  :mod:`mstgat_core.data.tables` describes, the same for samples and sites: CSV, GeoPackage, GeoJSON,
  shapefile, FlatGeobuf, Parquet and GeoParquet; coordinate columns ``x``/``y``, ``x_<s>``/``y_<s>``,
  ``<p>_x``/``<p>_y``, ``easting``/``northing``, ``lon``/``lat``, ``longitude``/``latitude``; the
  CRS from the file, ``--crs``, a ``crs`` column, the suffix (``tm35fin`` -> EPSG:3067), lon/lat
  names, or lon/lat-range values (not for easting/northing); else an error asking for ``--crs``.
  Lon/lat out of range is an error.
* **Geographic coordinates are projected** (``project=True``) to the local
  UTM zone of the samples (pyproj's zone for the survey's centre, via
  GeoPandas ``estimate_utm_crs``), so that distances and grids are in
  metres; :attr:`PointSamples.note` says so in one line, and
  :attr:`PointSamples.source_crs` keeps the CRS as read.
* **Elements** are recognised by symbol, with or without unit and method parts, and converted to
  one unit per analyte (ppm for elements, % for oxides and totals); several columns of one element
  keep the better filled: :mod:`mstgat_core.data.columns` states the rules (bare names such as
  ``As``, ``In``, ``S`` included). ``elements=`` names the elements or columns to read instead.
* **Below detection** (censored) values take any of these forms:
  a flag column ``<El>_..._T`` / ``<El>_..._flag`` holding ``<``; strings such
  as ``<0.5``; negative numbers (``-0.5`` means below 0.5). The detection limit
  is the number given; when a flagged value is 0 or empty (as in the GTK till
  data) it is the smallest positive uncensored value of that element. The
  value is then replaced by half the limit (``censor="half"``), the limit
  (``"dl"``) or NaN (``"nan"``). Sentinels in :data:`SENTINELS` (-9999, ...)
  mean *missing*, not censored. A value above an upper limit (``>10000``) is read as the limit.
* **Mostly missing elements** (``max_missing``, default 0.5: more than half
  the samples missing after the rules above; an all-missing column always)
  are dropped and reported in :attr:`PointSamples.dropped`. The remaining
  missing values stay NaN in the table (gridding skips them per element);
  :func:`complete_features` fills them for methods that need every value,
  with the element's median over the samples that have it (below-detection
  values were already replaced, so a missing value is never read as low).
* **Oxides beside their element, or one element by several methods** (``Al2O3_pct`` beside
  ``Al_ppm``, ``Cr_ppm_xrf`` beside ``Cr_ppm_icp``): only the column with fewer missing values is
  kept (the element on a tie); the other is reported in :attr:`PointSamples.dropped`.
* **The import report** (:attr:`PointSamples.report`, an
  :class:`~mstgat_core.data.tables.ImportReport`) says all of the above for one file: rows kept and
  dropped, CRS and projection, element -> column and unit, conversions, censored and missing values,
  dropped elements and the columns not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from ..errors import DataError
from .columns import ColumnName, choose_per_analyte, conversion_factor, parse_column, recognise_columns
from .support import support_from_samples, typical_spacing, with_support
from .tables import (  # noqa: F401  (re-exported: the names points.py always had)
    KNOWN_SUFFIX_CRS,
    LONLAT,
    MAX_COLUMNS,
    SENTINELS,
    ImportReport,
    check_lonlat,
    find_coordinate_columns,
    looks_like_lonlat,
    project_to_utm,
    read_csv_points,
    read_point_table,
    read_raw_table,
    read_vector,
    resolve_crs,
    row_limit,
)

UNITS = ("ppm", "ppb", "ppt", "pct", "percent", "wt")
GRIDDING_METHODS = ("idw", "nearest")
CENSOR_RULES = {
    "half": "below-detection values replaced by half the detection limit",
    "dl": "below-detection values replaced by the detection limit",
    "nan": "below-detection values set to NaN",
}
_MISSING_TOKENS = {"", "nan", "na", "n/a", "n.a.", "none", "-", "null"}
OXIDE = re.compile(r"^(?P<el>[A-Z][a-z]?)\d*O\d*T?$")  # Al2O3, CaO, Fe2O3T (total iron)


@dataclass
class PointSamples:
    """Point samples with one float column per element, censored values replaced.

    Attributes
    ----------
    table : gpd.GeoDataFrame
        One float64 column per element (NaN = missing) and the point geometry.
    elements : list of str
        Element names, in column order.
    crs : object
        The samples' CRS (as on ``table``).
    censored : dict
        Element -> number of below-detection values replaced.
    censor_rule : str
        The rule applied, as its description in :data:`CENSOR_RULES` (not its key).
    units : dict
        Element -> unit of its values in ``table`` (ppm for elements, % for oxides and totals), for
        columns whose name states a unit.
    missing : dict
        Element -> number of missing values left (NaN in ``table``).
    dropped : dict
        Element (or column) -> why it was dropped (mostly missing, or a duplicate).
    note : str
        One line on what was inferred or changed (lon/lat, projection), or "".
    source_crs : object
        The coordinates' CRS as read, before any projection.
    report : ImportReport or None
        The import report (plain data: ``report.as_dict()``; lines: ``report.lines()``).
    raw : pd.DataFrame or None
        The kept rows exactly as read, every column (for outputs that repeat the input).
    rows : np.ndarray or None
        The kept rows' positions in the file (``where=`` drops some).
    """

    table: gpd.GeoDataFrame
    elements: list
    crs: object
    censored: dict
    censor_rule: str
    units: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    note: str = ""
    source_crs: object = None
    report: ImportReport | None = field(default=None, repr=False)
    raw: pd.DataFrame | None = field(default=None, repr=False)
    rows: np.ndarray | None = field(default=None, repr=False)


# ------------------------------------------------------------------------ elements


def find_element_columns(columns, elements=None) -> dict:
    """Map element -> (value column, unit or None), from the column names alone (the first column
    of each element; bare names are not read here: :func:`~mstgat_core.data.columns.recognise_columns`
    reads them from the values)."""
    recognised = {}
    for col in columns:
        p = parse_column(col)
        if p is not None and p.role == "value" and p.analyte not in recognised:
            recognised[p.analyte] = (col, p.unit)
    if elements is None:
        if not recognised:
            raise DataError("no element columns found (expected names like Cu_ppm or Au_ppb; or pass --elements)")
        return recognised
    chosen = {}
    for name in elements:
        if name in recognised:
            chosen[name] = recognised[name]
        elif name in columns:
            chosen[name] = (name, None)
        else:
            raise DataError(f"unknown element or column: {name}")
    return chosen


def find_flag_column(columns, element: str, value_col: str):
    """The qualifier column of an element (``Zr_511P_T``, ``Zr_flag``), or None. ``element`` is the
    analyte as the value column writes it; with several, the one sharing a method part is taken."""
    pattern = re.compile(rf"^{re.escape(element)}_(?:.*_)?(t|flag|flags|qualifier|q|lt)$", re.IGNORECASE)
    found = [col for col in columns if col != value_col and pattern.match(str(col))]
    if len(found) > 1:
        parts = {p.lower() for p in str(value_col).split("_")[1:]}
        sharing = [col for col in found if parts & {p.lower() for p in str(col).split("_")[1:-1]}]
        found = sharing or found
    return found[0] if found else None


# ------------------------------------------------------------------------ censoring


def parse_censored(values: pd.Series, flags: pd.Series | None, column: str):
    """Return (numbers, censored bool, detection limits) for one element column."""
    text = values.astype("string").str.strip()
    missing = values.isna() | text.str.lower().isin(_MISSING_TOKENS).fillna(True)
    less_than = text.str.startswith("<").fillna(False)
    numbers = pd.to_numeric(text.str.lstrip("<>").str.strip().where(~missing), errors="coerce")
    bad = numbers.isna() & ~missing
    if bad.any():
        example = values[bad].iloc[0]
        if bad.sum() == (~missing).sum():
            raise DataError(f"column {column} holds text, not numbers (e.g. {example!r})")
        raise DataError(f"column {column}: cannot read value {example!r} as a number")
    numbers = numbers.astype(float)
    sentinel = numbers.isin(SENTINELS)
    numbers = numbers.mask(sentinel)
    negative = numbers < 0
    flagged = flags.astype("string").str.strip().eq("<").fillna(False) if flags is not None else False
    censored = (less_than | negative | flagged) & numbers.notna() | (flagged & numbers.isna() & ~sentinel)
    limits = numbers.abs().where(censored)
    return numbers.where(~censored), censored, limits


def replace_censored(numbers, censored, limits, rule: str) -> pd.Series:
    """Fill censored entries from their detection limit with the chosen rule."""
    if rule not in CENSOR_RULES:
        raise DataError(f"unknown censor rule {rule!r} (use {', '.join(CENSOR_RULES)})")
    positive = numbers[numbers > 0]
    fallback = positive.min() if len(positive) else np.nan
    limits = limits.where(limits > 0, fallback)
    factor = {"half": 0.5, "dl": 1.0, "nan": np.nan}[rule]
    return numbers.where(~censored, limits * factor)


# ---------------------------------------------------------------------- load points


def load_points(
    path,
    x_col=None,
    y_col=None,
    crs=None,
    elements=None,
    censor="half",
    max_missing=0.5,
    project=True,
    where=None,
) -> PointSamples:
    """Read point samples from a CSV, Parquet/GeoParquet or any OGR point file (GPKG, GeoJSON, ...).

    Coordinates, CRS, element columns, units and below-detection values follow the
    rules in the module docstring. Sentinels (:data:`SENTINELS`) and empty or
    ``NA``-like entries become NaN; rows are kept unless ``where`` drops them.

    Parameters
    ----------
    path : str or path-like
        ``.csv``, ``.parquet``, or a vector file holding point geometries only.
    x_col, y_col : str, optional
        Coordinate columns of a table without geometry (default: detected; give both or neither).
    crs : str, optional
        CRS of a table's coordinate columns, or of a file that has none.
    elements : list of str, optional
        Element names or column names to read (default: every element column,
        :mod:`~mstgat_core.data.columns`).
    censor : {"half", "dl", "nan"}
        Replacement of below-detection values (see :data:`CENSOR_RULES`).
    max_missing : float
        Drop element columns with a larger share of missing values.
    project : bool
        Project geographic coordinates to the local UTM zone.
    where : str, optional
        Keep only the rows this filter selects, e.g. ``"sample_type == 'Stream Sediment'"``
        (:func:`~mstgat_core.data.tables.where_mask`).

    Returns
    -------
    PointSamples
        With its :attr:`~PointSamples.report`.

    Raises
    ------
    DataError
        If the file is missing or unreadable, a column name appears twice, the censor rule is
        unknown, coordinates, CRS or element columns cannot be found, a column has an unknown unit,
        a value is not a number, a vector file holds non-point geometries, samples lack
        coordinates, lon/lat are out of range, ``where`` is refused or keeps no row, or no element
        column is left after dropping mostly missing ones.

    Examples
    --------
    Four samples with a below-detection zinc value (``<5``: half the limit by default):

    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from mstgat_core import load_points
    >>> table = pd.DataFrame(
    ...     {"x": [500000, 501000, 500000, 501000], "y": [7000000, 7000000, 7001000, 7001000],
    ...      "Cu_ppm": [12, 30, 8, 15], "Zn_ppm": ["<5", "40", "35", "50"]}
    ... )
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     table.to_csv(Path(folder) / "samples.csv", index=False)
    ...     samples = load_points(Path(folder) / "samples.csv", crs="EPSG:32635")
    >>> samples.elements, samples.units, samples.censored
    (['Cu', 'Zn'], {'Cu': 'ppm', 'Zn': 'ppm'}, {'Cu': 0, 'Zn': 1})
    >>> samples.table["Zn"].tolist()
    [2.5, 40.0, 35.0, 50.0]
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if censor not in CENSOR_RULES:
        raise DataError(f"unknown censor rule {censor!r} (use {', '.join(CENSOR_RULES)})")
    if not 0 <= max_missing <= 1:
        raise DataError(f"max_missing must be a share in [0, 1], got {max_missing}")
    read = read_point_table(path, x_col, y_col, crs, kind="points", where=where)
    frame = read.frame
    source_crs = frame.crs
    if source_crs is not None and source_crs.is_geographic:
        check_lonlat(np.c_[frame.geometry.x, frame.geometry.y], path.name)
    note = ""
    if project:
        frame, note = project_to_utm(frame, path.name)
    attributes = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    try:  # a file with a geometry may still hold its coordinates as columns: never elements (Y is not yttrium)
        coordinates = find_coordinate_columns(attributes.columns, source=path.name)
    except DataError:
        coordinates = ()
    recognised = recognise_columns(attributes, exclude=coordinates, elements=elements)
    columns = list(attributes.columns)
    candidates, censored_counts, dropped = {}, {}, {}
    for p in recognised.chosen:
        values, n_censored = _element_values(attributes, columns, p, censor)
        share = float(np.isnan(values).mean())
        if share > max_missing or share == 1.0:
            dropped[p.column] = f"{share:.0%} missing"
            continue
        candidates[p.column] = (p, values, n_censored)
    kept, duplicates = choose_per_analyte(candidates)
    kept_names = set(kept.values())
    dropped = {_dropped_key(recognised, col, kept_names, dropped): why for col, why in dropped.items()}
    dropped.update(duplicates)
    data, units, report_columns = {}, {}, []
    for col, (p, values, n_censored) in candidates.items():
        if col not in kept:
            continue
        data[p.analyte] = values
        censored_counts[p.analyte] = n_censored
        if p.unit is not None:
            units[p.analyte] = p.target_unit
        report_columns.append(_column_entry(p))
    if not data:
        raise DataError(f"{path.name}: no element column left after dropping those more than {max_missing:.0%} missing")
    table = gpd.GeoDataFrame(data, geometry=frame.geometry.values, crs=frame.crs)
    missing = {e: int(np.isnan(v).sum()) for e, v in data.items()}
    report = ImportReport(
        source=path.name,
        kind="samples",
        format=read.format,
        rows_read=read.n_read,
        rows_kept=len(table),
        where=read.where,
        where_dropped=read.where_dropped,
        coordinates=read.coordinates,
        crs=_crs_text(source_crs),
        crs_how=read.crs_how,
        projection=note[note.index("projected to") :] if note else "",
        columns=report_columns,
        censor_rule=CENSOR_RULES[censor],
        censored=dict(censored_counts),
        missing=missing,
        dropped=dropped,
        ignored=recognised.ignored,
    )
    return PointSamples(
        table=table,
        elements=list(data),
        crs=frame.crs,
        censored=censored_counts,
        censor_rule=CENSOR_RULES[censor],
        units=units,
        missing=missing,
        dropped=dropped,
        note=note,
        source_crs=source_crs,
        report=report,
        raw=read.raw.reset_index(drop=True),
        rows=read.rows,
    )


def _element_values(attributes: pd.DataFrame, columns, p: ColumnName, censor: str):
    """(values in the analyte's unit as float64 numpy, number censored) of one column."""
    prefix = re.split(r"[_\s(]", str(p.column).strip(), maxsplit=1)[0]
    flag_col = find_flag_column(columns, prefix, p.column)
    flags = attributes[flag_col] if flag_col else None
    numbers, censored, limits = parse_censored(attributes[p.column], flags, p.column)
    values = replace_censored(numbers, censored, limits, censor).astype("float64")
    factor = conversion_factor(p.unit, p.kind)
    return (values * factor if factor != 1.0 else values).to_numpy(), int(censored.sum())


def _dropped_key(recognised, col, kept_names, dropped) -> str:
    """The analyte's name for a dropped column, unless another column of it is kept (then the column)."""
    analyte = next((p.analyte for p in recognised.chosen if p.column == col), col)
    same = [p for p in recognised.chosen if p.analyte == analyte]
    return analyte if analyte not in kept_names and len(same) == 1 else col


def _column_entry(p: ColumnName) -> dict:
    return {
        "element": p.analyte,
        "column": str(p.column),
        "unit_read": p.unit_word and p.unit,
        "unit": p.target_unit if p.unit else None,
        "factor": conversion_factor(p.unit, p.kind),
        "method": p.method,
    }


def _crs_text(crs) -> str | None:
    if crs is None:
        return None
    from pyproj import CRS

    return CRS.from_user_input(crs).to_string()


def complete_features(samples: PointSamples) -> tuple[pd.DataFrame, dict]:
    """(samples, elements) values with every missing one filled by the element's median; counts filled."""
    values = pd.DataFrame({e: samples.table[e].to_numpy() for e in samples.elements})
    filled = {e: int(values[e].isna().sum()) for e in samples.elements}
    return values.fillna(values.median()), filled


# --------------------------------------------------------------------------- naming and placing samples

ID_NAMES = ("sampleid", "sampleno", "samplenumber", "samplecode", "sampleref", "sampnum", "sampno", "sample", "id")


def sample_ids(samples: PointSamples) -> tuple[str | None, list[str]]:
    """(column, one name per sample): the samples' own identifiers where the file has them, else their rows.

    The column is the first, in the order of :data:`ID_NAMES`, whose lower-case name without separators is
    one of them (``SAMPLEID``, ``sample_id``, ``Sample No``, ``id``) and which names every kept sample once;
    without one, a sample is named by its row in the file (``row 12``, the first data row being 1)."""
    raw = samples.raw
    if raw is not None and len(raw) == len(samples.table):
        by_name = {re.sub(r"[^a-z0-9]", "", str(c).lower()): c for c in reversed(list(raw.columns))}
        for wanted in ID_NAMES:
            column = by_name.get(wanted)
            if column is None or column == getattr(raw, "_geometry_column_name", None):
                continue
            values = raw[column]
            if values.notna().all() and values.is_unique:
                return str(column), [str(v) for v in values]
    rows = samples.rows if samples.rows is not None else np.arange(len(samples.table))
    return None, [f"row {int(r) + 1}" for r in rows]


def sample_lonlat(samples: PointSamples) -> np.ndarray:
    """(samples, 2) longitude and latitude in degrees (WGS 84) of the samples; NaN without a CRS."""
    geometry = samples.table.geometry
    if samples.table.crs is None:
        return np.full((len(geometry), 2), np.nan)
    geographic = geometry.to_crs("EPSG:4326")
    return np.c_[geographic.x.to_numpy(), geographic.y.to_numpy()]


# --------------------------------------------------------------------------- gridding


def default_max_distance(xy: np.ndarray, cell_size: float) -> float:
    """Masking distance: the larger of 2 cells and 2x the typical sample spacing
    (:func:`~mstgat_core.data.support.typical_spacing`: co-located duplicates count once)."""
    return max(2.0 * cell_size, 2.0 * typical_spacing(xy))


def grid_axes(xy: np.ndarray, cell_size: float):
    """Cell-centre axes covering the samples, snapped to multiples of the cell size."""
    lo = np.floor(xy.min(axis=0) / cell_size) * cell_size
    hi = np.ceil(xy.max(axis=0) / cell_size) * cell_size
    nx, ny = np.maximum(np.round((hi - lo) / cell_size).astype(int), 1)
    x = lo[0] + (np.arange(nx) + 0.5) * cell_size
    y = lo[1] + (np.arange(ny)[::-1] + 0.5) * cell_size  # north up
    return y, x


def idw(tree: cKDTree, values: np.ndarray, targets: np.ndarray, k: int, power: float) -> np.ndarray:
    """Inverse-distance weights over the k nearest samples with a value (NaNs skipped)."""
    k = min(k, tree.n)
    dist, idx = tree.query(targets, k=k)
    dist, idx = dist.reshape(len(targets), k), idx.reshape(len(targets), k)
    neighbour_values = values[idx]  # (cells, k, E)
    weights = 1.0 / np.maximum(dist, 1e-12) ** power
    weights = np.where(np.isfinite(neighbour_values), weights[:, :, None], 0.0)
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(weights * np.nan_to_num(neighbour_values), axis=1) / total


def points_to_grid(
    samples: PointSamples, cell_size: float, method="idw", max_distance=None, power=2.0, k=12
) -> xr.Dataset:
    """Interpolate point samples onto a regular grid (no log transform applied).

    The grid covers the samples' extent, snapped to multiples of
    ``cell_size``. Each element is interpolated from the samples where it is
    not NaN: ``idw`` weights the ``k`` nearest samples by distance to the
    ``-power``, skipping NaNs (NaN if all ``k`` are NaN); ``nearest`` takes
    the nearest sample, NaN if that sample has none. Cells whose centre is
    farther than ``max_distance`` from every sample are NaN in all elements.

    Parameters
    ----------
    samples : PointSamples
        From :func:`load_points`.
    cell_size : float
        Cell side in map units of the samples' CRS.
    method : {"idw", "nearest"}
        See :data:`GRIDDING_METHODS`.
    max_distance : float, optional
        Masking distance in map units (default :func:`default_max_distance`:
        the larger of 2 cells and twice the typical sample spacing).
    power : float
        IDW exponent.
    k : int
        Samples per IDW estimate.

    Returns
    -------
    xr.Dataset
        float32 ``(y, x)`` per element on cell-centre coordinates (``y``
        descending, north up), ``units`` attrs where known, dataset attrs
        ``gridding``, ``max_distance`` and ``cell_size``; the samples' CRS
        attached as an authority code where there is one; the exact sample
        support as the ``support`` coordinate
        (:func:`~mstgat_core.support.support_from_samples`).

    Raises
    ------
    DataError
        If ``method`` is unknown or ``cell_size`` is not positive.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from mstgat_core import load_points, points_to_grid
    >>> table = pd.DataFrame({"x": [500000, 502000, 500000, 502000], "y": [7000000, 7000000, 7002000, 7002000],
    ...                       "Cu_ppm": [12, 30, 8, 15]})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     table.to_csv(Path(folder) / "samples.csv", index=False)
    ...     samples = load_points(Path(folder) / "samples.csv", crs="EPSG:32635")
    >>> grid = points_to_grid(samples, cell_size=500)
    >>> list(grid.data_vars), dict(grid.sizes), grid.attrs["gridding"], grid.rio.crs.to_string()
    (['Cu'], {'y': 4, 'x': 4}, 'idw', 'EPSG:32635')
    """
    if method not in GRIDDING_METHODS:
        raise DataError(f"unknown gridding method {method!r} (use {' or '.join(GRIDDING_METHODS)})")
    if not cell_size or cell_size <= 0:
        raise DataError("cell size must be a positive number of map units")
    geom = samples.table.geometry
    xy = np.column_stack([geom.x.values, geom.y.values])
    values = samples.table[samples.elements].to_numpy(dtype="float64")
    y, x = grid_axes(xy, cell_size)
    gx, gy = np.meshgrid(x, y)
    targets = np.column_stack([gx.ravel(), gy.ravel()])
    tree = cKDTree(xy)
    result = np.empty((len(targets), len(samples.elements)), dtype="float32")
    for start in range(0, len(targets), 200_000):  # bounded memory on large grids
        chunk = targets[start : start + 200_000]
        result[start : start + len(chunk)] = idw(tree, values, chunk, 1 if method == "nearest" else k, power)
    limit = default_max_distance(xy, cell_size) if max_distance is None else float(max_distance)
    nearest, _ = tree.query(targets, k=1)
    result[nearest > limit] = np.nan
    data = {e: (("y", "x"), result[:, i].reshape(len(y), len(x))) for i, e in enumerate(samples.elements)}
    ds = xr.Dataset(data, coords={"y": y, "x": x})
    for e in samples.elements:
        if e in samples.units:
            ds[e].attrs["units"] = samples.units[e]
    ds.attrs.update(gridding=method, max_distance=limit, cell_size=float(cell_size))
    ds = with_support(ds, support_from_samples(ds, xy))
    return ds.rio.write_crs(crs_for_raster(samples.crs)) if samples.crs is not None else ds


def sample_support(ds: xr.Dataset, samples: PointSamples) -> xr.DataArray:
    """Distance from each cell centre to its nearest sample, in map units, for a grid made by
    :func:`points_to_grid` (NaN where the grid has no value). Cells farther than the median sample
    spacing hold values interpolated between samples, not measured near them: read them with care.
    ``attrs["median_spacing"]`` is that spacing (:func:`~mstgat_core.support.typical_spacing`: co-located
    duplicates count once)."""
    geom = samples.table.geometry
    xy = np.column_stack([geom.x.values, geom.y.values])
    gx, gy = np.meshgrid(ds["x"].values, ds["y"].values)
    tree = cKDTree(xy)
    distance, _ = tree.query(np.column_stack([gx.ravel(), gy.ravel()]), k=1)
    distance = distance.reshape(gx.shape)
    has_value = np.zeros(gx.shape, dtype=bool)
    for name in ds.data_vars:
        has_value |= np.isfinite(ds[name].values)
    support = xr.DataArray(np.where(has_value, distance, np.nan), coords={"y": ds["y"], "x": ds["x"]}, dims=("y", "x"))
    units = "map units"
    if samples.crs is not None:
        from pyproj import CRS

        units = {"metre": "m"}.get(CRS.from_user_input(samples.crs).axis_info[0].unit_name, units)
    support.attrs.update(long_name="distance to the nearest sample", units=units, median_spacing=typical_spacing(xy))
    return support


def crs_for_raster(crs):
    """An authority string such as "EPSG:3067" where there is one.

    Passing a pyproj CRS through WKT can come back as an equivalent code
    (EPSG:3067 -> EPSG:25835); the authority string keeps the user's code.
    """
    from pyproj import CRS

    crs = CRS.from_user_input(crs)
    authority = crs.to_authority()
    return ":".join(authority) if authority else crs.to_wkt()
