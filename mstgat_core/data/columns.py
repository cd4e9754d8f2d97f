"""Which columns of a point table are element or oxide concentrations, in which unit.

Rules (documented here because they decide what the model reads):

* **A column name** is split into parts at ``_``, blanks and brackets (``Au (ppb)``, ``Au_ppb_icp``,
  ``au_PPB``, ``Fe2O3(T)``). The first part is the **analyte**: an element symbol of the periodic table
  (:data:`ELEMENTS`), an oxide of one (``SiO2``, ``Al2O3``, ``U3O8``), a total oxide (``Fe2O3T``,
  ``TFe2O3``, ``Fe2O3(T)``, ``FeOT``: all named ``<oxide>T``) or a total (:data:`TOTALS`: ``LOI``, ``TC``,
  ``TOC``, ``TS``, ``H2O+``/``H2Opos``, ``H2O-``/``H2Oneg``). Symbols and formulas are read whatever their
  case (``AU``, ``sio2``) and written in their usual form (``Au``, ``SiO2``).
* The other parts: a **unit** (:data:`UNIT_WORDS`: ppm, ppb, ppt, pct, percent, ``%``, ``wt%``,
  mg/kg, g/t, ...), **method** or lab codes (any part after the unit, a known method such as ``icp``,
  ``xrf``, ``afs``, or a part holding a digit such as ``511P``). A column whose last part is a
  qualifier word (:data:`FLAG_WORDS`: ``Zr_511P_T``, ``Cu_flag``) holds below-detection flags, and one
  with a derived-value word (:data:`DERIVED_WORDS`: ``Au_zscore``, ``Cu_rank``) is not a concentration;
  neither is read as an element. Any other part where the unit should be (``Au_furlong``) is an
  **unknown unit**: an error when the column holds numbers (name the columns with ``elements=``
  to read the others), metadata when it holds text.
* **A bare name** (``Au``, ``SiO2``, ``LOI``: the analyte alone) is an element only when (1) it is not
  a coordinate column, (2) its symbol is one a survey measures (:data:`BARE_ELEMENTS`: not the noble
  gases, nor Tc, Pm, Po, At, Fr, Ra, Ac, Pa, nor anything past U, so ``No`` is never nobelium), (3) it
  is written as the symbol, in capitals or (for names that are no English word and longer than one
  letter) in lower case: ``In``/``IN`` are indium, ``in``/``as``/``be``/``s``/``y`` are not read,
  (4) its values are numbers (below-detection strings such as ``<0.5`` count), and (5) at least
  :data:`MIN_OTHER_ELEMENTS` other columns of the table are elements. In a table whose other element
  columns state their unit, a bare one-letter name (``B``, ``S``, ``Y``...) is not read at all: there
  it is more often a label than boron, sulphur or yttrium.
* **Units** are converted to one unit per analyte: **ppm** for elements and **% (weight per cent)**
  for oxides and totals. ``ppt`` is parts per **trillion** (1e-6 ppm; the unit precious-metal
  surveys use), ``pct``/``percent``/``%``/``wt%`` are weight per cent (1 % = 10,000 ppm). A column
  without a unit keeps its values as read and its unit is reported as not given.
* **One column per analyte**: when several columns give the same element (two methods, two units, or
  an oxide beside its element: ``Cr_ppm_xrf`` and ``Cr_ppm_icp``, ``Fe2O3T_pct`` and ``Fe_ppm``), the
  one with fewer missing values is kept; ties go to the element over an oxide, then to fewer
  below-detection values, then to the first column. The others are reported with the reason.
  Totals (LOI, TC, ...) are analytes of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError

# Z = 1 ... 103, symbol and English name
_TABLE = """H Hydrogen|He Helium|Li Lithium|Be Beryllium|B Boron|C Carbon|N Nitrogen|O Oxygen|F Fluorine|Ne Neon|
Na Sodium|Mg Magnesium|Al Aluminium|Si Silicon|P Phosphorus|S Sulphur|Cl Chlorine|Ar Argon|K Potassium|Ca Calcium|
Sc Scandium|Ti Titanium|V Vanadium|Cr Chromium|Mn Manganese|Fe Iron|Co Cobalt|Ni Nickel|Cu Copper|Zn Zinc|
Ga Gallium|Ge Germanium|As Arsenic|Se Selenium|Br Bromine|Kr Krypton|Rb Rubidium|Sr Strontium|Y Yttrium|
Zr Zirconium|Nb Niobium|Mo Molybdenum|Tc Technetium|Ru Ruthenium|Rh Rhodium|Pd Palladium|Ag Silver|Cd Cadmium|
In Indium|Sn Tin|Sb Antimony|Te Tellurium|I Iodine|Xe Xenon|Cs Caesium|Ba Barium|La Lanthanum|Ce Cerium|
Pr Praseodymium|Nd Neodymium|Pm Promethium|Sm Samarium|Eu Europium|Gd Gadolinium|Tb Terbium|Dy Dysprosium|
Ho Holmium|Er Erbium|Tm Thulium|Yb Ytterbium|Lu Lutetium|Hf Hafnium|Ta Tantalum|W Tungsten|Re Rhenium|Os Osmium|
Ir Iridium|Pt Platinum|Au Gold|Hg Mercury|Tl Thallium|Pb Lead|Bi Bismuth|Po Polonium|At Astatine|Rn Radon|
Fr Francium|Ra Radium|Ac Actinium|Th Thorium|Pa Protactinium|U Uranium|Np Neptunium|Pu Plutonium|Am Americium|
Cm Curium|Bk Berkelium|Cf Californium|Es Einsteinium|Fm Fermium|Md Mendelevium|No Nobelium|Lr Lawrencium"""
ELEMENT_NAMES = dict(item.split() for item in _TABLE.replace("\n", "").split("|"))
"""Element symbol -> English name (Z = 1 to 103)."""
ELEMENTS = tuple(ELEMENT_NAMES)
_NOT_MEASURED = {"He", "Ne", "Ar", "Kr", "Xe", "Rn", "Tc", "Pm", "Po", "At", "Fr", "Ra", "Ac", "Pa"}
BARE_ELEMENTS = frozenset(ELEMENTS[: ELEMENTS.index("U") + 1]) - _NOT_MEASURED
"""Symbols read from a bare column name (see the module docstring)."""
_ENGLISH_WORDS = {"as", "at", "be", "he", "in", "no"}  # never read as bare lower-case names
MIN_OTHER_ELEMENTS = 3

TOTALS = {"loi": "LOI", "tc": "TC", "toc": "TOC", "ts": "TS", "tic": "TIC", "h2o+": "H2O+", "h2opos": "H2O+",
          "h2o-": "H2O-", "h2oneg": "H2O-", "h2ot": "H2OT", "co2t": "CO2T"}  # fmt: skip
"""Totals and bulk measurements read as analytes of their own (lower-case name -> name)."""

# unit word (lower case) -> canonical unit key
UNIT_WORDS = {
    "ppm": "ppm", "mg/kg": "ppm", "ug/g": "ppm", "µg/g": "ppm", "μg/g": "ppm", "g/t": "ppm", "gpt": "ppm",
    "ppb": "ppb", "ug/kg": "ppb", "µg/kg": "ppb", "μg/kg": "ppb", "ng/g": "ppb", "mg/t": "ppb",
    "ppt": "ppt", "ng/kg": "ppt",
    "pct": "%", "percent": "%", "per": "%", "%": "%", "wt%": "%", "wt.%": "%", "wtpct": "%", "wt": "%",
}  # fmt: skip
_PER_PPM = {"ppm": 1.0, "ppb": 1e-3, "ppt": 1e-6, "%": 1e4}
ELEMENT_UNIT, OXIDE_UNIT = "ppm", "%"

FLAG_WORDS = {"t", "flag", "flags", "qualifier", "qual", "q", "lt", "rmk", "remark", "dl", "ldl", "lod", "mdl"}
DERIVED_WORDS = {"z", "zscore", "score", "rank", "residual", "resid", "anomaly", "log", "ln", "log10", "clr",
                 "percentile", "pctl", "class", "norm", "std", "contrib", "weight"}  # fmt: skip
METHOD_WORDS = {"icp", "icpms", "icp-ms", "icpoes", "icp-oes", "icpaes", "icp-aes", "ms", "oes", "aes", "es",
                "xrf", "pxrf", "aas", "gfaas", "cvaas", "afs", "ise", "gc", "irs", "ir", "gr", "grav", "ina", "inaa",
                "naa", "fa", "fire", "aqr", "ar", "4a", "mmi", "bleg", "cv", "leco", "titr", "xrd", "la", "tot",
                "total", "partial", "fus", "fusion", "dig", "digest", "ea", "hyd", "sel", "ion"}  # fmt: skip
METADATA_WORDS = {"sample", "samples", "id", "no", "nr", "num", "number", "code", "name", "type", "date", "site",
                  "depth", "from", "to", "x", "y", "z", "east", "north", "utm", "coord", "lat", "lon", "long", "elev",
                  "m", "km", "received", "situ", "horizon", "ordinate", "label", "comment", "remark", "notes", "group",
                  "area"}  # fmt: skip
_OXIDE = re.compile(r"^(?P<el>[A-Z][a-z]?)(?P<n>\d*)O(?P<m>\d*)$")


@dataclass(frozen=True)
class ColumnName:
    """What a column's name says: the analyte, its kind, the unit and method parts, and the role."""

    column: str
    analyte: str | None  # canonical name: Au, SiO2, Fe2O3T, LOI
    element: str | None  # the element it measures (Fe for Fe2O3T), None for totals
    kind: str  # "element", "oxide", "total"
    unit: str | None  # canonical unit key as written (ppm, ppb, ppt, %), None when not given
    unit_word: str | None  # the unit as written
    method: str  # method or lab code parts ("icp", "511P"), "" when none
    role: str  # "value", "flag", "derived", "unknown-unit", "bare"
    bad_unit: str = ""

    @property
    def target_unit(self) -> str:
        """The unit values are converted to: ppm for elements, % for oxides and totals."""
        return ELEMENT_UNIT if self.kind == "element" else OXIDE_UNIT


def _parts(name: str) -> list[str]:
    text = str(name).strip()
    text = re.sub(r"\((t|tot|total)\)", "T", text, flags=re.IGNORECASE)  # Fe2O3(T)
    text = re.sub(r"wt\s*\.?\s*%", "wt%", text, flags=re.IGNORECASE)
    text = re.sub(r"[()\[\]{}]", " ", text)
    return [p for p in re.split(r"[_\s]+", text) if p]


def _symbol(text: str, exact_only: bool = False) -> str | None:
    if text in ELEMENT_NAMES:
        return text
    if exact_only:
        return None
    folded = text[:1].upper() + text[1:].lower()
    return folded if folded in ELEMENT_NAMES else None


def parse_analyte(text: str) -> tuple[str, str | None, str] | None:
    """``(name, element, kind)`` for an element symbol, oxide, total oxide or total; None otherwise.

    >>> parse_analyte("sio2"), parse_analyte("TFe2O3"), parse_analyte("AU"), parse_analyte("LOI")
    (('SiO2', 'Si', 'oxide'), ('Fe2O3T', 'Fe', 'oxide'), ('Au', 'Au', 'element'), ('LOI', None, 'total'))
    """
    text = str(text).strip()
    if not text or len(text) > 12:
        return None
    if text.lower() in TOTALS:
        return TOTALS[text.lower()], None, "total"
    symbol = _symbol(text)
    if symbol is not None:
        return symbol, symbol, "element"
    oxide = _oxide(text)
    if oxide is not None:
        return oxide[0], oxide[1], "oxide"
    for body in (text[1:] if text[:1] in "Tt" else None, text[:-1] if text[-1:] in "Tt" else None):
        oxide = _oxide(body) if body and len(body) > 1 and body[0].isalpha() else None
        if oxide is not None:  # TFe2O3, Fe2O3T: total iron as Fe2O3
            return oxide[0] + "T", oxide[1], "oxide"
    return None


def _oxide(text: str):
    """(formula, element) of an oxide written in any case (``SIO2``, ``cao``), or None."""
    match = _OXIDE.match(text)
    if match and match["el"] in ELEMENT_NAMES:
        return text, match["el"]
    for size in (2, 1):  # any case: the element first, then O and numbers
        head, rest = text[:size], text[size:]
        symbol = _symbol(head)
        m = re.fullmatch(r"(\d*)[oO](\d*)", rest)
        if symbol and m and symbol != "O":
            return f"{symbol}{m[1]}O{m[2]}", symbol
    return None


def parse_column(name) -> ColumnName | None:
    """What the name of a column says (module docstring), or None when it names no analyte.

    >>> c = parse_column("Au_ppb_icp")
    >>> c.analyte, c.unit, c.method, c.role
    ('Au', 'ppb', 'icp', 'value')
    >>> parse_column("Zr_511P_T").role, parse_column("Au (ppb)").unit, parse_column("Au_furlong").role
    ('flag', 'ppb', 'unknown-unit')
    """
    parts = _parts(name)
    if not parts:
        return None
    analyte = parse_analyte(parts[0])
    if analyte is None:
        return None
    canonical, element, kind = analyte
    rest = parts[1:]
    # "wt pct" / "wt %": one unit
    if len(rest) >= 2 and rest[0].lower() == "wt" and rest[1].lower() in ("pct", "percent", "%"):
        rest = ["wt%", *rest[2:]]
    lower = [p.lower() for p in rest]
    base = dict(column=name, analyte=canonical, element=element, kind=kind)
    if not rest:
        return ColumnName(**base, unit=None, unit_word=None, method="", role="bare")
    if lower[-1] in FLAG_WORDS:
        return ColumnName(**base, unit=None, unit_word=None, method="", role="flag")
    if any(p in DERIVED_WORDS for p in lower):
        return ColumnName(**base, unit=None, unit_word=None, method="", role="derived")
    unit_at = next((i for i, p in enumerate(lower) if p in UNIT_WORDS), None)
    if unit_at is not None and all(_is_method(p) for p in lower[:unit_at]):
        method = "_".join(rest[:unit_at] + rest[unit_at + 1 :])
        return ColumnName(**base, unit=UNIT_WORDS[lower[unit_at]], unit_word=rest[unit_at], method=method, role="value")
    if _is_method(lower[0]):
        return ColumnName(**base, unit=None, unit_word=None, method="_".join(rest), role="value")
    if lower[0] in METADATA_WORDS or (kind == "element" and canonical not in BARE_ELEMENTS):
        return None  # No_sample, Co_ordinate, Y_utm: not a concentration
    return ColumnName(**base, unit=None, unit_word=None, method="", role="unknown-unit", bad_unit=rest[0])


def _is_method(part: str) -> bool:
    return part in METHOD_WORDS or any(ch.isdigit() for ch in part)


def conversion_factor(unit: str | None, kind: str) -> float:
    """Factor from ``unit`` to the analyte's unit (ppm for elements, % for oxides and totals); 1 without a unit."""
    if unit is None:
        return 1.0
    per_ppm = _PER_PPM[unit]
    return per_ppm if kind == "element" else per_ppm / _PER_PPM["%"]


# ------------------------------------------------------------------------ values


MISSING_TOKENS = {"", "nan", "na", "n/a", "n.a.", "none", "-", "null", "nd", "n.d."}


def numeric_like(values: pd.Series) -> bool:
    """Whether every value that is not missing reads as a number (``<0.5`` and ``>10`` count), at least one."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return bool(values.notna().any())
    text = values.astype("string").str.strip()
    present = ~(values.isna() | text.str.lower().isin(MISSING_TOKENS).fillna(True))
    if not present.any():
        return False
    numbers = pd.to_numeric(text[present].str.lstrip("<>").str.strip(), errors="coerce")
    return bool(numbers.notna().all())


def _bare_allowed(column: str, parsed: ColumnName, unit_style: bool) -> bool:
    word = str(column).strip()
    if parsed.kind == "element":
        symbol = parsed.analyte
        if symbol not in BARE_ELEMENTS:
            return False
        if unit_style and len(symbol) == 1:
            return False
        if word == symbol or word == symbol.upper():
            return True
        return word == symbol.lower() and len(symbol) > 1 and word not in _ENGLISH_WORDS
    return True  # oxides and totals: any case


@dataclass
class Recognised:
    """The element columns of a table: ``chosen`` (analyte -> :class:`ColumnName`, several per analyte
    possible), ``ignored`` (column -> why it was not read as an element), in column order."""

    chosen: list
    ignored: dict


def recognise_columns(frame: pd.DataFrame, exclude=(), elements=None) -> Recognised:
    """The element and oxide columns of ``frame`` (module docstring); ``exclude`` are coordinate and
    geometry columns. ``elements`` (names or column names) reads exactly those.

    Raises
    ------
    DataError
        If a column holding numbers has an unknown unit, or a name in ``elements`` is neither an
        element nor a column, or no element column is found.
    """
    columns = [c for c in frame.columns if c not in set(exclude)]
    parsed = {c: parse_column(c) for c in columns}
    if elements is not None:
        return _chosen_by_name(frame, columns, parsed, elements)
    ignored, values, bare = {}, [], []
    for col, p in parsed.items():
        if p is None:
            if any(part.lower() in UNIT_WORDS for part in _parts(col)[1:]):
                ignored[col] = "a unit, but no element or oxide name"
            continue
        if p.role == "flag":
            ignored[col] = f"below-detection flags of {p.analyte}"
        elif p.role == "derived":
            ignored[col] = "a derived value, not a concentration"
        elif p.role == "unknown-unit":
            if numeric_like(frame[col]):
                raise DataError(
                    f"column {col}: unknown unit {p.bad_unit!r} (known: ppm, ppb, ppt (parts per trillion), %, "
                    "pct, percent, wt%, mg/kg, ug/kg, g/t); rename it or choose the element columns (--elements)"
                )
            ignored[col] = f"text, and {p.bad_unit!r} is no unit"
        elif p.role == "bare":
            bare.append(p)
        else:
            values.append(p)
    unit_style = any(p.unit is not None for p in values)
    readable = []
    for p in bare:
        if not _bare_allowed(p.column, p, unit_style):
            ignored[p.column] = "a bare name that is ambiguous here (module docstring of mstgat_core.data.columns)"
        elif not numeric_like(frame[p.column]):
            ignored[p.column] = "not numbers"
        else:
            readable.append(p)
    if len(values) + len(readable) <= MIN_OTHER_ELEMENTS:  # each bare name needs that many others
        for p in readable:
            ignored[p.column] = f"a bare name with fewer than {MIN_OTHER_ELEMENTS} other element columns beside it"
        readable = []
    chosen = sorted(values + readable, key=lambda p: columns.index(p.column))
    if not chosen:
        raise DataError(
            "no element columns found (expected names such as Cu_ppm, Au_ppb_icp, SiO2_pct or bare symbols "
            "Cu, Au, SiO2 beside others; or pass --elements)"
        )
    return Recognised(chosen, ignored)


def _chosen_by_name(frame, columns, parsed, elements) -> Recognised:
    by_analyte = {}
    for p in parsed.values():
        if p is not None and p.role in ("value", "bare"):
            by_analyte.setdefault(p.analyte, []).append(p)
    chosen = []
    for name in elements:
        analyte = parse_analyte(name)
        if name in columns and name not in by_analyte:
            p = parsed.get(name)
            if p is None or p.role not in ("value", "bare"):
                p = ColumnName(name, name, None, "element", None, None, "", "value")
            chosen.append(p)
        elif name in by_analyte:
            chosen.extend(by_analyte[name])
        elif analyte is not None and analyte[0] in by_analyte:
            chosen.extend(by_analyte[analyte[0]])
        else:
            raise DataError(f"unknown element or column: {name}")
    return Recognised(chosen, {})


def duplicate_names(names) -> list[str]:
    """Column names that occur more than once (exactly), in order."""
    seen, twice = set(), []
    for name in names:
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    return twice


def choose_per_analyte(candidates: dict, protected=()) -> tuple[dict, dict]:
    """One column per analyte group (module docstring).

    ``candidates`` maps column -> (ColumnName, values, censored count). Columns are grouped by the
    element they measure (totals by their own name). Returns ``(kept, dropped)``: kept column ->
    analyte name, dropped name -> reason. ``protected`` columns (named in ``elements=``) are never
    dropped as duplicates.
    """
    groups: dict = {}
    for col, (p, _values, _censored) in candidates.items():
        key = p.element or p.analyte
        if col in protected:
            key = ("protected", col)
        groups.setdefault(key, []).append(col)
    kept, dropped = {}, {}
    order = list(candidates)
    for cols in groups.values():

        def rank(col):
            p, values, censored = candidates[col]
            return (int(np.isnan(values).sum()), p.kind != "element", censored, order.index(col))

        best = min(cols, key=rank)
        winner = candidates[best][0].analyte
        kept[best] = winner
        for col in cols:
            if col == best:
                continue
            p = candidates[col][0]
            ours, theirs = rank(col), rank(best)
            why = (
                "more missing values"
                if ours[0] > theirs[0]
                else "an oxide beside its element"
                if ours[1] > theirs[1]
                else "more values below detection"
                if ours[2] > theirs[2]
                else "the first column is kept on a tie"
            )
            key = p.analyte if p.analyte != winner and p.analyte not in dropped else col
            dropped[key] = f"duplicate of {winner} ({why}; {best} kept)"
    return kept, dropped
