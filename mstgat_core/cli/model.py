"""``mstgat pretrain``, ``train``, ``predict``, ``score`` and ``explain``: fit a model, apply it and read it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..data.preprocess import TRANSFORMS
from ..errors import DataError
from ..graphs.graph import parse_scales
from ..graphs.tiling import AUTO_TILE_CELLS, DEFAULT_TILE
from ..model import VARIANTS
from .common import (
    LABEL_FREE_NOTE,
    POINT_SUFFIXES,
    add_site_args,
    add_support_arg,
    add_where_arg,
    check_output_folder,
    epoch_progress,
    load_labelled_grid,
    load_point_samples,
    load_site_file,
    load_survey_grid,
    print_site_report,
)

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
        "read (explain prints it). A head over the same backbone: pretraining does not depend on it, and "
        "with --pretrained the flag adds it to (or, left out, removes it from) any backbone. On the "
        "explanation benchmark it finds the planted scale more often than the scale weights (docs/results.md)",
    )


def add_train_args(p):
    """Arguments of ``mstgat train``."""
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip)")
    p.add_argument(
        "--deposits", required=True, help="deposits (.csv, .parquet, .gpkg, .geojson, .shp, or a raster mask)"
    )
    add_site_args(p)
    p.add_argument("--out", required=True, help="checkpoint to write (.safetensors)")
    add_model_args(
        p,
        epochs="pretraining epochs (with --scratch: most training epochs)",
        seed="random seed (weights, masks, negatives, inner folds)",
    )
    p.add_argument(
        "--crs",
        help="CRS of the deposits' coordinates when the file and its column names give none (default: the grid's)",
    )
    p.add_argument(
        "--members",
        type=int,
        default=5,
        help="ensemble members (heads on the pretrained backbone, each fitted on a bootstrap of the deposit "
        "clusters); predict writes their spread as uncertainty",
    )
    p.add_argument(
        "--readout",
        choices=("embedding", "residual"),
        default="embedding",
        help="what the heads read: the embedding (default) or each element's reconstruction residual, the "
        "label-free score and the Mahalanobis distance, with non-negative weights printed per element",
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


def add_pretrain_args(p):
    """Arguments of ``mstgat pretrain``."""
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip)")
    p.add_argument("--out", required=True, help="pretrained model to write (.safetensors)")
    add_model_args(p, epochs="pretraining epochs", seed="random seed (weights, windows, masks)")


def cmd_pretrain(args) -> int:
    """``mstgat pretrain``: pretrain MSTGAT on every cell of a grid, without deposits, and save the checkpoint."""
    from ..training.checkpoint import save_checkpoint
    from ..training.pipeline import pretrain_backbone
    from ..training.pretrain import PretrainConfig

    scales = parse_scales(args.scales)
    check_output_folder(args.out)
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


def cmd_train(args) -> int:
    """``mstgat train``: pretrain and fine-tune (default), fine-tune a ``--pretrained`` backbone, or train
    from scratch (``--scratch``) on a grid and its deposits; save the checkpoint.
    """
    from tqdm import tqdm

    from ..training.checkpoint import load_checkpoint, save_checkpoint
    from ..training.finetune import FineTuneConfig
    from ..training.pipeline import fit
    from ..training.pretrain import PretrainConfig
    from ..training.train import TrainConfig

    scales = parse_scales(args.scales)
    check_output_folder(args.out)
    if not 0 <= args.validation_fraction < 1:
        raise DataError("--validation-fraction must be in [0, 1)")
    if args.members < 1:
        raise DataError(f"--members must be at least 1, got {args.members}")
    if args.epochs < 1:
        raise DataError(f"--epochs must be at least 1, got {args.epochs}")
    if args.scratch and (args.members != 1 or args.pretrained):
        raise DataError("--scratch trains one model without pretraining: drop --pretrained and use --members 1")
    if args.scratch and args.readout != "embedding":
        raise DataError("--readout picks the heads of a pretrained model: drop --scratch")
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
            finetune_config=FineTuneConfig(seed=args.seed, readout=args.readout),
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
        f"wrote {args.out}: pretrained {args.variant}, {args.members} member(s); {r.route} route, "
        f"head share {r.share:g}, C {r.C:g} ({how}); {'calibrated' if r.calibrated else 'not calibrated'}"
    )
    if r.share == 0:
        print(LABEL_FREE_NOTE, file=sys.stderr)
    elif args.readout == "residual":
        from ..interpret import residual_weights

        top = sorted(residual_weights(fitted).items(), key=lambda kv: -kv[1])[:5]
        print("largest residual weights: " + ", ".join(f"{name} {w:.2f}" for name, w in top))
    return 0


# ------------------------------------------------------------------------- predict


def add_predict_args(p):
    """Arguments of ``mstgat predict``."""
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
    """``mstgat predict``: apply a checkpoint to a grid (whole, in tiles or with dask) and write its layers."""
    from tqdm import tqdm

    from ..data import io
    from ..training.checkpoint import load_checkpoint

    out = Path(args.out)
    if out.suffix.lower() not in (".nc", ".tif", ".tiff", ".zarr"):
        raise DataError(f"--out must end in .nc, .tif or .zarr, got {out.name}")
    check_output_folder(out)
    fitted = load_checkpoint(args.model)
    if args.dask:
        from ..training.distributed import predict_distributed

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
    """Arguments of ``mstgat score``."""
    p.add_argument("data", help="point file (.csv, .parquet, .gpkg, ...) or grid (.nc, .zarr, .tif, folder, .zip)")
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
    add_where_arg(p)
    add_support_arg(p)


def _score_points(args, out: Path) -> int:
    from ..graphs.point_graph import parse_point_scales
    from ..training.point_model import pretrain_points
    from ..training.pretrain import PretrainConfig
    from ..training.scoring import point_score_table, write_point_scores

    kind = "radius" if args.radius else "knn"
    scales = parse_point_scales(args.radius or args.neighbours, kind)
    from tqdm import tqdm

    samples = load_point_samples(args, elements=args.elements)
    config = PretrainConfig(epochs=args.epochs, seed=args.seed)
    n = len(samples.table)
    if n >= config.point_whole_graph:
        print(
            f"{n:,} samples: pretraining on mini-batches of {config.point_batch:,} samples with their "
            f"neighbourhoods ({config.steps_per_epoch} per epoch), scoring in batches (whole graph below "
            f"{config.point_whole_graph:,} samples)",
            file=sys.stderr,
        )
    with epoch_progress(args.epochs, "pretraining on the samples") as progress:
        fitted = pretrain_points(samples, scales, kind=kind, pretrain_config=config, callback=progress)
    print(fitted.graph.describe(), file=sys.stderr)
    with tqdm(desc="scoring the samples", unit="batch", file=sys.stderr) as bar:

        def advance(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()

        scores = fitted.scores(progress=advance)
    table = point_score_table(samples.raw, scores, scales, target=args.target)  # the kept rows, as read
    write_point_scores(table, out, samples)
    rank_by = "target_residual" if args.target else "anomaly_score"
    top = table.sort_values(rank_by, ascending=False).head(3)["top_elements"].tolist()
    print(f"wrote {out}: {len(table)} samples scored; the three highest led by {'; '.join(top)}")
    return 0


def _score_grid(args, out: Path) -> int:
    from ..data import io
    from ..training.checkpoint import load_checkpoint
    from ..training.pipeline import pretrain_backbone
    from ..training.pretrain import PretrainConfig
    from ..training.scoring import grid_scores

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
    """``mstgat score``: label-free anomaly scores of point samples or a grid (no deposits), written to ``--out``."""
    from ..training.scoring import GRID_OUTPUTS, POINT_OUTPUTS

    out = Path(args.out)
    check_output_folder(out)
    if args.epochs < 1:
        raise DataError(f"--epochs must be at least 1, got {args.epochs}")
    is_points = Path(args.data).suffix.lower() in POINT_SUFFIXES
    allowed = POINT_OUTPUTS if is_points else GRID_OUTPUTS
    if out.suffix.lower() not in allowed:
        what = "point files" if is_points else "grids"
        raise DataError(f"--out for {what} must end in {' or '.join(allowed)}, got {out.name}")
    return _score_points(args, out) if is_points else _score_grid(args, out)


# ------------------------------------------------------------------------- explain


def add_explain_args(p):
    """Arguments of ``mstgat explain``."""
    p.add_argument("model", help="checkpoint (.safetensors)")
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--x", type=float, help="map x of the cell to explain (with --y)")
    where.add_argument("--row", type=int, help="row of the cell to explain (with --col)")
    where.add_argument("--deposits", help="summarise over the cells holding these deposits")
    add_site_args(p)
    p.add_argument("--y", type=float, help="map y of the cell to explain")
    p.add_argument("--col", type=int, help="column of the cell to explain")
    p.add_argument(
        "--crs",
        help="CRS of the deposits' coordinates when the file and its column names give none (default: the grid's)",
    )
    p.add_argument("--top", type=int, default=5, help="elements to list")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_support_arg(p)


def cmd_explain(args) -> int:
    """``mstgat explain``: explain one cell (``--row/--col`` or ``--x/--y``) or summarise the deposit cells
    with a checkpoint; prints text or, with ``--json``, one object.
    """
    from ..data import io
    from ..interpret import explain_report
    from ..training.checkpoint import load_checkpoint

    fitted = load_checkpoint(args.model)
    grid = load_survey_grid(args)
    region = None
    if args.deposits:
        sites = load_site_file(args, default_crs=grid.rio.crs)
        region = io.deposit_cells(grid, sites)
        print_site_report(sites, region)
    report, text = explain_report(
        fitted, grid, row=args.row, col=args.col, x=args.x, y=args.y, region=region, top=args.top
    )
    print(json.dumps(report) if args.json else text)
    return 0
