"""MSTGAT on point samples: label-free scores, per-element contributions and explanations per sample.

The samples are the nodes (:mod:`~mstgat_core.point_graph`), so nothing is
interpolated. The model is pretrained on every sample by masked-element
reconstruction (:mod:`~mstgat_core.pretrain`: the whole graph per step below
5,000 samples, mini-batches of 2,048 seed samples on their receptive
subgraphs from there on) and read without labels:

* ``anomaly_score``: the label-free score, the log mean squared error of the
  normalised (CLR, robust-scaled) values when each element group is hidden in
  turn and predicted from the sample's other elements and its neighbours;
* per element, its **contribution** ``(prediction - value)^2 / E``: the
  contributions of a sample add up to ``exp(anomaly_score) - 1e-6``;
* per element, its signed **residual** ``value - prediction`` in normalised
  units (positive: richer than its chemistry and neighbours predict);
* per sample, the scale weights and the neighbour-weight entropy per scale,
  and for one sample its [CLS] element attention and the neighbour weights
  of every scale (:meth:`PointModel.explain`).

Scores of a survey with fewer than ``PretrainConfig.point_whole_graph``
samples are read off the whole graph; a larger survey is scored in batches
of samples on their receptive subgraphs (:func:`~mstgat_core.pretrain.point_features`,
the same values), and one sample is always explained on its own receptive
subgraph (a few hundred samples, whatever the survey's size).

Missing values are filled by the element's median before the model sees them
(:func:`~mstgat_core.points.complete_features`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from ..data.preprocess import Normaliser, fit_table
from ..errors import DataError
from ..graphs.point_graph import DEFAULT_NEIGHBOURS, PointGraph, build_point_graph
from ..model import MSTGAT, ModelConfig
from .pretrain import PretrainConfig, point_features
from .procedure import pretrain_network

SCORE_BATCH = 4096  # samples per scoring batch of a large survey (no gradients: larger than a training step's)


@dataclass
class PointScores:
    """Label-free outputs per sample (rows in the samples' order)."""

    anomaly_score: np.ndarray
    contributions: pd.DataFrame
    residuals: pd.DataFrame
    scale_weights: np.ndarray
    neighbour_entropy: np.ndarray

    def top_elements(self, n: int = 3) -> list[str]:
        """Per sample, its ``n`` largest contributions as ``"As+ Sb+ Cu-"`` (sign of the residual)."""
        names = np.asarray(self.contributions.columns)
        order = np.argsort(-self.contributions.to_numpy(), axis=1, kind="stable")[:, :n]
        signs = np.where(np.take_along_axis(self.residuals.to_numpy(), order, axis=1) >= 0, "+", "-")
        return [" ".join(f"{e}{s}" for e, s in zip(names[row], sign)) for row, sign in zip(order, signs)]


@dataclass
class PointModel:
    """A label-free MSTGAT pretrained on one point survey."""

    model: MSTGAT
    normaliser: Normaliser
    graph: PointGraph
    x: torch.Tensor
    metadata: dict

    @property
    def elements(self) -> list[str]:
        return list(self.normaliser.elements)

    def _whole_graph_below(self) -> int:
        config = self.metadata.get("pretrain", {}).get("config", {}) if isinstance(self.metadata, dict) else {}
        return int(config.get("point_whole_graph", PretrainConfig.point_whole_graph))

    @torch.no_grad()
    def scores(self, batch: int | None = None, progress: Callable[[int, int], None] | None = None) -> PointScores:
        """Every sample's label-free outputs (:class:`PointScores`).

        ``batch``: samples per batch, each evaluated on its receptive subgraph (the same values as the
        whole graph). Default: the whole graph below the pretraining's ``point_whole_graph`` samples,
        batches of :data:`SCORE_BATCH` from there on. ``progress(done, total)`` after each batch.
        """
        model = self.model.eval()
        if batch is None and self.graph.num_nodes >= self._whole_graph_below():
            batch = SCORE_BATCH
        if batch is not None:
            out = point_features(model, self.x, self.graph, batch, details=True, progress=progress)
            predicted, score = out["predicted"], out["score"]
            details = out
        else:
            _, details = model._embed_grid(self.x, self.graph, details=True)  # one pass for the scale details
            # the mask-group passes once: the score and the per-element residuals come from the same predictions
            embed = model._embed_grid
            predicted = model.masked_predictions(lambda hidden: embed(self.x, self.graph, hidden)[0], self.x)
            score = model.score_of(predicted, self.x)
            if progress is not None:
                progress(1, 1)
        residual = (self.x - predicted).numpy().astype(float)
        empty = np.ones((self.graph.num_nodes, 0))  # a model without a spatial branch has no scales

        def per_scale(name):
            return details[name].numpy().astype(float) if name in details else empty

        return PointScores(
            anomaly_score=score.numpy().astype(float),
            contributions=pd.DataFrame(residual**2 / self.x.shape[1], columns=self.elements),
            residuals=pd.DataFrame(residual, columns=self.elements),
            scale_weights=per_scale("scale_weights"),
            neighbour_entropy=per_scale("neighbour_entropy"),
        )

    @cached_property
    def _tree(self):
        from scipy.spatial import cKDTree

        return cKDTree(self.graph.xy)

    def nearest(self, x: float, y: float) -> int:
        """The sample nearest to (x, y) in the samples' CRS (a KD-tree built on first use)."""
        return int(self._tree.query([float(x), float(y)])[1])

    @torch.no_grad()
    def explain(self, sample: int) -> dict:
        """One sample: its element attention ([CLS], last layer, head mean), scale weights and, per
        scale, its neighbours (sample ids, distances, last-layer head-mean weights; self-loop first).

        Computed on the sample's receptive subgraph only (``subgraph_nodes`` of them): the same values as
        on the whole graph, at a cost that does not grow with the survey."""
        n = self.graph.num_nodes
        if not 0 <= int(sample) < n:
            raise DataError(f"sample {sample} is not among the {n} samples")
        model = self.model.eval()
        sub = self.graph.subgraph([int(sample)], model.config.hops)
        nodes = sub.nodes
        xs = self.x[torch.from_numpy(nodes)]
        edges = list(sub.edge_index) if model.config.uses_spatial else None
        logits, details = model(xs, edges, nodes=[0], return_details=True)
        attention = (
            details.element_attention[0, -1, :, 0, 1:].mean(dim=0).numpy()
            if details.element_attention is not None
            else np.full(len(self.elements), np.nan)
        )
        neighbours = []
        for layers in details.neighbour_attention:
            local, alpha = layers[-1]
            into = local[1] == 0  # the sample is node 0 of its subgraph
            ids = nodes[local[0][into].numpy()]
            weights = alpha[into].mean(dim=1).numpy()
            order = np.argsort(ids != int(sample), kind="stable")  # self-loop first
            ids, weights = ids[order], weights[order]
            distance = np.hypot(*(self.graph.xy[ids] - self.graph.xy[int(sample)]).T)
            neighbours.append({"sample": ids.tolist(), "distance": distance.tolist(), "weight": weights.tolist()})
        return {
            "sample": int(sample),
            "element_attention": dict(zip(self.elements, attention.astype(float).tolist())),
            "scale_weights": (
                details.scale_weights[0].numpy().astype(float).tolist() if details.scale_weights is not None else []
            ),
            "neighbours": neighbours,
            "subgraph_nodes": int(sub.num_nodes),
        }


def pretrain_points(
    samples,
    scales=DEFAULT_NEIGHBOURS,
    kind: str = "knn",
    metric: str = "euclidean",
    model_config: dict | None = None,
    pretrain_config: PretrainConfig | None = None,
    transform: str = "clr",
    callback: Callable | None = None,
) -> PointModel:
    """Pretrain a label-free MSTGAT on point samples (a :class:`~mstgat_core.points.PointSamples`
    in a projected CRS) over a multiscale point graph; see the module docstring."""
    from ..data.points import complete_features

    if samples.crs is not None and getattr(samples.crs, "is_geographic", False):
        raise DataError("point graphs need metres: project lon/lat samples first (load_points(project=True))")
    if len(samples.elements) < 2:
        raise DataError("MSTGAT needs at least two element columns")
    values, filled = complete_features(samples)
    normaliser, x = fit_table(values, samples.elements, transform)
    xy = np.c_[samples.table.geometry.x, samples.table.geometry.y]
    graph = build_point_graph(xy, scales, kind=kind, metric=metric)
    config = ModelConfig.from_dict(
        model_config,
        n_elements=len(samples.elements),
        readout="fused",
        members=1,
        scales=tuple(range(1, len(graph.scales) + 1)),  # one GAT stack per point-graph scale
    )
    pretrain_config = pretrain_config or PretrainConfig()
    x = torch.from_numpy(x)
    model, result = pretrain_network(config, x, graph, pretrain_config, callback)  # as fit's backbones
    metadata = {
        "graph": {"kind": kind, "scales": list(graph.scales), "metric": metric, "reach": list(graph.reach)},
        "pretrain": {"config": pretrain_config.to_dict(), "result": result.to_dict()},
        "filled": filled,
        "transform": transform,
    }
    return PointModel(model, normaliser, graph, x, metadata)


def seeds_label_free(samples, seeds=(0, 1, 2), **options) -> dict[int, np.ndarray]:
    """The label-free score of :func:`pretrain_points` for each seed (``options`` as there)."""
    config = options.pop("pretrain_config", None) or PretrainConfig()
    return {
        seed: pretrain_points(samples, pretrain_config=dataclasses.replace(config, seed=seed), **options)
        .scores()
        .anomaly_score
        for seed in seeds
    }
