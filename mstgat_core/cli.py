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
import sys
from contextlib import contextmanager
from pathlib import Path

from .crossval import DEFAULT_METHODS, METHODS
from .errors import DataError, one_line
from .evaluate import REPORT_SEEDS
from .files import write_text_atomically
from .folds import FOLD_METHODS
from .graph import parse_scales
from .model import VARIANTS
from .points import CENSOR_RULES, GRIDDING_METHODS
from .preprocess import TRANSFORMS
from .tiling import AUTO_TILE_CELLS, DEFAULT_TILE

POINT_SUFFIXES = (".csv", ".gpkg", ".geojson", ".shp", ".fgb")


class ArgumentError(Exception):
    """Raised instead of argparse's print-and-exit, so errors stay one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ArgumentError(message)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none (None or False)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


# ---------------------------------------------------------------------------- info


def add_info_args(p):
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip) or point file (.csv, .gpkg)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--crs", help="CRS of a point CSV, e.g. EPSG:3067 (default: from the file or its column names)")
    p.add_argument("--x-col", help="x (easting) column of a point CSV (default: detected)")
    p.add_argument("--y-col", help="y (northing) column of a point CSV (default: detected)")
    add_support_arg(p)


def cmd_info(args) -> int:
    from . import io

    path = Path(args.data)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.suffix.lower() in POINT_SUFFIXES:
        samples = io.load_points(path, x_col=args.x_col, y_col=args.y_col, crs=args.crs)
        info = {
            "n_samples": int(len(samples.table)),
            "crs": _crs_text(samples.crs),
            "elements": samples.elements,
            "censored": samples.censored,
            "censor_rule": samples.censor_rule,
        }
        lines = [
            f"samples: {info['n_samples']}",
            f"crs: {info['crs']}",
            f"elements ({len(info['elements'])}): {' '.join(info['elements'])}",
            f"below detection ({samples.censor_rule}):",
        ]
        lines += [f"  {e}: {n}" for e, n in samples.censored.items() if n]
    else:
        from .support import describe, estimate_support

        grid = load_survey_grid(args)
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


def _crs_text(crs) -> str | None:
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


def load_survey_grid(args, elements=None):
    """The grid of ``args.data`` with its sample support set by ``--support`` (reported in one line on stderr when
    the grid has one)."""
    from . import io
    from .support import apply_support, describe, support_summary

    grid = apply_support(io.load_grid(args.data, elements=elements), getattr(args, "support", "auto"))
    summary = support_summary(grid)
    if summary["method"] is not None:
        print(describe(summary), file=sys.stderr)
    return grid


# ---------------------------------------------------------------------------- grid


def add_grid_args(p):
    p.add_argument("points", help="point samples (.csv, .gpkg)")
    p.add_argument("--cell-size", type=float, required=True, help="cell size in map units (metres)")
    p.add_argument("--out", required=True, help="output grid (.nc, .zarr, .tif)")
    p.add_argument("--x-col", help="x (easting) column of a point CSV (default: detected)")
    p.add_argument("--y-col", help="y (northing) column of a point CSV (default: detected)")
    p.add_argument("--crs", help="CRS of a point CSV, e.g. EPSG:3067 (default: from the file or its column names)")
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
    from . import io

    samples = io.load_points(
        args.points, x_col=args.x_col, y_col=args.y_col, crs=args.crs, elements=args.elements, censor=args.censor
    )
    grid = io.points_to_grid(samples, args.cell_size, method=args.method, max_distance=args.max_distance)
    io.save_grid(grid, args.out)
    info = io.grid_info(grid)
    print(f"wrote {args.out}: {info['shape'][0]} x {info['shape'][1]} cells, {info['valid_cells']} valid")
    return 0


# --------------------------------------------------------------------------- synth


def add_synth_args(p):
    p.add_argument("out", help="output grid (.nc, .zarr, .tif)")
    p.add_argument("--shape", type=int, nargs=2, metavar=("NY", "NX"), default=[64, 64], help="grid rows and columns")
    p.add_argument("--seed", type=int, default=0, help="random seed of the scenario")
    p.add_argument("--n-elements", type=int, default=10, help="number of elements")
    p.add_argument("--deposits-out", required=True, help="deposits CSV (x, y, crs columns)")
    p.add_argument("--truth-out", required=True, help="truth JSON")


def cmd_synth(args) -> int:
    from . import io
    from .synthetic import make_scenario

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


# --------------------------------------------------------------------------- train


def add_model_args(p, epochs: str, seed: str):
    """The model options ``train`` and ``pretrain`` share (``epochs``, ``seed``: their help texts)."""
    p.add_argument("--variant", choices=VARIANTS, default="mstgat", help="the full model or one of its ablations")
    p.add_argument("--scales", default="1,2,3", help="neighbourhood radii in cells, comma-separated")
    p.add_argument("--epochs", type=int, default=30, help=epochs)
    p.add_argument("--seed", type=int, default=0, help=seed)
    p.add_argument(
        "--transform", choices=TRANSFORMS, default="clr", help="compositional transform before robust scaling"
    )
    p.add_argument("--elements", nargs="+", help="use only these elements (default: every layer of the grid)")
    add_support_arg(p)
    p.add_argument(
        "--scale-readout",
        action="store_true",
        help="the heads also read each scale's neighbourhood message, so each scale's share of the score can be "
        "read (explain prints it); on the explanation benchmark it finds the planted scale more often "
        "but the ore elements less often (docs/results.md)",
    )


def add_train_args(p):
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip)")
    p.add_argument("--deposits", required=True, help="deposits (.csv, .gpkg, .geojson, .shp, or a raster mask)")
    p.add_argument("--out", required=True, help="checkpoint to write (.safetensors)")
    add_model_args(
        p,
        epochs="pretraining epochs (with --scratch: most training epochs)",
        seed="random seed (weights, masks, negatives, inner folds)",
    )
    p.add_argument("--crs", help="CRS of a deposits CSV without one (default: the grid's)")
    p.add_argument(
        "--members",
        type=int,
        default=5,
        help="ensemble members (heads on the pretrained backbone, each fitted on a bootstrap of the deposit "
        "clusters); predict writes their spread as uncertainty",
    )
    p.add_argument(
        "--pretrained",
        metavar="BACKBONE",
        help="fine-tune this pretrained model (mstgat pretrain) instead of pretraining anew; "
        "--variant, --scales, --transform and --elements then come from it",
    )
    p.add_argument(
        "--scratch",
        action="store_true",
        help="no pretraining: train the supervised readout end to end on the deposits (the ablation)",
    )
    p.add_argument(
        "--validation-fraction",
        type=float,
        default=0.2,
        help="with --scratch: share of deposits held out (one spatial cluster) for early stopping; "
        "0 trains all --epochs on every deposit",
    )


LABEL_FREE_NOTE = (
    "note: head share 0: in inner cross-validation the deposits did not improve on the label-free score, "
    "so the map is that score and the members agree (uncertainty 0)"
)


def add_pretrain_args(p):
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip)")
    p.add_argument("--out", required=True, help="pretrained model to write (.safetensors)")
    add_model_args(p, epochs="pretraining epochs", seed="random seed (weights, windows, masks)")


@contextmanager
def epoch_progress(epochs: int, desc: str):
    """A progress bar on stderr; yields the per-epoch callback (a log with ``loss``) that advances it."""
    from tqdm import tqdm

    with tqdm(total=epochs, desc=desc, unit="epoch", file=sys.stderr) as bar:

        def progress(log):
            bar.update(1)
            bar.set_postfix(loss=f"{log.loss:.3f}")

        yield progress


def cmd_pretrain(args) -> int:
    from .checkpoint import save_checkpoint
    from .pipeline import pretrain_backbone
    from .pretrain import PretrainConfig

    scales = parse_scales(args.scales)
    _check_output_folder(args.out)
    if args.epochs < 1:
        raise DataError(f"--epochs must be at least 1, got {args.epochs}")
    grid = load_survey_grid(args, elements=args.elements)
    with epoch_progress(args.epochs, "pretraining") as progress:
        fitted = pretrain_backbone(
            grid,
            {"variant": args.variant, "scales": scales, "scale_readout": args.scale_readout},
            PretrainConfig(epochs=args.epochs, seed=args.seed),
            transform=args.transform,
            callback=progress,
        )
    save_checkpoint(fitted, args.out, data=grid)
    result = fitted.metadata["pretrain"]["result"]
    print(
        f"wrote {args.out}: pretrained {args.variant} on {int(fitted.prepare(grid).x.shape[0])} cells, no deposits; "
        f"reconstruction loss {result['final_loss']:.3f}, {result['seconds']:.1f} s. Its map is the label-free score; "
        "fine-tune it with: mstgat train --pretrained"
    )
    return 0


def load_labelled_grid(args):
    """The grid and its deposit cells, with a one-line report of dropped deposits."""
    from . import io

    grid = load_survey_grid(args, elements=getattr(args, "elements", None))
    deposits = io.deposit_cells(grid, io.load_deposits(args.deposits, crs=getattr(args, "crs", None)))
    print(deposits.attrs.get("summary", ""), file=sys.stderr)
    return grid, deposits


def cmd_train(args) -> int:
    from tqdm import tqdm

    from .checkpoint import load_checkpoint, save_checkpoint
    from .pipeline import fit
    from .pretrain import PretrainConfig
    from .train import TrainConfig

    scales = parse_scales(args.scales)
    _check_output_folder(args.out)
    if not 0 <= args.validation_fraction < 1:
        raise DataError("--validation-fraction must be in [0, 1)")
    if args.members < 1:
        raise DataError(f"--members must be at least 1, got {args.members}")
    if args.epochs < 1:
        raise DataError(f"--epochs must be at least 1, got {args.epochs}")
    if args.scratch and (args.members != 1 or args.pretrained):
        raise DataError("--scratch trains one model without pretraining: drop --pretrained and use --members 1")
    backbone = load_checkpoint(args.pretrained) if args.pretrained else None
    if backbone is not None:
        args.elements = backbone.elements
    grid, deposits = load_labelled_grid(args)
    config = TrainConfig(epochs=args.epochs, seed=args.seed, validation_fraction=args.validation_fraction)
    epochs = 0 if backbone is not None else args.epochs
    with tqdm(total=epochs, desc="training" if args.scratch else "pretraining", unit="epoch", file=sys.stderr) as bar:

        def progress(log):
            bar.update(1)
            bar.set_postfix(loss=f"{log.loss:.3f}")

        fitted = fit(
            grid,
            deposits,
            {"variant": args.variant, "scales": scales, "scale_readout": args.scale_readout},
            config,
            transform=args.transform,
            elements=args.elements,
            callback=progress,
            members=args.members,
            pretrain_config=PretrainConfig(epochs=args.epochs, seed=args.seed),
            pretrained=not args.scratch,
            backbone=backbone,
        )
    save_checkpoint(fitted, args.out, data=grid)
    r = fitted.train_result
    if args.scratch:
        chosen = (
            f"best epoch {r.best_epoch} (validation ROC-AUC {r.best_val_auc:.3f})"
            if args.validation_fraction
            else "no validation split"
        )
        print(
            f"wrote {args.out}: {args.variant} from scratch, {chosen}, {r.stopped.replace('_', ' ')} after "
            f"{len(r.history)} epochs, {r.seconds:.1f} s"
        )
        return 0
    how = (
        f"chosen by inner CV over {r.inner_folds} folds of the deposits"
        if r.chosen_by == "inner-cv"
        else "defaults: the deposits form one cluster, no inner CV"
    )
    print(
        f"wrote {args.out}: pretrained {args.variant}, {args.members} member(s); head share {r.share:g}, "
        f"C {r.C:g} ({how}); {'calibrated' if r.calibrated else 'not calibrated'}"
    )
    if r.share == 0:
        print(LABEL_FREE_NOTE, file=sys.stderr)
    return 0


def _check_output_folder(path) -> None:
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise DataError(f"output folder does not exist: {folder}")


# ------------------------------------------------------------------------- predict


def add_predict_args(p):
    p.add_argument("model", help="checkpoint (.safetensors)")
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip)")
    p.add_argument(
        "--out",
        required=True,
        help="grid of the score, its percentile, the label-free score, novelty, the calibrated probability "
        "(when fitted) and, for an ensemble, uncertainty and top_agreement (.nc, .tif or .zarr)",
    )
    p.add_argument(
        "--tile",
        type=int,
        help="predict in tiles of N x N cells (with halos; same result) (default: "
        f"the whole grid up to {AUTO_TILE_CELLS:,} cells, tiles of {DEFAULT_TILE} above)",
    )
    p.add_argument(
        "--dask",
        metavar="local|ADDRESS",
        help="run tiles on dask.distributed: a local cluster or a scheduler address (default: this process)",
    )
    add_support_arg(p)


def cmd_predict(args) -> int:
    from tqdm import tqdm

    from . import io
    from .checkpoint import load_checkpoint

    out = Path(args.out)
    if out.suffix.lower() not in (".nc", ".tif", ".tiff", ".zarr"):
        raise DataError(f"--out must end in .nc, .tif or .zarr, got {out.name}")
    _check_output_folder(out)
    fitted = load_checkpoint(args.model)
    if args.dask:
        from .distributed import predict_distributed

        if str(args.support).lower() != "auto":
            raise DataError("--dask reads the grid tile by tile and uses its own support layer only: drop --support")

        scheduler = None if args.dask == "local" else args.dask
        tile = args.tile or DEFAULT_TILE
        predict_distributed(fitted, args.data, out, tile=tile, scheduler=scheduler)
        print(f"wrote {out} (dask, tiles of {tile})")
        return 0
    grid = load_survey_grid(args)
    tile = fitted.tile_size(grid, args.tile)
    if args.tile is None and tile:
        print(
            f"{grid.sizes['y']} x {grid.sizes['x']} cells: predicting in tiles of {tile} "
            "(same result; --tile N to change)",
            file=sys.stderr,
        )
    with tqdm(desc="predicting", unit="tile", file=sys.stderr, disable=not tile) as bar:

        def progress(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()

        layers = fitted.predict_layers(grid, tile=tile, progress=progress)
        probability = layers["probability"]
    io.save_grid(layers, out)
    finite = probability.values[~probability.isnull().values]
    print(
        f"wrote {out}: {finite.size} cells, score {finite.min():.3f}-{finite.max():.3f}; layers "
        + ", ".join(layers.data_vars)
    )
    warning = fitted.applicability_warning(layers)
    if warning:
        print(warning, file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- score


def add_score_args(p):
    p.add_argument("data", help="point file (.csv, .gpkg, ...) or grid (.nc, .zarr, .tif, folder, .zip)")
    p.add_argument(
        "--out",
        required=True,
        help="points: .csv or .gpkg (every input column plus the scores); grids: .nc (score and contribution layers)",
    )
    p.add_argument("--checkpoint", help="grids: a pretrained (label-free) checkpoint instead of pretraining here")
    p.add_argument(
        "--target",
        help="points: the commodity's element (e.g. Au); adds target_residual, its value minus what the sample's "
        "other elements and neighbours predict (the readout chosen on Lapland and South China, docs/results.md)",
    )
    p.add_argument(
        "--neighbours",
        default="8,24,48",
        help="points: neighbourhood scales as numbers of nearest samples (the reach in metres is reported)",
    )
    p.add_argument("--radius", help="points: neighbourhood scales as radii in metres instead, e.g. 2000,5000,10000")
    p.add_argument("--epochs", type=int, default=30, help="pretraining epochs")
    p.add_argument("--seed", type=int, default=0, help="seeds the weights, the masks and the steps")
    p.add_argument("--crs", help="CRS of a CSV's coordinates when it cannot be inferred (e.g. EPSG:4326)")
    p.add_argument(
        "--max-missing",
        type=float,
        default=0.5,
        help="points: drop element columns with a larger share of missing values (the rest: median fill)",
    )
    p.add_argument("--elements", type=lambda t: [e.strip() for e in t.split(",") if e.strip()], help="elements to use")
    add_support_arg(p)


def load_point_samples(args, elements=None):
    """Point samples for ``score`` and ``evaluate``: the target checked, one line on what was inferred
    and one on the columns kept (missing values are filled by the median later)."""
    from .points import load_points

    samples = load_points(args.data, crs=args.crs, elements=elements, max_missing=args.max_missing)
    if args.target is not None and args.target not in samples.elements:
        raise DataError(f"target element {args.target!r} is not among the elements used")
    if samples.note:
        print(samples.note, file=sys.stderr)
    print(
        f"{len(samples.table)} samples, {len(samples.elements)} elements kept, {len(samples.dropped)} dropped "
        f"(more than {args.max_missing:.0%} missing, or oxide duplicates); missing values filled by the median",
        file=sys.stderr,
    )
    return samples


def _score_points(args, out: Path) -> int:
    from .point_graph import parse_point_scales
    from .point_model import pretrain_points
    from .pretrain import PretrainConfig
    from .scoring import point_score_table, read_raw_points, write_point_scores

    kind = "radius" if args.radius else "knn"
    scales = parse_point_scales(args.radius or args.neighbours, kind)
    samples = load_point_samples(args, elements=args.elements)
    with epoch_progress(args.epochs, "pretraining on the samples") as progress:
        fitted = pretrain_points(
            samples,
            scales,
            kind=kind,
            pretrain_config=PretrainConfig(epochs=args.epochs, seed=args.seed),
            callback=progress,
        )
    print(fitted.graph.describe(), file=sys.stderr)
    scores = fitted.scores()
    table = point_score_table(read_raw_points(args.data), scores, scales, target=args.target)
    write_point_scores(table, out, samples)
    rank_by = "target_residual" if args.target else "anomaly_score"
    top = table.sort_values(rank_by, ascending=False).head(3)["top_elements"].tolist()
    print(f"wrote {out}: {len(table)} samples scored; the three highest led by {'; '.join(top)}")
    return 0


def _score_grid(args, out: Path) -> int:
    from . import io
    from .checkpoint import load_checkpoint
    from .pipeline import pretrain_backbone
    from .pretrain import PretrainConfig
    from .scoring import grid_scores

    grid = load_survey_grid(args, elements=args.elements)
    if args.checkpoint:
        fitted = load_checkpoint(args.checkpoint)
    else:
        print(f"pretraining MSTGAT on the grid, no deposits ({args.epochs} epochs) ...", file=sys.stderr)
        fitted = pretrain_backbone(grid, pretrain_config=PretrainConfig(epochs=args.epochs, seed=args.seed))
    layers = grid_scores(fitted, grid)
    io.save_grid(layers, out)
    print(f"wrote {out}: layers anomaly_score and contrib_<element> for {len(fitted.elements)} elements")
    return 0


def cmd_score(args) -> int:
    from .scoring import GRID_OUTPUTS, POINT_OUTPUTS

    out = Path(args.out)
    _check_output_folder(out)
    if args.epochs < 1:
        raise DataError(f"--epochs must be at least 1, got {args.epochs}")
    is_points = Path(args.data).suffix.lower() in (".csv", ".gpkg", ".geojson", ".json", ".shp")
    allowed = POINT_OUTPUTS if is_points else GRID_OUTPUTS
    if out.suffix.lower() not in allowed:
        what = "point files" if is_points else "grids"
        raise DataError(f"--out for {what} must end in {' or '.join(allowed)}, got {out.name}")
    return _score_points(args, out) if is_points else _score_grid(args, out)


# ------------------------------------------------------------------------ evaluate


def add_evaluate_args(p):
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip); with --protocol opengadbench a point file")
    p.add_argument("--deposits", required=True, help="deposits (.csv, .gpkg, .geojson, .shp, or a raster mask)")
    p.add_argument("--out", required=True, help="report (.json)")
    p.add_argument("--markdown", help="also write the table as markdown to this file")
    p.add_argument(
        "--protocol",
        choices=("crossval", "opengadbench"),
        default="crossval",
        help="crossval: spatial cross-validation of a grid; opengadbench: label-free scores of point samples "
        "against sites (protocol v2: co-located duplicates merged, distinct nearest samples vs samples >= 5 km "
        "away stratified by batch and spacing, non-chemical references; the published figures beside it)",
    )
    p.add_argument("--target", help="opengadbench: the sites' commodity element, scored alone as a baseline (e.g. Au)")
    p.add_argument(
        "--pretrain-epochs",
        type=int,
        default=30,
        help="opengadbench: pretraining epochs of MSTGAT on the samples (8/24/48 nearest samples)",
    )
    p.add_argument(
        "--max-missing",
        type=float,
        default=0.5,
        help="opengadbench: drop element columns with a larger share of missing values",
    )
    p.add_argument(
        "--batch",
        metavar="COLUMN|none",
        help="opengadbench: the column naming each sample's report/company/lab/survey (negatives are stratified "
        "by it and by spacing); default: detected by name (e.g. WAMEX_A_NO, report, lab, batch); none: no batch",
    )
    p.add_argument(
        "--no-merge-duplicates",
        action="store_true",
        help="opengadbench: score the rows as read instead of merging co-located duplicates (to compare with the "
        "published protocol)",
    )
    p.add_argument("--folds", default="5", help="spatial folds per seed, or 'loco' to leave one deposit cluster out")
    p.add_argument(
        "--seeds",
        default=",".join(map(str, REPORT_SEEDS)),
        help="comma-separated seeds (seeds 0 and 1 were used when the default settings were chosen)",
    )
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated methods to compare, the first is the reference; from {', '.join(METHODS)}",
    )
    p.add_argument(
        "--scales",
        default="1,2,3",
        help="neighbourhood radii in cells of the neural methods and of the _context baselines",
    )
    p.add_argument("--epochs", type=int, default=100, help="most training epochs per neural fit")
    p.add_argument(
        "--fold-method",
        choices=[m for m in FOLD_METHODS if m != "loco"],
        default="clusters",
        help="whole deposit clusters per fold, or square blocks (the older protocol)",
    )
    p.add_argument(
        "--buffer",
        type=float,
        help="cells around the test region whose labels are dropped from training "
        "(default: the receptive radius + 1, 4 for scales 1,2,3)",
    )
    p.add_argument(
        "--link-distance",
        type=float,
        help="deposit cells closer than this (cells) form one cluster "
        "(default: the receptive diameter, 7 for scales 1,2,3)",
    )
    p.add_argument(
        "--transform", choices=TRANSFORMS, default="clr", help="compositional transform before robust scaling"
    )
    p.add_argument("--elements", nargs="+", help="use only these elements (default: every layer of the grid)")
    p.add_argument("--crs", help="CRS of a deposits CSV without one (default: the grid's)")
    add_support_arg(p)
    p.add_argument(
        "--pretrained",
        metavar="BACKBONE",
        help="use this pretrained model (mstgat pretrain, on the same grid) for every seed instead of "
        "pretraining per seed; its elements, transform and architecture are used",
    )


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


def _evaluate_points(args) -> int:
    from . import io
    from .point_duplicates import merge_point_samples, read_batch
    from .point_model import pretrain_points
    from .point_protocol import evaluate_points, protocol_markdown
    from .pretrain import PretrainConfig

    for target in filter(None, (args.out, args.markdown)):
        _check_output_folder(target)
    if args.pretrain_epochs < 1:
        raise DataError(f"--pretrain-epochs must be at least 1, got {args.pretrain_epochs}")
    samples = load_point_samples(args)
    sites = io.load_deposits(args.deposits, crs=args.crs)
    batch = read_batch(args.data, args.batch)
    if batch.labels is not None and len(batch.labels) != len(samples.table):
        raise DataError(f"{len(batch.labels)} batch labels for {len(samples.table)} samples")
    merged, duplicates = merge_point_samples(samples, batch.labels, merge=not args.no_merge_duplicates)
    print(duplicates.describe(), file=sys.stderr)
    print(batch.rule, file=sys.stderr)
    print(f"pretraining MSTGAT on the {len(merged.table)} samples (label-free) ...", file=sys.stderr)
    scores = pretrain_points(merged, pretrain_config=PretrainConfig(epochs=args.pretrain_epochs)).scores()
    mstgat = {"MSTGAT label-free score": scores.anomaly_score}  # one per merged sample
    if args.target is not None:
        mstgat[f"MSTGAT {args.target} residual"] = scores.residuals[args.target].to_numpy()
    report = evaluate_points(
        samples,
        sites,
        target=args.target,
        scores=mstgat,
        batch=batch.labels,
        batch_rule=batch.rule,
        merge=not args.no_merge_duplicates,
    )
    report["batch"]["column"] = batch.column
    report["dropped"] = samples.dropped
    report["data"], report["sites"] = str(args.data), str(args.deposits)
    table = protocol_markdown(report)
    write_text_atomically(args.out, json.dumps(report, indent=1))
    if args.markdown:
        write_text_atomically(args.markdown, table)
    print(table)
    return 0


def cmd_evaluate(args) -> int:
    from tqdm import tqdm

    if args.protocol == "opengadbench":
        return _evaluate_points(args)

    from .crossval import cross_validate_grid
    from .evaluate import report_markdown
    from .train import TrainConfig

    scales = parse_scales(args.scales)
    folds = parse_folds(args.folds)
    seeds = parse_seeds(args.seeds)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for target in filter(None, (args.out, args.markdown)):
        _check_output_folder(target)
    backbone = None
    if args.pretrained:
        from .checkpoint import load_checkpoint

        backbone = load_checkpoint(args.pretrained)
        args.elements, args.transform = backbone.elements, backbone.normaliser.transform_name
        scales = backbone.config.scales
    grid, deposits = load_labelled_grid(args)
    with tqdm(desc="cross-validation", unit="fit", file=sys.stderr) as bar:

        def progress(done, total, message):
            bar.total = total
            bar.n = done
            bar.set_postfix_str(message)
            bar.refresh()

        report = cross_validate_grid(
            grid,
            deposits,
            methods,
            folds=folds,
            seeds=seeds,
            model_config={"scales": scales},
            train_config=TrainConfig(epochs=args.epochs),
            transform=args.transform,
            fold_method=args.fold_method,
            buffer=args.buffer,
            link_distance=args.link_distance,
            progress=progress,
            backbone=backbone,
        )
    report["protocol"]["data"] = str(args.data)
    report["protocol"]["deposits"] = str(args.deposits)
    write_text_atomically(args.out, json.dumps(report, indent=1))
    table = report_markdown(report)
    if args.markdown:
        write_text_atomically(args.markdown, table)
    print(table)
    return 0


# ----------------------------------------------------------------------- benchmark


def add_benchmark_args(p):
    p.add_argument(
        "--suite",
        default="default",
        help="default (South China, Lapland), synthetic, quick (CI), explain (planted-truth explanations) "
        "or stability (the indicator ranking across seeds, folds and members on the default datasets)",
    )
    p.add_argument("--out", required=True, help="folder for one JSON report per dataset")
    p.add_argument("--markdown", help="regenerate the tables between the benchmark markers of this markdown file")
    p.add_argument("--datasets", help="comma-separated datasets of the suite to run (default: all)")
    p.add_argument(
        "--tables-only",
        action="store_true",
        help="run nothing; rewrite the --markdown tables from the reports already in --out",
    )
    p.add_argument("--scenarios", type=int, default=24, help="scenarios of the explain suite")


def cmd_benchmark(args) -> int:
    from tqdm import tqdm

    from .benchmark import run_suite, select

    if args.markdown:
        _check_output_folder(args.markdown)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()] if args.datasets else None
    if args.suite == "explain":
        return _explain_suite(args)
    if args.suite == "stability":
        return _stability_suite(args, datasets)
    select(args.suite, datasets)  # an unknown suite or dataset fails here, before any work
    with tqdm(desc="benchmark", unit="fit", file=sys.stderr) as bar:

        def progress(dataset, done, total, message):
            bar.set_description(dataset)
            bar.total = total
            bar.n = done
            bar.set_postfix_str(message)
            bar.refresh()

        run_suite(
            args.suite,
            args.out,
            markdown=args.markdown,
            datasets=datasets,
            progress=progress,
            log=lambda line: tqdm.write(line, file=sys.stderr),
            tables_only=args.tables_only,
        )
    return 0


def _explain_suite(args) -> int:
    from tqdm import tqdm

    from .explain_benchmark import rewrite_markdown, run_explain_suite

    if args.datasets:
        raise DataError("the explain suite has no datasets (use --scenarios)")
    if args.scenarios < 1:
        raise DataError(f"--scenarios must be at least 1, not {args.scenarios}")
    if args.tables_only:
        if not args.markdown:
            raise DataError("--tables-only needs --markdown")
        rewrite_markdown(args.out, args.markdown)
        return 0
    with tqdm(desc="explain", total=args.scenarios, unit="scenario", file=sys.stderr) as bar:

        def progress(_, done, total, message):
            bar.n = done
            bar.set_postfix_str(message)
            bar.refresh()

        run_explain_suite(
            args.out,
            markdown=args.markdown,
            n=args.scenarios,
            progress=progress,
            log=lambda line: tqdm.write(line, file=sys.stderr),
        )
    return 0


def _stability_suite(args, datasets) -> int:
    from tqdm import tqdm

    from .benchmark import select
    from .indicator_stability import run_stability_suite

    select("default", datasets)  # an unknown dataset fails here, before any work
    if args.tables_only:
        raise DataError("the stability suite has no --tables-only; run it")
    with tqdm(desc="stability", unit="fit", file=sys.stderr) as bar:

        def progress(name, done, message):
            bar.set_description(name)
            bar.n = done
            bar.set_postfix_str(message)
            bar.refresh()

        run_stability_suite(
            args.out, args.markdown, datasets, progress=progress, log=lambda line: tqdm.write(line, file=sys.stderr)
        )
    return 0


# ------------------------------------------------------------------------- explain


def add_explain_args(p):
    p.add_argument("model", help="checkpoint (.safetensors)")
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--x", type=float, help="map x of the cell to explain (with --y)")
    where.add_argument("--row", type=int, help="row of the cell to explain (with --col)")
    where.add_argument("--deposits", help="summarise over the cells holding these deposits")
    p.add_argument("--y", type=float, help="map y of the cell to explain")
    p.add_argument("--col", type=int, help="column of the cell to explain")
    p.add_argument("--crs", help="CRS of a deposits CSV without one (default: the grid's)")
    p.add_argument("--top", type=int, default=5, help="elements to list")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_support_arg(p)


def cmd_explain(args) -> int:
    from . import io
    from .checkpoint import load_checkpoint
    from .interpret import explain_report

    fitted = load_checkpoint(args.model)
    grid = load_survey_grid(args)
    region = None
    if args.deposits:
        region = io.deposit_cells(grid, io.load_deposits(args.deposits, crs=args.crs))
    report, text = explain_report(
        fitted, grid, row=args.row, col=args.col, x=args.x, y=args.y, region=region, top=args.top
    )
    print(json.dumps(report) if args.json else text)
    return 0


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
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mstgat", description="MSTGAT Explorer command line")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (add_args, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)
        add_args(p)
        p.set_defaults(run=run)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except (ArgumentError, DataError, FileNotFoundError, PermissionError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
