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
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def describe(self, unit: str = "m") -> str:
        """One line per scale, e.g. ``scale 1: 8 nearest samples, median reach 2,310 m``."""
        lines = []
        for i, (scale, reach) in enumerate(zip(self.scales, self.reach), start=1):
            what = f"{scale} nearest samples" if self.kind == "knn" else f"samples within {scale:,.0f} {unit}"
            lines.append(f"scale {i}: {what}, median reach {reach:,.0f} {unit}")
        return "\n".join(lines)


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
