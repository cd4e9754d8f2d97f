"""Cross-validate MSTGAT, its ablations and the baselines on one grid.

Glue between :mod:`folds` and :mod:`evaluate` (folds, metrics, reports),
:mod:`baselines` and the neural models, which every fold fits with
:func:`~mstgat_core.training.procedure.fit_network`, the procedure of
:func:`~mstgat_core.training.pipeline.fit`. The
normaliser is fitted once on the whole grid: it uses no labels, so it leaks
none. Baselines whose name ends in ``_context`` see the cell plus the mean and
max of every element over the model's windows
(:func:`~mstgat_core.neighbourhood.neighbourhood_features`): the same
information as MSTGAT's spatial branch.

MSTGAT and its branch ablations are pretrained on every cell of the grid by
masked-element reconstruction: that reads no label, so it may see the whole
grid, test folds included (as the normaliser and the label-free baselines
do). One backbone per (variant, seed) serves every fold (:class:`Backbones`,
with its frozen grid features); each fold then fine-tunes the heads on its
training deposits only, with an inner cross-validation that inherits the
outer folds' link distance, buffer and minimum negative distance.

Nothing here is tuned on test folds: the model, pretraining and training
settings are the frozen defaults of :class:`~mstgat_core.model.ModelConfig`,
:class:`~mstgat_core.pretrain.PretrainConfig`,
:class:`~mstgat_core.finetune.FineTuneConfig` and
:class:`~mstgat_core.train.TrainConfig`; the head's regularisation and the
share of the supervised head are chosen by inner cross-validation on the
*training* deposits of each fold; early stopping of the from-scratch
ablation reads an inner split of the training labels only; the baselines use
the fixed settings of :mod:`~mstgat_core.baselines`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import xarray as xr

from ..data.preprocess import Normaliser, valid_mask
from ..data.support import support_summary
from ..errors import DataError
from ..graphs.graph import GridGraph
from ..graphs.neighbourhood import neighbourhood_features
from ..model import VARIANTS, ModelConfig
from ..training.finetune import FineTuneConfig
from ..training.folds import FoldSettings, spatial_folds
from ..training.pretrain import PretrainConfig
from ..training.procedure import Backbone, FitSettings, fit_network
from ..training.train import TrainConfig
from .baselines import BASELINES
from .evaluate import REPORT_SEEDS, baseline_method, cross_validate_arrays

SINGLE = "mstgat_k1"  # the default model with one member instead of an ensemble
SCRATCH = "mstgat_scratch"  # no pretraining: the supervised readout trained end to end on the deposits
LABEL_FREE = "mstgat_label_free"  # the pretrained backbone's label-free score: no labels at all
# the default model with the residual readout (training.readouts): on the same backbones, folds and seeds
RESIDUAL = "mstgat_residual"
METHODS = VARIANTS + (SINGLE, SCRATCH, LABEL_FREE, RESIDUAL) + tuple(BASELINES)
# what `mstgat evaluate` and the benchmark compare by default: the model, its ablations and every baseline
DEFAULT_METHODS = ("mstgat", "spectral", "spatial", SINGLE, SCRATCH, LABEL_FREE, *BASELINES)


class Backbones:
    """Pretrained backbones of one grid, one per (variant, seed), with their frozen grid features.

    Pretraining reads no label, so one backbone per seed serves every fold and
    every method built on it (the ensemble, one member, the label-free score).
    Each is a :class:`~mstgat_core.training.procedure.Backbone` pretrained by
    the procedure :func:`~mstgat_core.training.pipeline.fit` uses.

    Parameters
    ----------
    mask : ndarray of bool
        The grid's valid cells.
    model_config : dict, optional
        Fields of :class:`~mstgat_core.model.ModelConfig` (its variant,
        readout and members are set per backbone).
    pretrain_config : PretrainConfig, optional
        Pretraining (its seed is replaced by each seed).
    fixed : FittedModel, optional
        A pretrained model used for every seed (``backbone=`` of
        :func:`cross_validate_grid`).
    """

    def __init__(
        self,
        mask: np.ndarray,
        model_config: dict | None = None,
        pretrain_config: PretrainConfig | None = None,
        fixed=None,
    ):
        self.mask = mask
        self.fixed = fixed
        self.model_config = dict(model_config or {})
        self.pretrain_config = pretrain_config or PretrainConfig()
        self._cache = {}
        self._graph = None

    def get(self, X, variant: str, seed: int) -> Backbone:
        """The backbone of ``variant`` pretrained with ``seed`` on the features ``X`` (pretrained on first use)."""
        if self.fixed is not None:
            if variant != self.fixed.config.variant:
                raise DataError(
                    f"the pretrained backbone is a {self.fixed.config.variant} model; "
                    f"evaluate {variant} without a fixed backbone",
                    setting="backbone",
                )
            seed = "fixed"
        key = (variant, seed)
        if key not in self._cache:
            x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            if self.fixed is not None:
                self._cache[key] = Backbone.of(self.fixed.model, x, self.mask)
            else:
                protocol = dataclasses.replace(self.pretrain_config, seed=seed)
                self._cache[key] = Backbone.pretrained(self.config(X, variant), x, self.mask, protocol)
        return self._cache[key]

    def config(self, X, variant: str, members: int = 1) -> ModelConfig:
        """The architecture of ``variant`` on the features ``X`` (fused readout, ``members`` heads)."""
        return ModelConfig.from_dict(
            self.model_config, n_elements=X.shape[1], variant=variant, readout="fused", members=members
        )

    def graph(self, config: ModelConfig) -> GridGraph:
        """The grid's graph (the procedure reads its cells; edge lists are never built for fine-tuning)."""
        if self._graph is None:
            self._graph = config.graph(self.mask)
        return self._graph


def pretrained_method(
    backbones: Backbones,
    variant: str = "mstgat",
    members: int = 5,
    name: str | None = None,
    settings: FitSettings | None = None,
):
    """A ``fit_predict(X, fold, seed)``: the seed's pretrained backbone, heads fine-tuned on the fold's
    training deposits by :func:`~mstgat_core.training.procedure.fit_network` (as
    :func:`~mstgat_core.training.pipeline.fit` does; settings chosen by inner CV on them).

    ``settings`` (:class:`~mstgat_core.training.procedure.FitSettings`) carries the fine-tuning config and
    the outer fold settings the inner CV inherits; its seeds are replaced by each seed and its member count
    by ``members``.

    Returns a :class:`~mstgat_core.evaluate.MethodScores`: the score of every node, with the extras
    ``inner`` (the :class:`~mstgat_core.finetune.FineTuneResult` as a dict: share and C chosen, how, every
    inner figure and the inner fold settings), ``spread`` (with several members: their standard deviation,
    the ``uncertainty`` layer; the fold row keeps :func:`~mstgat_core.evaluation.uncertainty.uncertainty_figures`)
    and ``calibrated`` (every node's calibrated probability, the
    transformation of the ``calibrated`` layer of :meth:`~mstgat_core.model.MSTGAT.predict_grid`; None when
    the head has no calibration). Neither reads a test label; the cross-validation scores the probabilities
    on the fold's test cells."""
    from .evaluate import MethodScores

    base = dataclasses.replace(settings or FitSettings(), pretrained=True, members=int(members))

    def fit_predict(X, fold, seed):
        backbone = backbones.get(X, variant, seed)
        outcome = fit_network(
            backbone.config,
            None,
            backbones.graph(backbone.config),
            fold.train_pos,
            negative_candidates=fold.train_neg_pool,
            settings=base.reseeded(seed),
            backbone=backbone,
        )
        scores, calibrated = outcome.node_scores()
        extras = {"inner": outcome.result.to_dict(), "calibrated": calibrated}
        if base.members > 1:
            extras["spread"] = outcome.member_spread()
        return MethodScores(scores, **extras)

    fit_predict.__name__ = name or variant
    return fit_predict


def label_free_method(backbones: Backbones, members: int = 5):
    """A ``fit_predict(X, fold, seed)``: the label-free score of the seed's pretrained MSTGAT
    (reads no label, so one backbone per seed serves every fold), with the extra ``spread``: the
    ``uncertainty`` layer of a label-free model of ``members`` members (the score's spread over element
    groupings, :mod:`~mstgat_core.model.grouping`; absent where the backbone cannot score them)."""
    from .evaluate import MethodScores

    def fit_predict(X, fold, seed):
        backbone = backbones.get(X, "mstgat", seed)
        spread = backbone.grouping_spread(int(members))
        extras = {} if spread is None else {"spread": spread}
        return MethodScores(backbone.features[1].numpy(), **extras)

    fit_predict.__name__ = LABEL_FREE
    return fit_predict


def scratch_method(mask: np.ndarray, model_config: dict | None = None, train_config: TrainConfig | None = None):
    """A ``fit_predict(X, fold, seed)`` training MSTGAT's supervised readout from scratch on the fold
    by :func:`~mstgat_core.training.procedure.fit_network` (as ``fit(pretrained=False)`` does; early
    stopping on an inner split of the training deposits)."""
    model_config = dict(model_config or {})
    settings = FitSettings(pretrained=False, members=1, train=train_config or TrainConfig())
    graphs = {}

    def fit_predict(X, fold, seed):
        config = ModelConfig.from_dict(
            model_config, n_elements=X.shape[1], variant="mstgat", readout="supervised", members=1
        )
        if "graph" not in graphs:
            graphs["graph"] = config.graph(mask)
        graph = graphs["graph"]
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        outcome = fit_network(
            config, x, graph, fold.train_pos, negative_candidates=fold.train_neg_pool, settings=settings.reseeded(seed)
        )
        return outcome.model.predict_grid(x, graph.stencil).probability.numpy()

    fit_predict.__name__ = SCRATCH
    return fit_predict


def on_features(fit_predict, features: np.ndarray):
    """``fit_predict`` fed ``features`` instead of the matrix the cross-validation passes."""

    def run(X, fold, seed):
        return fit_predict(features, fold, seed)

    run.__name__ = fit_predict.__name__
    return run


def method_runners(
    methods,
    mask,
    X,
    model_config: dict | None = None,
    train_config: TrainConfig | None = None,
    backbone=None,
    pretrain_config: PretrainConfig | None = None,
    finetune_config: FineTuneConfig | None = None,
    fold_settings: FoldSettings | None = None,
):
    """name -> ``fit_predict(X, fold, seed)`` for every method (neighbourhood features built once if needed).

    ``fold_settings`` are the outer folds' settings: fine-tuning's inner cross-validation inherits their
    link distance, buffer and minimum negative distance (default: the model's receptive field).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise DataError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}", setting="methods")
    model_config = dict(model_config or {})
    scales = ModelConfig.from_dict(
        model_config, n_elements=X.shape[1], variant="mstgat", readout="fused", members=1
    ).scales
    context = None
    runners = {}
    backbones = Backbones(mask, model_config, pretrain_config, fixed=backbone)
    settings = FitSettings(finetune=finetune_config, folds=fold_settings)
    for m in methods:
        if m in VARIANTS:
            runners[m] = pretrained_method(backbones, m, settings=settings)
        elif m == SINGLE:
            runners[m] = pretrained_method(backbones, "mstgat", 1, SINGLE, settings=settings)
        elif m == RESIDUAL:
            residual = dataclasses.replace(settings.finetune_config, readout="residual")
            runners[m] = pretrained_method(
                backbones, "mstgat", name=RESIDUAL, settings=dataclasses.replace(settings, finetune=residual)
            )
        elif m == SCRATCH:
            runners[m] = scratch_method(mask, model_config, train_config)
        elif m == LABEL_FREE:
            runners[m] = label_free_method(backbones)
        elif BASELINES[m].uses_context:
            if context is None:
                context = neighbourhood_features(X, mask, scales)
            runners[m] = on_features(baseline_method(m), context)
        else:
            runners[m] = baseline_method(m)
    return runners


def cross_validate_grid(
    ds: xr.Dataset,
    deposits: xr.DataArray,
    methods=DEFAULT_METHODS,
    folds: int | str = 5,
    seeds=REPORT_SEEDS,
    model_config: dict | None = None,
    train_config: TrainConfig | None = None,
    transform: str = "clr",
    elements=None,
    fold_method: str = "clusters",
    buffer: float | None = None,
    link_distance: float | None = None,
    progress=None,
    cancel=None,
    backbone=None,
    pretrain_config: PretrainConfig | None = None,
    finetune_config: FineTuneConfig | None = None,
) -> dict:
    """Spatially cross-validate MSTGAT, its ablations and the baselines on one grid.

    The grid-level entry (what the CLI, dashboard, benchmark and notebooks
    call); the folds, metrics and report come from
    :func:`~mstgat_core.evaluate.cross_validate_arrays`, which works on a
    feature matrix and node ids.

    Parameters
    ----------
    ds : xr.Dataset
        The survey grid.
    deposits : xr.DataArray
        Bool (y, x) deposit cells on the same grid (the positives).
    methods : sequence of str
        Names from :data:`METHODS` (model variants and baselines); the first
        is the reference of the paired comparison when it is ``mstgat``.
    folds : int or "loco"
        Folds per seed, or ``"loco"`` to leave one deposit cluster out in turn.
    seeds : sequence of int
        One fold assignment and one set of fits per seed (default 2, 3, 4:
        seeds 0 and 1 were used when the default settings were chosen).
    model_config : dict, optional
        Fields of :class:`~mstgat_core.model.ModelConfig` for the neural
        methods; its ``scales`` and ``gat_layers`` also set the neighbourhood
        features of the ``_context`` baselines and the default link distance
        and buffer.
    train_config : TrainConfig, optional
        Training protocol of the neural methods.
    transform : {"clr", "log", "none"}
        Compositional transform (the normaliser uses no labels, so it is fitted
        once on the whole grid).
    elements : list of str, optional
        Use only these elements.
    fold_method : {"clusters", "blocks"}
        Whole deposit clusters (default) or square blocks (the older protocol).
    buffer, link_distance : float, optional
        In cells; default from the model's receptive field (see
        :meth:`~mstgat_core.folds.FoldSettings.for_config`). Fine-tuning's
        inner cross-validation inherits them (and the minimum negative
        distance, ``train_config.min_negative_distance``); each fold row's
        ``inner`` records them as ``inner_settings``.
    progress : callable, optional
        ``progress(done, total, message)`` after each fit.
    cancel : threading.Event, optional
        When set, stops with :class:`~mstgat_core.errors.Cancelled`.
    backbone : FittedModel, optional
        A pretrained model of this grid (``mstgat pretrain``) used by every
        seed instead of pretraining per seed; its normaliser, elements and
        architecture replace ``transform``, ``elements`` and ``model_config``.
    pretrain_config : PretrainConfig, optional
        Pretraining of the backbones (default
        :class:`~mstgat_core.pretrain.PretrainConfig`; its seed is each seed).
    finetune_config : FineTuneConfig, optional
        Fine-tuning of the heads (default
        :class:`~mstgat_core.finetune.FineTuneConfig`; its seed is each seed).

    Returns
    -------
    dict
        ``protocol``, ``results`` and ``comparison`` (plain JSON types; see
        :func:`~mstgat_core.evaluate.cross_validate_arrays` and
        :func:`~mstgat_core.evaluate.report_markdown`).

    Raises
    ------
    DataError
        Unknown method, deposit grid of another shape, no deposit on a valid
        cell, fewer deposit clusters than folds, or a buffer that leaves a fold
        without training labels.
    """
    train_config = train_config or TrainConfig()
    if backbone is not None:
        normaliser, transform = backbone.normaliser, backbone.normaliser.transform_name
        backbone.check_elements(ds)
        model_config = {
            k: v for k, v in backbone.config.to_dict().items() if k not in ("n_elements", "readout", "members")
        }
    else:
        normaliser = Normaliser(transform=transform, elements=elements).fit(ds)
    mask = valid_mask(ds, normaliser.elements)
    X = normaliser.transform(ds, mask)
    labels = np.asarray(deposits.values, dtype=bool)
    if labels.shape != mask.shape:
        raise DataError(f"deposit grid {labels.shape} does not match the data grid {mask.shape}", setting="deposits")
    positives = np.flatnonzero(labels[mask])
    config = ModelConfig.from_dict(model_config, n_elements=X.shape[1], variant="mstgat", readout="fused", members=1)
    loco = str(folds).lower() == "loco"
    settings = FoldSettings.for_config(
        config,
        method="loco" if loco else fold_method,
        n_folds=None if loco else int(folds),
        buffer=buffer,
        link_distance=link_distance,
        min_neg_distance=train_config.min_negative_distance,
    )
    rows, cols = np.nonzero(mask)
    runners = method_runners(
        methods, mask, X, model_config, train_config, backbone, pretrain_config, finetune_config, settings
    )
    report = cross_validate_arrays(
        runners, X, rows, cols, positives, settings=settings, seeds=tuple(seeds), progress=progress, cancel=cancel
    )
    report["protocol"].update(
        transform=transform,
        elements=normaliser.elements,
        model_config={k: v for k, v in config.to_dict().items() if k not in ("variant", "readout", "members")},
        pretrain_config=(pretrain_config or PretrainConfig()).to_dict(),
        finetune_config=(finetune_config or FineTuneConfig()).to_dict(),
        members=5,
        train_config=train_config.to_dict(),
        backbone="fixed (--pretrained)" if backbone is not None else "pretrained per seed",
        pretraining_sees="every supported cell of the grid, no label (test folds included); heads see training "
        "deposits only",
        support=support_summary(ds, normaliser.elements),
    )
    return report


def fold_roles(ds: xr.Dataset, deposits: xr.DataArray, report: dict) -> list[dict]:
    """Where each fold of a cross-validation report trained and tested, on the grid.

    The folds are drawn again from the report's protocol (its settings, seeds and elements), which
    gives the very folds the report scored. One dict per (seed, fold): ``seed``, ``fold`` (from 1),
    and bool (y, x) arrays ``test_region``, ``train_deposits`` (the deposit cells the fold trained on)
    and ``test_deposits`` (those it held out); deposit cells in neither were dropped by the buffer.
    """
    protocol = report["protocol"]
    settings = FoldSettings.from_dict({k: protocol.get(k) for k in FoldSettings.__dataclass_fields__})
    mask = valid_mask(ds, protocol["elements"])
    labels = np.asarray(deposits.values, dtype=bool)
    rows, cols = np.nonzero(mask)
    positives = np.flatnonzero(labels[mask])

    def on_grid(nodes=None, node_mask=None):
        grid = np.zeros(mask.shape, dtype=bool)
        picked = np.flatnonzero(node_mask) if node_mask is not None else nodes
        grid[rows[picked], cols[picked]] = True
        return grid

    roles = []
    for seed in protocol["seeds"]:
        for index, fold in enumerate(spatial_folds(rows, cols, positives, settings, seed), start=1):
            roles.append(
                {
                    "seed": int(seed),
                    "fold": index,
                    "test_region": on_grid(node_mask=fold.test_region),
                    "train_deposits": on_grid(fold.train_pos),
                    "test_deposits": on_grid(fold.test_pos),
                }
            )
    return roles
