"""What the commands share: the parser that keeps errors to one line, loading a survey with its support,
progress bars, output checks and the parsing of fold and seed options."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

from ..errors import DataError, one_line

POINT_SUFFIXES = (".csv", ".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet", ".geoparquet", ".pq")


# the library's setting names (DataError.settings) -> the flag that sets each: the one table the CLI's error
# lines use to name flags (library messages speak the library's words)
SETTING_FLAGS = {
    "backbone": "--pretrained",
    "buffer": "--buffer",
    "datasets": "--datasets",
    "deposits": "--deposits",
    "elements": "--elements",
    "epochs": "--epochs",
    "fold_method": "--fold-method",
    "layer": "--layer",
    "link_distance": "--link-distance",
    "members": "--members",
    "methods": "--methods",
    "n_folds": "--folds",
    "readout": "--readout",
    "scales": "--scales",
    "seeds": "--seeds",
    "segments": "--segments",
    "share": "--top",
    "suite": "--suite",
    "tile": "--tile",
    "transform": "--transform",
    "validation_fraction": "--validation-fraction",
    "variant": "--variant",
}


def _flag_value(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def error_line(exc: BaseException) -> str:
    """The one line ``mstgat`` prints for a user error: ``error: <message>``, followed by the flags that set
    what a :class:`~mstgat_core.errors.DataError` names (``(--buffer)``; with suggested values
    ``(--folds 4 or --folds loco)``), looked up in :data:`SETTING_FLAGS`."""
    line = f"error: {one_line(exc)}"
    settings = getattr(exc, "settings", ())
    flags = [SETTING_FLAGS[s] for s in settings if s in SETTING_FLAGS]
    if not flags:
        return line
    values = getattr(exc, "values", ())
    if values and settings[0] in SETTING_FLAGS:
        first = " or ".join(f"{flags[0]} {_flag_value(v)}" for v in values)
        hints = [first, *flags[1:]]
    else:
        hints = flags
    return f"{line} ({'; '.join(hints)})"


class ArgumentError(Exception):
    """Raised instead of argparse's print-and-exit, so errors stay one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ArgumentError(message)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none (None or False)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def crs_text(crs) -> str | None:
    if crs is None:
        return None
    from pyproj import CRS

    return CRS.from_user_input(crs).to_string()


def add_support_arg(p):
    p.add_argument(
        "--support",
        default="auto",
        metavar="auto|estimate|none|MASK",
        help="which cells are measured ground (everything else is ignored and left NaN): auto = the grid's own "
        "support layer (grids made from points carry it), else every cell; estimate = from the texture of an "
        "interpolated surface; none = every cell with data; or a mask file (.tif/.nc raster, 1 = measured; "
        ".gpkg/.geojson/.shp polygons), reprojected onto the grid",
    )


def load_survey_grid(args, elements=None, report: bool = True):
    """The grid of ``args.data`` with its sample support set by ``--support`` (reported in one line on stderr when
    the grid has one)."""
    from ..data import io
    from ..data.support import apply_support, describe, support_summary

    grid = apply_support(io.load_grid(args.data, elements=elements), getattr(args, "support", "auto"))
    summary = support_summary(grid)
    if report and summary["method"] is not None:
        print(describe(summary), file=sys.stderr)
    return grid


LABEL_FREE_NOTE = (
    "note: head share 0: in inner cross-validation the deposits did not improve on the label-free score, "
    "so the map is that score; its uncertainty is the score's spread over element groupings (members 1..k hide "
    "other element groups together), not over deposits"
)


@contextmanager
def epoch_progress(epochs: int, desc: str):
    """A progress bar on stderr; yields the per-epoch callback (a log with ``loss``) that advances it."""
    from tqdm import tqdm

    with tqdm(total=epochs, desc=desc, unit="epoch", file=sys.stderr) as bar:

        def progress(log):
            bar.update(1)
            bar.set_postfix(loss=f"{log.loss:.3f}")

        yield progress


def load_labelled_grid(args):
    """The grid and its deposit cells, with a one-line report of dropped deposits."""
    from ..data import io

    grid = load_survey_grid(args, elements=getattr(args, "elements", None))
    sites = load_site_file(args, default_crs=grid.rio.crs)
    deposits = io.deposit_cells(grid, sites)
    print_site_report(sites, deposits)
    return grid, deposits


def check_output_folder(path) -> None:
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise DataError(f"output folder does not exist: {folder}")


def add_where_arg(p):
    """``--where``: the sample filter of point files."""
    p.add_argument(
        "--where",
        metavar="FILTER",
        help="points: keep only the rows this filter selects, in pandas query syntax on the file's columns, "
        "e.g. \"sample_type == 'Stream Sediment'\" (comparisons of a column with a value, in/not in lists, "
        "joined by and/or; `quoted name` for names with blanks)",
    )


def add_site_args(p):
    """``--commodity``, ``--commodity-columns``, ``--site-type`` and ``--status``: which sites of the
    ``--deposits`` file count (rules: :mod:`mstgat_core.data.sites`)."""
    p.add_argument(
        "--commodity",
        help="keep the sites with this commodity, by symbol or name (Au, Gold, Cu, REE, PGE; several: Au,Cu) in "
        "list-valued or worded commodity columns ('Ag, Au, Cu', 'Au?', 'Copper; Gold')",
    )
    p.add_argument(
        "--commodity-columns",
        type=lambda t: [c.strip() for c in t.split(",") if c.strip()],
        help="the commodity columns to search (default: the main ones found by name, e.g. comm_main, "
        "major_commodity, Commodity; not minor/other/trace ones)",
    )
    p.add_argument("--site-type", help="keep these site types, comma-separated (e.g. Mine,Prospect)")
    p.add_argument("--status", help="keep these statuses, comma-separated (e.g. Active,Inactive)")


def site_options(args) -> dict:
    """The site filters of ``args`` as keywords of :func:`~mstgat_core.data.io.load_deposits`."""
    return {
        "commodity": getattr(args, "commodity", None),
        "commodity_columns": getattr(args, "commodity_columns", None),
        "site_type": getattr(args, "site_type", None),
        "status": getattr(args, "status", None),
    }


def load_site_file(args, default_crs=None):
    """The sites of ``args.deposits`` chosen by the site options; ``default_crs`` (the grid's or the samples')
    where the file gives none."""
    from ..data import io

    crs = getattr(args, "crs", None)
    return io.load_deposits(args.deposits, crs=crs, default_crs=default_crs, **site_options(args))


def print_site_report(sites, cells=None) -> None:
    """The sites' import report on stderr (with where they fell on the grid, given ``cells``)."""
    from ..data.sites import place_report

    report = sites.attrs.get("import_report") if hasattr(sites, "attrs") else None
    if cells is not None:
        report = place_report(sites, cells) or report
        if report is None:
            print(cells.attrs.get("summary", ""), file=sys.stderr)
    if report is not None:
        print(report.text(), file=sys.stderr)


def load_point_samples(args, elements=None):
    """Point samples for ``score`` and ``evaluate``: the target checked, the import report on stderr
    (missing values are filled by the median later)."""
    from ..data.points import load_points

    samples = load_points(
        args.data, crs=args.crs, elements=elements, max_missing=args.max_missing, where=getattr(args, "where", None)
    )
    if args.target is not None and args.target not in samples.elements:
        raise DataError(f"target element {args.target!r} is not among the elements used")
    print(samples.report.text(), file=sys.stderr)
    return samples


def parse_folds(text) -> int | str:
    """``--folds``: a whole number of folds (at least 2) or ``loco``."""
    if str(text).strip().lower() == "loco":
        return "loco"
    try:
        folds = int(text)
    except ValueError:
        raise DataError(f"--folds must be a whole number or 'loco', got {text!r}") from None
    if folds < 2:
        raise DataError(f"--folds must be at least 2 (or 'loco'), got {folds}")
    return folds


def parse_seeds(text) -> tuple[int, ...]:
    """``--seeds``: comma-separated whole numbers."""
    try:
        seeds = tuple(int(s) for s in str(text).split(",") if s.strip())
    except ValueError:
        raise DataError(f"--seeds must be whole numbers separated by commas, got {text!r}") from None
    if not seeds:
        raise DataError("--seeds needs at least one seed")
    return seeds
