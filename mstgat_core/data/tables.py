"""Reading a point table of any format, its coordinates and CRS, a row filter, and the import report.

Samples and sites (deposits, occurrences) are read here, with the same rules:

* **Formats**: CSV; any OGR vector file (GeoPackage, GeoJSON, shapefile, FlatGeobuf); Parquet, either
  GeoParquet (a geometry column described by its ``geo`` metadata, or a WKB column named ``geometry``)
  or a plain table with coordinate columns. A file with a column name twice is refused.
* **Coordinates** are the geometry where there is one, else columns found in this order
  (case-insensitive): ``x``/``y``, ``x_<s>``/``y_<s>`` (e.g. ``x_tm35fin``), ``<p>_x``/``<p>_y`` (e.g.
  ``coord_x``), ``easting``/``northing``, ``lon``/``lat``, ``longitude``/``latitude``.
* **CRS**, first found: the file's own (vector files, GeoParquet); the ``crs=`` argument (``--crs``;
  for a vector file only where it has none); a ``crs`` column; the coordinate suffix
  (:data:`KNOWN_SUFFIX_CRS`); EPSG:4326 for columns named lon/lat/longitude/latitude; EPSG:4326 for
  other coordinates (not easting/northing, which are projected by name) whose values all lie in
  [-180, 180] x [-90, 90]; ``default_crs`` (the grid's, for deposits); else a :class:`DataError` asks
  for ``--crs``. Lon/lat out of range is an error.
* **Rows**: ``where`` keeps the rows a filter selects (:func:`where_mask`: pandas ``query`` syntax,
  comparisons of columns with literals joined by and/or only). Samples without coordinates are an
  error; sites without coordinates are dropped and counted. Duplicate rows are kept (merging
  co-located samples is the evaluation's job).
"""

from __future__ import annotations

import ast
import csv
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import DataError, one_line
from .columns import duplicate_names

SENTINELS = (-9999.0, -999.0, -99999.0, -9999.99)
KNOWN_SUFFIX_CRS = {"tm35fin": "EPSG:3067", "ykj": "EPSG:2393"}
LONLAT = "EPSG:4326"
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb")
PARQUET_SUFFIXES = (".parquet", ".geoparquet", ".pq")
POINT_TABLE_SUFFIXES = (".csv", *VECTOR_SUFFIXES, *PARQUET_SUFFIXES)
MAX_COLUMNS = 5_000
_FORMATS = {".csv": "CSV", ".gpkg": "GeoPackage", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "shapefile",
            ".fgb": "FlatGeobuf"}  # fmt: skip


# ------------------------------------------------------------------------ limits


def row_limit(kind: str = "points") -> int:
    """Most rows read from a point table: ``MSTGAT_MAX_ROWS`` (default 2,000,000) for samples,
    ``MSTGAT_MAX_DEPOSITS`` (default 100,000) for a deposits file."""
    name, default = ("MSTGAT_MAX_DEPOSITS", 100_000) if kind == "deposits" else ("MSTGAT_MAX_ROWS", 2_000_000)
    try:
        return int(float(os.environ.get(name, default)))
    except ValueError:
        return default


def _check_size(n_rows: int, n_columns: int, path: Path, limit: int, kind: str) -> None:
    if n_rows > limit:
        variable = "MSTGAT_MAX_DEPOSITS" if kind == "deposits" else "MSTGAT_MAX_ROWS"
        raise DataError(f"{path.name} has more than {limit:,} rows; the limit for {kind} is {limit:,} ({variable})")
    if n_columns > MAX_COLUMNS:
        raise DataError(f"{path.name} has {n_columns:,} columns; the limit is {MAX_COLUMNS:,}")


def _check_table_size(frame, path: Path, limit: int, kind: str) -> None:
    _check_size(len(frame), frame.shape[1], path, limit, kind)


def _refuse_duplicates(names, path: Path) -> None:
    twice = duplicate_names([str(n) for n in names])
    if twice:
        raise DataError(f"{path.name}: column {twice[0]!r} appears more than once; rename one of them")


# ------------------------------------------------------------------- coordinates, CRS


def find_coordinate_columns(columns, x_col=None, y_col=None, source="table"):
    """Return the (x, y) column names, autodetected unless given (module docstring)."""
    columns = list(columns)
    if x_col or y_col:
        missing = [c for c in (x_col, y_col) if c and c not in columns]
        if missing or not (x_col and y_col):
            raise DataError(f"{source}: coordinate columns not found: {x_col!r}, {y_col!r}")
        return x_col, y_col
    lower = {}
    for c in columns:
        lower.setdefault(str(c).lower(), c)
    if "x" in lower and "y" in lower:
        return lower["x"], lower["y"]
    for low, col in lower.items():
        if low.startswith("x_") and "y_" + low[2:] in lower:
            return col, lower["y_" + low[2:]]
    for low, col in lower.items():
        if low.endswith("_x") and low[:-2] + "_y" in lower:
            return col, lower[low[:-2] + "_y"]
    for xname, yname in (("easting", "northing"), ("lon", "lat"), ("longitude", "latitude")):
        if xname in lower and yname in lower:
            return lower[xname], lower[yname]
    raise DataError(
        f"{source}: no coordinate columns found "
        "(expected x/y, x_*/y_*, *_x/*_y, easting/northing or lon/lat; use --x-col/--y-col)"
    )


def looks_like_lonlat(xy: np.ndarray) -> bool:
    """Whether every (x, y) pair lies in [-180, 180] x [-90, 90]."""
    xy = np.asarray(xy, dtype=float)
    return bool(len(xy)) and bool(np.all(np.abs(xy[:, 0]) <= 180) and np.all(np.abs(xy[:, 1]) <= 90))


def column_crs(crs, x_col, source="table", xy=None, crs_column=None, default_crs=None) -> tuple[object, str]:
    """``(crs, how it was found)`` for coordinate columns, in the order of the module docstring."""
    if crs:
        return crs, "given (--crs)"
    if crs_column:
        return crs_column, "the file's crs column"
    low = str(x_col).lower()
    suffix = low.split("_", 1)[1] if "_" in low else ""
    if suffix in KNOWN_SUFFIX_CRS:
        return KNOWN_SUFFIX_CRS[suffix], f"the column suffix _{suffix}"
    if low in ("lon", "longitude"):
        return LONLAT, "lon/lat column names"
    if low not in ("easting",) and xy is not None and looks_like_lonlat(xy):  # easting/northing are projected
        return LONLAT, f"{x_col} values all within longitude/latitude range"
    if default_crs is not None:
        return default_crs, "the grid's (the file gives none)"
    raise DataError(f"{source}: coordinate reference system unknown; give it with --crs (e.g. EPSG:32650)")


def resolve_crs(crs, x_col, y_col, source="table", xy=None):
    """CRS given, or inferred from the coordinate column names, or from lon/lat-range values ``xy``."""
    return column_crs(crs, x_col, source, xy)[0]


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


# ------------------------------------------------------------------------ row filter

_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)


def _parse_where(expr: str, columns) -> tuple[ast.AST, dict]:
    text = str(expr).strip()
    if not text:
        raise DataError("--where is empty")
    names = {}

    def backtick(match):
        key = f"__col{len(names)}"
        names[key] = match.group(1)
        return key

    text = re.sub(r"`([^`]*)`", backtick, text)
    if "@" in text:
        raise DataError(f"--where {expr!r}: '@' (local variables) is not allowed")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise DataError(f"--where {expr!r} is not a comparison such as \"sample_type == 'Stream Sediment'\"") from None
    _check_where(tree.body, expr)
    return tree.body, names


def _check_where(node, expr) -> None:
    def refuse(what):
        raise DataError(f"--where {expr!r}: {what} not allowed (only column == 'value' comparisons joined by and/or)")

    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check_where(value, expr)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
        _check_where(node.left, expr)
        _check_where(node.right, expr)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
        _check_where(node.operand, expr)
    elif isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        if len(operands) != 2 or not isinstance(node.ops[0], _COMPARE):
            refuse("this comparison is")
        kinds = [_operand_kind(o) for o in operands]
        for kind, what in (("call", "a function call is"), ("arithmetic", "arithmetic is"), ("other", "this is")):
            if kind in kinds:
                refuse(what)
        if sorted(kinds) != ["column", "literal"]:
            refuse("a comparison of two columns or two values is")
    elif isinstance(node, ast.Call):
        refuse("a function call is")
    elif isinstance(node, (ast.Attribute, ast.Subscript)):
        refuse("an attribute or subscript is")
    else:
        refuse(f"'{type(node).__name__}' is")


def _operand_kind(node) -> str:
    if isinstance(node, ast.Name):
        return "column"
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return "literal"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return "literal"
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and all(_operand_kind(e) == "literal" for e in node.elts):
        return "literal"
    if any(isinstance(n, ast.Call) for n in ast.walk(node)):
        return "call"
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return "arithmetic"
    return "other"


def where_mask(frame: pd.DataFrame, expr: str) -> np.ndarray:
    """The rows of ``frame`` that ``expr`` selects (pandas ``query`` syntax restricted to comparisons of
    a column with a literal, ``in``/``not in`` lists, ``not``, joined by ``and``/``or``/``&``/``|``; column
    names with blanks in backticks). Missing values compare false.

    >>> table = pd.DataFrame({"sample_type": ["Stream Sediment", "Soil", "Stream Sediment"], "depth": [1, 2, 3]})
    >>> where_mask(table, "sample_type == 'Stream Sediment' and depth > 1").tolist()
    [False, False, True]
    """
    node, names = _parse_where(expr, frame.columns)
    return np.asarray(_evaluate(node, frame, names, expr), dtype=bool)


def _column(frame, name, expr):
    if name in frame.columns:
        return frame[name]
    folded = [c for c in frame.columns if str(c).lower() == str(name).lower()]
    if len(folded) == 1:
        return frame[folded[0]]
    raise DataError(f"--where {expr!r}: no column {name!r} in the table")


def _literal(node):
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_literal(e) for e in node.elts]
    return ast.literal_eval(node)


def _evaluate(node, frame, names, expr) -> np.ndarray:
    if isinstance(node, ast.BoolOp):
        parts = [_evaluate(v, frame, names, expr) for v in node.values]
        return np.logical_and.reduce(parts) if isinstance(node.op, ast.And) else np.logical_or.reduce(parts)
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, frame, names, expr), _evaluate(node.right, frame, names, expr)
        return left & right if isinstance(node.op, ast.BitAnd) else left | right
    if isinstance(node, ast.UnaryOp):
        return ~_evaluate(node.operand, frame, names, expr)
    left, right, op = node.left, node.comparators[0], node.ops[0]
    if not isinstance(left, ast.Name):  # literal on the left: mirror the comparison
        left, right = right, left
        op = {ast.Lt: ast.Gt(), ast.Gt: ast.Lt(), ast.LtE: ast.GtE(), ast.GtE: ast.LtE()}.get(type(op), op)
    column = _column(frame, names.get(left.id, left.id), expr)
    value = _literal(right)
    if isinstance(op, (ast.In, ast.NotIn)):
        values = value if isinstance(value, list) else [value]
        hit = column.isin(values).to_numpy(dtype=bool)
        return hit if isinstance(op, ast.In) else ~hit & column.notna().to_numpy()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        column = pd.to_numeric(column, errors="coerce")
    try:
        result = {
            ast.Eq: lambda: column == value,
            ast.NotEq: lambda: (column != value) & column.notna(),
            ast.Lt: lambda: column < value,
            ast.LtE: lambda: column <= value,
            ast.Gt: lambda: column > value,
            ast.GtE: lambda: column >= value,
        }[type(op)]()
    except TypeError:
        raise DataError(f"--where {expr!r}: cannot compare column {left.id!r} with {value!r}") from None
    return result.fillna(False).to_numpy(dtype=bool)


# ------------------------------------------------------------------------ the table


@dataclass
class PointTable:
    """A point table as read: ``frame`` (the kept rows, their point geometry in ``crs``; for a table
    with coordinate columns those columns are dropped), ``raw`` (the kept rows exactly as read, every
    column), ``rows`` (their positions in the file) and how it was read."""

    frame: gpd.GeoDataFrame
    raw: pd.DataFrame
    rows: np.ndarray
    n_read: int
    format: str
    coordinates: str
    crs_how: str
    where: str | None = None
    where_dropped: int = 0
    no_coordinates: int = 0
    geometry_note: str = ""


def table_format(path: Path) -> str:
    """The format's name for the report (CSV, GeoJSON, Parquet, ...), from the file's suffix."""
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "Parquet"
    return _FORMATS.get(suffix, suffix.lstrip(".").upper() or "file")


def read_point_table(
    path, x_col=None, y_col=None, crs=None, kind="points", where=None, default_crs=None, missing="error"
) -> PointTable:
    """Read a point table of any supported format (module docstring).

    ``kind`` is "points" (samples: only point geometries; rows without coordinates are an error) or
    "deposits" (sites: any geometry becomes one representative point; rows without coordinates are
    dropped and counted, as ``missing="drop"`` does for samples).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw = _read_csv(path, kind)
        geometry_frame = None
    elif suffix in PARQUET_SUFFIXES:
        raw, geometry_frame = _read_parquet(path, kind)
    elif suffix in VECTOR_SUFFIXES:
        geometry_frame = _read_vector_frame(path, kind)
        raw = geometry_frame
    else:
        raise DataError(f"unknown point format: {path.name} (use .csv, .gpkg, .geojson, .shp, .fgb or .parquet)")
    n_read = len(raw)
    rows = np.arange(n_read)
    where_dropped = 0
    if where:
        keep = where_mask(pd.DataFrame(raw.drop(columns=_geometry_name(raw), errors="ignore")), where)
        if not keep.any():
            raise DataError(f"{path.name}: --where {where!r} keeps none of the {n_read:,} rows")
        where_dropped = int((~keep).sum())
        rows = rows[keep]
        raw = raw.iloc[keep]
        geometry_frame = geometry_frame.iloc[keep] if geometry_frame is not None else None
    drop_missing = missing == "drop" or kind == "deposits"
    if geometry_frame is not None:
        table = _from_geometry(geometry_frame, path, crs, kind, drop_missing, default_crs)
    else:
        table = _from_columns(raw, path, x_col, y_col, crs, drop_missing, default_crs)
    frame, coordinates, crs_how, kept, geometry_note = table
    return PointTable(
        frame=frame,
        raw=raw.iloc[kept] if kept is not None else raw,
        rows=rows[kept] if kept is not None else rows,
        n_read=n_read,
        format=table_format(path),
        coordinates=coordinates,
        crs_how=crs_how,
        where=where,
        where_dropped=where_dropped,
        no_coordinates=int((~kept).sum()) if kept is not None else 0,
        geometry_note=geometry_note,
    )


def _geometry_name(frame):
    return [frame.geometry.name] if isinstance(frame, gpd.GeoDataFrame) else []


def _read_csv(path: Path, kind: str) -> pd.DataFrame:
    limit = row_limit(kind)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except UnicodeDecodeError:
        header = []  # pandas reports it below
    _refuse_duplicates(header, path)
    try:
        table = pd.read_csv(path, low_memory=False, nrows=limit + 1)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read CSV {path.name}: {one_line(exc)}") from None
    _check_table_size(table, path, limit, kind)
    return table


def _read_parquet(path: Path, kind: str):
    """(raw table, GeoDataFrame or None): GeoParquet when its geometry column is there."""
    import pyarrow.parquet as pq
    import shapely

    try:
        meta = pq.read_metadata(path)
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise DataError(f"cannot read Parquet {path.name}: {one_line(exc)}") from None
    _refuse_duplicates(schema.names, path)
    _check_size(meta.num_rows, len(schema.names), path, row_limit(kind), kind)
    geo = (schema.metadata or {}).get(b"geo")
    primary = None
    if geo:
        import json

        try:
            info = json.loads(geo)
            primary = info.get("primary_column") if info.get("primary_column") in info.get("columns", {}) else None
        except ValueError:
            primary = None
    try:
        if primary is not None and primary in schema.names:
            frame = gpd.read_parquet(path)
            return frame, frame
        table = pd.read_parquet(path)
    except Exception as exc:
        raise DataError(f"cannot read Parquet {path.name}: {one_line(exc)}") from None
    wkb = next((c for c in table.columns if str(c).lower() in ("geometry", "geom", "wkb_geometry")), None)
    if wkb is not None and table[wkb].map(lambda v: isinstance(v, (bytes, bytearray)) or v is None).all():
        try:
            geometry = shapely.from_wkb(table[wkb].to_numpy())
        except Exception as exc:
            raise DataError(f"{path.name}: cannot read column {wkb} as WKB geometry: {one_line(exc)}") from None
        frame = gpd.GeoDataFrame(table.drop(columns=wkb), geometry=geometry, crs=None)
        return frame, frame
    return table, None


def read_vector(path: Path, crs=None, kind: str = "points") -> gpd.GeoDataFrame:
    """A GPKG/GeoJSON/shapefile layer with its CRS (``crs`` only where the file has none); at most
    :func:`row_limit` rows are read before the file is refused."""
    frame = _read_vector_frame(path, kind)
    if frame.crs is None:
        if crs is None:
            raise DataError(f"{path.name} has no CRS; give one with --crs")
        frame = frame.set_crs(crs)
    return frame


def _read_vector_frame(path: Path, kind: str) -> gpd.GeoDataFrame:
    limit = row_limit(kind)
    try:
        frame = gpd.read_file(path, rows=limit + 1)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise DataError(f"cannot read {path.name}: {one_line(exc)}") from None
    _check_table_size(frame, path, limit, kind)
    return frame


def _from_geometry(frame: gpd.GeoDataFrame, path: Path, crs, kind: str, drop_missing: bool, default_crs):
    geometry = frame.geometry
    empty = (geometry.isna() | geometry.is_empty).to_numpy()
    note = ""
    if empty.any() and not drop_missing:
        raise DataError(f"{path.name}: {int(empty.sum())} sample(s) without a geometry (no coordinates)")
    kept = ~empty
    frame = frame.loc[kept]
    types = frame.geom_type.unique().tolist()
    if types != ["Point"] and len(frame):
        if kind == "deposits":
            frame = frame.set_geometry(frame.geometry.representative_point())
            note = f"{', '.join(t for t in types if t != 'Point')} geometries taken as one representative point each"
        else:
            other = next(t for t in types if t != "Point")
            raise DataError(f"{path.name}: expected point geometries, found {other}; samples must be points")
    how = "the file"
    if not len(frame):
        raise DataError(f"{path.name}: no row has coordinates")
    if frame.crs is None:  # a vector file without CRS, or GeoParquet WKB without metadata
        xy = np.c_[frame.geometry.x, frame.geometry.y]
        try:
            chosen, how = column_crs(crs, "geometry", path.name, xy=xy, default_crs=default_crs)
        except DataError:
            raise DataError(f"{path.name} has no CRS; give one with --crs") from None
        frame = frame.set_crs(chosen)
    return frame, "point geometry", how, kept if empty.any() else None, note


def _from_columns(table: pd.DataFrame, path: Path, x_col, y_col, crs, drop_missing: bool, default_crs):
    xc, yc = find_coordinate_columns(table.columns, x_col, y_col, path.name)
    crs_column = None
    if crs is None and "crs" in table.columns and table["crs"].notna().any():
        crs_column = str(table["crs"].dropna().iloc[0])
    xy = table[[xc, yc]].apply(pd.to_numeric, errors="coerce").mask(lambda v: v.isin(SENTINELS))
    if xy.isna().all().all():
        raise DataError(f"{path.name}: no sample has coordinates in {xc}/{yc}")
    bad = xy.isna().any(axis=1).to_numpy()
    kept = None
    if bad.any():
        if not drop_missing:
            raise DataError(
                f"{path.name}: {int(bad.sum())} sample(s) with missing or non-numeric coordinates in {xc}/{yc}"
            )
        kept = ~bad
        table, xy = table.loc[kept], xy.loc[kept]
    chosen, how = column_crs(crs, xc, path.name, xy=xy.to_numpy(), crs_column=crs_column, default_crs=default_crs)
    table = table.drop(columns=[xc, yc])
    frame = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(xy[xc], xy[yc]), crs=chosen)
    return frame, f"columns {xc}/{yc}", how, kept, ""


def read_csv_points(path: Path, x_col=None, y_col=None, crs=None, kind: str = "points") -> gpd.GeoDataFrame:
    """A CSV as point GeoDataFrame; the coordinate columns become the geometry. At most
    :func:`row_limit` rows are read before the file is refused (bounded memory)."""
    return read_point_table(path, x_col, y_col, crs, kind=kind).frame


def read_raw_table(path) -> pd.DataFrame:
    """A point file's table exactly as read (every column; a vector file or GeoParquet keeps its geometry)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, low_memory=False)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _read_parquet(path, "points")[0]
    return gpd.read_file(path)


# ------------------------------------------------------------------------ the report


@dataclass
class ImportReport:
    """What one import did, as plain data (:meth:`as_dict`) and as one block of lines (:meth:`lines`).

    Samples fill the ``rows``, ``crs``, ``elements``, ``censored``, ``missing``, ``dropped`` and
    ``ignored`` parts; sites fill ``rows``, ``crs``, ``selection`` and (once put on a grid) ``placement``.
    """

    source: str
    kind: str = "samples"
    format: str = ""
    rows_read: int = 0
    rows_kept: int = 0
    where: str | None = None
    where_dropped: int = 0
    no_coordinates: int = 0
    coordinates: str = ""
    crs: str | None = None
    crs_how: str = ""
    projection: str = ""
    columns: list = field(default_factory=list)  # dicts: element, column, unit_read, unit, factor, method
    censor_rule: str = ""
    censored: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    ignored: dict = field(default_factory=dict)
    selection: list = field(default_factory=list)  # dicts: filter, value, columns, kept, dropped, uncertain
    placement: str = ""
    notes: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """The report as plain data (dicts, lists, strings, numbers), e.g. for the dashboard or JSON."""
        from dataclasses import asdict

        return asdict(self)

    def lines(self) -> list[str]:
        """The report as lines, the first naming the file, the others indented."""
        what = "sites" if self.kind == "sites" else "samples"
        out = [f"import of {self.source} ({self.format}, {what})"]
        rows = f"rows: {self.rows_read:,} read, {self.rows_kept:,} kept"
        why = []
        if self.where:
            why.append(f"{self.where_dropped:,} dropped by --where {self.where!r}")
        if self.no_coordinates:
            why.append(f"{self.no_coordinates:,} dropped without coordinates")
        for s in self.selection:
            why.append(f"{s['dropped']:,} dropped by {s['filter']}")
        out.append(rows + ("; " + "; ".join(why) if why else "") + ("" if self.kind == "sites" else
                   "; co-located duplicates are not dropped here"))  # fmt: skip
        crs = f"coordinates: {self.coordinates} in {self.crs} ({self.crs_how})"
        out.append(crs + (f"; {self.projection}" if self.projection else ""))
        out += [f"note: {n}" for n in self.notes]
        for s in self.selection:
            uncertain = f", {s['uncertain']} of them uncertain ('?')" if s.get("uncertain") else ""
            out.append(
                f"selected by {s['filter']}: {s['kept']:,} of {s['kept'] + s['dropped']:,} in "
                f"{', '.join(s['columns'])}{uncertain}"
            )
        if self.placement:
            out.append(self.placement)
        if self.kind == "sites":
            return [out[0]] + ["  " + line for line in out[1:]]
        cols = self.columns
        listed = ", ".join(
            f"{c['element']}={c['column']}"
            + f" ({c['unit_read'] or 'unit not given'}{', ' + c['method'] if c['method'] else ''})"
            for c in cols
        )
        wrap = [f"elements ({len(cols)}): {listed}"]
        conversions = {}
        for c in cols:
            if c["factor"] != 1.0:
                conversions.setdefault((c["unit_read"], c["unit"], c["factor"]), []).append(c["element"])
        for (src, dst, factor), names in conversions.items():
            wrap.append(f"converted {src} -> {dst} (x {factor:g}): {', '.join(names)}")
        unitless = [c["element"] for c in cols if not c["unit_read"]]
        if unitless:
            wrap.append(f"unit not given, values as read: {', '.join(unitless)}")
        censored = {e: n for e, n in self.censored.items() if n}
        rule = self.censor_rule.replace("below-detection values ", "")
        wrap.append(f"below detection ({rule}): " + (", ".join(f"{e} {n:,}" for e, n in censored.items()) or "none"))
        missing = {e: n for e, n in self.missing.items() if n}
        wrap.append(
            f"missing (empty, NA-like or a no-data code: {', '.join(f'{v:g}' for v in SENTINELS)}; left empty, "
            "the median fills them where every value is needed): "
            + (", ".join(f"{e} {n:,}" for e, n in missing.items()) or "none")
        )
        if self.dropped:
            wrap.append("dropped: " + "; ".join(f"{e} ({why})" for e, why in self.dropped.items()))
        if self.ignored:
            wrap.append("not read as elements: " + "; ".join(f"{c} ({why})" for c, why in self.ignored.items()))
        wrap.append(
            f"result: {self.rows_kept:,} samples, {len(cols)} elements kept, {len(self.dropped)} dropped "
            "(mostly missing or duplicates)"
        )
        lines = [out[0]] + ["  " + line for line in out[1:]]
        for line in wrap:
            lines += textwrap.wrap(line, 116, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)
        return lines

    def text(self) -> str:
        """:meth:`lines` joined by newlines."""
        return "\n".join(self.lines())
