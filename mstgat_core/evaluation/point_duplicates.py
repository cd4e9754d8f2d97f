"""Compilation artefacts of point surveys: co-located duplicates and batch (report) columns.

Rules (documented here because they change numbers):

* **Co-located duplicates.** Two rows lie at one location when their
  great-circle distance is at most ``tolerance_m`` (default 1 m; on the
  sphere, which equals the projected distance to well under a millimetre at
  this range) or when their lon/lat agree to 1e-7 degree. Locations are the
  connected components of that relation (rows A-B within 1 m and B-C within
  1 m make one location A, B, C). Each location becomes one **merged
  sample**: its position is its first row's, its value of each element is the
  median of the rows' non-missing values (missing where all are missing), its
  ``duplicates`` is its number of rows. A group is *chemically identical*
  when every element's non-missing values are all equal, *differing*
  otherwise. Merged samples keep the order of their first rows.
* **Batch column.** A column naming the report, company, laboratory, survey,
  job, project or analytical suite a sample came from. Detected, unless named,
  as the first column in file order (element and coordinate columns excluded)
  whose lower-case name is one of :data:`BATCH_NAMES`, or holds one of them as
  a whole word between underscores, spaces, dots or hyphens (``WAMEX_A_NO``,
  ``REPORT_NO``, ``lab name``, ``Survey-ID``; not ``LABnegNR_N``). A detected
  column holding a single value, or a different value on every row (an
  identifier), is skipped. Named columns (``--batch COLUMN``) are used as
  they are; ``--batch none`` uses none. Labels are compared as text; a
  missing label is its own batch ``(missing)``. A merged sample spanning
  several batches takes its rows' most common batch (on a tie, the first
  row's among the tied).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

EARTH_RADIUS_M = 6371008.8
LONLAT_DECIMALS_DEG = 1e-7
BATCH_NAMES = (
    "wamex_a_no",
    "report",
    "company",
    "lab",
    "laboratory",
    "batch",
    "survey",
    "job",
    "project",
    "suite",
)
MISSING_BATCH = "(missing)"
NO_BATCH = "no batch column: negatives stratified by spacing only"


@dataclass
class BatchColumn:
    """A batch column read from a point table: its name (None: none), labels per row, and the rule line."""

    column: str | None
    labels: np.ndarray | None
    rule: str


@dataclass
class MergedDuplicates:
    """The result of :func:`merge_duplicates`.

    Attributes
    ----------
    table : pd.DataFrame
        One row per merged sample: ``lon``, ``lat``, the element columns
        (medians), ``duplicates`` (rows merged into it) and, with a batch,
        ``batch``.
    group : np.ndarray
        (rows,) index of each input row's merged sample.
    first : np.ndarray
        (merged,) the first input row of each merged sample.
    colocated : np.ndarray
        (rows,) rows at the same location as each input row (itself included);
        equal to ``duplicates`` of its merged sample when merged.
    n_locations, n_groups, n_rows_in_groups, n_identical, n_differing, n_spanning_batches : int
        Distinct locations; locations holding more than one row; the rows they hold; how many of
        those groups are chemically identical / differing; groups whose rows
        come from several batches.
    merged : bool
        False when only counted (``merge=False``): then ``table`` holds every row.
    tolerance_m : float
    """

    table: pd.DataFrame
    group: np.ndarray
    first: np.ndarray
    colocated: np.ndarray
    n_locations: int
    n_groups: int
    n_rows_in_groups: int
    n_identical: int
    n_differing: int
    n_spanning_batches: int
    merged: bool
    tolerance_m: float

    @property
    def n_rows(self) -> int:
        """Number of input rows."""
        return int(len(self.group))

    def summary(self) -> dict:
        """The counts as a JSON-able dict."""
        return {
            "merged": self.merged,
            "tolerance_m": self.tolerance_m,
            "n_rows": self.n_rows,
            "n_locations": self.n_locations,
            "n_groups": self.n_groups,
            "n_rows_in_groups": self.n_rows_in_groups,
            "n_identical_groups": self.n_identical,
            "n_differing_groups": self.n_differing,
            "n_groups_spanning_batches": self.n_spanning_batches,
        }

    def describe(self) -> str:
        """One line: how many rows were (or would be) merged into how many locations."""
        head = (
            f"co-located duplicates (within {self.tolerance_m:g} m): {self.n_rows_in_groups:,} of {self.n_rows:,} "
            f"rows lie at {self.n_groups:,} shared locations ({self.n_identical:,} groups chemically identical, "
            f"{self.n_differing:,} differing); "
        )
        if self.merged:
            return head + f"merged into {self.n_locations:,} samples (element-wise median of each group)"
        return head + f"NOT merged (--no-merge-duplicates): {self.n_rows:,} rows scored"


def colocated_groups(lonlat: np.ndarray, tolerance_m: float = 1.0) -> np.ndarray:
    """(rows,) location index of each row (see the module docstring), numbered in order of first row."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import BallTree

    lonlat = np.asarray(lonlat, dtype=float)
    n = len(lonlat)
    if n == 0:
        return np.zeros(0, dtype=int)
    if tolerance_m < 0:
        raise DataError(f"the duplicate tolerance must be at least 0 m, got {tolerance_m:g}")
    rows, cols = [np.arange(n)], [np.arange(n)]
    if tolerance_m > 0:
        radians = np.radians(lonlat[:, ::-1])
        neighbours = BallTree(radians, metric="haversine").query_radius(radians, r=tolerance_m / EARTH_RADIUS_M)
        sizes = np.fromiter((len(x) for x in neighbours), dtype=int, count=n)
        rows.append(np.repeat(np.arange(n), sizes))
        cols.append(np.concatenate(neighbours).astype(int))
    _, same = np.unique(np.round(lonlat / LONLAT_DECIMALS_DEG).astype(np.int64), axis=0, return_inverse=True)
    same = np.asarray(same).ravel()
    _, representative = np.unique(same, return_index=True)
    rows.append(np.arange(n))
    cols.append(representative[same])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)
    order = np.empty(len(first), dtype=int)
    order[np.argsort(first, kind="stable")] = np.arange(len(first))  # number by first row
    return order[labels]


def merge_duplicates(
    table: pd.DataFrame,
    elements: list,
    lon: str = "lon",
    lat: str = "lat",
    batch: str | None = None,
    tolerance_m: float = 1.0,
    merge: bool = True,
) -> MergedDuplicates:
    """Merge the rows of a point table that lie at one location (module docstring).

    Parameters
    ----------
    table : pd.DataFrame
        Columns ``lon``, ``lat`` (degrees), the element columns (NaN =
        missing) and optionally a batch column.
    elements : list of str
        The element columns: merged by median, compared for identity.
    lon, lat : str
        Coordinate column names.
    batch : str, optional
        Batch column; the merged sample takes its rows' most common batch.
    tolerance_m : float
        Rows within this great-circle distance are at one location.
    merge : bool
        False: count the groups only; ``table`` keeps every row (``duplicates``
        is then the row's co-located count) and ``group`` is the identity.

    Returns
    -------
    MergedDuplicates
    """
    missing = [c for c in [lon, lat, *elements, *([batch] if batch else [])] if c not in table.columns]
    if missing:
        raise DataError(f"columns not in the table: {', '.join(map(str, missing))}")
    lonlat = table[[lon, lat]].to_numpy(dtype=float)
    location = colocated_groups(lonlat, tolerance_m)
    sizes = np.bincount(location) if len(location) else np.zeros(0, dtype=int)
    values = table[list(elements)].astype(float).reset_index(drop=True)
    by_location = values.groupby(location, sort=True)
    lo, hi = by_location.min(), by_location.max()  # NaN-skipping
    same = ((lo == hi) | lo.isna()).all(axis=1).to_numpy()
    shared = sizes > 1
    labels = table[batch].reset_index(drop=True).astype(object).to_numpy() if batch else None
    rows_of = _rows_by_group(location, np.flatnonzero(shared)) if labels is not None else {}
    spanning = sum(len(set(labels[rows])) > 1 for rows in rows_of.values())
    _, first = np.unique(location, return_index=True)
    counts = dict(
        n_locations=int(len(sizes)),
        n_groups=int(shared.sum()),
        n_rows_in_groups=int(sizes[shared].sum()),
        n_identical=int((same & shared).sum()),
        n_differing=int((~same & shared).sum()),
        n_spanning_batches=int(spanning),
        tolerance_m=float(tolerance_m),
    )
    if not merge:
        out = _frame(lonlat, elements, values.to_numpy(), sizes[location])
        if labels is not None:
            out["batch"] = labels
        n = len(table)
        return MergedDuplicates(out, np.arange(n), np.arange(n), sizes[location], merged=False, **counts)
    out = _frame(lonlat[first], elements, by_location.median().to_numpy(), sizes)
    if labels is not None:
        merged_batch = labels[first].copy()
        for g, rows in rows_of.items():
            rows = labels[rows]
            tally = Counter(rows)
            top = max(tally.values())
            merged_batch[g] = next(b for b in rows if tally[b] == top)
        out["batch"] = merged_batch
    return MergedDuplicates(out, location, first, sizes[location], merged=True, **counts)


def _frame(lonlat, elements, values, duplicates) -> pd.DataFrame:
    columns = {"lon": lonlat[:, 0], "lat": lonlat[:, 1]}
    columns.update({e: values[:, i] for i, e in enumerate(elements)})
    columns["duplicates"] = duplicates
    return pd.DataFrame(columns)


def _rows_by_group(location: np.ndarray, groups: np.ndarray) -> dict:
    """Group -> its rows in row order, for the given groups."""
    order = np.argsort(location, kind="stable")
    starts = np.searchsorted(location[order], groups, side="left")
    ends = np.searchsorted(location[order], groups, side="right")
    return {int(g): order[a:b] for g, a, b in zip(groups, starts, ends)}


def frame_lonlat(frame) -> np.ndarray:
    """(rows, 2) lon/lat in degrees of a GeoDataFrame's points."""
    if frame.crs is None:
        raise DataError("points without a CRS cannot be placed on the sphere")
    geographic = frame.to_crs("EPSG:4326")
    return np.c_[geographic.geometry.x, geographic.geometry.y]


def merge_point_samples(samples, batch=None, tolerance_m: float = 1.0, merge: bool = True):
    """(merged :class:`~mstgat_core.points.PointSamples`, :class:`MergedDuplicates`) of point samples.

    ``batch`` holds one label per sample (or None). The merged samples keep
    the CRS of ``samples`` (each at its first row's position); their
    ``missing`` counts are recounted. With ``merge=False`` the samples are
    returned unchanged beside the counts.
    """
    table = pd.DataFrame(frame_lonlat(samples.table), columns=["lon", "lat"])
    for e in samples.elements:
        table[e] = samples.table[e].to_numpy(dtype=float)
    if batch is not None:
        batch = np.asarray(batch, dtype=object)
        if len(batch) != len(table):
            raise DataError(f"{len(batch)} batch labels for {len(table)} samples")
        table["batch"] = batch
    merged = merge_duplicates(
        table, samples.elements, batch="batch" if batch is not None else None, tolerance_m=tolerance_m, merge=merge
    )
    if not merge:
        return samples, merged
    import geopandas as gpd

    geometry = samples.table.geometry.values[merged.first]
    frame = gpd.GeoDataFrame(
        {e: merged.table[e].to_numpy() for e in samples.elements}, geometry=geometry, crs=samples.table.crs
    )
    missing = {e: int(frame[e].isna().sum()) for e in samples.elements}
    return replace(samples, table=frame, missing=missing), merged


# ----------------------------------------------------------------------------- batches


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[\s_.\-/]+", str(name).lower()) if w]


def batch_candidates(columns) -> list[str]:
    """Columns whose name marks a batch (module docstring), in file order; element columns excluded."""
    from ..data.points import find_element_columns

    try:
        elements = {col for col, _ in find_element_columns(list(columns)).values()}
    except DataError:
        elements = set()
    out = []
    for col in columns:
        if col in elements or str(col).lower() in ("x", "y", "lon", "lat", "longitude", "latitude", "geometry"):
            continue
        low = str(col).lower()
        if low in BATCH_NAMES or any(w in BATCH_NAMES for w in _words(low)):
            out.append(col)
    return out


def batch_labels(values) -> np.ndarray:
    """Batch labels as text; missing ones become :data:`MISSING_BATCH`."""
    series = pd.Series(values, dtype=object)
    text = series.map(lambda v: str(v).strip() if pd.notna(v) else "")
    return np.asarray(text.where(text != "", MISSING_BATCH), dtype=object)


def choose_batch_column(table: pd.DataFrame, column: str | None = None) -> BatchColumn:
    """The batch column of a table: ``column`` (a name, or "none"), else detected (module docstring)."""
    if column is not None and str(column).strip().lower() == "none":
        return BatchColumn(None, None, "batch column disabled (--batch none): " + NO_BATCH)
    if column is not None:
        if column not in table.columns:
            folded = [c for c in table.columns if str(c).lower() == str(column).lower()]
            if len(folded) != 1:
                raise DataError(f"batch column {column!r} not found in the samples' table")
            column = folded[0]
        labels = batch_labels(table[column])
        return BatchColumn(column, labels, f"batch column {column} (named): {len(set(labels))} batches")
    skipped = []
    for candidate in batch_candidates(table.columns):
        labels = batch_labels(table[candidate])
        distinct = len(set(labels))
        if distinct < 2 or distinct == len(labels):
            skipped.append(f"{candidate} ({'one value' if distinct < 2 else 'one value per row'})")
            continue
        rule = f"batch column {candidate} (detected by name): {distinct} batches"
        return BatchColumn(candidate, labels, rule + (f"; skipped {', '.join(skipped)}" if skipped else ""))
    return BatchColumn(None, None, NO_BATCH + (f" (skipped {', '.join(skipped)})" if skipped else ""))


def read_batch(path, column: str | None = None) -> BatchColumn:
    """:func:`choose_batch_column` on a point file (CSV or vector), reading only its candidate columns."""
    path = Path(path)
    disabled = column is not None and str(column).strip().lower() == "none"
    try:
        if path.suffix.lower() == ".csv":
            header = list(pd.read_csv(path, nrows=0).columns)
        else:
            import pyogrio

            header = list(pyogrio.read_info(path)["fields"])
        wanted = [] if disabled else _wanted(header, column)
        if column is not None and not disabled and not wanted:
            raise DataError(f"batch column {column!r} not found in {path.name}")
        if not wanted:
            return choose_batch_column(pd.DataFrame(), column)
        if path.suffix.lower() == ".csv":
            table = pd.read_csv(path, usecols=wanted, dtype=str)
        else:
            table = pyogrio.read_dataframe(path, columns=wanted, read_geometry=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot read the batch column of {path.name}: {' '.join(str(exc).split())}") from None
    return choose_batch_column(table[wanted], column)


def _wanted(header, column) -> list:
    if column is not None:
        return [c for c in header if c == column] or [c for c in header if str(c).lower() == str(column).lower()][:1]
    return batch_candidates(header)
