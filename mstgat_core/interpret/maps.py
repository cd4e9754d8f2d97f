"""Per-cell maps over the whole grid: [CLS] attention, rollout, scale weights and neighbour entropy."""

from __future__ import annotations

import threading
from collections.abc import Callable

import xarray as xr

from ..training.pipeline import probability_grid
from .common import check_cancel, stack_grid

IG_BASELINE = (
    "all-zero normalised input = the grid's robust median composition "
    "(global centre of the normaliser); other cells held at their real values"
)
CLS = "[CLS]"


# --------------------------------------------------------------- attention_maps


def attention_maps(
    fitted,
    prepared,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> xr.Dataset:
    """Per-cell maps on the grid: probability, [CLS] attention, rollout, scale weights, neighbour entropy.

    One pass of :meth:`MSTGAT.predict_grid <mstgat_core.model.MSTGAT.predict_grid>`
    with ``details=True``. ``cls_attention`` (element, y, x) is the head mean
    of the last Transformer layer's [CLS]->element row; ``rollout`` (element,
    y, x) the attention rollout; ``scale_weights`` and ``neighbour_entropy``
    (scale, y, x) come from the spatial branch on the grid path (head mean,
    last GAT layer for the entropy).

    Parameters
    ----------
    fitted : FittedModel
        The model.
    prepared : PreparedGrid
        ``fitted.prepare(grid)``.
    batch_size : int, optional
        Cells per spectral batch (default: the model's cache-sized batch).
    progress : callable, optional
        ``progress(done, total)`` after each spectral batch and after the
        spatial branch.
    cancel : threading.Event, optional
        Checked before the pass and after each step; when set, raises
        :class:`~mstgat_core.errors.Cancelled`.

    Returns
    -------
    xr.Dataset
        ``probability`` (y, x) and, by branch, ``cls_attention`` and
        ``rollout`` (element, y, x), ``scale_weights`` and
        ``neighbour_entropy`` (scale, y, x); NaN on cells without data.
        attrs ``variant``, ``has_spectral``, ``has_spatial``.

    Examples
    --------
    >>> import mstgat_core as mst
    >>> from mstgat_core.paths import DEMO_CHECKPOINT, DEMO_DEPOSITS, DEMO_GRID
    >>> fitted = mst.load_checkpoint(DEMO_CHECKPOINT)  # 5 members on 39 elements
    >>> grid = mst.load_grid(DEMO_GRID).isel(y=slice(50, 70), x=slice(80, 100))  # 20 x 20 cells, 6 of them deposits
    >>> deposits = mst.deposit_cells(grid, mst.load_deposits(DEMO_DEPOSITS))
    >>> prepared = fitted.prepare(grid)
    >>> maps = mst.attention_maps(fitted, prepared)
    >>> sorted(maps.data_vars)
    ['cls_attention', 'neighbour_entropy', 'probability', 'rollout', 'scale_weights']
    >>> dict(maps["rollout"].sizes), dict(maps["scale_weights"].sizes)
    ({'element': 39, 'y': 20, 'x': 20}, {'scale': 3, 'y': 20, 'x': 20})
    """
    config = fitted.config

    def step(done, total):
        check_cancel(cancel)
        if progress is not None:
            progress(done, total)

    check_cancel(cancel)
    result = fitted.predict_prepared(prepared, details=True, spectral_batch=batch_size, progress=step)
    elements = fitted.elements
    scales = list(config.scales)
    variables = {}
    if config.uses_spectral:
        variables["cls_attention"] = stack_grid(
            prepared,
            result.cls_attention.numpy(),
            elements,
            "element",
            "head-mean [CLS]->element attention of the last layer",
        )
        variables["rollout"] = stack_grid(
            prepared, result.rollout.numpy(), elements, "element", "attention rollout [CLS]->element (sums to 1)"
        )
    if config.uses_spatial:
        variables["scale_weights"] = stack_grid(
            prepared,
            result.scale_weights.numpy(),
            scales,
            "scale",
            "per-cell softmax weight of each scale (radius in cells)",
        )
        variables["neighbour_entropy"] = stack_grid(
            prepared,
            result.neighbour_entropy.numpy(),
            scales,
            "scale",
            "entropy of incoming neighbour weights (head mean, last GAT layer) / log(incoming edges); 1 = uniform",
        )
    variables["probability"] = probability_grid(
        prepared.scatter(result.probability.numpy()), prepared.template, config.variant
    )
    return xr.Dataset(
        variables,
        attrs={
            "variant": config.variant,
            "has_spectral": int(config.uses_spectral),
            "has_spatial": int(config.uses_spatial),
        },
    )
