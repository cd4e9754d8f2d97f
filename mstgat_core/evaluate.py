"""Honest spatial cross-validation, metrics and comparison reports.

Distances are in grid cells (Euclidean between cell centres, row/column
indices). Nodes are the valid cells in row-major order: ``rows, cols =
np.nonzero(mask)``.

Label rules of a fold (why: test labels must never shape training):

- test positives: positives inside the fold's test region;
- train positives: positives outside the test region and more than
  ``buffer`` cells from it;
- training negative pool: nodes outside the test region, more than ``buffer``
  cells from it, and at least ``min_neg_distance`` cells from every positive
  *outside the test region*. Only deposits known to training decide which
  cells are negatives, so the location of a test deposit cannot leak in;
- test negatives: test-region nodes at least ``min_neg_distance`` cells from
  every known deposit. Defining the *evaluation* set with all deposits leaks
  nothing into training, and keeps the halo of a deposit just across a block
  edge from being scored as a false positive.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree
from sklearn.cluster import KMeans
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from .baselines import BASELINES
from .errors import Cancelled, DataError  # noqa: F401  (Cancelled is re-exported)

CURVE_POINTS = 101
FOLD_METHODS = ("blocks", "clusters")


@dataclass
class Fold:
    """Node ids (int64 arrays) of one spatial fold; ``test_region`` is a bool mask over nodes."""

    train_pos: np.ndarray
    test_pos: np.ndarray
    train_neg_pool: np.ndarray
    test_neg: np.ndarray
    test_region: np.ndarray


# ---------------------------------------------------------------- metrics


def _scores_of(scores, pos, neg):
    scores = np.asarray(scores, dtype=np.float64)
    pos_scores, neg_scores = scores[np.asarray(pos, dtype=np.int64)], scores[np.asarray(neg, dtype=np.int64)]
    targets = np.concatenate([np.ones(len(pos_scores)), np.zeros(len(neg_scores))])
    return targets, np.concatenate([pos_scores, neg_scores])


def roc_auc(scores, pos, neg):
    """ROC-AUC of the nodes ``pos`` against the nodes ``neg`` (ties count 1/2)."""
    return float(roc_auc_score(*_scores_of(scores, pos, neg)))


def pr_auc(scores, pos, neg):
    """Average precision of ``pos`` against ``neg`` (random = share of positives)."""
    return float(average_precision_score(*_scores_of(scores, pos, neg)))


def success_rate_curve(scores, pos_nodes, region_nodes=None):
    """Share of deposits captured against share of area, ranking cells by descending score.

    Cells of ``region_nodes`` (default: all nodes) are ranked by score; the
    curve has one vertex per group of tied scores, so ties are counted as if
    broken at random (linear within the group). Returns ``(area_share,
    captured_share)``, both starting at 0 and ending at 1.
    """
    scores = np.asarray(scores, dtype=np.float64)
    region = np.arange(len(scores)) if region_nodes is None else np.asarray(region_nodes, dtype=np.int64)
    is_pos = np.isin(region, np.asarray(pos_nodes, dtype=np.int64))
    if not is_pos.any():
        raise DataError("the success-rate curve needs at least one deposit in the region")
    order = np.argsort(-scores[region], kind="stable")
    ranked_scores, ranked_pos = scores[region][order], is_pos[order]
    group_ends = np.flatnonzero(np.append(np.diff(ranked_scores) != 0, True))
    cells = group_ends + 1
    captured = np.cumsum(ranked_pos)[group_ends]
    area_share = np.concatenate([[0.0], cells / len(region)])
    captured_share = np.concatenate([[0.0], captured / is_pos.sum()])
    return area_share, captured_share


def success_rate_auc(scores, pos_nodes, region_nodes=None):
    """Area under the success-rate curve: 0.5 for random scores, 1 - 0.5/N at best with one deposit.

    Equals ``1 - (mean rank of the deposits - 0.5) / N`` with average ranks of
    the N region cells (rank 1 = highest score).
    """
    area_share, captured_share = success_rate_curve(scores, pos_nodes, region_nodes)
    return float(np.sum(np.diff(area_share) * (captured_share[1:] + captured_share[:-1]) / 2))


def _thin(x, y, max_points=CURVE_POINTS):
    """At most ``max_points`` vertices of a curve, first and last kept, as plain floats."""
    keep = np.unique(np.linspace(0, len(x) - 1, min(len(x), max_points)).round().astype(int))
    return [float(v) for v in np.asarray(x)[keep]], [float(v) for v in np.asarray(y)[keep]]


# ---------------------------------------------------------------- folds


def default_block_size(n_nodes, n_folds):
    """Block side in cells giving about ten data-bearing blocks per fold.

    ``ceil(sqrt(n_nodes / (10 * n_folds)))``: e.g. 22 cells for a full
    163 x 141 grid and 5 folds. Ten blocks per fold lets the greedy assignment
    balance deposits and area while each block stays larger than a typical
    anomaly.
    """
    return max(1, math.ceil(math.sqrt(n_nodes / (10 * n_folds))))


def _block_labels(rows, cols, block_size, rng):
    """Block id per node; the block lattice is shifted by a seeded random offset."""
    offset_row, offset_col = rng.integers(0, block_size, size=2)
    block_row = (rows - rows.min() + offset_row) // block_size
    block_col = (cols - cols.min() + offset_col) // block_size
    _, labels = np.unique(block_row * (block_col.max() + 1) + block_col, return_inverse=True)
    return labels


def _assign_blocks(block_of_node, is_pos, n_folds, rng):
    """Fold per node: whole blocks, deposits spread greedily, then area balanced.

    Blocks with deposits go, most deposits first (seeded random order among
    equals), to the fold with the fewest deposits so far (then fewest cells).
    Blocks without deposits go to the fold with the fewest cells.
    """
    n_blocks = block_of_node.max() + 1
    pos_per_block = np.bincount(block_of_node, weights=is_pos, minlength=n_blocks).astype(int)
    nodes_per_block = np.bincount(block_of_node, minlength=n_blocks)
    shuffled = rng.permutation(n_blocks)
    order = shuffled[np.argsort(-pos_per_block[shuffled], kind="stable")]
    fold_pos, fold_nodes = np.zeros(n_folds, int), np.zeros(n_folds, int)
    fold_of_block = np.empty(n_blocks, int)
    for block in order:
        if pos_per_block[block] > 0:
            fold = np.lexsort((fold_nodes, fold_pos))[0]
        else:
            fold = int(np.argmin(fold_nodes))
        fold_of_block[block] = fold
        fold_pos[fold] += pos_per_block[block]
        fold_nodes[fold] += nodes_per_block[block]
    return fold_of_block[block_of_node]


def _cluster_folds(rows, cols, pos_nodes, n_folds, seed):
    """Fold per node: KMeans of deposit coordinates, each node joins its nearest deposit's cluster."""
    if len(np.unique(pos_nodes)) < n_folds:
        raise DataError(f"{len(pos_nodes)} deposits cannot make {n_folds} spatial clusters")
    pos_coords = np.column_stack([rows[pos_nodes], cols[pos_nodes]]).astype(float)
    cluster_of_pos = KMeans(n_clusters=n_folds, n_init=10, random_state=seed).fit_predict(pos_coords)
    _, nearest = cKDTree(pos_coords).query(np.column_stack([rows, cols]).astype(float))
    return cluster_of_pos[nearest]


def _distance_to(rows, cols, nodes):
    """Euclidean distance (cells) from every node to the nearest of ``nodes`` (inf if none)."""
    if len(nodes) == 0:
        return np.full(len(rows), np.inf)
    distance, _ = cKDTree(np.column_stack([rows[nodes], cols[nodes]])).query(np.column_stack([rows, cols]))
    return distance


def _distance_to_region(rows, cols, in_region):
    """Euclidean distance (cells) from every node to the nearest cell of the region (0 inside)."""
    outside = np.ones((rows.max() + 1, cols.max() + 1), dtype=bool)
    outside[rows[in_region], cols[in_region]] = False
    return distance_transform_edt(outside)[rows, cols]


def _make_fold(rows, cols, pos_nodes, in_region, buffer, min_neg_distance):
    """Apply the label rules of the module docstring to one test region."""
    is_pos = np.zeros(len(rows), dtype=bool)
    is_pos[pos_nodes] = True
    training_zone = _distance_to_region(rows, cols, in_region) > buffer
    outside_pos = np.flatnonzero(is_pos & ~in_region)
    far_from_training_pos = _distance_to(rows, cols, outside_pos) >= min_neg_distance
    far_from_all_pos = _distance_to(rows, cols, pos_nodes) >= min_neg_distance
    return Fold(
        train_pos=np.flatnonzero(is_pos & training_zone),
        test_pos=np.flatnonzero(is_pos & in_region),
        train_neg_pool=np.flatnonzero(~is_pos & training_zone & far_from_training_pos),
        test_neg=np.flatnonzero(in_region & far_from_all_pos),
        test_region=in_region,
    )


def spatial_folds(
    rows,
    cols,
    pos_nodes,
    n_folds=5,
    seed=0,
    method="blocks",
    block_size=None,
    buffer=0,
    min_neg_distance=3,
):
    """Spatial folds whose test regions are disjoint and cover every node.

    ``method="blocks"``: square blocks of ``block_size`` cells (default
    :func:`default_block_size`), lattice shifted by a seeded offset, whole
    blocks assigned to folds spreading deposits evenly. ``method="clusters"``:
    KMeans of the deposits into ``n_folds`` clusters; a fold's test region is
    the Voronoi cells of its cluster's deposits.

    ``buffer`` (cells, default 0 = plain blocking as usual in spatial CV; the
    blocks themselves are larger than an anomaly) removes the rim around the
    test region from training. ``min_neg_distance`` (cells, default 3)
    separates negatives from deposits. See the module docstring for the exact
    label rules. Folds without test positives or test negatives are dropped
    with a warning.
    """
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    pos_nodes = np.unique(np.asarray(pos_nodes, dtype=np.int64))
    if len(pos_nodes) == 0:
        raise DataError("spatial cross-validation needs at least one deposit inside the valid cells")
    if method == "blocks":
        size = block_size or default_block_size(len(rows), n_folds)
        rng = np.random.default_rng(seed)
        is_pos = np.isin(np.arange(len(rows)), pos_nodes)
        fold_of_node = _assign_blocks(_block_labels(rows, cols, size, rng), is_pos, n_folds, rng)
    elif method == "clusters":
        fold_of_node = _cluster_folds(rows, cols, pos_nodes, n_folds, seed)
    else:
        raise DataError(f"unknown fold method {method!r}; use 'blocks' or 'clusters'")
    folds = []
    for fold_index in range(n_folds):
        fold = _make_fold(rows, cols, pos_nodes, fold_of_node == fold_index, buffer, min_neg_distance)
        if len(fold.test_pos) == 0 or len(fold.test_neg) == 0:
            warnings.warn(f"fold {fold_index} (seed {seed}) has no test positives or negatives; skipped", stacklevel=2)
            continue
        folds.append(fold)
    return folds


def training_negatives(fold, seed, max_negatives=None):
    """The fold's training negatives, a seeded random subsample if ``max_negatives`` is set."""
    pool = fold.train_neg_pool
    if max_negatives is None or len(pool) <= max_negatives:
        return pool
    return np.sort(np.random.default_rng(seed).choice(pool, size=max_negatives, replace=False))


def baseline_method(name, max_negatives=5000, **options):
    """A ``fit_predict(X, fold, seed)`` callable for the baseline registered as ``name``.

    Training negatives are a seeded subsample of the fold's pool (at most
    ``max_negatives``). A baseline that ignores labels is fitted once per
    (features, seed) and its scores reused by every fold: same result, k times
    less work.
    """
    if name not in BASELINES:
        raise DataError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    baseline = BASELINES[name]
    unsupervised_scores = {}

    def fit_predict(X, fold, seed):
        if baseline.uses_labels:
            negatives = training_negatives(fold, seed, max_negatives)
            return baseline(**options).fit(X, fold.train_pos, negatives, seed).score(X)
        key = (hashlib.sha1(np.ascontiguousarray(X).tobytes()).hexdigest(), seed)
        if key not in unsupervised_scores:
            unsupervised_scores[key] = baseline(**options).fit(X, seed=seed).score(X)
        return unsupervised_scores[key]

    fit_predict.__name__ = name
    return fit_predict


# ---------------------------------------------------------------- cross-validation


def _fold_metrics(scores, fold):
    region_nodes = np.flatnonzero(fold.test_region)
    return {
        "roc_auc": roc_auc(scores, fold.test_pos, fold.test_neg),
        "pr_auc": pr_auc(scores, fold.test_pos, fold.test_neg),
        "success_rate_auc": success_rate_auc(scores, fold.test_pos, region_nodes),
    }


def _fold_sizes(fold):
    return {
        "n_train_pos": int(len(fold.train_pos)),
        "n_test_pos": int(len(fold.test_pos)),
        "n_train_neg_pool": int(len(fold.train_neg_pool)),
        "n_test_neg": int(len(fold.test_neg)),
        "n_test_region": int(fold.test_region.sum()),
    }


class _PooledHeldOut:
    """Held-out scores of one method collected over folds and seeds, for curves."""

    def __init__(self):
        self.pos, self.neg, self.region, self.region_is_pos = [], [], [], []

    def add(self, scores, fold):
        region_nodes = np.flatnonzero(fold.test_region)
        self.pos.append(scores[fold.test_pos])
        self.neg.append(scores[fold.test_neg])
        self.region.append(scores[region_nodes])
        self.region_is_pos.append(np.isin(region_nodes, fold.test_pos))

    def curves(self):
        pos, neg = np.concatenate(self.pos), np.concatenate(self.neg)
        targets = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
        fpr, tpr, _ = roc_curve(targets, np.concatenate([pos, neg]))
        region_scores = np.concatenate(self.region)
        area, captured = success_rate_curve(region_scores, np.flatnonzero(np.concatenate(self.region_is_pos)))
        fpr, tpr = _thin(fpr, tpr)
        area, captured = _thin(area, captured)
        return {"roc_curve": {"fpr": fpr, "tpr": tpr}, "success_curve": {"area": area, "captured": captured}}


def fold_summary(fold_rows):
    summary = {}
    for metric in ("roc_auc", "pr_auc", "success_rate_auc"):
        values = np.array([row[metric] for row in fold_rows])
        summary[f"{metric}_mean"] = float(values.mean())
        summary[f"{metric}_std"] = float(values.std())
    return summary


def cross_validate_arrays(
    methods,
    X,
    rows,
    cols,
    pos_nodes,
    n_folds=5,
    seeds=(0, 1, 2),
    fold_method="blocks",
    progress=None,
    cancel=None,
    **fold_options,
):
    """Spatially cross-validate ``methods`` (name -> ``fit_predict(X, fold, seed)``).

    Folds are rebuilt for every seed (different block offset and assignment).
    Metrics per fold: ROC-AUC and PR-AUC of test positives vs test negatives,
    success-rate AUC over the test region. Per method the pooled held-out ROC
    and success-rate curves (raw scores of the fold models, at most 101
    points) are stored for plotting. ``progress(done, total, message)`` is
    called after each (seed, fold, method); setting the ``cancel`` event stops
    the run with :class:`Cancelled`. ``fold_options`` go to
    :func:`spatial_folds` (block_size, buffer, min_neg_distance).
    """
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    folds_by_seed = {
        seed: spatial_folds(rows, cols, pos_nodes, n_folds, seed, fold_method, **fold_options) for seed in seeds
    }
    total = sum(len(folds) for folds in folds_by_seed.values()) * len(methods)
    fold_rows = {name: [] for name in methods}
    pooled = {name: _PooledHeldOut() for name in methods}
    done = 0
    for seed, folds in folds_by_seed.items():
        for fold_index, fold in enumerate(folds):
            for name, fit_predict in methods.items():
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"cross-validation cancelled after {done} of {total} fits")
                started = time.perf_counter()
                scores = np.asarray(fit_predict(X, fold, seed), dtype=np.float64)
                row = {"seed": int(seed), "fold": fold_index, **_fold_metrics(scores, fold)}
                row.update(n_test_pos=int(len(fold.test_pos)), n_test_neg=int(len(fold.test_neg)))
                row["seconds"] = float(time.perf_counter() - started)
                fold_rows[name].append(row)
                pooled[name].add(scores, fold)
                done += 1
                if progress is not None:
                    progress(done, total, f"seed {seed} fold {fold_index}: {name} ROC-AUC {row['roc_auc']:.3f}")
    if total == 0:
        raise DataError("no usable spatial fold: every fold lacked test positives or negatives")
    protocol = {
        "fold_method": fold_method,
        "n_folds": int(n_folds),
        "seeds": [int(seed) for seed in seeds],
        "block_size": _protocol_block_size(fold_method, fold_options, len(rows), n_folds),
        "buffer": fold_options.get("buffer", 0),
        "min_neg_distance": fold_options.get("min_neg_distance", 3),
        "n_nodes": int(len(rows)),
        "n_pos": int(len(np.unique(pos_nodes))),
        "n_folds_used": {str(seed): len(folds) for seed, folds in folds_by_seed.items()},
        "n_folds_skipped": int(sum(n_folds - len(folds) for folds in folds_by_seed.values())),
        "fold_sizes": {str(seed): [_fold_sizes(fold) for fold in folds] for seed, folds in folds_by_seed.items()},
    }
    results = {
        name: {**fold_summary(fold_rows[name]), "folds": fold_rows[name], **pooled[name].curves()} for name in methods
    }
    return {"protocol": protocol, "results": results}


def _protocol_block_size(fold_method, fold_options, n_nodes, n_folds):
    if fold_method != "blocks":
        return None
    return int(fold_options.get("block_size") or default_block_size(n_nodes, n_folds))


def report_markdown(report):
    """A markdown table of the methods (best mean ROC-AUC first) and the protocol.

    Parameters
    ----------
    report : dict
        From :func:`~mstgat_core.crossval.cross_validate_grid` or
        :func:`cross_validate_arrays`.

    Returns
    -------
    str
        One row per method: mean ± standard deviation (over folds and seeds,
        ddof 0) of ROC-AUC, PR-AUC and success-rate AUC, and folds x seeds
        (folds used per seed, rounded down where seeds skipped folds); then
        the protocol as a bullet list, without ``fold_sizes``.
    """
    lines = [
        "| method | ROC-AUC | PR-AUC | success-rate AUC | folds x seeds |",
        "| --- | --- | --- | --- | --- |",
    ]
    ranked = sorted(report["results"].items(), key=lambda item: -item[1]["roc_auc_mean"])
    for name, result in ranked:
        metrics = ("roc_auc", "pr_auc", "success_rate_auc")
        cells = [f"{result[f'{m}_mean']:.3f} ± {result[f'{m}_std']:.3f}" for m in metrics]
        n_seeds = len({row["seed"] for row in result["folds"]})
        cells.append(f"{len(result['folds']) // max(n_seeds, 1)} x {n_seeds}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    lines += ["", "Protocol:", ""]
    for key, value in report["protocol"].items():
        if key != "fold_sizes":
            lines.append(f"- {key}: {value}")
    return "\n".join(lines) + "\n"
