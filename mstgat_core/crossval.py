"""Cross-validate MSTGAT, its ablations and the baselines on one grid.

Glue between :mod:`evaluate` (folds, metrics, reports), :mod:`baselines` and
the neural models of :mod:`model`/:mod:`train`. The normaliser is fitted once
on the whole grid: it uses no labels, so it leaks none.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import xarray as xr

from .baselines import BASELINES
from .errors import DataError
from .evaluate import baseline_method, cross_validate_arrays
from .graph import build_graph
from .model import MSTGAT, VARIANTS, ModelConfig
from .preprocess import Normaliser, valid_mask
from .train import TrainConfig, train_model

METHODS = VARIANTS + tuple(BASELINES)  # every method a cross-validation can compare


def neural_method(
    mask: np.ndarray, variant: str, model_config: dict | None = None, train_config: TrainConfig | None = None
):
    """A ``fit_predict(X, fold, seed)`` that trains one model variant on the fold's training labels."""
    model_config = dict(model_config or {})
    train_config = train_config or TrainConfig()
    graphs = {}

    def fit_predict(X, fold, seed):
        config = ModelConfig(**{**model_config, "n_elements": X.shape[1], "variant": variant})
        key = (config.scales, config.graph_mode)
        if key not in graphs:
            graphs[key] = build_graph(mask, config.scales, config.graph_mode)
        graph = graphs[key]
        torch.manual_seed(seed)
        model = MSTGAT(config)
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
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


def cross_validate_grid(
    ds: xr.Dataset,
    deposits: xr.DataArray,
    methods=METHODS,
    n_folds: int = 5,
    seeds=(0, 1, 2),
    model_config: dict | None = None,
    train_config: TrainConfig | None = None,
    transform: str = "clr",
    elements=None,
    fold_method: str = "blocks",
    progress=None,
    cancel=None,
) -> dict:
    """Spatially cross-validate MSTGAT, its ablations and the baselines on one grid.

    The grid-level entry (what the CLI, dashboard and notebooks call); the
    folds, metrics and report come from
    :func:`~mstgat_core.evaluate.cross_validate_arrays`, which works on a
    feature matrix and node ids.

    Parameters
    ----------
    ds : xr.Dataset
        The survey grid.
    deposits : xr.DataArray
        Bool (y, x) deposit cells on the same grid (the positives).
    methods : sequence of str
        Names from :data:`METHODS` (model variants and baselines).
    n_folds : int
        Spatial folds per seed.
    seeds : sequence of int
        One fold layout and one set of fits per seed.
    model_config : dict, optional
        Fields of :class:`~mstgat_core.model.ModelConfig` for the neural methods.
    train_config : TrainConfig, optional
        Training protocol of the neural methods.
    transform : {"clr", "log", "none"}
        Compositional transform (the normaliser uses no labels, so it is fitted
        once on the whole grid).
    elements : list of str, optional
        Use only these elements.
    fold_method : {"blocks", "clusters"}
        How test regions are drawn (see :func:`~mstgat_core.evaluate.spatial_folds`).
    progress : callable, optional
        ``progress(done, total, message)`` after each fit.
    cancel : threading.Event, optional
        When set, stops with :class:`~mstgat_core.errors.Cancelled`.

    Returns
    -------
    dict
        ``{"protocol": ..., "results": {method: summary, per-fold rows, curves}}``,
        plain JSON types (see :func:`~mstgat_core.evaluate.report_markdown`).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise DataError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    normaliser = Normaliser(transform=transform, elements=elements).fit(ds)
    mask = valid_mask(ds, normaliser.elements)
    X = normaliser.transform(ds, mask)
    labels = np.asarray(deposits.values, dtype=bool)
    if labels.shape != mask.shape:
        raise DataError(f"deposit grid {labels.shape} does not match the data grid {mask.shape}")
    positives = np.flatnonzero(labels[mask])
    if len(positives) < n_folds:
        raise DataError(f"{len(positives)} deposit cells are too few for {n_folds} spatial folds")
    rows, cols = np.nonzero(mask)
    train_config = train_config or TrainConfig()
    runners = {
        m: neural_method(mask, m, model_config, train_config) if m in VARIANTS else baseline_method(m) for m in methods
    }
    report = cross_validate_arrays(
        runners,
        X,
        rows,
        cols,
        positives,
        n_folds=n_folds,
        seeds=tuple(seeds),
        fold_method=fold_method,
        progress=progress,
        cancel=cancel,
        min_neg_distance=train_config.min_negative_distance,
    )
    report["protocol"].update(
        transform=transform,
        elements=normaliser.elements,
        model_config={
            k: v
            for k, v in ModelConfig(n_elements=len(normaliser.elements), **(model_config or {})).to_dict().items()
            if k != "variant"
        },
        train_config=train_config.to_dict(),
    )
    return report
