"""Multiscale grid graphs between valid cells.

Nodes are the valid cells of a grid, numbered in row-major order
(``rows, cols = np.nonzero(mask)``). A *scale* is a neighbourhood radius in
cells. Each scale gets its own graph whose edges join every valid cell to the
valid cells at the scale's offsets. Edges run source -> target (PyG's
``source_to_target`` flow): ``edge_index[0]`` is the neighbour, ``edge_index[1]``
the cell that aggregates it. Self-loops are not stored; the GAT layers add them.

``knn_graph``/``radius_graph`` need pyg-lib, which is not always installable,
and a regular grid does not need a search: edges come from shifting an index
image by each offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import DataError

GRAPH_MODES = ("window", "ring")
MAX_SCALE = 8  # a radius-8 window already links each cell to 288 neighbours


def parse_scales(text) -> tuple[int, ...]:
    """Scales (neighbourhood radii in cells) from text such as ``"1,2,3"``.

    Commas or semicolons separate the radii; each is a whole number from 1 to
    :data:`MAX_SCALE`, given once. Order is kept (``spatial-single`` uses the
    first). Raises :class:`~mstgat_core.errors.DataError` otherwise.
    """
    parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
    try:
        scales = tuple(int(p) for p in parts)
    except ValueError:
        raise DataError(
            f"scales must be whole numbers of cells separated by commas, got {text!r}", setting="scales"
        ) from None
    if not scales or min(scales) < 1 or max(scales) > MAX_SCALE:
        raise DataError(f"scales must be radii from 1 to {MAX_SCALE} cells, got {text!r}", setting="scales")
    if len(set(scales)) != len(scales):
        raise DataError(f"each scale may be given once, got {text!r}", setting="scales")
    return scales


def scale_offsets(radius: int, mode: str = "window") -> np.ndarray:
    """Cell offsets ``(dy, dx)`` of one scale, without ``(0, 0)``.

    ``window``: every cell of the (2r+1) x (2r+1) window.
    ``ring``: the 8 cells at Chebyshev distance r along rows, columns and
    diagonals (a dilated 3x3 stencil), the cheap option for large radii.
    """
    radius = int(radius)
    if radius < 1:
        raise ValueError(f"scale radius must be >= 1 cell, got {radius}")
    if mode == "window":
        span = np.arange(-radius, radius + 1)
        dy, dx = np.meshgrid(span, span, indexing="ij")
    elif mode == "ring":
        dy, dx = np.meshgrid([-radius, 0, radius], [-radius, 0, radius], indexing="ij")
    else:
        raise ValueError(f"unknown graph mode {mode!r}; use one of {GRAPH_MODES}")
    offsets = np.stack([dy.ravel(), dx.ravel()], axis=1)
    return offsets[np.any(offsets != 0, axis=1)]


def node_index_image(mask: np.ndarray) -> np.ndarray:
    """Image holding each valid cell's node id and -1 elsewhere."""
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[mask] = np.arange(int(mask.sum()))
    return index


def grid_edges(mask: np.ndarray, offsets: np.ndarray) -> torch.Tensor:
    """Edges ``neighbour -> cell`` for every valid cell and offset landing on a valid cell."""
    index = node_index_image(mask)
    ny, nx = mask.shape
    pad = int(np.abs(offsets).max()) if len(offsets) else 0
    padded = np.pad(index, pad, constant_values=-1)
    sources, targets = [], []
    for dy, dx in offsets:
        # cell (r, c) receives from its neighbour (r + dy, c + dx)
        neighbour = padded[pad + dy : pad + dy + ny, pad + dx : pad + dx + nx]
        keep = (index >= 0) & (neighbour >= 0)
        sources.append(neighbour[keep])
        targets.append(index[keep])
    if not sources:
        return torch.empty((2, 0), dtype=torch.long)
    edge_index = np.stack([np.concatenate(sources), np.concatenate(targets)])
    order = np.lexsort((edge_index[0], edge_index[1]))  # group by target, stable
    return torch.from_numpy(edge_index[:, order].copy())


@dataclass(frozen=True)
class GridStencil:
    """A validity mask and the neighbour offsets of each scale: the grid graph without edge lists.

    Nodes are the valid cells in row-major order, as in :class:`~mstgat_core.graph.GridGraph`.
    """

    mask: np.ndarray
    offsets: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, mask: np.ndarray, scales, mode: str = "window") -> GridStencil:
        """The stencil of a validity mask at ``scales`` (radii in cells) in graph ``mode``.

        Models build theirs with :meth:`ModelConfig.stencil <mstgat_core.model.ModelConfig.stencil>`.
        """
        return cls(np.asarray(mask, dtype=bool), tuple(scale_offsets(r, mode) for r in scales))

    @property
    def num_nodes(self) -> int:
        """Number of valid cells (the graph's nodes)."""
        return int(self.mask.sum())

    def to_image(self, values: torch.Tensor) -> torch.Tensor:
        """(nodes, C) -> (ny, nx, C), zeros on invalid cells."""
        image = values.new_zeros((*self.mask.shape, values.shape[1]))
        image[torch.from_numpy(self.mask)] = values
        return image

    def to_nodes(self, image: torch.Tensor) -> torch.Tensor:
        """(ny, nx, C) -> (nodes, C): the valid cells of an image, in row-major order."""
        return image[torch.from_numpy(self.mask)]


@dataclass
class GridGraph:
    """One graph per scale over the valid cells of a grid.

    Edge lists are built on first use of :attr:`edge_index`: whole-grid
    prediction needs only the :attr:`stencil`, and the lists cost 16 bytes per
    edge (80 edges per cell for window scales 1, 2, 3: 5 GB for 4 M cells).
    """

    mask: np.ndarray
    scales: tuple[int, ...]
    mode: str = "window"
    offsets: list[np.ndarray] = field(default_factory=list)
    _edges: list | None = field(default=None, repr=False)
    _pointers: dict = field(default_factory=dict, repr=False)

    @property
    def edge_index(self) -> list[torch.Tensor]:
        """One ``(2, edges)`` tensor per scale, neighbour -> cell, grouped by target."""
        if self._edges is None:
            self._edges = [grid_edges(self.mask, o) for o in self.offsets]
        return self._edges

    @property
    def num_nodes(self) -> int:
        """Number of valid cells (the graph's nodes)."""
        return int(self.mask.sum())

    @property
    def stencil(self) -> GridStencil:
        """The same graph without edge lists (what whole-grid prediction needs)."""
        return GridStencil(self.mask, tuple(self.offsets))

    @property
    def rows_cols(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the nodes, in node order (row-major)."""
        return np.nonzero(self.mask)

    def target_pointer(self, scale_index: int) -> torch.Tensor:
        """CSR pointer: the edges into node ``t`` are ``ptr[t]:ptr[t + 1]`` (edges are sorted by target)."""
        if scale_index not in self._pointers:
            targets = self.edge_index[scale_index][1]
            self._pointers[scale_index] = torch.searchsorted(targets, torch.arange(self.num_nodes + 1))
        return self._pointers[scale_index]

    def node_of(self, row: int, col: int) -> int:
        """Node id of a grid cell; raises if the cell is not valid."""
        if not (0 <= row < self.mask.shape[0] and 0 <= col < self.mask.shape[1]):
            raise IndexError(f"cell ({row}, {col}) is outside the grid {self.mask.shape}")
        if not self.mask[row, col]:
            raise IndexError(f"cell ({row}, {col}) has no data")
        return int(self.mask[:row].sum() + self.mask[row, :col].sum())


def build_graph(mask: np.ndarray, scales=(1, 2, 3), mode: str = "window") -> GridGraph:
    """Build the multiscale graph of a validity mask (edge lists are built on first use).

    Models build theirs with :meth:`ModelConfig.graph <mstgat_core.model.ModelConfig.graph>`.
    """
    mask = np.asarray(mask, dtype=bool)
    scales = tuple(int(s) for s in scales)
    if not scales:
        raise ValueError("at least one scale is needed")
    return GridGraph(mask=mask, scales=scales, mode=mode, offsets=[scale_offsets(r, mode) for r in scales])


def receptive_radius(scales, layers: int) -> int:
    """Cells a prediction can see in each direction: layers x largest radius.

    A tile needs a halo of this many cells so that its interior predictions
    equal whole-grid predictions. A model's own is
    :attr:`ModelConfig.receptive_radius <mstgat_core.model.ModelConfig.receptive_radius>`.
    """
    return int(layers) * max(int(s) for s in scales)


def incoming_edges(graph: GridGraph, scale_index: int, targets: torch.Tensor) -> torch.Tensor:
    """Ids of the edges of one scale whose target is in ``targets``.

    Edges are stored grouped by target, so each target's incoming edges are a
    contiguous range; gathering the ranges costs O(edges returned), not O(all
    edges), which keeps per-batch subgraphs cheap on large grids.
    """
    ptr = graph.target_pointer(scale_index)
    starts, counts = ptr[targets], ptr[targets + 1] - ptr[targets]
    total = int(counts.sum())
    if total == 0:
        return torch.empty(0, dtype=torch.long)
    offsets = torch.repeat_interleave(starts - (torch.cumsum(counts, 0) - counts), counts)
    return offsets + torch.arange(total)


def receptive_subgraph(graph: GridGraph, nodes, hops: int):
    """The smallest subgraph that determines the outputs at ``nodes`` after ``hops`` layers.

    Returns ``(subset, edge_indices, mapping)``: the node ids kept (sorted),
    one relabelled edge index per scale, and the positions of ``nodes`` in
    ``subset``. Layer ``k`` needs exact states only within ``hops - k`` hops of
    ``nodes``, so an edge is kept when its target lies within ``hops - 1``
    hops (over the union of scales); its source is then within ``hops``. A node
    reached in exactly ``hops`` hops only contributes its input features.
    Outputs at ``nodes`` are identical to a full-graph pass.
    """
    nodes = torch.as_tensor(np.atleast_1d(nodes), dtype=torch.long)
    scales = range(len(graph.edge_index))
    inner = torch.unique(nodes)
    for _ in range(max(hops - 1, 0)):
        sources = [graph.edge_index[s][0, incoming_edges(graph, s, inner)] for s in scales]
        inner = torch.unique(torch.cat([inner, *sources]))
    kept = [
        graph.edge_index[s][:, incoming_edges(graph, s, inner)] if hops > 0 else torch.empty((2, 0), dtype=torch.long)
        for s in scales
    ]
    subset = torch.unique(torch.cat([inner, *(e[0] for e in kept)]))
    relabel = torch.full((graph.num_nodes,), -1, dtype=torch.long)
    relabel[subset] = torch.arange(subset.numel())
    return subset, [relabel[e] for e in kept], relabel[nodes]
