"""Which neighbourhood scale the fitted heads rely on: scale contributions, evidence and occlusion."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from ..graphs.graph import receptive_subgraph
from .attribution import neighbour_ig
from .common import model_of

IG_BASELINE = (
    "all-zero normalised input = the grid's robust median composition "
    "(global centre of the normaliser); other cells held at their real values"
)
CLS = "[CLS]"


def scale_contributions(fitted, prepared, nodes) -> np.ndarray:
    """(nodes, scales) each scale's exact additive share of the ensemble's mean logit.

    Needs the fused readout with ``scale_readout``: the heads are linear in
    the standardised embedding, whose per-scale blocks are each scale's
    neighbourhood message, so a scale's contribution is ``share x mean over
    members of (w_k,block . z_block) / logit_scale_k``. Zero on average over
    the training grid (the embedding is standardised there); positive where
    that scale's neighbourhood raises the cell's score.
    """
    model = model_of(fitted)
    config = fitted.config
    if not (model.fused and config.uses_spatial and config.scale_readout):
        raise DataError("scale contributions need a pretrained model with scale_readout")
    if config.head != "embedding":
        raise DataError("scale contributions read the embedding heads; this model's heads read the residuals")
    subset, edges, pos = receptive_subgraph(prepared.graph, np.asarray(nodes, dtype=np.int64), model.hops)
    head = model.head
    with torch.no_grad():
        embedding = model.embed(prepared.x[subset], edges, pos)
        width = embedding.shape[1]
        z = (embedding - head.center[:width]) / head.scale[:width]
        start = (config.d_model if config.uses_spectral else 0) + config.gat_hidden
        out = []
        for s in range(len(config.scales)):
            block = slice(start + s * config.gat_hidden, start + (s + 1) * config.gat_hidden)
            per_member = z[:, block] @ head.weight[:, block].T / head.logit_scale  # (nodes, members)
            out.append(head.share * per_member.mean(dim=1))
    return torch.stack(out, dim=1).numpy()


def scale_evidence(fitted, prepared, nodes, steps: int = 16) -> np.ndarray:
    """(nodes, scales) positive neighbour attribution in each scale's ring, as shares of the neighbours' total.

    Integrated gradients of a cell's logit over every cell of its receptive
    field (all moved from the baseline together, summed over elements), then
    the positive part summed by ring: Chebyshev distance in (previous scale,
    scale]; the cell itself is left out (its own evidence says nothing about
    scale). It says at what distance the
    evidence for the cell lies, which the scale weights (learned by
    pretraining, without labels) cannot say.
    """
    model = model_of(fitted)
    config = fitted.config
    if not config.uses_spatial:
        raise DataError("the spectral variant has no scales")
    graph = prepared.graph
    rows, cols = graph.rows_cols
    radius = config.receptive_radius
    offsets = np.arange(-radius, radius + 1)
    distance = np.maximum(np.abs(offsets)[:, None], np.abs(offsets)[None, :])
    bounds = [0, *config.scales[:-1]]
    rings = [(distance <= s) & (distance > lo) for lo, s in zip(bounds, config.scales)]
    rings[-1] |= distance > config.scales[-1]  # deeper hops count with the largest scale
    out = np.zeros((len(nodes), len(config.scales)), np.float32)
    for i, node in enumerate(np.asarray(nodes, dtype=np.int64)):
        subset, edges, pos = receptive_subgraph(graph, [int(node)], model.hops)
        (_, image), _ = neighbour_ig(
            model, prepared.x[subset], edges, pos, subset, graph, int(rows[node]), int(cols[node]), radius, steps
        )
        positive = np.nan_to_num(np.clip(image, 0, None))
        positive[radius, radius] = 0.0
        total = positive.sum()
        out[i] = [positive[ring].sum() / total if total > 0 else 0.0 for ring in rings]
    return out


def scale_occlusion(fitted, prepared, nodes) -> np.ndarray:
    """(nodes, scales) logit drop when each scale is left out of the fusion (others renormalised).

    Positive: the cell's score relies on that scale. Computed exactly on the
    receptive subgraph of ``nodes`` (see :meth:`MSTGAT.without_scale
    <mstgat_core.model.MSTGAT.without_scale>`).
    """
    model = model_of(fitted)
    if not fitted.config.uses_spatial:
        raise DataError("the spectral variant has no scales")
    subset, edges, pos = receptive_subgraph(prepared.graph, np.asarray(nodes, dtype=np.int64), model.hops)
    x_sub = prepared.x[subset]
    with torch.no_grad():
        full = model(x_sub, edges, pos)
        drops = []
        for s in range(len(fitted.config.scales)):
            with model.without_scale(s):
                drops.append(full - model(x_sub, edges, pos))
    return torch.stack(drops, dim=1).numpy()
