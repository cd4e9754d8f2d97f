"""Supervised spatial cross-validation on point samples: whole site clusters, a buffer in km.

The grid protocol (:mod:`~mstgat_core.training.folds`) carried over to samples that are not on a grid.
Each (merged) sample is a node; a site labels the sample nearest to it.

**Distances, one rule for every survey** (:func:`point_distances`; nothing is chosen per survey):

* ``spacing`` *s*: the survey's typical spacing, the median distance from each distinct sample
  location to the nearest other one (:func:`~mstgat_core.data.support.typical_spacing`): the point
  analogue of a grid cell;
* ``reach`` *R*: the model's receptive radius, ``gat_layers`` x the median distance from a sample to
  its ``k``-th nearest sample, ``k`` the widest point scale (48): what
  :attr:`PointGraph.reach <mstgat_core.graphs.point_graph.PointGraph.reach>` gives for that scale;
* **buffer** ``R + s``: every training label within it of the test region is dropped (the grid's
  "receptive radius + 1 cell"), so no training label lies in the receptive field of a test sample;
* **link distance** ``R + s`` (= the buffer): sites whose samples are closer form one cluster (single
  linkage). Holding one of them out would drop the other from training through the buffer anyway, so
  they are held out together. (The grid links at the receptive *diameter* ``2R + 1``; on points that
  joins Lapland's 13 sites into one cluster and no fold could hold any out.)
* **negatives** at least ``3 s`` from every training site's sample (test negatives: from every site's),
  the grid's 3 cells;
* **sites** farther than ``R`` from every sample lie outside the survey and label nothing.

**Coordinates.** :func:`~mstgat_core.training.folds.spatial_folds` measures Euclidean distances in
the units of its ``rows, cols``, but casts them to integers and measures the distance to a test
region on a raster of that integer lattice. So samples are placed on a lattice of
:data:`LATTICE_KM` (0.1 km): ``rows = round((y - min y) / 0.1 km)``, ``cols`` likewise with x, in
the samples' projected CRS; the distances the folds compute are exact Euclidean distances between
lattice points, within ``0.1 / sqrt(2)`` km of the true ones (``tests/test_surveys.py`` checks the folds
against a brute force in km). Fine-tuning's inner cross-validation receives the same lattice and
the same settings, so it uses the same distance folds.

**Methods** (:func:`point_runners`; each ``fit_predict(X, fold, seed)`` of
:func:`~mstgat_core.evaluation.evaluate.cross_validate_arrays`, reading labels only from
``fold.train_pos`` and ``fold.train_neg_pool``):

* ``mstgat``: the point model pretrained on every sample without labels (one backbone per seed,
  :func:`~mstgat_core.training.point_model.pretrain_points`), 5 heads fine-tuned on the fold's
  training sites by :func:`~mstgat_core.training.procedure.fit_network` with its precomputed
  [embedding, label-free score] (share and C by inner CV on the same distance folds);
* ``mstgat_label_free``: that backbone's label-free score (no label);
* ``target_element``: the target element's normalised value (no label);
* ``best_single_element``, ``mahalanobis``, ``isolation_forest``: :mod:`~mstgat_core.evaluation.baselines`;
* ``random_forest_context``, ``logistic_context``: the baselines on each sample's values plus the mean and
  max of every element over the sample and its ``k`` nearest samples for each point scale ``k``
  (:func:`point_context`: the point analogue of the grid's ``*_context`` windows).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from ..data.support import typical_spacing
from ..errors import DataError
from ..graphs.point_graph import DEFAULT_NEIGHBOURS
from ..training.finetune import FineTuneConfig
from ..training.folds import FoldSettings, deposit_clusters
from ..training.procedure import Backbone, FitSettings
from .baselines import BASELINES
from .crossval import LABEL_FREE, label_free_method, on_features, pretrained_method
from .evaluate import REPORT_SEEDS, baseline_method, cross_validate_arrays

LATTICE_KM = 0.1  # the folds' integer lattice
NEGATIVE_SPACINGS = 3.0  # negatives at least this many typical spacings from a site (the grid's 3 cells)
TARGET = "target_element"
POINT_METHODS = (
    "mstgat",
    LABEL_FREE,
    TARGET,
    "best_single_element",
    "mahalanobis",
    "isolation_forest",
    "random_forest_context",
    "logistic_context",
)


@dataclass(frozen=True)
class PointDistances:
    """The distances (km) of a point cross-validation; see the module docstring."""

    spacing_km: float
    reach_km: float
    buffer_km: float
    link_km: float
    min_neg_km: float
    site_km: float
    neighbours: int
    gat_layers: int

    def to_dict(self) -> dict:
        """Plain-JSON fields, with the rule in words."""
        return {
            **asdict(self),
            "rule": f"reach R = {self.gat_layers} x median distance to the {self.neighbours}th nearest sample; "
            "spacing s = median nearest-neighbour distance of distinct locations; buffer = link distance = R + s; "
            f"negatives >= {NEGATIVE_SPACINGS:g} s from a site's sample; sites within R of a sample",
            "lattice_km": LATTICE_KM,
        }

    def fold_settings(self, folds="loco") -> FoldSettings:
        """These distances as :class:`~mstgat_core.training.folds.FoldSettings` in lattice units."""
        loco = str(folds).lower() == "loco"
        return FoldSettings(
            method="loco" if loco else "clusters",
            n_folds=5 if loco else int(folds),
            link_distance=self.link_km / LATTICE_KM,
            buffer=self.buffer_km / LATTICE_KM,
            min_neg_distance=self.min_neg_km / LATTICE_KM,
        )


def point_distances(xy_km, neighbours=DEFAULT_NEIGHBOURS, gat_layers: int = 1) -> PointDistances:
    """The rule of the module docstring on sample coordinates ``xy_km`` ((n, 2), km, projected).

    ``neighbours`` are the point model's scales (nearest-sample counts); the widest sets the reach.
    """
    xy_km = np.asarray(xy_km, dtype=float)
    k = int(max(neighbours))
    if len(xy_km) <= k:
        raise DataError(f"{len(xy_km)} samples: the point model's widest scale needs more than {k}")
    spacing = typical_spacing(xy_km, colocated_share=0.0)  # the protocol as published: identical coordinates only
    distance, _ = cKDTree(xy_km).query(xy_km, k=k + 1)  # itself first, as the point graph leaves it out
    reach = int(gat_layers) * float(np.median(distance[:, k]))
    buffer = reach + spacing
    return PointDistances(spacing, reach, buffer, buffer, NEGATIVE_SPACINGS * spacing, reach, k, int(gat_layers))


def lattice(xy_km, unit: float = LATTICE_KM) -> tuple[np.ndarray, np.ndarray]:
    """``rows, cols`` (int64) of the samples on a lattice of ``unit`` km: the folds' coordinates."""
    xy_km = np.asarray(xy_km, dtype=float)
    rows = np.rint((xy_km[:, 1] - xy_km[:, 1].min()) / unit).astype(np.int64)
    cols = np.rint((xy_km[:, 0] - xy_km[:, 0].min()) / unit).astype(np.int64)
    return rows, cols


def site_positives(xy_km, sites_km, max_km: float) -> tuple[np.ndarray, dict]:
    """The distinct samples nearest to the sites within ``max_km`` (sorted node ids) and counts."""
    sites_km = np.asarray(sites_km, dtype=float).reshape(-1, 2)
    if len(sites_km) == 0:
        raise DataError("no sites to label the samples with", setting="deposits")
    distance, nearest = cKDTree(np.asarray(xy_km, dtype=float)).query(sites_km)
    inside = distance <= max_km
    positives = np.unique(nearest[inside])
    info = {
        "n_sites": int(len(sites_km)),
        "n_sites_outside": int((~inside).sum()),
        "n_positive_samples": int(len(positives)),
        "site_to_sample_km_median": float(np.median(distance)),
        "site_to_sample_km_max": float(distance.max()),
    }
    if len(positives) == 0:
        raise DataError(f"no site lies within {max_km:.1f} km of a sample", setting="deposits")
    return positives, info


def count_clusters(xy_km, positives, distances: PointDistances) -> int:
    """Site clusters at the link distance (on the lattice, as the folds see them)."""
    rows, cols = lattice(xy_km)
    return int(deposit_clusters(rows, cols, positives, distances.link_km / LATTICE_KM).max() + 1)


def point_context(X, xy_km, neighbours=DEFAULT_NEIGHBOURS) -> np.ndarray:
    """Each sample's features, then per ``k`` the mean and max of every feature over the sample and its
    ``k`` nearest samples: (n, E * (1 + 2 len(neighbours))) float32."""
    X = np.asarray(X, dtype=np.float64)
    k_max = int(max(neighbours))
    _, index = cKDTree(np.asarray(xy_km, dtype=float)).query(xy_km, k=min(k_max + 1, len(X)))
    columns = [X]
    for k in neighbours:
        window = X[index[:, : int(k) + 1]]  # the sample itself is its own nearest (distance 0)
        columns += [window.mean(axis=1), window.max(axis=1)]
    return np.concatenate(columns, axis=1).astype(np.float32)


class _Lattice:
    """What :func:`~mstgat_core.training.procedure.fit_network` reads of a graph when it fine-tunes a
    given backbone: the nodes' ``rows_cols`` (here the lattice of the samples)."""

    def __init__(self, rows, cols):
        self.rows_cols = (rows, cols)


class PointBackbones:
    """Point models pretrained without labels, one per seed, as the cross-validation's backbones.

    Duck-types :class:`~mstgat_core.evaluation.crossval.Backbones` for
    :func:`~mstgat_core.evaluation.crossval.pretrained_method` and
    :func:`~mstgat_core.evaluation.crossval.label_free_method`.

    Parameters
    ----------
    pretrain : callable
        ``seed -> PointModel`` (:func:`~mstgat_core.training.point_model.pretrain_points`); called once per seed.
    rows, cols : ndarray of int
        The samples' lattice (:func:`lattice`).
    cache : dict, optional
        seed -> (backbone, readouts), shared by surveys of the same samples (e.g. Au and Cu sites).
    """

    def __init__(self, pretrain, rows, cols, cache: dict | None = None):
        self._pretrain = pretrain
        self._lattice = _Lattice(rows, cols)
        self._cache = {} if cache is None else cache  # seed -> (Backbone, readouts); may be shared

    def get(self, X, variant: str, seed: int) -> Backbone:
        """The seed's backbone (pretrained on first use); ``variant`` must be ``mstgat``."""
        if variant != "mstgat":
            raise DataError(f"point surveys run the mstgat variant only, not {variant}", setting="methods")
        if seed not in self._cache:
            self._cache[seed] = backbone_of(self._pretrain(seed))
        return self._cache[seed][0]

    def readouts(self, seed: int) -> dict:
        """The seed's label-free readouts (``{"scores": PointScores}``; pretrained on first use)."""
        self.get(None, "mstgat", seed)
        return self._cache[seed][1]

    def graph(self, config):
        """The lattice fine-tuning reads (``rows_cols``)."""
        return self._lattice


@torch.no_grad()
def backbone_of(point_model) -> tuple[Backbone, dict]:
    """A :class:`~mstgat_core.training.procedure.Backbone` of a pretrained point model (its embedding and
    label-free score frozen) and its label-free readouts (``PointScores``: score and residuals)."""
    model = point_model.model.eval()
    scores = point_model.scores()
    embedding, _ = model._embed_grid(point_model.x, point_model.graph)
    score = torch.from_numpy(scores.anomaly_score.astype(np.float32))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return Backbone(model.config, state, point_model.graph, (embedding, score)), {"scores": scores}


def point_runners(
    methods,
    X,
    xy_km,
    backbones: PointBackbones | None,
    settings: FoldSettings,
    target_index: int | None = None,
    neighbours=DEFAULT_NEIGHBOURS,
    finetune_config: FineTuneConfig | None = None,
) -> dict:
    """name -> ``fit_predict(X, fold, seed)`` for :data:`POINT_METHODS` (module docstring).

    ``settings`` are the outer folds' (lattice units): fine-tuning's inner CV inherits them.
    """
    unknown = [m for m in methods if m not in POINT_METHODS]
    if unknown:
        raise DataError(f"unknown point method(s) {', '.join(unknown)}; choose from {', '.join(POINT_METHODS)}")
    runners, context = {}, None
    for m in methods:
        if m in ("mstgat", LABEL_FREE) and backbones is None:
            raise DataError(f"{m} needs the point model's backbones")
        if m == "mstgat":
            fit = FitSettings(finetune=finetune_config, folds=settings)
            runners[m] = pretrained_method(backbones, "mstgat", 5, settings=fit)
        elif m == LABEL_FREE:
            runners[m] = label_free_method(backbones)
        elif m == TARGET:
            if target_index is None:
                raise DataError("target_element needs a target element", setting="target")
            runners[m] = _fixed(np.asarray(X, dtype=np.float64)[:, target_index], TARGET)
        elif BASELINES[m].uses_context:
            if context is None:
                context = point_context(X, xy_km, neighbours)
            runners[m] = on_features(baseline_method(m), context)
        else:
            runners[m] = baseline_method(m)
    return runners


def _fixed(scores: np.ndarray, name: str):
    def fit_predict(X, fold, seed):
        return scores

    fit_predict.__name__ = name
    return fit_predict


def cross_validate_points(
    runners: dict,
    X,
    xy_km,
    positives,
    distances: PointDistances,
    folds="loco",
    seeds=REPORT_SEEDS,
    progress=None,
    cancel=None,
) -> dict:
    """Cross-validate ``runners`` on samples at ``xy_km`` with the distance folds of ``distances``.

    The array loop is :func:`~mstgat_core.evaluation.evaluate.cross_validate_arrays` on the samples'
    lattice (its paired statistics: :func:`~mstgat_core.evaluation.stats.compare_methods`, unchanged).

    Returns
    -------
    dict
        Its report; ``protocol`` adds ``distances`` (km and the rule), ``units`` ("lattice of 0.1 km":
        ``link_distance``, ``buffer`` and ``min_neg_distance`` are in lattice units there) and, per
        fold, each test site sample's ``x_km``, ``y_km`` and distance in km to the nearest training one.
    """
    xy_km = np.asarray(xy_km, dtype=float)
    rows, cols = lattice(xy_km)
    settings = distances.fold_settings(folds)
    report = cross_validate_arrays(
        runners, X, rows, cols, positives, settings=settings, seeds=tuple(seeds), progress=progress, cancel=cancel
    )
    protocol = report["protocol"]
    for reports in protocol["folds"].values():
        for fold in reports:
            for deposit in fold["test_deposits"]:
                deposit["y_km"] = deposit["row"] * LATTICE_KM + xy_km[:, 1].min()
                deposit["x_km"] = deposit["col"] * LATTICE_KM + xy_km[:, 0].min()
                deposit["distance_km"] = deposit["distance_to_training"] * LATTICE_KM
    protocol.update(distances=distances.to_dict(), units=f"lattice of {LATTICE_KM:g} km")
    return report
