"""``mstgat info``, ``grid`` and ``synth``: describe, grid and make survey data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..data.points import CENSOR_RULES, GRIDDING_METHODS
from ..errors import DataError
from ..files import write_text_atomically
from .common import (
    POINT_SUFFIXES,
    add_site_args,
    add_support_arg,
    add_where_arg,
    crs_text,
    load_survey_grid,
    site_options,
)

# ---------------------------------------------------------------------------- info


def add_info_args(p):
    """Arguments of ``mstgat info``."""
    p.add_argument(
        "data",
        help="grid (.nc, .zarr, .tif, folder, .zip) or point file (.csv, .parquet, .gpkg, .geojson, .shp, .fgb)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--crs", help="CRS of a point table, e.g. EPSG:3067 (default: from the file or its column names)")
    p.add_argument("--x-col", help="x (easting) column of a point table (default: detected)")
    p.add_argument("--y-col", help="y (northing) column of a point table (default: detected)")
    p.add_argument(
        "--max-missing",
        type=float,
        default=0.5,
        help="points: drop element columns with a larger share of missing values",
    )
    add_where_arg(p)
    p.add_argument(
        "--sites",
        action="store_true",
        help="read the point file as sites (deposits, occurrences) and report which --commodity, --site-type and "
        "--status choose",
    )
    add_site_args(p)
    add_support_arg(p)


def cmd_info(args) -> int:
    """``mstgat info``: print a grid's elements, shape, CRS, cell size, valid cells, support and NaN counts
    (or a point file's import report: rows, CRS, elements, units, censored and missing values; with
    ``--sites``, the sites chosen); ``--json`` prints one object.
    """
    from ..data import io

    path = Path(args.data)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if args.sites:
        sites = io.load_deposits(path, crs=args.crs, x_col=args.x_col, y_col=args.y_col, where=args.where,
                                 **site_options(args))  # fmt: skip
        report = sites.attrs.get("import_report")  # none for a raster mask
        info = {"n_sites": int(len(sites)), "crs": crs_text(sites.crs), "report": report and report.as_dict()}
        lines = report.lines() if report else [f"sites: {info['n_sites']}", f"crs: {info['crs']}"]
    elif path.suffix.lower() in POINT_SUFFIXES:
        samples = io.load_points(
            path, x_col=args.x_col, y_col=args.y_col, crs=args.crs, max_missing=args.max_missing, where=args.where
        )
        info = {
            "n_samples": int(len(samples.table)),
            "crs": crs_text(samples.crs),
            "elements": samples.elements,
            "units": samples.units,
            "censored": samples.censored,
            "censor_rule": samples.censor_rule,
            "report": samples.report.as_dict(),
        }
        lines = samples.report.lines()
    else:
        from ..data.support import describe, estimate_support

        grid = load_survey_grid(args, report=False)  # printed below
        info = io.grid_info(grid)
        if info["support"]["method"] is None:  # say how much of it looks interpolated, without changing it
            estimate = estimate_support(grid)
            info["support_estimate"] = {
                "supported_cells": int(estimate.values.sum()),
                "ramps_found": bool(estimate.attrs["ramps_found"]),
                "separation": float(estimate.attrs["separation"]),
            }
        lines = [
            f"elements ({len(info['elements'])}): {' '.join(info['elements'])}",
            f"shape: {info['shape'][0]} x {info['shape'][1]}",
            f"crs: {info['crs']}",
            f"cell size: {info['cell_size'][0]:g} x {info['cell_size'][1]:g}",
            f"valid cells: {info['valid_cells']}",
            describe(info["support"]),
        ]
        estimate = info.get("support_estimate")
        if estimate and estimate["ramps_found"]:
            lines.append(
                f"  its texture suggests only {estimate['supported_cells']:,} cells are near samples (the rest "
                "smooth interpolation ramps): use --support estimate, or a mask of the sampled area"
            )
        lines.append("NaN cells per element:")
        lines += [f"  {e}: {n}" for e, n in info["nan_count"].items()]
    print(json.dumps(info) if args.json else "\n".join(lines))
    return 0


# ---------------------------------------------------------------------------- grid


def add_grid_args(p):
    """Arguments of ``mstgat grid``."""
    p.add_argument("points", help="point samples (.csv, .parquet, .gpkg, .geojson, .shp, .fgb)")
    p.add_argument("--cell-size", type=float, required=True, help="cell size in map units (metres)")
    p.add_argument("--out", required=True, help="output grid (.nc, .zarr, .tif)")
    p.add_argument("--x-col", help="x (easting) column of a point table (default: detected)")
    p.add_argument("--y-col", help="y (northing) column of a point table (default: detected)")
    p.add_argument("--crs", help="CRS of a point table, e.g. EPSG:3067 (default: from the file or its column names)")
    add_where_arg(p)
    p.add_argument("--method", choices=GRIDDING_METHODS, default="idw", help="interpolation method")
    p.add_argument(
        "--max-distance",
        type=float,
        help="mask cells farther than this (map units) from any sample (default: from the sample spacing)",
    )
    p.add_argument("--elements", nargs="+", help="grid only these elements (default: every element column)")
    p.add_argument(
        "--censor",
        choices=list(CENSOR_RULES),
        default="half",
        help="below-detection values: " + "; ".join(f"{k} = {v}" for k, v in CENSOR_RULES.items()),
    )


def cmd_grid(args) -> int:
    """``mstgat grid``: interpolate point samples onto a grid of ``--cell-size`` and write it to ``--out``."""
    from ..data import io

    samples = io.load_points(
        args.points,
        x_col=args.x_col,
        y_col=args.y_col,
        crs=args.crs,
        elements=args.elements,
        censor=args.censor,
        where=args.where,
    )
    print(samples.report.text(), file=sys.stderr)
    grid = io.points_to_grid(samples, args.cell_size, method=args.method, max_distance=args.max_distance)
    io.save_grid(grid, args.out)
    info = io.grid_info(grid)
    print(f"wrote {args.out}: {info['shape'][0]} x {info['shape'][1]} cells, {info['valid_cells']} valid")
    return 0


# --------------------------------------------------------------------------- synth


def add_synth_args(p):
    """Arguments of ``mstgat synth``."""
    p.add_argument("out", help="output grid (.nc, .zarr, .tif)")
    p.add_argument("--shape", type=int, nargs=2, metavar=("NY", "NX"), default=[64, 64], help="grid rows and columns")
    p.add_argument("--seed", type=int, default=0, help="random seed of the scenario")
    p.add_argument("--n-elements", type=int, default=10, help="number of elements")
    p.add_argument("--deposits-out", required=True, help="deposits CSV (x, y, crs columns)")
    p.add_argument("--truth-out", required=True, help="truth JSON")


def cmd_synth(args) -> int:
    """``mstgat synth``: write a synthetic scenario's grid, deposits CSV and truth JSON."""
    from ..data import io
    from ..data.synthetic import make_scenario

    scenario = make_scenario(shape=tuple(args.shape), n_elements=args.n_elements, seed=args.seed)
    for target in (args.out, args.deposits_out, args.truth_out):
        if not Path(target).parent.exists():
            raise DataError(f"output folder does not exist: {Path(target).parent}")
    deposits = scenario.deposits.drop(columns="geometry")
    deposits["crs"] = scenario.grid.rio.crs.to_string()
    io.save_grid(scenario.grid, args.out)
    write_text_atomically(args.deposits_out, deposits.to_csv(index=False))
    write_text_atomically(args.truth_out, json.dumps(scenario.truth, indent=2))
    print(f"wrote {args.out}, {args.deposits_out} ({len(deposits)} deposits), {args.truth_out}")
    return 0
