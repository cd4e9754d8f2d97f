"""Self-supervised pretraining of MSTGAT on every valid cell: masked-element reconstruction.

A survey has tens of thousands of unlabelled cells and a handful of deposit
cells. Pretraining uses the former: in each step a random subset of every
cell's elements is hidden, and the model must predict the hidden values from
the cell's other elements (the Transformer, whose hidden tokens become a
learned mask token) and from its neighbours at each scale (MSGAT, fed the
same masked features, so a cell never sees its own hidden values while its
neighbours' values at the same elements stay visible). Both branch embeddings
feed the model's reconstruction head; the loss is the mean squared error over the
hidden entries in the normalised (CLR/log, robust-scaled) space.

Training runs on the grid path (:func:`~mstgat_core.grid_attention.grid_gatv2`)
over square windows centred on random valid cells, no edge lists; cells within the
receptive radius of a window's cut edge see a truncated neighbourhood and are
left out of the loss. No deposit is used, so in cross-validation pretraining
may see the whole grid.

On a point survey (:class:`~mstgat_core.graphs.point_graph.PointGraph`) a
survey of fewer than ``point_whole_graph`` samples (default 5,000) trains on
the whole graph every step, as before. A larger one trains on mini-batches:
each step draws ``point_batch`` seed samples (default 2,048; a shuffled pass
over the samples, reshuffled when used up), takes their receptive subgraph
(:meth:`~mstgat_core.graphs.point_graph.PointGraph.subgraph`: the seeds and
their neighbours within ``gat_layers`` hops at every scale, with every edge
into the nodes whose outputs reach a seed), hides elements of every node of
it, and takes the loss on the seeds only. The Transformer runs on the seeds
alone; the GAT layers on the subgraph. A seed's reconstruction on its
subgraph equals its reconstruction on the whole graph (the test), so a step
is the whole-graph step restricted to a random subset of its samples.
:func:`point_features` evaluates the samples in the same way, in spatially
compact batches, exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..errors import Cancelled, DataError
from ..graphs.graph import GridStencil
from ..model import MSTGAT

SCHEDULES = ("cosine", "constant")


@dataclass
class PretrainConfig:
    """Settings of masked-element pretraining (stored with the backbone).

    Attributes
    ----------
    epochs : int
        Passes of ``steps_per_epoch`` optimiser steps.
    steps_per_epoch : int
        One random window per step.
    window : int
        Side in cells of the square window of one step (clipped to the grid).
    mask_fraction : float
        Share of each cell's elements hidden in a step (at least one).
    lr, weight_decay : float
        AdamW settings.
    schedule : {"cosine", "constant"}
        Learning rate over the steps: cosine decay from ``lr`` to 0, or
        constant (the last weights are then a noisier sample).
    seed : int
        Seeds the weights of the head, the windows and the masks.
    point_batch : int
        Point surveys with at least ``point_whole_graph`` samples: seed samples
        per step (their receptive subgraph is the step's graph, the loss is on
        the seeds), and per evaluation batch of the statistics.
    point_whole_graph : int
        Point surveys with fewer samples train on the whole graph every step.
    """

    epochs: int = 30
    steps_per_epoch: int = 8
    window: int = 24
    mask_fraction: float = 0.3
    lr: float = 3e-3
    weight_decay: float = 1e-3
    schedule: str = "cosine"
    seed: int = 0
    point_batch: int = 2048
    point_whole_graph: int = 5000

    def __post_init__(self):
        if int(self.point_batch) < 1:
            raise DataError(f"point_batch must be at least 1, got {self.point_batch}", setting="point_batch")
        if self.schedule not in SCHEDULES:
            raise DataError(
                f"unknown schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}", setting="schedule"
            )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PretrainLog:
    epoch: int
    loss: float
    seconds: float


@dataclass
class PretrainResult:
    history: list[PretrainLog] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "epochs_run": len(self.history),
            "final_loss": self.history[-1].loss if self.history else None,
            "seconds": self.seconds,
        }


def masked_reconstruction(model: MSTGAT, x: torch.Tensor, hidden: torch.Tensor, stencil: GridStencil | None):
    """(cells, E) reconstruction of every cell of a grid window from ``x`` with ``hidden`` entries masked."""
    c = model.config
    parts = []
    if c.uses_spectral:
        batch = model.spectral_batch()
        parts.append(
            torch.cat(
                [
                    model.spectral(v, hidden=h, mask_token=model.reconstruction.mask_token)[0]
                    for v, h in zip(torch.split(x, batch), torch.split(hidden, batch))
                ]
            )
        )
    if c.uses_spatial:
        parts.append(model.spatial.forward_layout(x.masked_fill(hidden, 0.0), stencil)[0])
    return model.reconstruction(torch.cat(parts, dim=1))


def seed_embedding(model: MSTGAT, x: torch.Tensor, sub, hidden: torch.Tensor | None = None, details=False):
    """Branch embeddings of the seeds of a point subgraph (``sub``, :class:`~mstgat_core.graphs.point_graph.Subgraph`;
    ``x`` and ``hidden`` cover its nodes, seeds first): the Transformer on the seeds alone, the GAT layers
    on the subgraph. With ``details`` also the seeds' scale weights and neighbour entropy (spatial branch)."""
    c = model.config
    k = sub.n_seeds
    parts, out = [], {}
    if c.uses_spectral:
        batch = model.spectral_batch()
        rows = torch.split(x[:k], batch)
        masks = torch.split(hidden[:k], batch) if hidden is not None else [None] * len(rows)
        parts.append(torch.cat([model._spectral(v, h)[0] for v, h in zip(rows, masks)]))
    if c.uses_spatial:
        visible = x if hidden is None else x.masked_fill(hidden, 0.0)
        spatial, scale_weights, entropy = model.spatial.forward_layout(visible, sub, entropy=details)
        parts.append(spatial[:k])
        if details:
            out.update(scale_weights=scale_weights[:k], neighbour_entropy=entropy[:k])
    return torch.cat(parts, dim=1), out


def seed_reconstruction(model: MSTGAT, x: torch.Tensor, hidden: torch.Tensor, sub) -> torch.Tensor:
    """(seeds, E) reconstruction of the seeds of a point subgraph with ``hidden`` (its nodes, E) masked: the
    rows of :func:`masked_reconstruction` on the whole graph for those samples (float rounding aside)."""
    return model.reconstruction(seed_embedding(model, x, sub, hidden)[0])


def seed_loss(model: MSTGAT, x: torch.Tensor, hidden: torch.Tensor, sub) -> torch.Tensor:
    """Mean squared error over the seeds' hidden entries (``x``, ``hidden``: the subgraph's nodes, seeds first)."""
    k = sub.n_seeds
    error = (seed_reconstruction(model, x, hidden, sub) - x[:k]).square()
    weights = hidden[:k]
    return (error * weights).sum() / weights.sum().clamp(min=1)


class SeedSampler:
    """Seed samples of the mini-batch steps: a shuffled pass over all samples, ``batch`` at a time,
    reshuffled when used up (a batch never holds a sample twice)."""

    def __init__(self, n: int, batch: int, rng: np.random.Generator):
        self.n, self.batch, self.rng = int(n), min(int(batch), int(n)), rng
        self.order, self.at = rng.permutation(self.n), 0

    def __call__(self) -> np.ndarray:
        if self.at + self.batch > self.n:
            self.order, self.at = self.rng.permutation(self.n), 0
        seeds = self.order[self.at : self.at + self.batch]
        self.at += self.batch
        return seeds


def uses_point_batches(graph, config: PretrainConfig) -> bool:
    """Whether pretraining on ``graph`` (a point graph) runs in mini-batches: at least ``point_whole_graph``
    samples."""
    return graph.num_nodes >= int(config.point_whole_graph)


def _window(mask: np.ndarray, node_image: np.ndarray, size: int, rng, cells) -> tuple[np.ndarray, np.ndarray, tuple]:
    """A square window centred on a random valid cell (clipped to the grid): its validity mask, the node
    ids of its valid cells, and its slices. Centring on valid cells keeps every step on measured ground
    however little of the grid it covers (an interpolated grid's support may be a narrow band).
    ``cells`` is ``np.nonzero(mask)``."""
    ny, nx = mask.shape
    hy, hx = min(size, ny), min(size, nx)
    rows, cols = cells
    centre = int(rng.integers(0, len(rows)))
    y0 = int(np.clip(rows[centre] - hy // 2, 0, ny - hy))
    x0 = int(np.clip(cols[centre] - hx // 2, 0, nx - hx))
    sl = (slice(y0, y0 + hy), slice(x0, x0 + hx))
    window = mask[sl]
    return window, node_image[sl][window], sl


def _interior(window_mask: np.ndarray, sl: tuple, shape, radius: int) -> np.ndarray:
    """Per valid cell of the window: True unless it lies within ``radius`` of a cut (not grid) edge."""
    ny, nx = shape
    rows, cols = np.nonzero(window_mask)
    rows, cols = rows + sl[0].start, cols + sl[1].start
    keep = np.ones(len(rows), dtype=bool)
    if sl[0].start > 0:
        keep &= rows >= sl[0].start + radius
    if sl[0].stop < ny:
        keep &= rows < sl[0].stop - radius
    if sl[1].start > 0:
        keep &= cols >= sl[1].start + radius
    if sl[1].stop < nx:
        keep &= cols < sl[1].stop - radius
    return keep


def hidden_mask(n_cells: int, n_elements: int, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Bool (cells, E): about ``fraction`` of each cell's elements hidden, at least one, never all (E > 1)."""
    scores = torch.rand(n_cells, n_elements, generator=generator)
    k = int(np.clip(round(fraction * n_elements), 1, max(n_elements - 1, 1)))
    threshold = scores.kthvalue(k, dim=1, keepdim=True).values
    return scores <= threshold


def reconstruction_loss(model: MSTGAT, x, hidden, stencil, keep=None) -> torch.Tensor:
    """Mean squared error over the hidden entries (of the cells in ``keep``)."""
    error = (masked_reconstruction(model, x, hidden, stencil) - x).square()
    weights = hidden if keep is None else hidden & torch.as_tensor(keep).unsqueeze(1)
    return (error * weights).sum() / weights.sum().clamp(min=1)


def pretrain(
    model: MSTGAT,
    x: torch.Tensor,
    mask: np.ndarray,
    config: PretrainConfig | None = None,
    callback: Callable[[PretrainLog], None] | None = None,
    cancel: threading.Event | None = None,
) -> PretrainResult:
    """Pretrain ``model``'s branches and reconstruction head in place by masked-element reconstruction.

    Afterwards the model is a label-free anomaly detector: its fused head
    standardises the embedding and the label-free score over this grid's
    cells (:func:`fit_statistics`) and reads the score alone (``share = 0``)
    until fine-tuning (:mod:`~mstgat_core.finetune`).

    Parameters
    ----------
    model : MSTGAT
        A model with the ``fused`` readout (:class:`~mstgat_core.model.ModelConfig`).
    x : torch.Tensor
        (cells, E) normalised features of the valid cells of ``mask``, row-major.
    mask : ndarray of bool or PointGraph
        (ny, nx) valid cells; or the multiscale graph of point samples
        (:func:`~mstgat_core.point_graph.build_point_graph`), whose every
        step then covers all samples (no windows, no cut edges) below
        ``config.point_whole_graph`` samples, and a mini-batch of seed
        samples with their receptive subgraph from there on (see the module
        docstring).
    config : PretrainConfig, optional
    callback : callable, optional
        Called with a :class:`PretrainLog` after every epoch.
    cancel : threading.Event, optional
        When set, stops at the next epoch with :class:`~mstgat_core.errors.Cancelled`.

    Returns
    -------
    PretrainResult
        The loss of every epoch (mean over its steps) and the time taken.
    """
    config = config or PretrainConfig()
    points = _is_point_graph(mask)
    if not points:
        mask = np.asarray(mask, dtype=bool)
    if not model.fused:
        raise DataError("pretraining needs a model with the fused readout (ModelConfig(readout='fused'))")
    rows = mask.num_nodes if points else int(mask.sum())
    if x.shape[0] != rows:
        raise DataError(f"{x.shape[0]} feature rows for {rows} {'samples' if points else 'valid cells'}")
    c = model.config
    if points and c.uses_spatial and len(mask.scales) != len(c.scales):
        raise DataError(f"the point graph has {len(mask.scales)} scales, the model {len(c.scales)}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.AdamW(
        [p for name, p in model.named_parameters() if not name.startswith("head.")],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    total_steps = max(config.epochs * config.steps_per_epoch, 1)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total_steps)
        if config.schedule == "cosine"
        else None
    )
    batched = points and uses_point_batches(mask, config)
    if batched:
        draw_seeds = SeedSampler(mask.num_nodes, config.point_batch, rng)
    if not points:
        node_image = np.full(mask.shape, -1, dtype=np.int64)
        node_image[mask] = np.arange(int(mask.sum()))
        cells = np.nonzero(mask)
        radius = c.receptive_radius
    result = PretrainResult()
    start = time.perf_counter()
    model.train()
    for epoch in range(1, config.epochs + 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("pretraining cancelled")
        t0 = time.perf_counter()
        losses = []
        for _ in range(config.steps_per_epoch):
            if batched:
                sub = mask.subgraph(draw_seeds(), c.hops)
                xs = x[torch.from_numpy(sub.nodes)]
                hidden = hidden_mask(len(xs), c.n_elements, config.mask_fraction, generator)
                optimiser.zero_grad()
                loss = seed_loss(model, xs, hidden, sub)
                loss.backward()
                optimiser.step()
                if scheduler is not None:
                    scheduler.step()
                losses.append(loss.item())
                continue
            if points:
                xw, keep, stencil = x, None, mask if c.uses_spatial else None
            else:
                window, nodes, sl = _window(mask, node_image, config.window, rng, cells)
                keep = _interior(window, sl, mask.shape, radius)
                if not keep.any():
                    continue
                xw = x[torch.from_numpy(nodes)]
                stencil = c.stencil(window)
            hidden = hidden_mask(len(xw), c.n_elements, config.mask_fraction, generator)
            optimiser.zero_grad()
            loss = reconstruction_loss(model, xw, hidden, stencil, keep)
            loss.backward()
            optimiser.step()
            if scheduler is not None:
                scheduler.step()
            losses.append(loss.item())
        log = PretrainLog(epoch, float(np.mean(losses)) if losses else float("nan"), time.perf_counter() - t0)
        result.history.append(log)
        if callback is not None:
            callback(log)
    model.eval()
    fit_statistics(model, x, mask, batch=config.point_batch if batched else None)
    result.seconds = time.perf_counter() - start
    return result


NOVELTY_QUANTILE = 0.995


def _is_point_graph(where) -> bool:
    return hasattr(where, "edge_index") and hasattr(where, "xy")


def spatial_layout(model: MSTGAT, where):
    """What the spatial branch runs on: a point graph as given, the :class:`GridStencil` of a
    validity mask, or None for a model without a spatial branch."""
    c = model.config
    if not c.uses_spatial:
        return None
    if _is_point_graph(where):
        return where
    return c.stencil(np.asarray(where, dtype=bool))


@torch.no_grad()
def point_features(
    model: MSTGAT, x: torch.Tensor, graph, batch: int, details: bool = False, progress: Callable | None = None
) -> dict:
    """Every sample of a point graph evaluated in batches of ``batch`` seed samples on their receptive
    subgraphs (eval mode): the same values as the whole graph (float rounding aside) in bounded memory.

    Batches are consecutive runs of :func:`~mstgat_core.graphs.point_graph.spatial_order`, so that a
    batch's neighbours are mostly its own samples. Returns ``embedding`` (samples, width), ``score``
    (the label-free score) and ``predicted`` (each element's reconstruction with its mask group hidden);
    with ``details`` also ``scale_weights`` and ``neighbour_entropy`` (samples, scales) for a model with
    a spatial branch. ``progress(done, total)`` is called after each batch (it may raise to stop).
    """
    from ..graphs.point_graph import spatial_order

    model.eval()
    n, hops = graph.num_nodes, model.config.hops
    order = spatial_order(graph.xy)
    chunks = [order[i : i + int(batch)] for i in range(0, n, int(batch))]
    out = {"embedding": torch.empty(n, model.width), "predicted": torch.empty_like(x)}
    if details and model.config.uses_spatial:
        scales = len(model.config.scales)
        out.update(scale_weights=torch.empty(n, scales), neighbour_entropy=torch.empty(n, scales))
    for done, seeds in enumerate(chunks, start=1):
        sub = graph.subgraph(seeds, hops)
        xs = x[torch.from_numpy(sub.nodes)]
        rows = torch.from_numpy(seeds)
        embedding, extra = seed_embedding(model, xs, sub, details=details)
        out["embedding"][rows] = embedding
        for name, value in extra.items():
            out[name][rows] = value

        def masked(hidden, xs=xs, sub=sub):  # one group's mask, the same on every node of the subgraph
            return seed_embedding(model, xs, sub, hidden[:1].expand(xs.shape[0], -1))[0]

        out["predicted"][rows] = model.masked_predictions(masked, xs[: sub.n_seeds])
        if progress is not None:
            progress(done, len(chunks))
    out["score"] = model.score_of(out["predicted"], x)
    return out


@torch.no_grad()
def fit_statistics(model: MSTGAT, x: torch.Tensor, mask, batch: int | None = None) -> None:
    """Set the fused head's statistics over the grid's cells or the samples (mean and deviation of the
    embedding and the label-free score; the embeddings' inverse covariance; the 99.5th percentiles of
    their Mahalanobis distance and of the score, for novelty) and make it read the score alone.
    ``batch``: evaluate a point graph in batches of that many samples (:func:`point_features`)."""
    if batch is not None and _is_point_graph(mask):
        features = point_features(model, x, mask, batch)
        embedding, score = features["embedding"], features["score"]
    else:
        embedding, score = model.grid_features(x, spatial_layout(model, mask))
    features = torch.cat([embedding, score.unsqueeze(1)], dim=1).double()
    head = model.head
    head.center.copy_(features.mean(dim=0))
    head.scale.copy_(features.std(dim=0).clamp(min=1e-6))
    centred = embedding.double() - head.center[:-1].double()
    covariance = centred.T @ centred / max(len(centred) - 1, 1)
    ridge = 1e-6 * covariance.diagonal().mean().clamp(min=1e-12)
    head.precision.copy_(torch.linalg.inv(covariance + ridge * torch.eye(len(covariance), dtype=torch.float64)))
    head.novelty_limit.fill_(float(torch.quantile(head.distance(embedding).double(), NOVELTY_QUANTILE).clamp(min=1e-6)))
    head.score_limit.fill_(float(torch.quantile(score.double(), NOVELTY_QUANTILE)))
    head.weight.zero_()
    head.bias.zero_()
    head.share.fill_(0.0)
    head.calibration.fill_(float("nan"))


@torch.no_grad()
def reconstruct(model: MSTGAT, x: torch.Tensor, mask, hidden: torch.Tensor) -> torch.Tensor:
    """(cells, E) reconstruction of every valid cell of the whole grid (or every sample of a point
    graph) with ``hidden`` entries masked (eval mode)."""
    model.eval()
    return masked_reconstruction(model, x, hidden, spatial_layout(model, mask))
