"""Cross-validate MSTGAT, its ablations and the baselines on one grid.

Glue between :mod:`folds` and :mod:`evaluate` (folds, metrics, reports),
:mod:`baselines` and the neural models of :mod:`model`/:mod:`train`. The
normaliser is fitted once on the whole grid: it uses no labels, so it leaks
none. Baselines whose name ends in ``_context`` see the cell plus the mean and
max of every element over the model's windows
(:func:`~mstgat_core.neighbourhood.neighbourhood_features`): the same
information as MSTGAT's spatial branch.

Nothing here is tuned on test folds: the model and training settings are the
frozen defaults of :class:`~mstgat_core.model.ModelConfig` and
:class:`~mstgat_core.train.TrainConfig` (early stopping reads an inner split of
the *training* labels only), and the baselines use the fixed settings of
:mod:`~mstgat_core.baselines`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import xarray as xr

from .baselines import BASELINES
from .errors import DataError
from .evaluate import REPORT_SEEDS, baseline_method, cross_validate_arrays
from .folds import FoldSettings
from .graph import build_graph
from .model import MSTGAT, VARIANTS, ModelConfig
from .neighbourhood import neighbourhood_features
from .preprocess import Normaliser, valid_mask
from .pretrain import PretrainConfig, pretrain, reconstruction_error
from .train import TrainConfig, train_model

PRETRAINED = "+pretrain"  # suffix of a variant whose branches are first pretrained on every cell, no labels
LABEL_FREE = "mstgat_label_free"  # reconstruction error of the pretrained model: no labels at all
METHODS = VARIANTS + tuple(v + PRETRAINED for v in VARIANTS) + (LABEL_FREE,) + tuple(BASELINES)
# what `mstgat evaluate` and the benchmark compare by default: the model, its ablations and every baseline
DEFAULT_METHODS = ("mstgat", "spectral", "spatial", *BASELINES)


def neural_method(
    mask: np.ndarray,
    variant: str,
    model_config: dict | None = None,
    train_config: TrainConfig | None = None,
    pretrain_config: PretrainConfig | None = None,
):
    """A ``fit_predict(X, fold, seed)`` that trains one model variant on the fold's training labels.

    A variant named ``<variant>+pretrain`` first pretrains its branches by
    masked-element reconstruction on every cell of the grid (no labels, so no
    fold leaks: :mod:`~mstgat_core.pretrain`), once per seed, and fine-tunes a
    copy on each fold.
    """
    model_config = dict(model_config or {})
    train_config = train_config or TrainConfig()
    pretrained = variant.endswith(PRETRAINED)
    base = variant.removesuffix(PRETRAINED)
    pretrain_config = pretrain_config or PretrainConfig()
    graphs, backbones = {}, {}

    def fit_predict(X, fold, seed):
        config = ModelConfig(**{**model_config, "n_elements": X.shape[1], "variant": base})
        key = (config.scales, config.graph_mode)
        if key not in graphs:
            graphs[key] = build_graph(mask, config.scales, config.graph_mode)
        graph = graphs[key]
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        torch.manual_seed(seed)
        model = MSTGAT(config)
        if pretrained:
            if seed not in backbones:
                pretrain(model, x, mask, dataclasses.replace(pretrain_config, seed=seed))
                backbones[seed] = {k: v.clone() for k, v in model.state_dict().items()}
            model.load_state_dict(backbones[seed])
        train_model(
            model,
            x,
            graph,
            fold.train_pos,
            negative_candidates=fold.train_neg_pool,
            config=dataclasses.replace(train_config, seed=seed),
        )
        return model.predict_grid(x, graph.stencil if config.uses_spatial else None).probability.numpy()

    fit_predict.__name__ = variant
    return fit_predict


def label_free_method(
    mask: np.ndarray, model_config: dict | None = None, pretrain_config: PretrainConfig | None = None
):
    """A ``fit_predict(X, fold, seed)`` scoring every cell by the masked-reconstruction error of an MSTGAT
    pretrained on the whole grid (:func:`~mstgat_core.pretrain.reconstruction_error`); it reads no label,
    so one fit per seed serves every fold."""
    model_config = dict(model_config or {})
    pretrain_config = pretrain_config or PretrainConfig()
    scores = {}

    def fit_predict(X, fold, seed):
        if seed not in scores:
            config = ModelConfig(**{**model_config, "n_elements": X.shape[1], "variant": "mstgat"})
            x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            torch.manual_seed(seed)
            task, _ = pretrain(MSTGAT(config), x, mask, dataclasses.replace(pretrain_config, seed=seed))
            scores[seed] = reconstruction_error(task, x, mask, seed=seed)
        return scores[seed]

    fit_predict.__name__ = LABEL_FREE
    return fit_predict


def on_features(fit_predict, features: np.ndarray):
    """``fit_predict`` fed ``features`` instead of the matrix the cross-validation passes."""

    def run(X, fold, seed):
        return fit_predict(features, fold, seed)

    run.__name__ = fit_predict.__name__
    return run


def method_runners(methods, mask, X, model_config: dict | None = None, train_config: TrainConfig | None = None):
    """name -> ``fit_predict(X, fold, seed)`` for every method (neighbourhood features built once if needed)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise DataError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    scales = ModelConfig(
        n_elements=X.shape[1], **{k: v for k, v in (model_config or {}).items() if k not in ("n_elements", "variant")}
    ).scales
    context = None
    runners = {}
    for m in methods:
        if m.removesuffix(PRETRAINED) in VARIANTS:
            runners[m] = neural_method(mask, m, model_config, train_config)
        elif m == LABEL_FREE:
            runners[m] = label_free_method(mask, model_config)
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
        One fold assignment and one set of fits per seed (default 1, 2, 3:
        seed 0 was used when the default settings were chosen).
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
        :meth:`~mstgat_core.folds.FoldSettings.for_model`).
    progress : callable, optional
        ``progress(done, total, message)`` after each fit.
    cancel : threading.Event, optional
        When set, stops with :class:`~mstgat_core.errors.Cancelled`.

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
    normaliser = Normaliser(transform=transform, elements=elements).fit(ds)
    mask = valid_mask(ds, normaliser.elements)
    X = normaliser.transform(ds, mask)
    labels = np.asarray(deposits.values, dtype=bool)
    if labels.shape != mask.shape:
        raise DataError(f"deposit grid {labels.shape} does not match the data grid {mask.shape}")
    positives = np.flatnonzero(labels[mask])
    config = ModelConfig(**{**(model_config or {}), "n_elements": X.shape[1], "variant": "mstgat"})
    loco = str(folds).lower() == "loco"
    settings = FoldSettings.for_model(
        config.scales,
        config.gat_layers,
        method="loco" if loco else fold_method,
        n_folds=None if loco else int(folds),
        buffer=buffer,
        link_distance=link_distance,
        min_neg_distance=train_config.min_negative_distance,
    )
    rows, cols = np.nonzero(mask)
    runners = method_runners(methods, mask, X, model_config, train_config)
    report = cross_validate_arrays(
        runners, X, rows, cols, positives, settings=settings, seeds=tuple(seeds), progress=progress, cancel=cancel
    )
    report["protocol"].update(
        transform=transform,
        elements=normaliser.elements,
        model_config={k: v for k, v in config.to_dict().items() if k != "variant"},
        train_config=train_config.to_dict(),
    )
    return report
