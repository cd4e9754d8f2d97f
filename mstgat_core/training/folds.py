"""Spatial cross-validation folds that keep deposit clusters whole, with a buffer.

Nodes are the valid cells of a grid in row-major order (``rows, cols =
np.nonzero(mask)``); distances are Euclidean between cell centres, in cells.

Why: deposits cluster, and a model's receptive field spans several cells, so
a test deposit next to a training deposit is scored by a model that has seen
almost the same neighbourhood. Three rules keep a fold honest:

1. **Whole clusters.** Deposit cells closer than ``link_distance`` (single
   linkage; default: the model's receptive diameter) form one cluster, and a
   cluster is never split between folds.
2. **Regions.** Every cell joins the fold of its nearest deposit cell, so a
   fold's test region is the Voronoi region of its clusters (``clusters`` and
   ``loco``), or whole square blocks (``blocks``, the older protocol).
3. **Buffer.** Every training label, positive or negative, within ``buffer``
   cells of the test region is dropped (default: the receptive radius + 1).

Label rules of a fold (test labels never shape training):

- test positives: deposit cells inside the test region;
- training positives: deposit cells outside the region and the buffer;
- training negative pool: cells outside the region and the buffer, at least
  ``min_neg_distance`` cells from every *training* deposit (so a test
  deposit's location cannot leak in through which cells are negatives);
- test negatives: test-region cells at least ``min_neg_distance`` cells from
  every known deposit (defining the *evaluation* set with all deposits leaks
  nothing into training).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..errors import DataError
from ..graphs.graph import receptive_radius

FOLD_METHODS = ("clusters", "loco", "blocks")


@dataclass
class Fold:
    """Node ids (int64 arrays) of one spatial fold.

    ``test_region`` is a bool mask over nodes; ``buffer_dropped`` counts the
    cells outside the region whose labels the buffer removed;
    ``test_clusters`` is the deposit-cluster id of each test positive (aligned
    with ``test_pos``); ``test_pos_distance`` is each test positive's distance
    in cells to the nearest training positive (inf if there is none).
    """

    train_pos: np.ndarray
    test_pos: np.ndarray
    train_neg_pool: np.ndarray
    test_neg: np.ndarray
    test_region: np.ndarray
    buffer_dropped: int = 0
    test_clusters: np.ndarray | None = None
    test_pos_distance: np.ndarray | None = None


@dataclass(frozen=True)
class FoldSettings:
    """How folds are drawn; see the module docstring.

    Parameters
    ----------
    method : {"clusters", "loco", "blocks"}
        ``clusters``: whole deposit clusters spread over ``n_folds`` folds;
        ``loco``: leave one cluster out (one fold per cluster, ``n_folds``
        ignored); ``blocks``: square blocks (kept for comparison).
    n_folds : int
        Folds per seed (``clusters``, ``blocks``).
    link_distance : float
        Deposit cells closer than this (cells) belong to one cluster.
    buffer : float
        Training labels within this many cells of the test region are dropped.
    min_neg_distance : float
        Negatives are at least this many cells from a deposit.
    block_size : int, optional
        Block side for ``blocks`` (default :func:`default_block_size`).
    """

    method: str = "clusters"
    n_folds: int = 5
    link_distance: float = 7.0
    buffer: float = 4.0
    min_neg_distance: float = 3.0
    block_size: int | None = None

    def __post_init__(self):
        if self.method not in FOLD_METHODS:
            raise DataError(
                f"unknown fold method {self.method!r}; use {', '.join(FOLD_METHODS)}", setting="fold_method"
            )
        if self.method != "loco" and int(self.n_folds) < 2:
            raise DataError(
                f"cross-validation needs at least 2 folds, got {self.n_folds}", setting="n_folds", values=(2, "loco")
            )
        if self.buffer < 0:
            raise DataError(f"the buffer must be at least 0 cells, got {self.buffer:g}", setting="buffer")
        if self.link_distance <= 0:
            raise DataError(
                f"the link distance must be more than 0 cells, got {self.link_distance:g}", setting="link_distance"
            )
        if self.min_neg_distance < 0:
            raise DataError(
                f"the minimum negative distance must be at least 0 cells, got {self.min_neg_distance:g}",
                setting="min_neg_distance",
            )

    @classmethod
    def for_radius(cls, radius: int, **overrides) -> FoldSettings:
        """Defaults from a receptive radius ``R`` in cells (at least 1): link distance ``2 R + 1`` (the
        receptive diameter), buffer ``R + 1``; ``overrides`` that are not None replace them (or any field)."""
        radius = max(int(radius), 1)
        options = {"link_distance": float(2 * radius + 1), "buffer": float(radius + 1)}
        options.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**options)

    @classmethod
    def for_config(cls, config, **overrides) -> FoldSettings:
        """Defaults from a model's receptive field (:attr:`ModelConfig.receptive_radius
        <mstgat_core.model.ModelConfig.receptive_radius>`; at least 1 cell); see :meth:`for_radius`."""
        return cls.for_radius(config.receptive_radius, **overrides)

    @classmethod
    def for_model(cls, scales, hops: int = 1, **overrides) -> FoldSettings:
        """Defaults from scales and hops: link distance = the receptive diameter
        ``2 * hops * max(scales) + 1``, buffer = the receptive radius + 1 (see :meth:`for_radius`;
        from a :class:`~mstgat_core.model.ModelConfig` use :meth:`for_config`)."""
        return cls.for_radius(receptive_radius(scales, max(int(hops), 1)), **overrides)

    @classmethod
    def from_dict(cls, settings: dict) -> FoldSettings:
        """Settings from :meth:`to_dict` (or a report's protocol restricted to these keys).

        None values take the defaults (``n_folds`` is None for ``loco``).
        Raises :class:`~mstgat_core.errors.DataError` naming any key that is
        not a field.
        """
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise DataError(
                f"unknown fold setting(s): {', '.join(map(str, unknown))}; use {', '.join(sorted(known))}",
                setting=tuple(unknown),
            )
        return cls(**{k: v for k, v in settings.items() if v is not None})

    def to_dict(self) -> dict:
        """Plain-JSON fields (``n_folds`` None for ``loco``); :meth:`from_dict` reads them back."""
        return {
            "method": self.method,
            "n_folds": None if self.method == "loco" else int(self.n_folds),
            "link_distance": float(self.link_distance),
            "buffer": float(self.buffer),
            "min_neg_distance": float(self.min_neg_distance),
            "block_size": self.block_size,
        }

    def inner(self) -> dict:
        """What an inner cross-validation inside a training fold inherits: link distance, buffer and
        minimum negative distance (its method and fold count follow from the training deposits)."""
        return {
            "link_distance": float(self.link_distance),
            "buffer": float(self.buffer),
            "min_neg_distance": float(self.min_neg_distance),
        }


# ---------------------------------------------------------------- clusters


def deposit_clusters(rows, cols, pos_nodes, link_distance: float) -> np.ndarray:
    """Cluster id of each deposit node (single linkage at ``link_distance`` cells).

    Two deposit cells closer than ``link_distance`` share a cluster, and so do
    chains of such cells. Ids are 0, 1, ... in order of each cluster's first
    node (row-major), so they do not depend on any seed.
    """
    pos_nodes = np.asarray(pos_nodes, dtype=np.int64)
    n = len(pos_nodes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    coords = np.column_stack([rows[pos_nodes], cols[pos_nodes]]).astype(float)
    pairs = cKDTree(coords).query_pairs(r=np.nextafter(link_distance, 0), output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    order = np.argsort(pos_nodes, kind="stable")
    _, first = np.unique(labels[order], return_index=True)
    renumber = np.empty(labels.max() + 1, dtype=np.int64)
    renumber[labels[order][np.sort(first)]] = np.arange(len(first))
    return renumber[labels]


def _assign_clusters(cluster_of_pos, n_folds, rng) -> np.ndarray:
    """Fold of each cluster: largest first (seeded order among equals), each to the fold
    with the fewest deposit cells so far (then the fewest clusters)."""
    sizes = np.bincount(cluster_of_pos)
    shuffled = rng.permutation(len(sizes))
    order = shuffled[np.argsort(-sizes[shuffled], kind="stable")]
    fold_cells, fold_clusters = np.zeros(n_folds, int), np.zeros(n_folds, int)
    fold_of_cluster = np.empty(len(sizes), int)
    for cluster in order:
        fold = int(np.lexsort((fold_clusters, fold_cells))[0])
        fold_of_cluster[cluster] = fold
        fold_cells[fold] += sizes[cluster]
        fold_clusters[fold] += 1
    return fold_of_cluster


def _nearest_deposit(rows, cols, pos_nodes) -> np.ndarray:
    """Index into ``pos_nodes`` of every node's nearest deposit cell."""
    tree = cKDTree(np.column_stack([rows[pos_nodes], cols[pos_nodes]]).astype(float))
    _, nearest = tree.query(np.column_stack([rows, cols]).astype(float))
    return nearest


# ---------------------------------------------------------------- blocks


def default_block_size(n_nodes, n_folds):
    """Block side in cells giving about ten data-bearing blocks per fold: ``ceil(sqrt(n_nodes / (10 n_folds)))``."""
    return max(1, math.ceil(math.sqrt(n_nodes / (10 * n_folds))))


def _block_folds(rows, cols, is_pos, n_folds, block_size, rng) -> np.ndarray:
    """Fold per node: whole blocks (lattice shifted by a seeded offset), deposit blocks spread
    greedily over the folds (most deposits first), then the other blocks by area."""
    offset_row, offset_col = rng.integers(0, block_size, size=2)
    block_row = (rows - rows.min() + offset_row) // block_size
    block_col = (cols - cols.min() + offset_col) // block_size
    _, block = np.unique(block_row * (block_col.max() + 1) + block_col, return_inverse=True)
    n_blocks = block.max() + 1
    pos_per_block = np.bincount(block, weights=is_pos, minlength=n_blocks).astype(int)
    nodes_per_block = np.bincount(block, minlength=n_blocks)
    shuffled = rng.permutation(n_blocks)
    order = shuffled[np.argsort(-pos_per_block[shuffled], kind="stable")]
    fold_pos, fold_nodes = np.zeros(n_folds, int), np.zeros(n_folds, int)
    fold_of_block = np.empty(n_blocks, int)
    for b in order:
        fold = np.lexsort((fold_nodes, fold_pos))[0] if pos_per_block[b] else int(np.argmin(fold_nodes))
        fold_of_block[b] = fold
        fold_pos[fold] += pos_per_block[b]
        fold_nodes[fold] += nodes_per_block[b]
    return fold_of_block[block]


# ---------------------------------------------------------------- folds


def distance_to_nodes(rows, cols, nodes) -> np.ndarray:
    """Euclidean distance (cells) from every node to the nearest of ``nodes`` (inf if none)."""
    if len(nodes) == 0:
        return np.full(len(rows), np.inf)
    distance, _ = cKDTree(np.column_stack([rows[nodes], cols[nodes]])).query(np.column_stack([rows, cols]))
    return distance


SPARSE_LATTICE = 4  # lattice cells per node above which distances go through a KD-tree, not a raster


def distance_to_region(rows, cols, in_region) -> np.ndarray:
    """Euclidean distance (cells) from every node to the nearest node of the region (0 inside).

    A dense grid goes through a distance transform of its raster; sparse nodes (point samples on a fine
    lattice, :mod:`~mstgat_core.evaluation.point_crossval`, where the raster would hold millions of empty
    cells) through a KD-tree. Both give the exact Euclidean distance to the nearest region node.
    """
    area = (int(rows.max()) + 1) * (int(cols.max()) + 1)
    if area > SPARSE_LATTICE * len(rows):
        return distance_to_nodes(rows, cols, np.flatnonzero(in_region))
    outside = np.ones((rows.max() + 1, cols.max() + 1), dtype=bool)
    outside[rows[in_region], cols[in_region]] = False
    return distance_transform_edt(outside)[rows, cols]


def make_fold(rows, cols, pos_nodes, in_region, buffer, min_neg_distance, cluster_of_pos=None) -> Fold:
    """Apply the label rules of the module docstring to one test region."""
    pos_nodes = np.asarray(pos_nodes, dtype=np.int64)
    is_pos = np.zeros(len(rows), dtype=bool)
    is_pos[pos_nodes] = True
    region_distance = distance_to_region(rows, cols, in_region)
    training_zone = region_distance > buffer
    train_pos = np.flatnonzero(is_pos & training_zone)
    outside_pos = np.flatnonzero(is_pos & ~in_region)
    test_pos = np.flatnonzero(is_pos & in_region)
    cluster_of_node = np.full(len(rows), -1, dtype=np.int64)
    if cluster_of_pos is not None:
        cluster_of_node[pos_nodes] = cluster_of_pos
    return Fold(
        train_pos=train_pos,
        test_pos=test_pos,
        train_neg_pool=np.flatnonzero(
            ~is_pos & training_zone & (distance_to_nodes(rows, cols, outside_pos) >= min_neg_distance)
        ),
        test_neg=np.flatnonzero(in_region & (distance_to_nodes(rows, cols, pos_nodes) >= min_neg_distance)),
        test_region=in_region,
        buffer_dropped=int((~in_region & ~training_zone).sum()),
        test_clusters=cluster_of_node[test_pos],
        test_pos_distance=distance_to_nodes(rows, cols, train_pos)[test_pos],
    )


def single_cluster_error(n_clusters: int, settings: FoldSettings) -> DataError:
    """The error when the deposits form fewer than two clusters (it names the link distance and scales)."""
    return DataError(
        f"the deposits form {n_clusters} cluster at a link distance of {settings.link_distance:g} cells, so no "
        "spatial fold can hold any out: use a smaller link distance, or a model with smaller scales (e.g. 1)",
        setting=("link_distance", "scales"),
    )


def fold_regions(rows, cols, pos_nodes, settings: FoldSettings, seed: int = 0):
    """Fold index of every node and the deposit-cluster id of every deposit node."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    pos_nodes = np.asarray(pos_nodes, dtype=np.int64)
    clusters = deposit_clusters(rows, cols, pos_nodes, settings.link_distance)
    n_clusters = int(clusters.max()) + 1 if len(clusters) else 0
    rng = np.random.default_rng(seed)
    if settings.method == "blocks":
        size = settings.block_size or default_block_size(len(rows), settings.n_folds)
        is_pos = np.zeros(len(rows), dtype=bool)
        is_pos[pos_nodes] = True
        return _block_folds(rows, cols, is_pos, int(settings.n_folds), size, rng), clusters
    if settings.method == "loco":
        if n_clusters < 2:
            raise single_cluster_error(n_clusters, settings)
        fold_of_cluster = np.arange(n_clusters)
    else:
        if n_clusters < 2:
            raise single_cluster_error(n_clusters, settings)
        if n_clusters < settings.n_folds:
            raise DataError(
                f"{n_clusters} deposit clusters cannot fill {settings.n_folds} folds: use at most {n_clusters} "
                "folds, or leave one cluster out",
                setting="n_folds",
                values=(n_clusters, "loco"),
            )
        fold_of_cluster = _assign_clusters(clusters, int(settings.n_folds), rng)
    return fold_of_cluster[clusters[_nearest_deposit(rows, cols, pos_nodes)]], clusters


def spatial_folds(rows, cols, pos_nodes, settings: FoldSettings | None = None, seed: int = 0) -> list[Fold]:
    """The folds of one seed (see the module docstring); test regions are disjoint and cover every node.

    Parameters
    ----------
    rows, cols : array of int
        Grid row and column of every node.
    pos_nodes : array of int
        Deposit nodes (positives).
    settings : FoldSettings, optional
        Fold method, count, link distance, buffer (default ``FoldSettings()``).
    seed : int
        Seeds the assignment of clusters (or blocks) to folds; ``loco`` folds
        do not depend on it.

    Returns
    -------
    list of Fold
        Blocks folds whose test region holds no deposit are dropped with a
        warning.

    Raises
    ------
    DataError
        No deposit, fewer clusters than folds, a fold without test negatives,
        or a buffer that leaves no training positive or negative in some fold.
    """
    settings = settings or FoldSettings()
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    pos_nodes = np.unique(np.asarray(pos_nodes, dtype=np.int64))
    if len(pos_nodes) == 0:
        raise DataError(
            "spatial cross-validation needs at least one deposit inside the valid cells", setting="deposits"
        )
    fold_of_node, clusters = fold_regions(rows, cols, pos_nodes, settings, seed)
    folds = []
    for index in range(int(fold_of_node.max()) + 1):
        fold = make_fold(
            rows, cols, pos_nodes, fold_of_node == index, settings.buffer, settings.min_neg_distance, clusters
        )
        if len(fold.test_pos) == 0:  # only square blocks can miss every deposit
            warnings.warn(f"fold {index} (seed {seed}) has no test deposit; skipped", stacklevel=2)
            continue
        if len(fold.test_neg) == 0:
            raise DataError(
                f"fold {index} has no test negatives: every valid cell of its test region (data on the sample "
                f"support) is within {settings.min_neg_distance:g} cells of a deposit; use fewer folds",
                setting="n_folds",
            )
        if len(fold.train_pos) == 0 or len(fold.train_neg_pool) == 0:
            kind = "positives" if len(fold.train_pos) == 0 else "negatives"
            raise DataError(
                f"fold {index} leaves no training {kind} outside its test region and its {settings.buffer:g}-cell "
                "buffer: use a smaller buffer or fewer folds",
                setting=("buffer", "n_folds"),
            )
        folds.append(fold)
    return folds


def fold_report(fold: Fold, rows, cols) -> dict:
    """Plain-JSON description of a fold: sizes, buffer losses, and each test deposit cell's
    cluster and distance (cells) to the nearest training deposit cell."""
    return {
        "n_train_pos": int(len(fold.train_pos)),
        "n_test_pos": int(len(fold.test_pos)),
        "n_train_neg_pool": int(len(fold.train_neg_pool)),
        "n_test_neg": int(len(fold.test_neg)),
        "n_test_region": int(fold.test_region.sum()),
        "buffer_dropped": int(fold.buffer_dropped),
        "test_deposits": [
            {"row": int(rows[n]), "col": int(cols[n]), "cluster": int(c), "distance_to_training": float(d)}
            for n, c, d in zip(fold.test_pos, fold.test_clusters, fold.test_pos_distance)
        ],
    }
