"""The ``mstgat`` command.

Each subcommand is a function ``cmd_<name>(args) -> int`` plus a function that
adds its arguments; both are listed once in :data:`COMMANDS`. To add a command,
write the two functions and add one line there.

User errors (:class:`DataError`, missing files, permissions, bad arguments)
print one line ``error: ...`` to stderr and return 2. Outputs are written to a
temporary file and renamed, so a failed command leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import DataError

POINT_SUFFIXES = (".csv", ".gpkg", ".geojson", ".shp", ".fgb")


class ArgumentError(Exception):
    """Raised instead of argparse's print-and-exit, so errors stay one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ArgumentError(message)


# ---------------------------------------------------------------------------- info


def add_info_args(p):
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip) or point file (.csv, .gpkg)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--crs", help="CRS of a point CSV, e.g. EPSG:3067")
    p.add_argument("--x-col")
    p.add_argument("--y-col")


def cmd_info(args) -> int:
    from . import io

    path = Path(args.data)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.suffix.lower() in POINT_SUFFIXES:
        samples = io.load_points(path, x_col=args.x_col, y_col=args.y_col, crs=args.crs)
        info = {"n_samples": int(len(samples.table)), "crs": _crs_text(samples.crs),
                "elements": samples.elements, "censored": samples.censored, "censor_rule": samples.censor_rule}
        lines = [f"samples: {info['n_samples']}", f"crs: {info['crs']}",
                 f"elements ({len(info['elements'])}): {' '.join(info['elements'])}",
                 f"below detection ({samples.censor_rule}):"]
        lines += [f"  {e}: {n}" for e, n in samples.censored.items() if n]
    else:
        info = io.grid_info(io.load_grid(path))
        lines = [f"elements ({len(info['elements'])}): {' '.join(info['elements'])}",
                 f"shape: {info['shape'][0]} x {info['shape'][1]}", f"crs: {info['crs']}",
                 f"cell size: {info['cell_size'][0]:g} x {info['cell_size'][1]:g}",
                 f"valid cells: {info['valid_cells']}", "NaN cells per element:"]
        lines += [f"  {e}: {n}" for e, n in info["nan_count"].items()]
    print(json.dumps(info) if args.json else "\n".join(lines))
    return 0


def _crs_text(crs) -> str | None:
    if crs is None:
        return None
    from pyproj import CRS

    return CRS.from_user_input(crs).to_string()


# ---------------------------------------------------------------------------- grid


def add_grid_args(p):
    p.add_argument("points", help="point samples (.csv, .gpkg)")
    p.add_argument("--cell-size", type=float, required=True, help="cell size in map units (metres)")
    p.add_argument("--out", required=True, help="output grid (.nc, .zarr, .tif)")
    p.add_argument("--x-col")
    p.add_argument("--y-col")
    p.add_argument("--crs")
    p.add_argument("--method", choices=["idw", "nearest"], default="idw")
    p.add_argument("--max-distance", type=float, help="mask cells farther than this from any sample")
    p.add_argument("--elements", nargs="+")
    p.add_argument("--censor", choices=["half", "dl", "nan"], default="half")


def cmd_grid(args) -> int:
    from . import io

    samples = io.load_points(args.points, x_col=args.x_col, y_col=args.y_col, crs=args.crs,
                             elements=args.elements, censor=args.censor)
    grid = io.points_to_grid(samples, args.cell_size, method=args.method, max_distance=args.max_distance)
    io.save_grid(grid, args.out)
    info = io.grid_info(grid)
    print(f"wrote {args.out}: {info['shape'][0]} x {info['shape'][1]} cells, {info['valid_cells']} valid")
    return 0


# --------------------------------------------------------------------------- synth


def add_synth_args(p):
    p.add_argument("out", help="output grid (.nc, .zarr, .tif)")
    p.add_argument("--shape", type=int, nargs=2, metavar=("NY", "NX"), default=[64, 64])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--elements", type=int, default=10, help="number of elements")
    p.add_argument("--deposits-out", required=True, help="deposits CSV (x, y, crs columns)")
    p.add_argument("--truth-out", required=True, help="truth JSON")


def cmd_synth(args) -> int:
    from . import io
    from .synthetic import make_scenario

    scenario = make_scenario(shape=tuple(args.shape), n_elements=args.elements, seed=args.seed)
    for target in (args.out, args.deposits_out, args.truth_out):
        if not Path(target).parent.exists():
            raise DataError(f"output folder does not exist: {Path(target).parent}")
    deposits = scenario.deposits.drop(columns="geometry")
    deposits["crs"] = scenario.grid.rio.crs.to_string()
    io.save_grid(scenario.grid, args.out)
    write_atomically(args.deposits_out, deposits.to_csv(index=False))
    write_atomically(args.truth_out, json.dumps(scenario.truth, indent=2))
    print(f"wrote {args.out}, {args.deposits_out} ({len(deposits)} deposits), {args.truth_out}")
    return 0


def write_atomically(path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ------------------------------------------------------------------------ dispatch

COMMANDS = {
    # name: (add arguments, run, help)
    "info": (add_info_args, cmd_info, "describe a grid or a point file"),
    "grid": (add_grid_args, cmd_grid, "interpolate point samples onto a grid"),
    "synth": (add_synth_args, cmd_synth, "make a synthetic scenario with known truth"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mstgat", description="MSTGAT Explorer command line")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (add_args, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(run=run)
    return parser


def _one_line(message) -> str:
    return " ".join(str(message).split())


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except ArgumentError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
    except (DataError, FileNotFoundError, PermissionError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
