"""``mstgat evaluate`` and ``benchmark``: spatial cross-validation, the point protocol and the published suites."""

from __future__ import annotations

import json
import sys

from ..data.preprocess import TRANSFORMS
from ..errors import DataError
from ..evaluation.crossval import DEFAULT_METHODS, METHODS
from ..evaluation.evaluate import REPORT_SEEDS
from ..files import write_text_atomically
from ..graphs.graph import parse_scales
from ..training.folds import FOLD_METHODS
from .common import (
    add_site_args,
    add_support_arg,
    add_where_arg,
    check_output_folder,
    load_labelled_grid,
    load_point_samples,
    load_site_file,
    parse_folds,
    parse_seeds,
    print_site_report,
)

# ------------------------------------------------------------------------ evaluate


def add_evaluate_args(p):
    """Arguments of ``mstgat evaluate``."""
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip); with --protocol opengadbench a point file")
    p.add_argument(
        "--deposits", required=True, help="deposits (.csv, .parquet, .gpkg, .geojson, .shp, or a raster mask)"
    )
    add_site_args(p)
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
    add_where_arg(p)
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
    p.add_argument(
        "--crs",
        help="CRS of the deposits' coordinates when the file and its column names give none (default: the grid's)",
    )
    add_support_arg(p)
    p.add_argument(
        "--pretrained",
        metavar="BACKBONE",
        help="use this pretrained model (mstgat pretrain, on the same grid) for every seed instead of "
        "pretraining per seed; its elements, transform and architecture are used",
    )


def _evaluate_points(args) -> int:
    from ..evaluation.point_duplicates import merge_point_samples
    from ..evaluation.point_protocol import evaluate_points, protocol_markdown
    from ..training.point_model import pretrain_points
    from ..training.pretrain import PretrainConfig

    for target in filter(None, (args.out, args.markdown)):
        check_output_folder(target)
    if args.pretrain_epochs < 1:
        raise DataError(f"--pretrain-epochs must be at least 1, got {args.pretrain_epochs}")
    samples = load_point_samples(args)
    sites = load_site_file(args, default_crs=samples.source_crs)
    print_site_report(sites)
    batch = _batch_of(args, samples)
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


def _batch_of(args, samples):
    """The batch labels of the samples' kept rows (read from the file; a Parquet table from the rows read)."""
    from dataclasses import replace
    from pathlib import Path

    from ..data.tables import PARQUET_SUFFIXES
    from ..evaluation.point_duplicates import choose_batch_column, read_batch

    if Path(args.data).suffix.lower() in PARQUET_SUFFIXES:
        return choose_batch_column(samples.raw, args.batch)
    batch = read_batch(args.data, args.batch)
    if batch.labels is not None and samples.rows is not None and len(samples.rows) != len(batch.labels):
        batch = replace(batch, labels=batch.labels[samples.rows])
    return batch


def cmd_evaluate(args) -> int:
    """``mstgat evaluate``: spatially cross-validate methods on a grid and its deposits (or the point
    protocol, ``--protocol opengadbench``); write the JSON report and print the markdown table.
    """
    from tqdm import tqdm

    if args.protocol == "opengadbench":
        return _evaluate_points(args)

    from ..evaluation.crossval import cross_validate_grid
    from ..evaluation.evaluate import report_markdown
    from ..training.train import TrainConfig

    scales = parse_scales(args.scales)
    folds = parse_folds(args.folds)
    seeds = parse_seeds(args.seeds)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for target in filter(None, (args.out, args.markdown)):
        check_output_folder(target)
    backbone = None
    if args.pretrained:
        from ..training.checkpoint import load_checkpoint

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
    """Arguments of ``mstgat benchmark``."""
    p.add_argument(
        "--suite",
        default="default",
        help="default (South China, Lapland), synthetic, quick (CI), explain (planted-truth explanations), "
        "stability (the indicator ranking across seeds, folds and members on the default datasets), surveys "
        "(every real survey under its protocol, then pooled; Alaska last) or surveys-quick (CI)",
    )
    p.add_argument("--out", required=True, help="folder for one JSON report per dataset")
    p.add_argument("--markdown", help="regenerate the tables between the benchmark markers of this markdown file")
    p.add_argument(
        "--datasets",
        help="comma-separated datasets of the suite to run (default: all; surveys: e.g. south_china_li, "
        "lapland_points, sed1, gm46c_au, gm46c_cu, alaska_au, alaska_cu, synthetic)",
    )
    p.add_argument(
        "--tables-only",
        action="store_true",
        help="run nothing; rewrite the --markdown tables from the reports already in --out",
    )
    p.add_argument("--scenarios", type=int, default=24, help="scenarios per family of the explain suite")
    p.add_argument(
        "--families",
        help="comma-separated scenario families of the explain suite (default: all; enrichment is the "
        "control, then association, depletion, ratio, trend, barren)",
    )


def cmd_benchmark(args) -> int:
    """``mstgat benchmark``: run a suite (default, synthetic, quick, explain, stability), one JSON report per
    dataset in ``--out``, and regenerate the ``--markdown`` tables.
    """

    from ..experiments.benchmark import SURVEY_SUITES, run_suite, select

    if args.markdown:
        check_output_folder(args.markdown)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()] if args.datasets else None
    if args.suite == "explain":
        return _explain_suite(args)
    if args.suite == "stability":
        return _stability_suite(args, datasets)
    if args.suite in SURVEY_SUITES:
        return _surveys_suite(args, datasets)
    select(args.suite, datasets)  # an unknown suite or dataset fails here, before any work
    return _run_with_bar("benchmark", run_suite, args, datasets)


def _run_with_bar(desc: str, runner, args, datasets) -> int:
    """``runner`` (``run_suite`` or ``run_surveys``) with one progress bar of fits, named after the dataset."""
    from tqdm import tqdm

    with tqdm(desc=desc, unit="fit", file=sys.stderr) as bar:

        def progress(dataset, done, total, message):
            bar.set_description(dataset)
            bar.total = total
            bar.n = done
            bar.set_postfix_str(message)
            bar.refresh()

        runner(
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

    from ..experiments.explain_benchmark import family_specs, rewrite_markdown, run_explain_suite

    if args.datasets:
        raise DataError("the explain suite has no datasets (use --scenarios)")
    if args.scenarios < 1:
        raise DataError(f"--scenarios must be at least 1, not {args.scenarios}")
    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    chosen = family_specs(families, args.scenarios)  # an unknown family fails here, before any work
    if args.tables_only:
        if not args.markdown:
            raise DataError("--tables-only needs --markdown")
        rewrite_markdown(args.out, args.markdown)
        return 0
    with tqdm(desc="explain", total=len(chosen), unit="scenario", file=sys.stderr) as bar:

        def progress(_, done, total, message):
            bar.n = done
            bar.set_postfix_str(message)
            bar.refresh()

        run_explain_suite(
            args.out,
            markdown=args.markdown,
            n=args.scenarios,
            families=families,
            progress=progress,
            log=lambda line: tqdm.write(line, file=sys.stderr),
        )
    return 0


def _stability_suite(args, datasets) -> int:
    from tqdm import tqdm

    from ..experiments.benchmark import select
    from ..experiments.indicator_stability import run_stability_suite

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


def _surveys_suite(args, datasets) -> int:
    from ..experiments.surveys import run_surveys, select_surveys

    select_surveys(args.suite, datasets)  # an unknown survey fails here, before any work
    if args.tables_only and not args.markdown:
        raise DataError("--tables-only needs --markdown")
    return _run_with_bar("surveys", run_surveys, args, datasets)
