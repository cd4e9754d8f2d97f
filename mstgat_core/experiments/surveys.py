"""One benchmark across surveys: every real survey under its own protocol, then pooled.

``mstgat benchmark --suite surveys --out docs/results/surveys --markdown docs/results.md``
(``make surveys``) runs, in this order (Alaska last: it is 15x larger than the others):

* **grids** (South China Li, on its measured support; the synthetic scenario of the ``synthetic``
  suite): the default suite's cross-validation (:func:`~mstgat_core.experiments.benchmark.run_dataset`)
  with :data:`GRID_METHODS`; its label-free rows are the label-free protocol;
* **point surveys** (Lapland till, sed1, GM-46C Au and Cu, Alaska Au and Cu): co-located duplicates
  merged; (a) **protocol v2** (:func:`~mstgat_core.evaluation.point_protocol.evaluate_points`) for
  MSTGAT's label-free readouts per seed (the label-free score and the target residual), the label-free
  baselines and the non-chemical references; (b) the **supervised cross-validation on the samples**
  (:mod:`~mstgat_core.evaluation.point_crossval`: site clusters and buffer by distance, one rule for
  every survey) of :data:`~mstgat_core.evaluation.point_crossval.POINT_METHODS`. One point model is
  pretrained per seed and serves both (and both site files of one sample file).

A survey's **main protocol** is its cross-validation (every method, label-free ones included, is
scored there on held-out site clusters). Folds: leave one cluster out below
:data:`~mstgat_core.experiments.benchmark.LOCO_BELOW` clusters, else 5 folds of whole clusters (the
default suite's rule). Seeds 2, 3, 4 (:data:`~mstgat_core.evaluation.evaluate.REPORT_SEEDS`).

Alaska's sites, a rule fixed before any score: ``comm_main`` lists the commodity (``--commodity``)
and ``site_type`` is Mine or Prospect (plurals and ``?`` included). GM-46C: ``--commodity`` on the
main commodity; stream sediments only.

A survey whose files are missing is skipped with one line; the suite goes on. Each survey writes
``<out>/<name>.json``; the tables (:mod:`.survey_tables`) go between the surveys markers of
``--markdown``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import write_text_atomically
from ..paths import SHARED_DATA
from .benchmark import LOCO_BELOW, Dataset, _south_china, _synthetic, run_dataset, update_markdown, versions
from .survey_tables import BEGIN, END, surveys_markdown

SUITES = ("surveys", "surveys-quick")
GRID_METHODS = (
    "mstgat",
    "mstgat_label_free",
    "best_single_element",
    "mahalanobis",
    "isolation_forest",
    "random_forest_context",
    "logistic_context",
)


@dataclass
class Survey:
    """One survey of the suite.

    ``load`` returns ``(grid, deposit cells, description)`` for a grid and a :class:`PointData` for
    points; ``needs`` are the files it reads (a missing one skips the survey).
    """

    name: str
    title: str
    kind: str  # "grid" or "points"
    source: str
    load: Callable
    needs: tuple = ()
    pooled: bool = True
    options: dict = field(default_factory=dict)


@dataclass
class PointData:
    """A point survey as loaded: samples, sites, the target element and what the sites are."""

    samples: object  # PointSamples
    sites: object  # GeoDataFrame
    target: str
    description: str
    key: str  # samples shared by several surveys share one pretrained model per seed


@dataclass(frozen=True)
class Settings:
    """Costs of a suite (the quick one shrinks them); nothing here is chosen per survey."""

    seeds: tuple = (2, 3, 4)
    pretrain: dict = field(default_factory=dict)  # PretrainConfig fields of the point model
    point_model: dict = field(default_factory=dict)  # ModelConfig fields of the point model
    bootstrap: int = 2000  # protocol v2's bootstrap replicates


# ------------------------------------------------------------------------------------------ surveys

LICENCES = {
    "south_china": "bundled (assets/README.md): kiritonfan/An-interpretable-DCN-Transformer-hybrid-model... "
    "(GitHub), MIT",
    "lapland": "Geological Survey of Finland (GTK) till geochemistry 511P, © GTK (public), via the test data of "
    "GispoCoding/eis_toolkit (EUPL-1.2)",
    "sed1": "OpenGADBench task sed1 (yihaoding/geochemad, MIT); survey data GSWA",
    "gm46c": "Saudi Geological Survey, GM-46C survey and MODS occurrences, via MinersAI/SGS_training; CC BY-SA 4.0",
    "alaska": "USGS Alaska Geochemical Database v2 and ARDF (public records), via "
    "gvankeerberghen/geochemical_anomaly_detection (MIT)",
    "synthetic": "generated (make_scenario); no licence needed",
}


def _points(samples_path, sites_path, target, description, samples_options=None, sites_options=None):
    """A loader of a point survey (samples, sites chosen by ``sites_options``)."""

    def load() -> PointData:
        from ..data.io import load_deposits
        from ..data.points import load_points

        samples = load_points(samples_path, **(samples_options or {}))
        sites = load_deposits(sites_path, default_crs=samples.source_crs, **(sites_options or {}))
        where = Path(samples_path)
        key = f"{where.parent.name}/{where.name} {json.dumps(samples_options or {}, sort_keys=True)}"
        return PointData(samples, sites, target, description, key)

    return load


def _synthetic_points(shape=(48, 48), seed=5, n_samples=500):
    """A point survey drawn from a synthetic scenario: ``n_samples`` random cells (jittered) as samples,
    its deposits as sites, its first ore element as the target (the quick suite's point survey)."""

    def load() -> PointData:
        import geopandas as gpd
        import pandas as pd

        from ..data.points import CENSOR_RULES, PointSamples
        from ..data.synthetic import make_scenario

        scenario = make_scenario(shape=shape, n_elements=10, seed=seed)
        grid = scenario.grid
        elements = list(grid.data_vars)
        valid = np.isfinite(np.stack([grid[e].values for e in elements])).all(axis=0)
        rows, cols = np.nonzero(valid)
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(rows), size=min(n_samples, len(rows)), replace=False)
        r, c = rows[pick], cols[pick]
        step = abs(float(grid.x[1] - grid.x[0]))
        x = grid.x.values[c] + rng.uniform(-0.3, 0.3, len(c)) * step
        y = grid.y.values[r] + rng.uniform(-0.3, 0.3, len(r)) * step
        values = {e: grid[e].values[r, c].astype(float) for e in elements}
        table = gpd.GeoDataFrame(values, geometry=gpd.points_from_xy(x, y), crs=grid.rio.crs)
        samples = PointSamples(
            table=table,
            elements=elements,
            crs=table.crs,
            censored=dict.fromkeys(elements, 0),
            censor_rule=CENSOR_RULES["half"],
            source_crs=table.crs,
            raw=pd.DataFrame(values),
        )
        target = scenario.truth["anomalies"][0]["elements"][0]
        description = (
            f"{len(table)} samples drawn from a synthetic {shape[0]}x{shape[1]} scenario (seed {seed}), "
            f"{len(scenario.deposits)} planted deposits as sites, target {target}"
        )
        return PointData(samples, scenario.deposits, target, description, f"synthetic-points-{shape}-{seed}")

    return load


def surveys(suite: str = "surveys") -> list[Survey]:
    """The surveys of ``suite`` (:data:`SUITES`), in running order."""
    if suite == "surveys-quick":
        return [
            Survey(
                "synthetic_quick",
                "Synthetic grid (quick)",
                "grid",
                LICENCES["synthetic"],
                _synthetic((48, 48), seed=5),
                options={"folds": 3, "model_config": {"scales": (1, 2), "d_model": 16, "gat_hidden": 16}},
            ),
            Survey(
                "synthetic_points_quick",
                "Synthetic points (quick)",
                "points",
                LICENCES["synthetic"],
                _synthetic_points(),
            ),
        ]
    lapland, sed1 = SHARED_DATA / "lapland-till", SHARED_DATA / "opengadbench-sed1"
    saudi, alaska = SHARED_DATA / "saudi-gm46c", SHARED_DATA / "alaska-se"
    stream = {"where": "sample_type == 'Stream Sediment'"}
    mines = "Mine,Prospect"
    out = [
        Survey("south_china_li", "South China Li", "grid", LICENCES["south_china"], _south_china),
        Survey(
            "lapland_points",
            "Lapland till (points, Cu)",
            "points",
            LICENCES["lapland"],
            _points(
                lapland / "till_geochem_511p.csv",
                lapland / "IOCG_Deps_Prosp_Occs.csv",
                "Cu",
                "1,112 till samples (22 elements), 13 IOCG deposits, prospects and occurrences, target Cu",
                {"crs": "EPSG:3067"},
                {"crs": "EPSG:3067"},
            ),
            needs=(lapland / "till_geochem_511p.csv", lapland / "IOCG_Deps_Prosp_Occs.csv"),
        ),
        Survey(
            "sed1",
            "sed1 (points, Au)",
            "points",
            LICENCES["sed1"],
            _points(
                sed1 / "area1_sediment_au.csv",
                sed1 / "area1_sediment_au_site.csv",
                "Au",
                "1,392 stream sediments (lon/lat, -9999 gaps), 32 Au sites, target Au",
            ),
            needs=(sed1 / "area1_sediment_au.csv", sed1 / "area1_sediment_au_site.csv"),
        ),
    ]
    for name, metal, word in (("au", "Au", "Gold"), ("cu", "Cu", "Copper")):
        out.append(
            Survey(
                f"gm46c_{name}",
                f"GM-46C ({metal})",
                "points",
                LICENCES["gm46c"],
                _points(
                    saudi / "geochem.geojson",
                    saudi / "mineral_occurrences.geojson",
                    metal,
                    f"stream sediments of sheet GM-46C, MODS occurrences whose main commodity is {word} "
                    f"(--commodity {metal}), target {metal}",
                    stream,
                    {"commodity": metal},
                ),
                needs=(saudi / "geochem.geojson", saudi / "mineral_occurrences.geojson"),
            )
        )
    for name, metal in (("au", "Au"), ("cu", "Cu")):
        out.append(
            Survey(
                f"alaska_{name}",
                f"Alaska SE ({metal})",
                "points",
                LICENCES["alaska"],
                _points(
                    alaska / "samples.parquet",
                    alaska / "occurrences.parquet",
                    metal,
                    f"AGDB2 samples of Southeast Alaska, ARDF sites with {metal} in comm_main and site type Mine or "
                    f"Prospect (--commodity {metal} --site-type {mines}), target {metal}",
                    None,
                    {"commodity": metal, "site_type": mines},
                ),
                needs=(alaska / "samples.parquet", alaska / "occurrences.parquet"),
            )
        )
    # the synthetic suite's scenario: planted truth, reported beside the surveys but not pooled with them
    out.insert(1, Survey("synthetic", "Synthetic scenario", "grid", LICENCES["synthetic"], _synthetic(), pooled=False))
    return out


def suite_settings(suite: str) -> Settings:
    """The suite's costs: the report seeds and default settings, or tiny ones for ``surveys-quick``."""
    if suite == "surveys-quick":
        return Settings(
            seeds=(1,),
            pretrain={"epochs": 3, "steps_per_epoch": 2},
            point_model={"d_model": 16, "gat_hidden": 16},
            bootstrap=200,
        )
    return Settings()


def select_surveys(suite: str, names=None) -> list[Survey]:
    """The surveys of ``suite``, only ``names`` if given; a one-line DataError for an unknown name."""
    if suite not in SUITES:
        raise DataError(f"unknown survey suite {suite!r}; choose from {', '.join(SUITES)}", setting="suite")
    chosen = surveys(suite)
    if names:
        known = [s.name for s in chosen]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DataError(
                f"suite {suite!r} has no survey {', '.join(unknown)}; choose from {', '.join(known)}",
                setting="datasets",
            )
        chosen = [s for s in chosen if s.name in names]
    return chosen


# ------------------------------------------------------------------------------------------ running


def run_grid_survey(survey: Survey, settings: Settings, progress=None) -> dict:
    """The default suite's cross-validation of a grid survey with :data:`GRID_METHODS`."""
    from ..training.pretrain import PretrainConfig

    options = {"seeds": settings.seeds, **survey.options}
    if settings.pretrain:
        options["pretrain_config"] = PretrainConfig(**settings.pretrain)
    dataset = Dataset(survey.name, survey.title, survey.load, methods=GRID_METHODS, options=options)
    report = run_dataset(dataset, progress)
    description = report.pop("dataset")["description"]
    for key in ("versions", "wall_seconds"):
        report.pop(key, None)
    return {"description": description, "crossval": report, "label_free": None}


def _xy_km(frame) -> np.ndarray:
    axis = frame.crs.axis_info[0] if frame.crs is not None and frame.crs.axis_info else None
    if axis is None or axis.unit_name not in ("metre", "meter"):
        raise DataError("point surveys need coordinates in metres (a projected CRS)")
    return np.c_[frame.geometry.x, frame.geometry.y] / 1000.0


def run_point_survey(survey: Survey, settings: Settings, cache: dict, progress=None, log=print) -> dict:
    """Protocol v2 and the supervised cross-validation on one point survey (module docstring)."""
    from ..data.points import complete_features
    from ..evaluation.point_crossval import (
        POINT_METHODS,
        PointBackbones,
        count_clusters,
        cross_validate_points,
        lattice,
        point_distances,
        point_runners,
        site_positives,
    )
    from ..evaluation.point_duplicates import choose_batch_column, merge_point_samples
    from ..evaluation.point_protocol import evaluate_points, normalised_points
    from ..graphs.point_graph import DEFAULT_NEIGHBOURS
    from ..model import ModelConfig
    from ..training.point_model import pretrain_points
    from ..training.pretrain import PretrainConfig

    data: PointData = survey.load()
    samples, target = data.samples, data.target
    if target not in samples.elements:
        raise DataError(f"{survey.title}: the target element {target} is not among the elements read")
    batch = choose_batch_column(samples.raw) if samples.raw is not None else choose_batch_column(None, "none")
    merged, duplicates = merge_point_samples(samples, batch.labels)
    xy_km = _xy_km(merged.table)
    sites_km = _xy_km(data.sites.to_crs(merged.table.crs))
    values, filled = complete_features(merged)
    X = normalised_points(values, merged.elements)
    layers = ModelConfig.from_dict(settings.point_model, n_elements=len(merged.elements)).gat_layers
    distances = point_distances(xy_km, DEFAULT_NEIGHBOURS, layers)
    positives, site_info = site_positives(xy_km, sites_km, distances.site_km)
    n_clusters = count_clusters(xy_km, positives, distances)
    folds = "loco" if n_clusters < LOCO_BELOW else 5

    def pretrain(seed):
        started = time.perf_counter()
        config = PretrainConfig(**{**settings.pretrain, "seed": seed})
        model = pretrain_points(merged, model_config=settings.point_model or None, pretrain_config=config)
        log(f"  {survey.title}: point model seed {seed} pretrained in {time.perf_counter() - started:.0f} s")
        return model

    backbones = PointBackbones(pretrain, *lattice(xy_km), cache=cache.setdefault(data.key, {}))
    runners = point_runners(
        POINT_METHODS, X, xy_km, backbones, distances.fold_settings(folds), merged.elements.index(target)
    )
    crossval = cross_validate_points(runners, X, xy_km, positives, distances, folds, settings.seeds, progress)
    crossval["protocol"].update(
        n_clusters_rule=n_clusters,
        elements=list(merged.elements),
        filled=filled,
        pretrain_config=PretrainConfig(**settings.pretrain).to_dict(),
        point_model=dict(settings.point_model),
        point_scales=list(DEFAULT_NEIGHBOURS),
        pretraining_sees="every (merged) sample, no label (test folds included); heads see training sites only",
    )
    scores = {}
    for seed in settings.seeds:
        readout = backbones.readouts(seed)["scores"]
        scores[f"MSTGAT label-free score (seed {seed})"] = readout.anomaly_score
        scores[f"MSTGAT {target} residual (seed {seed})"] = readout.residuals[target].to_numpy()
    label_free = evaluate_points(
        samples,
        data.sites,
        target=target,
        scores=scores,
        batch=batch.labels,
        batch_rule=batch.rule,
        bootstrap=settings.bootstrap,
    )
    selection = getattr(data.sites, "attrs", {}).get("import_report")
    return {
        "description": data.description,
        "samples": data.key,
        "target": target,
        "sites": {
            **site_info,
            "selection": selection.as_dict()["selection"] if selection is not None else [],
            "rule": f"each site labels its nearest (merged) sample within the reach R = {distances.site_km:.1f} km",
        },
        "duplicates": duplicates.describe(),
        "crossval": crossval,
        "label_free": label_free,
    }


def run_surveys(
    suite: str,
    out_dir,
    markdown=None,
    datasets=None,
    progress=None,
    log=print,
    tables_only: bool = False,
) -> dict:
    """Run a survey suite; write ``out_dir/<survey>.json`` and, if given, the tables into ``markdown``.

    Parameters
    ----------
    suite : {"surveys", "surveys-quick"}
    out_dir : path
        Folder of the JSON reports (created if missing).
    markdown : path, optional
        Its text between ``<!-- surveys:begin -->`` and ``<!-- surveys:end -->`` is replaced by the
        tables of every survey of the suite with a report in ``out_dir`` (appended if the markers are missing).
    datasets : list of str, optional
        Run only these surveys.
    progress : callable, optional
        ``progress(survey, done, total, message)`` after each fit of a cross-validation.
    log : callable
        One line per survey (its time, or why it was skipped).
    tables_only : bool
        Run nothing; rewrite the tables from the reports in ``out_dir``.

    Returns
    -------
    dict
        survey name -> report (those run now).

    Raises
    ------
    DataError
        An unknown suite or survey name.
    """
    chosen = select_surveys(suite, datasets)
    settings = suite_settings(suite)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports, cache = {}, {}
    started = time.perf_counter()
    for survey in [] if tables_only else chosen:
        missing = [p for p in survey.needs if not Path(p).exists()]
        if missing:
            log(f"{survey.title}: skipped ({missing[0]} not found)")
            continue

        def step(done, total, message, name=survey.name):
            if progress is not None:
                progress(name, done, total, message)

        began = time.perf_counter()
        if survey.kind == "grid":
            body = run_grid_survey(survey, settings, step)
        else:
            body = run_point_survey(survey, settings, cache, step, log)
        report = {
            "suite": suite,
            "survey": {
                "name": survey.name,
                "title": survey.title,
                "kind": survey.kind,
                "source": survey.source,
                "pooled": survey.pooled,
                "main_protocol": "crossval",
            },
            **body,
            "versions": versions(),
            "wall_seconds": time.perf_counter() - began,
        }
        write_text_atomically(out_dir / f"{survey.name}.json", json.dumps(report, indent=1))
        reports[survey.name] = report
        log(f"{survey.title}: {report['wall_seconds'] / 60:.1f} min -> {out_dir / (survey.name + '.json')}")
    log(f"suite {suite}: {len(reports)} survey(s) in {(time.perf_counter() - started) / 60:.1f} min")
    if markdown is not None:
        shown = {}
        for survey in surveys(suite):
            path = out_dir / f"{survey.name}.json"
            if survey.name in reports or path.exists():
                shown[survey.name] = reports.get(survey.name) or json.loads(path.read_text())
        if shown:
            update_markdown(markdown, surveys_markdown(shown, out_dir, Path(markdown).parent), BEGIN, END)
    return reports
