"""The ``mstgat`` command.

Each subcommand is a function ``cmd_<name>(args) -> int`` plus a function that
adds its arguments, in ``data`` (info, grid, synth), ``model`` (pretrain,
train, predict, score, explain), ``evaluation`` (evaluate, benchmark) or
``zones`` (thresholds and target zones); both
are listed once in :data:`COMMANDS`. To add a command, write the two functions
and add one line there. ``common`` holds what they share.

User errors (:class:`DataError`, missing files, permissions, bad arguments)
print one line ``error: ...`` to stderr and return 2; a :class:`DataError` that
names settings gets their flags appended (:func:`common.error_line`, from the
table :data:`common.SETTING_FLAGS`). Outputs are written to a
temporary file and renamed, so a failed command leaves nothing behind.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import DataError
from .common import ArgumentError, HelpFormatter, Parser, error_line
from .data import add_grid_args, add_info_args, add_synth_args, cmd_grid, cmd_info, cmd_synth
from .evaluation import add_benchmark_args, add_evaluate_args, cmd_benchmark, cmd_evaluate
from .model import (
    add_explain_args,
    add_predict_args,
    add_pretrain_args,
    add_score_args,
    add_train_args,
    cmd_explain,
    cmd_predict,
    cmd_pretrain,
    cmd_score,
    cmd_train,
)
from .zones import add_zones_args, cmd_zones

# ------------------------------------------------------------------------ dispatch

COMMANDS = {
    # name: (add arguments, run, help)
    "info": (add_info_args, cmd_info, "describe a grid or a point file"),
    "grid": (add_grid_args, cmd_grid, "interpolate point samples onto a grid"),
    "synth": (add_synth_args, cmd_synth, "make a synthetic scenario with known truth"),
    "pretrain": (add_pretrain_args, cmd_pretrain, "pretrain MSTGAT on every cell of a grid, no deposits (label-free)"),
    "train": (add_train_args, cmd_train, "train MSTGAT or a variant on a grid and its deposits"),
    "predict": (add_predict_args, cmd_predict, "map anomaly probability with a trained model"),
    "score": (add_score_args, cmd_score, "label-free anomaly scores of point samples or a grid, no deposits"),
    "evaluate": (add_evaluate_args, cmd_evaluate, "spatially cross-validate MSTGAT, ablations and baselines"),
    "benchmark": (add_benchmark_args, cmd_benchmark, "run the published comparison on every dataset of a suite"),
    "explain": (add_explain_args, cmd_explain, "explain one cell or the deposit cells with a trained model"),
    "zones": (add_zones_args, cmd_zones, "thresholds of a layer (C-A, percentiles) and its target zones as GeoPackage"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mstgat", description="MSTGAT Explorer command line")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, (add_args, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        add_args(p)
        p.set_defaults(run=run)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except (ArgumentError, DataError, FileNotFoundError, PermissionError) as exc:
        print(error_line(exc), file=sys.stderr)  # a DataError's settings named by their flags
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
