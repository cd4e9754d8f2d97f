"""One command for the published comparison: every dataset of a suite under the default protocol.

``mstgat benchmark --suite default --out docs/results/`` (``make results``)
cross-validates MSTGAT, its ablations and every baseline on each dataset of
the suite with :func:`~mstgat_core.crossval.cross_validate_grid` and its
defaults (whole deposit clusters per fold, a buffer of the receptive radius +
1, seeds 1-3), writes one JSON report per dataset (every per-fold figure, the
paired statistics, the protocol, versions and wall time) and, with
``--markdown``, regenerates the tables between the benchmark markers of a
markdown file (docs/results.md).

Suites:

* ``default``: South China Li (bundled grid, 39 elements, 21 deposit cells)
  and Lapland IOCG (till points gridded at 2 km, 13 sites; needs
  ``../shared/data/lapland-till``), about 30 minutes on 2 cores.
* ``synthetic``: a scenario with planted anomalies (about 1.5 hours: the
  neural fits there train to their epoch cap).
* ``quick``: one small synthetic scenario, few methods and epochs (CI).
* ``surveys`` and ``surveys-quick`` (:data:`SURVEY_SUITES`): every real survey, grids and point
  surveys, each under its own protocol, then pooled (module :mod:`.surveys`).

Surveys with fewer than :data:`LOCO_BELOW` deposit clusters are evaluated
leave-one-cluster-out, the others with 5 folds: a rule fixed before any run.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import write_text_atomically
from ..paths import DEMO_DEPOSITS, DEMO_GRID, SHARED_DATA

LOCO_BELOW = 10  # clusters; fewer -> leave-one-cluster-out
# every survey under its own protocol, then pooled: run by experiments.surveys (grids and point surveys)
SURVEY_SUITES = ("surveys", "surveys-quick")
BEGIN, END = "<!-- benchmark:begin -->", "<!-- benchmark:end -->"


@dataclass
class Dataset:
    """One benchmark dataset: how to load it and how to evaluate it."""

    name: str
    title: str
    load: Callable  # () -> (grid, deposit cells, description)
    methods: tuple | None = None  # None: crossval.DEFAULT_METHODS
    options: dict = field(default_factory=dict)  # extra cross_validate_grid arguments


def _south_china():
    from ..data.io import deposit_cells, load_deposits, load_grid

    grid = load_grid(DEMO_GRID)
    cells = deposit_cells(grid, load_deposits(DEMO_DEPOSITS))
    return (
        grid,
        cells,
        "39-element stream-sediment grid (IDW, ~4.2 km cells, scored on its measured band), 23 Li deposits",
    )


def _lapland():
    from ..data.io import deposit_cells, load_deposits, load_points, points_to_grid

    folder = SHARED_DATA / "lapland-till"
    if not folder.is_dir():
        raise DataError(f"the Lapland dataset needs {folder} (see the shared data README)")
    grid = points_to_grid(load_points(folder / "till_geochem_511p.csv"), cell_size=2000.0)
    cells = deposit_cells(grid, load_deposits(folder / "IOCG_Deps_Prosp_Occs.csv", crs="EPSG:3067"))
    return grid, cells, "1,112 till samples (22 elements, half-DL censoring) IDW-gridded at 2 km, 13 IOCG sites"


def _synthetic(shape=(96, 96), seed=101):
    def load():
        from ..data.io import deposit_cells
        from ..data.synthetic import make_scenario

        scenario = make_scenario(shape=shape, n_elements=10, seed=seed)
        cells = deposit_cells(scenario.grid, scenario.deposits)
        return scenario.grid, cells, f"synthetic {shape[0]}x{shape[1]} scenario (seed {seed}), planted ore + decoys"

    return load


def suites() -> dict[str, list[Dataset]]:
    """The benchmark suites by name."""
    from ..training.pretrain import PretrainConfig
    from ..training.train import TrainConfig

    quick_train = TrainConfig(epochs=3, min_epochs=1, patience=2, steps_per_epoch=2)
    quick_pretrain = PretrainConfig(epochs=6, steps_per_epoch=4)
    return {
        "default": [
            Dataset("south_china_li", "South China Li", _south_china),
            # 41 x 34 cells: with scales 1-3 (receptive diameter 7 cells = 14 km) the 13 sites chain into one
            # cluster and no fold could hold any out; radius 1 (diameter 3 cells) leaves 6 clusters
            Dataset("lapland_iocg", "Lapland IOCG", _lapland, options={"model_config": {"scales": (1,)}}),
        ],
        # planted truth; the from-scratch ablation trains to its 100-epoch cap here (~1.5 min a fit)
        "synthetic": [Dataset("synthetic", "Synthetic scenario", _synthetic())],
        "quick": [
            Dataset(
                "synthetic_quick",
                "Synthetic scenario (quick)",
                _synthetic((48, 48), seed=5),
                methods=(
                    "mstgat",
                    "mstgat_scratch",
                    "mstgat_label_free",
                    "best_single_element",
                    "isolation_forest",
                    "random_forest_context",
                ),
                options={
                    "folds": 3,
                    "seeds": (1,),
                    "train_config": quick_train,
                    "pretrain_config": quick_pretrain,
                    "model_config": {"scales": (1, 2), "d_model": 16, "gat_hidden": 16},
                },
            )
        ],
    }


def versions() -> dict:
    """Versions of what produced the figures."""
    import sklearn
    import torch

    from .. import __version__

    return {
        "mstgat_core": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


def choose_folds(grid, cells, options: dict):
    """``options["folds"]`` if given, else 5 folds or leave-one-cluster-out below :data:`LOCO_BELOW` clusters."""
    if "folds" in options:
        return options["folds"]
    from ..data.preprocess import valid_mask
    from ..model import ModelConfig
    from ..training.folds import FoldSettings, deposit_clusters

    mask = valid_mask(grid)
    rows, cols = np.nonzero(mask)
    pos = np.flatnonzero(np.asarray(cells.values, dtype=bool)[mask])
    config = ModelConfig.from_dict(
        options.get("model_config"), n_elements=1, variant="mstgat", readout="fused", members=1
    )  # the outer folds' model, as in cross_validate_grid
    link = FoldSettings.for_config(config).link_distance
    n_clusters = int(deposit_clusters(rows, cols, pos, link).max() + 1) if len(pos) else 0
    return "loco" if n_clusters < LOCO_BELOW else 5


def run_dataset(dataset: Dataset, progress=None) -> dict:
    """Cross-validate one dataset; the report with its description, versions and wall time."""
    from ..evaluation.crossval import DEFAULT_METHODS, cross_validate_grid

    started = time.perf_counter()
    grid, cells, description = dataset.load()
    options = dict(dataset.options)
    options["folds"] = choose_folds(grid, cells, options)
    report = cross_validate_grid(grid, cells, dataset.methods or DEFAULT_METHODS, progress=progress, **options)
    report["dataset"] = {"name": dataset.name, "title": dataset.title, "description": description}
    report["versions"] = versions()
    report["wall_seconds"] = time.perf_counter() - started
    return report


def select(suite: str, datasets=None) -> list[Dataset]:
    """The datasets of ``suite`` (only those named in ``datasets`` if given); DataError if unknown."""
    all_suites = suites()
    if suite in SURVEY_SUITES:
        raise DataError(f"the {suite} suite is run by experiments.surveys.run_surveys", setting="suite")
    if suite not in all_suites:
        names = [*all_suites, *SURVEY_SUITES]
        raise DataError(f"unknown suite {suite!r}; choose from {', '.join(names)}", setting="suite")
    chosen = all_suites[suite]
    if datasets:
        unknown = sorted(set(datasets) - {d.name for d in chosen})
        if unknown:
            raise DataError(f"suite {suite!r} has no dataset {', '.join(unknown)}", setting="datasets")
        chosen = [d for d in chosen if d.name in datasets]
    return chosen


def run_suite(
    suite: str, out_dir, markdown=None, datasets=None, progress=None, log=print, tables_only: bool = False
) -> dict:
    """Run a suite; write ``out_dir/<dataset>.json`` and, if given, the tables into ``markdown``.

    Parameters
    ----------
    suite : str
        A name from :func:`suites`.
    out_dir : path
        Folder for the JSON reports (created if missing).
    markdown : path, optional
        A markdown file whose text between ``<!-- benchmark:begin -->`` and
        ``<!-- benchmark:end -->`` is replaced by the tables (appended if the
        markers are missing).
    datasets : list of str, optional
        Run only these datasets of the suite.
    tables_only : bool
        Run nothing: rewrite the tables of ``markdown`` from the reports already in ``out_dir``.
    progress : callable, optional
        ``progress(dataset, done, total, message)`` after each fit.
    log : callable
        Receives one line per finished dataset.

    Returns
    -------
    dict
        dataset name -> report.
    """
    chosen = select(suite, datasets)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = {}
    started = time.perf_counter()
    for dataset in [] if tables_only else chosen:

        def step(done, total, message, name=dataset.name):
            if progress is not None:
                progress(name, done, total, message)

        report = run_dataset(dataset, step)
        report["suite"] = suite
        write_text_atomically(out_dir / f"{dataset.name}.json", json.dumps(report, indent=1))
        reports[dataset.name] = report
        log(f"{dataset.title}: {report['wall_seconds'] / 60:.1f} min -> {out_dir / (dataset.name + '.json')}")
    log(f"suite {suite}: {len(reports)} dataset(s) in {(time.perf_counter() - started) / 60:.1f} min")
    if markdown is not None:  # every dataset of the suite with a report, from this run or an earlier one
        shown = {}
        for dataset in select(suite):
            path = out_dir / f"{dataset.name}.json"
            if dataset.name in reports or path.exists():
                shown[dataset.name] = reports.get(dataset.name) or json.loads(path.read_text())
        total = sum(r["wall_seconds"] for r in shown.values())
        update_markdown(markdown, suite_markdown(shown, out_dir, total, Path(markdown).parent))
    return reports


def dataset_markdown(report: dict, json_path: str) -> str:
    """One dataset's section: what was run, the table, the paired comparison."""
    from ..evaluation.evaluate import report_markdown

    protocol = report["protocol"]
    folds = "leave one cluster out" if protocol["method"] == "loco" else f"{protocol['n_folds']} folds"
    lines = [
        f"### {report['dataset']['title']}",
        "",
        f"{report['dataset']['description']}. {protocol['n_deposit_cells']} deposit cells in "
        f"{protocol['n_clusters']} clusters (link distance {protocol['link_distance']:g} cells), "
        f"{_cells_text(protocol)}; {folds} ({protocol['method']}), buffer "
        f"{protocol['buffer']:g} cells, seeds {', '.join(map(str, protocol['seeds']))}; "
        f"{report['wall_seconds'] / 60:.1f} min. Every figure: [{Path(json_path).name}]({json_path}).",
        "",
    ]
    table = report_markdown(report)
    lines.append(table[: table.index("\nProtocol:")].rstrip())
    return "\n".join(lines) + "\n"


def _cells_text(protocol: dict) -> str:
    """ "7,533 cells of measured ground (37 % of the 20,460 with data; support estimated from the texture)"."""
    support = protocol.get("support") or {}
    how = {
        "samples": "within the sample spacing of a sample",
        "texture": "estimated from the surface's texture",
        "file": "from a mask file",
    }.get(support.get("method"))
    if how is None:
        return f"{protocol['n_nodes']:,} valid cells (no sample support known: every cell with data)"
    return (
        f"{protocol['n_nodes']:,} cells of measured ground ({support['supported_share']:.0%} of the "
        f"{support['cells_with_data']:,} with data; support {how})"
    )


def suite_markdown(reports: dict, out_dir, total_seconds: float, link_base=".") -> str:
    """The markdown between the benchmark markers (links to the JSON reports relative to ``link_base``)."""
    out_dir = Path(out_dir)
    parts = [
        f"Generated by `mstgat benchmark --suite {next(iter(reports.values()))['suite']}` "
        f"({total_seconds / 60:.0f} min of computation on this 2-core machine); do not edit by hand.",
        "",
    ]
    for name, report in reports.items():
        parts.append(dataset_markdown(report, os.path.relpath(out_dir / f"{name}.json", link_base)))
    return "\n".join(parts)


def update_markdown(path, generated: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the text between the markers ``begin`` and ``end`` of ``path`` (append the block if absent)."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{generated.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    write_text_atomically(path, text)
