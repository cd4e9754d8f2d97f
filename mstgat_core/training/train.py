"""Transductive training of MSTGAT and its variants on one grid.

Positives are the cells holding known deposits. Negatives are drawn each
epoch from cells at least ``min_negative_distance`` cells from every training
positive and the classes are balanced by weighting the loss. Early stopping
watches ROC-AUC on an inner, spatially separated validation split of the
training labels; the best epoch's weights are restored.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy.spatial import cKDTree
from sklearn.cluster import KMeans
from sklearn.metrics import roc_auc_score

from ..errors import Cancelled, DataError
from ..graphs.graph import GridGraph, receptive_subgraph
from ..model import MSTGAT


@dataclass
class TrainConfig:
    """Training protocol (stored in checkpoints); see the module docstring.

    Distances are in cells (Euclidean between cell centres unless stated).

    Parameters
    ----------
    epochs : int
        Most epochs; all of them when ``validation_fraction`` is 0.
    steps_per_epoch : int
        AdamW steps per epoch; each uses every training positive and a fresh
        draw of negatives.
    lr, weight_decay : float
        AdamW learning rate and weight decay.
    patience : int
        Stop after this many epochs without a better validation score
        (ROC-AUC rounded to 4 places, then lower loss).
    min_epochs : int
        Never stop early before this epoch.
    negatives_per_positive : int
        Negatives per step: this many per training positive, at least 64, at
        most the whole pool. The loss weights the two classes equally.
    min_negative_distance : float
        Negatives are at least this far from every positive.
    positive_radius : int
        Also count cells within this Chebyshev radius of a training positive
        as positives (0: off).
    validation_fraction : float
        Share of positives held out, as one spatial cluster, for early
        stopping; the best epoch's weights are restored. 0: no validation.
    max_validation_negatives : int
        Cap on the validation negatives (a seeded subsample).
    seed : int
        Seeds torch (dropout; the weights' initialisation in
        :func:`~mstgat_core.pipeline.fit`), the negative draws and the validation split.
    """

    epochs: int = 100
    steps_per_epoch: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-3
    patience: int = 15
    min_epochs: int = 10
    negatives_per_positive: int = 20
    min_negative_distance: float = 3.0
    positive_radius: int = 0
    validation_fraction: float = 0.2  # 0: no early stopping, train all ``epochs`` on every label
    max_validation_negatives: int = 500
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochLog:
    epoch: int
    loss: float
    val_auc: float
    val_loss: float
    seconds: float


@dataclass
class TrainResult:
    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = 0
    best_val_auc: float = float("nan")
    stopped: str = "max_epochs"  # or "early_stopping"
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "best_epoch": self.best_epoch,
            "best_val_auc": self.best_val_auc,
            "stopped": self.stopped,
            "seconds": self.seconds,
            "epochs_run": len(self.history),
        }


def negative_pool(rows, cols, positives, min_distance: float, candidates=None) -> np.ndarray:
    """Nodes (from ``candidates``, default all) at least ``min_distance`` cells from every positive."""
    candidates = np.arange(len(rows)) if candidates is None else np.asarray(candidates)
    if len(positives) == 0:
        return candidates
    tree = cKDTree(np.column_stack([rows[positives], cols[positives]]))
    distance, _ = tree.query(np.column_stack([rows[candidates], cols[candidates]]))
    return candidates[distance >= min_distance]


def grow_positives(rows, cols, positives, radius: int) -> np.ndarray:
    """Positives plus the valid cells within ``radius`` cells (Chebyshev) of them.

    Only ever applied to training positives, after the cross-validation split.
    """
    if radius <= 0 or len(positives) == 0:
        return np.asarray(positives)
    tree = cKDTree(np.column_stack([rows, cols]))
    near = tree.query_ball_point(np.column_stack([rows[positives], cols[positives]]), r=radius, p=np.inf)
    return np.unique(np.concatenate([np.asarray(positives)] + [np.asarray(n, dtype=int) for n in near]))


def validation_split(rows, cols, positives, negatives, fraction: float, seed: int):
    """Split labels into spatially separated inner-train and validation sets.

    Positives are clustered (k-means on their cell coordinates) into about
    ``1/fraction`` groups and one group is held out; cells whose nearest
    positive is held out form the validation region.
    """
    positives, negatives = np.asarray(positives), np.asarray(negatives)
    n_groups = max(2, int(round(1 / fraction)))
    if len(positives) < 2 * n_groups:
        rng = np.random.default_rng(seed)
        held = rng.random(len(positives)) < fraction
        if held.all() or not held.any():
            held = np.zeros(len(positives), bool)
            held[rng.integers(len(positives))] = True
    else:
        coords = np.column_stack([rows[positives], cols[positives]]).astype(float)
        labels = KMeans(n_groups, n_init=4, random_state=seed).fit_predict(coords)
        held = labels == np.random.default_rng(seed).integers(n_groups)
    tree = cKDTree(np.column_stack([rows[positives], cols[positives]]))
    _, nearest = tree.query(np.column_stack([rows[negatives], cols[negatives]]))
    neg_held = held[nearest]
    return positives[~held], negatives[~neg_held], positives[held], negatives[neg_held]


def _balanced_loss(logits, labels):
    n_pos = labels.sum().clamp(min=1)
    n_neg = (1 - labels).sum().clamp(min=1)
    weights = torch.where(labels > 0, 0.5 / n_pos, 0.5 / n_neg)
    return (torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none") * weights).sum()


def train_model(
    model: MSTGAT,
    x: torch.Tensor,
    graph: GridGraph,
    positives,
    negative_candidates=None,
    config: TrainConfig | None = None,
    callback: Callable[[EpochLog], None] | None = None,
    cancel: threading.Event | None = None,
) -> TrainResult:
    """Train ``model`` in place; returns the history and the restored best epoch.

    ``negative_candidates`` restricts where negatives may come from (e.g. the
    training folds of a cross-validation); by default any node far enough
    from the positives. ``callback`` is called after every epoch; setting
    ``cancel`` stops training at the next epoch with :class:`Cancelled`.
    """
    config = config or TrainConfig()
    rows, cols = graph.rows_cols
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    positives = np.asarray(positives, dtype=np.int64)
    if len(positives) == 0:
        raise DataError("training needs at least one positive (deposit) cell", setting="deposits")
    pool = negative_pool(rows, cols, positives, config.min_negative_distance, negative_candidates)
    if len(pool) == 0:
        raise DataError(
            "no cell is far enough from the deposits to serve as a negative", setting="min_negative_distance"
        )
    validate = config.validation_fraction > 0
    if validate:
        train_pos, train_neg, val_pos, val_neg = validation_split(
            rows, cols, positives, pool, config.validation_fraction, config.seed
        )
        if len(val_neg) > config.max_validation_negatives:
            val_neg = np.sort(rng.choice(val_neg, config.max_validation_negatives, replace=False))
        val_batch = Batch.of(model, x, graph, np.concatenate([val_pos, val_neg]))
        val_labels = torch.cat([torch.ones(len(val_pos)), torch.zeros(len(val_neg))])
    else:  # a refit on all labels for a fixed number of epochs (chosen beforehand, e.g. by CV)
        train_pos, train_neg = positives, pool
    train_pos = grow_positives(rows, cols, train_pos, config.positive_radius)

    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    result = TrainResult()
    best_key, best_state, stale = None, copy.deepcopy(model.state_dict()), 0
    start = time.perf_counter()
    n_neg = min(len(train_neg), max(config.negatives_per_positive * len(train_pos), 64))
    for epoch in range(1, config.epochs + 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("training cancelled")
        t0 = time.perf_counter()
        model.train()
        losses = []
        for _ in range(config.steps_per_epoch):
            negatives = rng.choice(train_neg, size=n_neg, replace=False)
            batch = Batch.of(model, x, graph, np.concatenate([train_pos, negatives]))
            labels = torch.cat([torch.ones(len(train_pos)), torch.zeros(len(negatives))])
            optimiser.zero_grad()
            loss = _balanced_loss(batch.logits(model), labels)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())

        model.eval()
        val_auc = val_loss = float("nan")
        if validate:
            with torch.no_grad():
                val_logits = val_batch.logits(model)
                val_loss = float(_balanced_loss(val_logits, val_labels))
            val_auc = _auc(val_labels.numpy(), val_logits.numpy())
        log = EpochLog(epoch, float(np.mean(losses)), val_auc, val_loss, time.perf_counter() - t0)
        result.history.append(log)
        if callback is not None:
            callback(log)

        key = (round(val_auc, 4), -val_loss)
        if not validate or best_key is None or key > best_key:
            best_key, best_state, stale = key, copy.deepcopy(model.state_dict()), 0
            result.best_epoch, result.best_val_auc = epoch, val_auc
        else:
            stale += 1
        if validate and epoch >= config.min_epochs and stale >= config.patience:
            result.stopped = "early_stopping"
            break
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


@dataclass
class Batch:
    """Nodes whose logits are wanted, with just the subgraph that determines them."""

    x: torch.Tensor
    edge_indices: list
    positions: torch.Tensor

    @classmethod
    def of(cls, model: MSTGAT, x: torch.Tensor, graph: GridGraph, nodes) -> Batch:
        if not model.config.uses_spatial:
            nodes = torch.as_tensor(nodes, dtype=torch.long)
            return cls(x[nodes], None, torch.arange(len(nodes)))
        subset, edges, positions = receptive_subgraph(graph, nodes, model.hops)
        return cls(x[subset], edges, positions)

    def logits(self, model: MSTGAT) -> torch.Tensor:
        return model(self.x, self.edge_indices, self.positions)


def _auc(labels, scores) -> float:
    if labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, scores))
