"""Point samples: reading CSV/vector files, below-detection values, gridding.

Rules (documented here because they change numbers):

* **Coordinates** are found in this order (case-insensitive): ``x``/``y``,
  ``x_<s>``/``y_<s>`` (e.g. ``x_tm35fin``), ``easting``/``northing``,
  ``lon``/``lat``, ``longitude``/``latitude``. The CRS of a vector file is its
  own (``crs=`` only where it has none). For a CSV it is, first found: the
  ``crs=`` argument, a ``crs`` column, the coordinate suffix
  (:data:`KNOWN_SUFFIX_CRS`, e.g. ``tm35fin`` -> EPSG:3067), EPSG:4326 for
  columns named lon/lat, or EPSG:4326 for columns named ``x``/``y`` whose
  values all lie in [-180, 180] x [-90, 90] (a projected survey that small
  would span less than 400 m); otherwise a :class:`DataError` asks for
  ``--crs``. Lon/lat out of range is an error.
* **Geographic coordinates are projected** (``project=True``) to the local
  UTM zone of the samples (pyproj's zone for the survey's centre, via
  GeoPandas ``estimate_utm_crs``), so that distances and grids are in
  metres; :attr:`PointSamples.note` says so in one line, and
  :attr:`PointSamples.source_crs` keeps the CRS as read.
* **Elements** are columns named ``<El>_<unit>`` or ``<El>_<unit>_<anything>``
  with a unit in :data:`UNITS` (``Zr_ppm_511`` -> element ``Zr``, unit ``ppm``),
  or the names given in ``elements=``.
* **Below detection** (censored) values take any of these forms:
  a flag column ``<El>_..._T`` / ``<El>_..._flag`` holding ``<``; strings such
  as ``<0.5``; negative numbers (``-0.5`` means below 0.5). The detection limit
  is the number given; when a flagged value is 0 or empty (as in the GTK till
  data) it is the smallest positive uncensored value of that element. The
  value is then replaced by half the limit (``censor="half"``), the limit
  (``"dl"``) or NaN (``"nan"``). Sentinels in :data:`SENTINELS` (-9999, ...)
  mean *missing*, not censored.
* **Mostly missing elements** (``max_missing``, default 0.5: more than half
  the samples missing after the rules above; an all-missing column always)
  are dropped and reported in :attr:`PointSamples.dropped`. The remaining
  missing values stay NaN in the table (gridding skips them per element);
  :func:`complete_features` fills them for methods that need every value,
  with the element's median over the samples that have it (below-detection
  values were already replaced, so a missing value is never read as low).
* **Oxides beside their element** (``Al2O3_pct`` or ``Fe2O3T_pct`` beside
  ``Al_ppm`` or ``Fe_ppm``): only the
  column with fewer missing values is kept (the element on a tie); the other
  is reported in :attr:`PointSamples.dropped`. Units do not matter to the
  model (CLR and per-element robust scaling remove a constant factor).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from ..errors import DataError, one_line
from .support import support_from_samples, typical_spacing, with_support

UNITS = ("ppm", "ppb", "ppt", "pct", "percent", "wt")
SENTINELS = (-9999.0, -999.0, -99999.0, -9999.99)
KNOWN_SUFFIX_CRS = {"tm35fin": "EPSG:3067", "ykj": "EPSG:2393"}
GRIDDING_METHODS = ("idw", "nearest")
CENSOR_RULES = {
    "half": "below-detection values replaced by half the detection limit",
    "dl": "below-detection values replaced by the detection limit",
    "nan": "below-detection values set to NaN",
}
_ELEMENT_COLUMN = re.compile(rf"^(?P<el>[A-Za-z][A-Za-z0-9]*?)_(?P<unit>{'|'.join(UNITS)})(?:_.*)?$", re.IGNORECASE)
_MISSING_TOKENS = {"", "nan", "na", "n/a", "n.a.", "none", "-", "null"}


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
        Element -> unit, for columns named ``<El>_<unit>``.
    missing : dict
        Element -> number of missing values left (NaN in ``table``).
    dropped : dict
        Element -> why it was dropped (mostly missing, or an oxide duplicate).
    note : str
        One line on what was inferred or changed (lon/lat, projection), or "".
    source_crs : object
        The coordinates' CRS as read, before any projection.
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


# ---------------------------------------------------------------- coordinates, CRS


def find_coordinate_columns(columns, x_col=None, y_col=None, source="table"):
    """Return the (x, y) column names, autodetected unless given."""
    columns = list(columns)
    if x_col or y_col:
        missing = [c for c in (x_col, y_col) if c and c not in columns]
        if missing or not (x_col and y_col):
            raise DataError(f"{source}: coordinate columns not found: {x_col!r}, {y_col!r}")
        return x_col, y_col
    lower = {c.lower(): c for c in columns}
    for xname, yname in (("x", "y"), ("easting", "northing"), ("lon", "lat"), ("longitude", "latitude")):
        if xname in lower and yname in lower:
            return lower[xname], lower[yname]
        if xname == "x":
            for low, col in lower.items():
                if low.startswith("x_") and "y_" + low[2:] in lower:
                    return col, lower["y_" + low[2:]]
    raise DataError(
        f"{source}: no coordinate columns found "
        "(expected x/y, x_*/y_*, easting/northing or lon/lat; use --x-col/--y-col)"
    )


LONLAT = "EPSG:4326"


def looks_like_lonlat(xy: np.ndarray) -> bool:
    """Whether every (x, y) pair lies in [-180, 180] x [-90, 90]."""
    xy = np.asarray(xy, dtype=float)
    return bool(len(xy)) and bool(np.all(np.abs(xy[:, 0]) <= 180) and np.all(np.abs(xy[:, 1]) <= 90))


def resolve_crs(crs, x_col, y_col, source="table", xy=None):
    """CRS given, or inferred from the coordinate column names, or from lon/lat-range values ``xy``."""
    if crs:
        return crs
    low = x_col.lower()
    if low in ("lon", "longitude"):
        return LONLAT
    suffix = low.split("_", 1)[1] if "_" in low else ""
    if suffix in KNOWN_SUFFIX_CRS:
        return KNOWN_SUFFIX_CRS[suffix]
    if low == "x" and xy is not None and looks_like_lonlat(xy):  # not easting/northing: those are projected
        return LONLAT
    raise DataError(f"{source}: coordinate reference system unknown; give it with --crs (e.g. EPSG:32650)")


def check_lonlat(xy: np.ndarray, source="table") -> None:
    """DataError unless every longitude is in [-180, 180] and every latitude in [-90, 90]."""
    xy = np.asarray(xy, dtype=float)
    bad = (np.abs(xy[:, 0]) > 180) | (np.abs(xy[:, 1]) > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: {int(bad.sum())} sample(s) with longitude/latitude out of range "
            f"(first: {xy[i, 0]:g}, {xy[i, 1]:g}); are the coordinates projected? give --crs"
        )


def project_to_utm(frame: gpd.GeoDataFrame, source="table") -> tuple[gpd.GeoDataFrame, str]:
    """A geographic frame in the UTM zone of its centre, and the one-line note; others unchanged."""
    if frame.crs is None or not frame.crs.is_geographic:
        return frame, ""
    xy = np.c_[frame.geometry.x, frame.geometry.y]
    check_lonlat(xy, source)
    utm = frame.estimate_utm_crs()
    projected = frame.to_crs(utm)
    name = utm.name if utm.name else utm.to_string()
    return projected, f"coordinates in {frame.crs.to_string()} (lon/lat) projected to {utm.to_string()} ({name})"


# ------------------------------------------------------------------------ elements


def find_element_columns(columns, elements=None) -> dict:
    """Map element -> (value column, unit or None)."""
    recognised = {}
    for col in columns:
        m = _ELEMENT_COLUMN.match(str(col))
        if m and m["el"] not in recognised:
            recognised[m["el"]] = (col, m["unit"].lower())
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
    """The qualifier column of an element (``Zr_511P_T``, ``Zr_flag``), or None."""
    pattern = re.compile(rf"^{re.escape(element)}_(?:.*_)?(t|flag|flags|qualifier|q|lt)$", re.IGNORECASE)
    for col in columns:
        if col != value_col and pattern.match(str(col)):
            return col
    return None


# ------------------------------------------------------------------------ censoring


def parse_censored(values: pd.Series, flags: pd.Series | None, column: str):
    """Return (numbers, censored bool, detection limits) for one element column."""
    text = values.astype("string").str.strip()
    missing = values.isna() | text.str.lower().isin(_MISSING_TOKENS).fillna(True)
    less_than = text.str.startswith("<").fillna(False)
    numbers = pd.to_numeric(text.str.lstrip("<").str.strip().where(~missing), errors="coerce")
    bad = numbers.isna() & ~missing
    if bad.any():
        example = values[bad].iloc[0]
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


OXIDE = re.compile(r"^(?P<el>[A-Z][a-z]?)\d*O\d*T?$")  # Al2O3, CaO, Fe2O3T (total iron)


def load_points(
    path, x_col=None, y_col=None, crs=None, elements=None, censor="half", max_missing=0.5, project=True
) -> PointSamples:
    """Read point samples from a CSV or any OGR point file (GPKG, GeoJSON, ...).

    Coordinates, CRS, element columns and below-detection values follow the
    rules in the module docstring. Sentinels (:data:`SENTINELS`) and empty or
    ``NA``-like entries become NaN; rows are kept.

    Parameters
    ----------
    path : str or path-like
        ``.csv``, or a vector file holding point geometries only.
    x_col, y_col : str, optional
        CSV coordinate columns (default: detected; give both or neither).
    crs : str, optional
        CRS of a CSV's coordinates, or of a vector file that has none.
    elements : list of str, optional
        Element names or column names to read (default: every ``<El>_<unit>``
        column).
    censor : {"half", "dl", "nan"}
        Replacement of below-detection values (see :data:`CENSOR_RULES`).
    max_missing : float
        Drop element columns with a larger share of missing values.
    project : bool
        Project geographic coordinates to the local UTM zone.

    Returns
    -------
    PointSamples

    Raises
    ------
    DataError
        If the file is missing or unreadable, the censor rule is unknown,
        coordinates, CRS or element columns cannot be found, a value is not a
        number, a vector file holds non-point geometries, samples lack
        coordinates, lon/lat are out of range, or no element column is left
        after dropping mostly missing ones.

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
    frame = _read_point_table(path, x_col, y_col, crs)
    source_crs = frame.crs
    if source_crs is not None and source_crs.is_geographic:
        check_lonlat(np.c_[frame.geometry.x, frame.geometry.y], path.name)
    note = ""
    if project:
        frame, note = project_to_utm(frame, path.name)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    chosen = find_element_columns(columns, elements)
    data, counts, dropped = {}, {}, {}
    for element, (col, _unit) in chosen.items():
        flag_col = find_flag_column(columns, element, col)
        numbers, censored, limits = parse_censored(frame[col], frame[flag_col] if flag_col else None, col)
        values = replace_censored(numbers, censored, limits, censor).astype("float64")
        share = float(values.isna().mean())
        if share > max_missing or share == 1.0:
            dropped[element] = f"{share:.0%} missing"
            continue
        data[element] = values.values
        counts[element] = int(censored.sum())
    for element in list(data):
        match = OXIDE.match(element)
        if match and match["el"] in data:
            base = match["el"]
            oxide_missing, base_missing = np.isnan(data[element]).sum(), np.isnan(data[base]).sum()
            loser, winner = (element, base) if oxide_missing >= base_missing else (base, element)
            dropped[loser] = f"duplicate of {winner} (more missing values)"
            del data[loser], counts[loser]
    if not data:
        raise DataError(f"{path.name}: no element column left after dropping those more than {max_missing:.0%} missing")
    table = gpd.GeoDataFrame(data, geometry=frame.geometry.values, crs=frame.crs)
    return PointSamples(
        table=table,
        elements=list(data),
        crs=frame.crs,
        censored=counts,
        censor_rule=CENSOR_RULES[censor],
        units={e: u for e, (_, u) in chosen.items() if u and e in data},
        missing={e: int(np.isnan(v).sum()) for e, v in data.items()},
        dropped=dropped,
        note=note,
        source_crs=source_crs,
    )


def complete_features(samples: PointSamples) -> tuple[pd.DataFrame, dict]:
    """(samples, elements) values with every missing one filled by the element's median; counts filled."""
    values = pd.DataFrame({e: samples.table[e].to_numpy() for e in samples.elements})
    filled = {e: int(values[e].isna().sum()) for e in samples.elements}
    return values.fillna(values.median()), filled


def row_limit(kind: str = "points") -> int:
    """Most rows read from a point table: ``MSTGAT_MAX_ROWS`` (default 2,000,000) for samples,
    ``MSTGAT_MAX_DEPOSITS`` (default 100,000) for a deposits file."""
    name, default = ("MSTGAT_MAX_DEPOSITS", 100_000) if kind == "deposits" else ("MSTGAT_MAX_ROWS", 2_000_000)
    try:
        return int(float(os.environ.get(name, default)))
    except ValueError:
        return default


MAX_COLUMNS = 5_000


def _check_table_size(frame, path: Path, limit: int, kind: str) -> None:
    if len(frame) > limit:
        variable = "MSTGAT_MAX_DEPOSITS" if kind == "deposits" else "MSTGAT_MAX_ROWS"
        raise DataError(f"{path.name} has more than {limit:,} rows; the limit for {kind} is {limit:,} ({variable})")
    if frame.shape[1] > MAX_COLUMNS:
        raise DataError(f"{path.name} has {frame.shape[1]:,} columns; the limit is {MAX_COLUMNS:,}")


def read_vector(path: Path, crs=None, kind: str = "points") -> gpd.GeoDataFrame:
    """A GPKG/GeoJSON/shapefile layer with its CRS (``crs`` only where the file has none); at most
    :func:`row_limit` rows are read before the file is refused."""
    limit = row_limit(kind)
    try:
        frame = gpd.read_file(path, rows=limit + 1)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise DataError(f"cannot read {path.name}: {one_line(exc)}") from None
    _check_table_size(frame, path, limit, kind)
    if frame.crs is None:
        if crs is None:
            raise DataError(f"{path.name} has no CRS; give one with --crs")
        frame = frame.set_crs(crs)
    return frame


def _read_point_table(path: Path, x_col, y_col, crs) -> gpd.GeoDataFrame:
    if path.suffix.lower() == ".csv":
        return read_csv_points(path, x_col, y_col, crs)
    frame = read_vector(path, crs)
    if not (frame.geom_type == "Point").all():
        raise DataError(f"{path.name}: expected point geometries, found {frame.geom_type.iloc[0]}")
    return frame


def read_csv_points(path: Path, x_col=None, y_col=None, crs=None, kind: str = "points") -> gpd.GeoDataFrame:
    """A CSV as point GeoDataFrame; the coordinate columns become the geometry. At most
    :func:`row_limit` rows are read before the file is refused (bounded memory)."""
    limit = row_limit(kind)
    try:
        table = pd.read_csv(path, low_memory=False, nrows=limit + 1)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read CSV {path.name}: {one_line(exc)}") from None
    _check_table_size(table, path, limit, kind)
    xc, yc = find_coordinate_columns(table.columns, x_col, y_col, path.name)
    if crs is None and "crs" in table.columns and table["crs"].notna().any():
        crs = str(table["crs"].dropna().iloc[0])
    xy = table[[xc, yc]].apply(pd.to_numeric, errors="coerce").mask(lambda v: v.isin(SENTINELS))
    if xy.isna().all().all():
        raise DataError(f"{path.name}: no sample has coordinates in {xc}/{yc}")
    if xy.isna().any().any():
        raise DataError(
            f"{path.name}: {int(xy.isna().any(axis=1).sum())} sample(s) with missing or non-numeric "
            f"coordinates in {xc}/{yc}"
        )
    crs = resolve_crs(crs, xc, yc, path.name, xy=xy.to_numpy())
    table = table.drop(columns=[xc, yc])
    return gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(xy[xc], xy[yc]), crs=crs)


# --------------------------------------------------------------------------- gridding


def default_max_distance(xy: np.ndarray, cell_size: float) -> float:
    """Masking distance: the larger of 2 cells and 2x the median sample spacing."""
    if len(xy) < 2:
        return 2.0 * cell_size
    spacing, _ = cKDTree(xy).query(xy, k=2)
    return max(2.0 * cell_size, 2.0 * float(np.median(spacing[:, 1])))


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
        the larger of 2 cells and twice the median sample spacing).
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
