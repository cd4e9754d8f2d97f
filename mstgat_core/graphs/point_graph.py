"""Multiscale graphs over point-sample locations: MSTGAT on the samples themselves.

A point survey needs no grid: each sample is a node and each scale a
neighbourhood found with scikit-learn's ``NearestNeighbors`` (KD or ball tree)
in the samples' projected CRS (metres):

* ``knn``: a scale is a number of nearest samples (default 8, 24, 48, the
  neighbour counts of the grid's default window scales 1, 2, 3). The reach in
  metres then follows the sampling density; :attr:`PointGraph.reach` gives
  the median distance to the farthest neighbour of each scale.
* ``radius``: a scale is a radius in metres; every sample within it is a
  neighbour (a sample may have none: the GAT layers' self-loop keeps it).

``metric="chebyshev"`` makes a radius a square window. On samples that lie
exactly on the cell centres of a grid of spacing ``s``, a Chebyshev radius of
``r * s`` gives the same edges as the grid's window scale ``r``
(:func:`~mstgat_core.graph.grid_edges`), which the tests use to check that the
point path and the grid path agree.

Edges follow :mod:`~mstgat_core.graph`: ``edge_index[0]`` is the neighbour,
``edge_index[1]`` the sample that aggregates it, grouped by target; no
self-loops are stored.

Large surveys are trained and scored in mini-batches of *seed* samples
(:meth:`PointGraph.subgraph`, no pyg-lib): a seed's output after ``hops``
GAT layers depends only on its ``hops``-hop in-neighbourhood at each scale,
so the subgraph holds those nodes and, per scale, every edge into a node
fewer than ``hops`` hops from a seed. The seeds' outputs on it equal their
outputs on the whole graph (up to float summation order).
:func:`spatial_order` sorts samples along a Z-order curve so that
consecutive batches are compact and share few neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ..errors import DataError

KINDS = ("knn", "radius")
METRICS = ("euclidean", "chebyshev")
DEFAULT_NEIGHBOURS = (8, 24, 48)


@dataclass(frozen=True)
class PointGraph:
    """One neighbour graph per scale over point samples.

    Attributes
    ----------
    xy : ndarray
        (samples, 2) coordinates in a projected CRS.
    kind : {"knn", "radius"}
    scales : tuple
        Neighbour counts (knn) or radii in CRS units (radius).
    metric : {"euclidean", "chebyshev"}
    edge_index : tuple of torch.Tensor
        One ``(2, edges)`` tensor per scale, neighbour -> sample, grouped by target.
    reach : tuple of float
        Per scale, the median over samples of the distance to their farthest
        neighbour (0 for samples without one).
    """

    xy: np.ndarray
    kind: str
    scales: tuple
    metric: str
    edge_index: tuple
    reach: tuple

    @property
    def num_nodes(self) -> int:
        """Number of samples (the graph's nodes)."""
        return len(self.xy)

    @cached_property
    def _csr(self) -> tuple:
        """Per scale ``(indptr, sources, positions)``: the in-edges of sample ``v`` are
        ``positions[indptr[v]:indptr[v + 1]]`` of that scale's ``edge_index``, their sources ``sources[...]``."""
        csr = []
        for edges in self.edge_index:
            source, target = edges[0].numpy(), edges[1].numpy()
            order = np.argsort(target, kind="stable")  # already grouped by target when built here: identity
            indptr = np.zeros(self.num_nodes + 1, dtype=np.int64)
            np.cumsum(np.bincount(target, minlength=self.num_nodes), out=indptr[1:])
            csr.append((indptr, source[order], order))
        return tuple(csr)

    def subgraph(self, seeds, hops: int) -> Subgraph:
        """The receptive subgraph of ``seeds`` (distinct sample ids) through ``hops`` GAT layers.

        Per scale, the nodes within ``hops`` in-hops of a seed are kept and the
        edges into every node within ``hops - 1`` in-hops (all their in-edges,
        so their attention softmax is complete); the frontier's own in-edges
        are left out, its features are only read at the input layer. The
        seeds come first in :attr:`Subgraph.nodes`, in the given order.
        """
        seeds = np.asarray(seeds, dtype=np.int64).ravel()
        if len(np.unique(seeds)) != len(seeds):
            raise DataError("the seeds of a subgraph must be distinct samples")
        if len(seeds) and not (0 <= seeds.min() and seeds.max() < self.num_nodes):
            raise DataError(f"seed samples must lie in 0..{self.num_nodes - 1}")
        reached, kept = [seeds], []
        for indptr, sources, positions in self._csr:
            frontier, seen, picked = seeds, seeds, []
            for _ in range(int(hops)):
                rows = _ragged(indptr, frontier)
                picked.append(positions[rows])
                frontier = np.setdiff1d(sources[rows], seen)
                seen = np.union1d(seen, frontier)
                reached.append(frontier)
            kept.append(np.sort(np.concatenate(picked)) if picked else np.empty(0, dtype=np.int64))
        others = np.setdiff1d(np.concatenate(reached), seeds)
        nodes = np.concatenate([seeds, others])
        order = np.argsort(nodes, kind="stable")
        sorted_nodes = nodes[order]

        def local(ids):
            return order[np.searchsorted(sorted_nodes, ids)]

        edge_index = []
        for edges, rows in zip(self.edge_index, kept):
            e = edges[:, torch.from_numpy(rows)].numpy()
            edge_index.append(torch.from_numpy(np.stack([local(e[0]), local(e[1])]).astype(np.int64)))
        return Subgraph(nodes=nodes, n_seeds=len(seeds), edge_index=tuple(edge_index))

    def describe(self, unit: str = "m") -> str:
        """One line per scale, e.g. ``scale 1: 8 nearest samples, median reach 2,310 m``."""
        lines = []
        for i, (scale, reach) in enumerate(zip(self.scales, self.reach), start=1):
            what = f"{scale} nearest samples" if self.kind == "knn" else f"samples within {scale:,.0f} {unit}"
            lines.append(f"scale {i}: {what}, median reach {reach:,.0f} {unit}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Subgraph:
    """A receptive subgraph of a :class:`PointGraph` (:meth:`PointGraph.subgraph`).

    Attributes
    ----------
    nodes : ndarray
        Sample ids of its nodes; the first ``n_seeds`` are the seeds.
    n_seeds : int
    edge_index : tuple of torch.Tensor
        Per scale, ``(2, edges)`` in local node ids (positions in ``nodes``).
    """

    nodes: np.ndarray
    n_seeds: int
    edge_index: tuple

    @property
    def num_nodes(self) -> int:
        """Number of samples in the subgraph (seeds and their receptive neighbours)."""
        return len(self.nodes)

    @property
    def seeds(self) -> np.ndarray:
        """Local ids of the seeds: ``0 .. n_seeds - 1``."""
        return np.arange(self.n_seeds)


def _ragged(indptr: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Concatenated ranges ``indptr[v]:indptr[v + 1]`` for every ``v`` in ``nodes`` (a CSR gather)."""
    start, stop = indptr[nodes], indptr[nodes + 1]
    counts = stop - start
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(start - np.cumsum(counts) + counts, counts)
    return offsets + np.arange(total, dtype=np.int64)


def spatial_order(xy) -> np.ndarray:
    """Sample ids sorted along a Z-order (Morton) curve of their coordinates: consecutive runs of
    this order are spatially compact, so a batch of them shares most of its neighbours."""
    xy = np.asarray(xy, dtype=float)
    if len(xy) == 0:
        return np.empty(0, dtype=np.int64)
    span = np.ptp(xy, axis=0)
    cells = ((xy - xy.min(axis=0)) / np.where(span > 0, span, 1.0) * 65535).astype(np.uint64)
    code = np.zeros(len(xy), dtype=np.uint64)
    for bit in range(16):
        for axis in range(2):
            code |= ((cells[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit + axis)
    return np.argsort(code, kind="stable")


def parse_point_scales(text, kind: str) -> tuple:
    """Scales from text such as ``"8,24,48"`` (knn: whole numbers) or ``"2000,5000"`` (radius: metres)."""
    parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
    try:
        scales = tuple(int(p) if kind == "knn" else float(p) for p in parts)
    except ValueError:
        unit = "whole numbers of samples" if kind == "knn" else "distances"
        raise DataError(f"point scales must be {unit} separated by commas, got {text!r}") from None
    if not scales or min(scales) <= 0:
        raise DataError(f"point scales must be positive, got {text!r}")
    if len(set(scales)) != len(scales):
        raise DataError(f"each point scale may be given once, got {text!r}")
    return scales


def _edges(neighbours: list[np.ndarray]) -> torch.Tensor:
    """Edge index from each sample's neighbour ids, sorted by target then source."""
    counts = np.fromiter((len(n) for n in neighbours), dtype=np.int64, count=len(neighbours))
    sources = np.concatenate(neighbours).astype(np.int64) if counts.sum() else np.empty(0, dtype=np.int64)
    targets = np.repeat(np.arange(len(neighbours), dtype=np.int64), counts)
    order = np.lexsort((sources, targets))
    return torch.from_numpy(np.stack([sources[order], targets[order]]))


def build_point_graph(xy, scales=DEFAULT_NEIGHBOURS, kind: str = "knn", metric: str = "euclidean") -> PointGraph:
    """The multiscale graph of point samples (see the module docstring).

    Raises
    ------
    DataError
        On missing or infinite coordinates, a knn scale with at least as many
        neighbours as there are other samples, or an unknown kind or metric.
    """
    from sklearn.neighbors import NearestNeighbors

    xy = np.asarray(xy, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise DataError(f"point coordinates must be (samples, 2), got shape {xy.shape}")
    if not np.isfinite(xy).all():
        raise DataError("some samples have missing or infinite coordinates")
    if kind not in KINDS:
        raise DataError(f"unknown point graph kind {kind!r}; use one of {', '.join(KINDS)}")
    if metric not in METRICS:
        raise DataError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    scales = tuple(scales)
    if not scales:
        raise DataError("at least one point scale is needed")
    n = len(xy)
    if n > 1 and np.ptp(xy, axis=0).max() == 0:
        raise DataError(f"all {n} samples lie at one point: no neighbourhood can be drawn")
    if kind == "knn" and max(scales) >= n:
        raise DataError(
            f"the survey has {n} samples: a scale of {max(scales)} nearest samples needs at least {max(scales) + 1}"
        )
    search = NearestNeighbors(metric=metric).fit(xy)
    edges, reach = [], []
    for scale in scales:
        if kind == "knn":
            distance, index = search.kneighbors(n_neighbors=int(scale))  # X=None: a sample is not its own neighbour
            neighbours = list(index)
            farthest = distance[:, -1]
        else:
            distance, index = search.radius_neighbors(radius=float(scale))
            neighbours = list(index)
            farthest = np.array([d.max() if len(d) else 0.0 for d in distance])
        edges.append(_edges(neighbours))
        reach.append(float(np.median(farthest)))
    return PointGraph(xy=xy, kind=kind, scales=scales, metric=metric, edge_index=tuple(edges), reach=tuple(reach))
