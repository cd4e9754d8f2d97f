"""Sites (deposits, prospects, occurrences): reading them like samples, and choosing some.

* **Reading**: every format, coordinate column and CRS rule of :mod:`mstgat_core.data.tables`, the
  same as for samples; ``default_crs`` (the grid's) is used only where the file and its column names
  say nothing. Non-point geometries become one representative point each; sites without coordinates
  are dropped and counted.
* **--commodity** (``commodity=``): a symbol or name (``Au``, ``Gold``, ``REE``, ``PGE``, or any word
  such as ``Marble``), several separated by commas (any of them). It matches a site when one of the
  listed commodities of a commodity column is that element, by symbol or name, whatever the case:
  ``Au`` matches ``"Ag, Au, Cu"``, ``"Au?"``, ``"Gold"``, ``"Copper; Gold"`` and ``"gold (placer)"``.
  Within longer text a symbol matches only as written (``Au``/``AU``), so ``in`` is never indium.
  Uncertain entries (``Au?``, ``Gold (?)``) match and are counted as uncertain.
  ``REE`` is Sc, Y and La-Lu (and the words REE / rare earth); ``PGE`` is Ru, Rh, Pd, Os, Ir, Pt.
* **Commodity columns**: those whose name has a part starting with ``commo`` or equal to ``comm`` or
  ``com``, or that contains ``commodit`` (``comm_main``, ``Commodity``, ``major_commodity``, ``SITE_COMMO``,
  ``TARGET_COM``). By default only the **main** ones count: a column whose name says ``minor``,
  ``other``, ``trace``, ``second``, ``by`` (product) or ``subordinate`` is left out
  (``comm_other``, ``minor_commodities``). ``commodity_columns=`` (``--commodity-columns``) chooses.
* **--site-type** / **--status**: values separated by commas, matched whole and case-insensitively,
  ignoring ``?``/``(?)`` and a plural ``s`` (``Mine`` matches ``Mines`` and ``Mine?``; ``Active`` does
  not match ``Inactive``). The site-type column is the first of: a name like ``site_type``, ``type``,
  ``occurrence_status``; the status column the first of ``status``, ``site_status``, ``mine_status``
  (``Mine_statu``), ``occurrence_status``, another name with ``status`` (not security or exploration).
* Choosing no site is an error naming the column and the value.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import DataError
from .columns import ELEMENT_NAMES
from .tables import ImportReport, read_point_table

_REE = ["Sc", "Y", *list(ELEMENT_NAMES)[56:71]]  # La ... Lu
_PGE = ["Ru", "Rh", "Pd", "Os", "Ir", "Pt"]
GROUPS = {
    "REE": (_REE, {"ree", "rees", "rare earth", "rare earths", "rare-earth", "rare-earths", "rare earth elements"}),
    "PGE": (_PGE, {"pge", "pges", "pgm", "pgms", "platinum group", "platinum-group", "platinum group elements"}),
}
EXTRA_NAMES = {"Al": {"aluminum"}, "S": {"sulfur"}, "Cs": {"cesium"}, "Fe": {"iron ore"}}
_MINOR = ("minor", "other", "trace", "second", "by", "byproduct", "subordinate", "accessory")
_SPLIT = re.compile(r"[,;/&+|]|\band\b", re.IGNORECASE)
_UNCERTAIN = re.compile(r"\(\s*\?\s*\)|\?")


# ------------------------------------------------------------------------ columns


def _name_parts(name) -> list[str]:
    return [p for p in re.split(r"[_\s.\-]+", str(name).lower()) if p]


def commodity_columns(columns, chosen=None, source="sites") -> tuple[list, list]:
    """``(used, all commodity columns)``: the main commodity columns (module docstring), or ``chosen``."""
    columns = [c for c in columns if str(c) != "geometry"]
    found = [
        c
        for c in columns
        if "commodit" in str(c).lower() or any(p.startswith("commo") or p in ("comm", "com") for p in _name_parts(c))
    ]
    if chosen:
        missing = [c for c in chosen if c not in columns]
        if missing:
            raise DataError(
                f"{source}: no column {missing[0]!r} (--commodity-columns); commodity columns: "
                + (", ".join(map(str, found)) or "none found")
            )
        return list(chosen), found
    main = [c for c in found if not any(p in _MINOR or p.startswith(_MINOR[:4]) for p in _name_parts(c))]
    return main, found


def _first_column(columns, patterns, refuse=()) -> str | None:
    for pattern in patterns:
        for c in columns:
            low = str(c).lower()
            if re.search(pattern, low) and not any(r in low for r in refuse):
                return c
    return None


def site_type_column(columns):
    """The site-type column (module docstring), or None."""
    return _first_column(columns, [r"site_?type", r"^type$", r"occurr?ence_?status"])


def status_column(columns):
    """The status column (module docstring), or None."""
    return _first_column(
        columns,
        [r"^status$", r"site_?status", r"mine_?statu", r"occurr?ence_?status", r"statu"],
        refuse=("security", "exploration"),
    )


# ------------------------------------------------------------------------ matching


def commodity_targets(query: str) -> tuple[set, set]:
    """``(words, symbols)`` a commodity query matches: lower-case names and symbols matched as whole
    entries or words, and symbols matched as written inside longer text."""
    words, symbols = set(), set()
    for item in [q.strip() for q in str(query).split(",") if q.strip()]:
        key = item.upper()
        if key in GROUPS:
            members, group_words = GROUPS[key]
            words |= group_words
            for symbol in members:
                words |= {symbol.lower(), ELEMENT_NAMES[symbol].lower()} | EXTRA_NAMES.get(symbol, set())
                symbols.add(symbol)
            continue
        symbol = next((s for s, n in ELEMENT_NAMES.items() if item.lower() in (s.lower(), n.lower())), None)
        if symbol is None:
            symbol = next((s for s, extra in EXTRA_NAMES.items() if item.lower() in extra), None)
        if symbol is not None:
            words |= {symbol.lower(), ELEMENT_NAMES[symbol].lower()} | EXTRA_NAMES.get(symbol, set())
            symbols.add(symbol)
        else:
            words.add(item.lower())
    if not words:
        raise DataError("--commodity is empty")
    return words, symbols


def _entry_matches(entry: str, words: set, symbols: set) -> bool:
    clean = " ".join(_UNCERTAIN.sub(" ", entry).split())
    if not clean:
        return False
    if clean.lower() in words:
        return True
    for token in (t for t in re.split(r"[\s\-()\[\]:.]+", clean) if t):
        if token in symbols or (token.isupper() and token.capitalize() in symbols):
            return True  # a symbol inside longer text counts only as written: Au, AU (never "in")
        if len(token) > 2 and token.lower() in words:
            return True
    return False


def commodity_match(values: pd.Series, query: str) -> tuple[np.ndarray, np.ndarray]:
    """``(matches, uncertain)`` per value of a commodity column (module docstring).

    >>> m, u = commodity_match(pd.Series(["Ag, Au, Cu", "Au?", "Gold", "Copper; Gold", "Cu", None]), "Au")
    >>> m.tolist(), u.tolist()
    ([True, True, True, True, False, False], [False, True, False, False, False, False])
    """
    words, symbols = commodity_targets(query)
    matches = np.zeros(len(values), dtype=bool)
    uncertain = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        for entry in _SPLIT.split(str(value)):
            if _entry_matches(entry, words, symbols):
                matches[i] = True
                uncertain[i] |= bool(_UNCERTAIN.search(entry))
    return matches, uncertain & matches


def _normal(value: str) -> str:
    text = " ".join(_UNCERTAIN.sub(" ", str(value)).lower().split())
    return text[:-1] if len(text) > 3 and text.endswith("s") else text


def value_match(values: pd.Series, wanted: str) -> tuple[np.ndarray, np.ndarray]:
    """``(matches, uncertain)``: values equal to one of the comma-separated ``wanted`` (module docstring)."""
    targets = {_normal(w) for w in str(wanted).split(",") if w.strip()}
    matches = np.zeros(len(values), dtype=bool)
    uncertain = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        for entry in re.split(r"[,;/]", str(value)):
            if _normal(entry) in targets:
                matches[i] = True
                uncertain[i] |= bool(_UNCERTAIN.search(entry))
    return matches, uncertain & matches


def _common_values(frame, columns, limit=6) -> str:
    counts = pd.concat([frame[c].dropna().astype(str) for c in columns]).value_counts() if columns else pd.Series()
    return ", ".join(counts.index[:limit]) if len(counts) else "none"


def select_sites(frame: pd.DataFrame, commodity=None, commodity_cols=None, site_type=None, status=None,
                 source="sites"):  # fmt: skip
    """The sites that every given filter keeps, and one selection entry per filter (plain dicts)."""
    keep = np.ones(len(frame), dtype=bool)
    entries = []
    columns = list(frame.columns)
    filters = []
    if commodity:
        used, found = commodity_columns(columns, commodity_cols, source)
        if not used:
            raise DataError(
                f"{source}: no commodity column to match --commodity {commodity} in (found: "
                + (", ".join(map(str, found)) or "none")
                + "; name them with --commodity-columns)"
            )
        filters.append(("--commodity", commodity, used, commodity_match))
    for flag, value, finder in (("--site-type", site_type, site_type_column), ("--status", status, status_column)):
        if value:
            column = finder(columns)
            if column is None:
                raise DataError(f"{source}: no {flag.lstrip('-')} column found for {flag} {value}")
            filters.append((flag, value, [column], value_match))
    for flag, value, used, matcher in filters:
        hit = np.zeros(len(frame), dtype=bool)
        unsure = np.zeros(len(frame), dtype=bool)
        for column in used:
            m, u = matcher(frame[column], value)
            unsure |= u & ~hit
            hit |= m
        before = keep.copy()
        keep &= hit
        if not keep.any():
            raise DataError(
                f"{source}: no site matches {flag} {value} in {', '.join(map(str, used))} "
                f"(values there: {_common_values(frame.loc[before], used)})"
            )
        entries.append(
            dict(
                filter=f"{flag} {value}",
                value=value,
                columns=[str(c) for c in used],
                kept=int(keep.sum()),
                dropped=int(before.sum() - keep.sum()),
                uncertain=int((unsure & keep).sum()),
            )
        )
    return keep, entries


# ------------------------------------------------------------------------ loading


def load_sites(
    path,
    crs=None,
    x_col=None,
    y_col=None,
    default_crs=None,
    commodity=None,
    commodity_columns=None,
    site_type=None,
    status=None,
    where=None,
) -> gpd.GeoDataFrame:
    """Sites as points in their CRS, chosen by the filters of the module docstring.

    Returns
    -------
    gpd.GeoDataFrame
        The chosen sites (every column kept), ``attrs["import_report"]`` their
        :class:`~mstgat_core.data.tables.ImportReport` (:func:`site_report` gives it as plain data).
    """
    path = Path(path)
    read = read_point_table(path, x_col, y_col, crs, kind="deposits", where=where, default_crs=default_crs)
    frame = read.frame
    keep, entries = select_sites(
        pd.DataFrame(frame.drop(columns=frame.geometry.name)), commodity, commodity_columns, site_type, status,
        path.name,
    )  # fmt: skip
    frame = frame.loc[keep] if not keep.all() else frame
    report = ImportReport(
        source=path.name,
        kind="sites",
        format=read.format,
        rows_read=read.n_read,
        rows_kept=int(len(frame)),
        where=read.where,
        where_dropped=read.where_dropped,
        no_coordinates=read.no_coordinates,
        coordinates=read.coordinates,
        crs=frame.crs.to_string() if frame.crs is not None else None,
        crs_how=read.crs_how,
        selection=entries,
        notes=[read.geometry_note] if read.geometry_note else [],
    )
    frame = frame.copy()
    frame.attrs["import_report"] = report
    return frame


def site_report(sites) -> dict | None:
    """The import report of sites from :func:`load_sites` as plain data, or None."""
    report = getattr(sites, "attrs", {}).get("import_report")
    return report.as_dict() if report is not None else None


def place_report(sites, cells) -> ImportReport | None:
    """The sites' report with where they fell on a grid (``cells`` from
    :func:`~mstgat_core.data.io.deposit_cells`) added; None when the sites have no report."""
    report = getattr(sites, "attrs", {}).get("import_report")
    if report is None:
        return None
    report.placement = "on the grid: " + cells.attrs.get("summary", "")
    return report
