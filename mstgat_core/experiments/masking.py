"""Two masking rules, one model: how much harder is the label-free score's rule than pretraining's? (issue 27)

Pretraining hides random entries of each cell (:func:`~mstgat_core.training.pretrain.hidden_mask`), so a
hidden element is usually visible in the neighbouring cells. The label-free score hides fixed element
groups (:meth:`~mstgat_core.model.MSTGAT.mask_groups`) in *every* cell at once, so neither the cell nor
its neighbours show the hidden elements. :func:`masking_gap` measures the reconstruction error on the
same entries under three rules:

* ``pretraining``: random entries per cell (``fraction`` of them), as in pretraining;
* ``groups_checkerboard``: the score's groups, hidden only in the cells of one parity of
  ``row + col`` (then the other), so the four nearest neighbours still show them;
* ``groups_everywhere``: the score's groups hidden in every cell: the label-free score's rule.

The first two differ in *which* elements are hidden together, the last two only in whether the
neighbours show them. A model without a spatial branch gives the same figure for the last two.
"""

from __future__ import annotations

import numpy as np
import torch

from ..training.pretrain import hidden_mask, masked_reconstruction


@torch.no_grad()
def masking_gap(model, x: torch.Tensor, stencil, rows, cols, fraction: float = 0.3, draws: int = 5, seed: int = 0):
    """Mean squared reconstruction error (normalised values) on the entries that pretraining's rule hides,
    under the three rules of the module docstring.

    Parameters
    ----------
    model : MSTGAT
        A pretrained model (fused readout).
    x : torch.Tensor
        (cells, E) normalised values of the grid's valid cells; ``stencil`` its stencil (None: spectral).
    rows, cols : ndarray of int
        Grid row and column of every cell (for the checkerboard).
    fraction, draws, seed :
        Pretraining's hidden share, how many random masks to average over, their seed.

    Returns
    -------
    dict
        ``pretraining``, ``groups_checkerboard``, ``groups_everywhere`` (mean squared error over the same
        entries), ``entries`` (hidden entries counted over the draws), ``fraction``, ``draws``, ``groups``.
    """
    model.eval()
    n, e = x.shape
    everywhere, checkerboard = group_predictions(model, x, stencil, rows, cols)

    def reconstruct(hidden):
        return masked_reconstruction(model, x, hidden, stencil)

    generator = torch.Generator().manual_seed(seed)
    sums = {"pretraining": 0.0, "groups_checkerboard": 0.0, "groups_everywhere": 0.0}
    count = 0
    for _ in range(int(draws)):
        hidden = hidden_mask(n, e, fraction, generator)
        random_error = (reconstruct(hidden) - x).square()
        sums["pretraining"] += float(random_error[hidden].sum())
        sums["groups_checkerboard"] += float((checkerboard - x).square()[hidden].sum())
        sums["groups_everywhere"] += float((everywhere - x).square()[hidden].sum())
        count += int(hidden.sum())
    out = {name: value / max(count, 1) for name, value in sums.items()}
    out.update(entries=count, fraction=float(fraction), draws=int(draws), groups=len(model.mask_groups(1)))
    return out


@torch.no_grad()
def group_predictions(model, x: torch.Tensor, stencil, rows, cols) -> tuple[torch.Tensor, torch.Tensor]:
    """(cells, E) reconstructions with the score's groups hidden everywhere (the label-free score's
    :meth:`~mstgat_core.model.MSTGAT.masked_predictions`) and hidden in one parity of ``row + col`` at a time."""
    parity = torch.from_numpy(((np.asarray(rows) + np.asarray(cols)) % 2).astype(bool))
    everywhere, checkerboard = torch.zeros_like(x), torch.zeros_like(x)
    for hidden in model.mask_groups(x.shape[0]):
        everywhere = torch.where(hidden, masked_reconstruction(model, x, hidden, stencil), everywhere)
        for side in (parity, ~parity):
            partial = hidden & side.unsqueeze(1)
            checkerboard = torch.where(partial, masked_reconstruction(model, x, partial, stencil), checkerboard)
    return everywhere, checkerboard


def masking_gap_of(fitted, ds, **options) -> dict:
    """:func:`masking_gap` of a fitted model (:class:`~mstgat_core.training.pipeline.FittedModel`) on a grid."""
    prepared = fitted.prepare(ds)
    graph = prepared.graph
    stencil = graph.stencil if fitted.model.config.uses_spatial else None
    rows, cols = graph.rows_cols
    return masking_gap(fitted.model, prepared.x, stencil, rows, cols, **options)
