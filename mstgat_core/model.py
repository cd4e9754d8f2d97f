"""MSTGAT: a spectral Transformer over element tokens and a multiscale GAT over the grid.

The two branches are independent until fusion, so each can be trained alone
as an ablation:

* ``spectral``: Transformer whose tokens are the elements of one cell plus a
  [CLS] token; the [CLS] output is the cell's spectral embedding.
* ``spatial``: MSGAT, one stack of GATv2 layers per scale (neighbourhood
  radius), fused by a learned per-cell softmax over scales.
* ``spatial-single``: MSGAT with the first scale only.
* ``mstgat``: both branches, concatenated, then a readout to one logit.

Two readouts (``ModelConfig.readout``):

* ``fused`` (what :func:`~mstgat_core.pipeline.fit` builds by default): the
  branches are pretrained on every cell by masked-element reconstruction
  (:mod:`~mstgat_core.pretrain`), which also trains a reconstruction head; the
  cell's **label-free score** is the log mean squared error of its elements
  when each of ``mask_groups`` fixed element groups is hidden in turn (the same
  groups for every cell, so the score does not depend on position or tiling).
  :class:`FusedHead` holds ``members`` linear heads over the standardised
  embedding plus that score, fine-tuned on the few deposits
  (:mod:`~mstgat_core.finetune`); each member's logit is
  ``share * standardised head logit + (1 - share) * standardised label-free
  score``. The logit is the members' mean. With ``share = 0`` (a freshly
  pretrained backbone) the model is a label-free anomaly detector.
* ``supervised``: an MLP head trained end to end from scratch on the deposits
  (:mod:`~mstgat_core.train`); the ablation "without pretraining".
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GATv2Conv

from .errors import DataError
from .graph import GridStencil
from .grid_attention import grid_gatv2

VARIANTS = ("mstgat", "spectral", "spatial", "spatial-single")
READOUTS = ("fused", "supervised")
MAX_MEMBERS = 64
ATTENTION_FLOATS = 2**22  # floats of attention per spectral batch


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model (it is stored in checkpoints).

    Parameters
    ----------
    n_elements : int
        Input features per cell (elements).
    variant : {"mstgat", "spectral", "spatial", "spatial-single"}
        See :data:`VARIANTS` and the module docstring.
    scales : tuple of int
        Neighbourhood radii in cells, one GAT stack each; ``spatial-single``
        keeps only the first. Unused by ``spectral``.
    graph_mode : {"window", "ring"}
        Neighbours of a scale (see :func:`~mstgat_core.graph.scale_offsets`).
    d_model, heads, layers, ff_mult : int
        Spectral Transformer: width, attention heads, encoder layers,
        feed-forward width as a multiple of ``d_model``.
    gat_hidden, gat_heads, gat_layers : int
        Spatial branch: width, GATv2 heads, GATv2 layers per scale. The
        receptive radius is ``gat_layers x max(scales)`` cells.
    dropout : float
        Dropout of activations (Transformer, GAT residuals, head).
    attention_dropout : float
        Dropout of attention weights (Transformer and GATv2).
    readout : {"supervised", "fused"}
        See the module docstring.
    members : int
        Ensemble members (linear heads on the shared backbone) of the
        ``fused`` readout.
    mask_groups : int
        Element groups hidden in turn for the label-free score (``fused``).
    scale_readout : bool
        The spatial embedding also carries each scale's neighbourhood
        message (its GAT update, without the cell's own input), so the
        readout weighs the scales itself and each scale's share of the logit
        can be read exactly (:func:`~mstgat_core.interpret.scale_contributions`).

    Raises
    ------
    ValueError
        If ``variant`` is unknown, or ``d_model``/``gat_hidden`` is not divisible
        by its head count. ``scales`` and ``graph_mode`` are checked only when
        a graph is built; :func:`~mstgat_core.graph.parse_scales` checks scales
        given as text.
    """

    n_elements: int
    variant: str = "mstgat"
    scales: tuple[int, ...] = (1, 2, 3)
    graph_mode: str = "window"
    d_model: int = 32
    heads: int = 4
    layers: int = 2
    ff_mult: int = 2
    gat_hidden: int = 32
    gat_heads: int = 4
    gat_layers: int = 1
    dropout: float = 0.1
    attention_dropout: float = 0.0
    readout: str = "supervised"
    members: int = 1
    mask_groups: int = 3
    scale_readout: bool = False

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise DataError(f"unknown variant {self.variant!r}; use one of {', '.join(VARIANTS)}")
        if self.readout not in READOUTS:
            raise DataError(f"unknown readout {self.readout!r}; use one of {', '.join(READOUTS)}")
        if not 1 <= int(self.members) <= MAX_MEMBERS:
            raise DataError(f"an ensemble has 1 to {MAX_MEMBERS} members, got {self.members}")
        if self.readout == "supervised" and int(self.members) != 1:
            raise DataError("ensembles need the pretrained (fused) readout")
        if int(self.mask_groups) < 1:
            raise DataError(f"mask_groups must be at least 1, got {self.mask_groups}")
        self.members, self.mask_groups = int(self.members), int(self.mask_groups)
        self.scales = tuple(int(s) for s in self.scales)
        if self.variant == "spatial-single":
            self.scales = self.scales[:1]
        if self.d_model % self.heads or self.gat_hidden % self.gat_heads:
            raise DataError("d_model and gat_hidden must be divisible by their head counts")

    @property
    def uses_spectral(self) -> bool:
        return self.variant in ("mstgat", "spectral")

    @property
    def uses_spatial(self) -> bool:
        return self.variant != "spectral"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scales"] = list(self.scales)
        return d


class AttentionEncoderLayer(nn.Module):
    """Pre-norm Transformer encoder layer that can return its attention weights.

    ``nn.TransformerEncoderLayer`` calls attention with ``need_weights=False``,
    which hides exactly what we want to show. The parameters live in an
    ``nn.MultiheadAttention`` (same state dict), but attention is computed
    here: softmax as exp/sum is ~2x faster than ``torch.softmax`` on rows of a
    few tokens on CPU, and ``cls_only`` lets the last layer update the [CLS]
    token alone, the only output the model reads.
    """

    def __init__(self, d_model: int, heads: int, ff_mult: int, dropout: float, attention_dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=attention_dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_mult * d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_mult * d_model, d_model)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, need_weights: bool = False, cls_only: bool = False):
        """(cells, tokens, d) -> (cells, tokens or 1, d), weights (cells, heads, queries, tokens) or None."""
        out, weights = self.attention(self.norm1(h), cls_only)
        h = h[:, :1] if cls_only else h
        h = h + self.dropout(out)
        h = h + self.dropout(self.ff(self.norm2(h)))
        return h, (weights if need_weights else None)

    def attention(self, x: torch.Tensor, cls_only: bool = False):
        """Multi-head self-attention as in ``nn.MultiheadAttention`` (queries: all tokens or [CLS] only)."""
        cells, tokens, d = x.shape
        heads = self.attn.num_heads
        w, b = self.attn.in_proj_weight, self.attn.in_proj_bias
        queries = x[:, :1] if cls_only else x
        q = F.linear(queries, w[:d], b[:d]).unflatten(-1, (heads, -1)).transpose(1, 2)
        k = F.linear(x, w[d : 2 * d], b[d : 2 * d]).unflatten(-1, (heads, -1)).permute(0, 2, 3, 1)
        v = F.linear(x, w[2 * d :], b[2 * d :]).unflatten(-1, (heads, -1)).transpose(1, 2)
        scores = (q * q.shape[-1] ** -0.5) @ k  # (cells, heads, queries, tokens)
        weights = (scores - scores.amax(dim=-1, keepdim=True)).exp()
        weights = weights / weights.sum(dim=-1, keepdim=True)
        mixed = F.dropout(weights, self.attn.dropout, self.training) @ v
        return self.attn.out_proj(mixed.transpose(1, 2).flatten(2)), weights


class SpectralTransformer(nn.Module):
    """Transformer over the element tokens of each cell.

    token_e = value_e * w_e + b_e + embed(e); a learned [CLS] token is
    prepended and its final state is the cell embedding.
    """

    def __init__(self, n_elements: int, d_model=32, heads=4, layers=2, ff_mult=2, dropout=0.1, attention_dropout=0.1):
        super().__init__()
        self.value_weight = nn.Parameter(torch.randn(n_elements, d_model) * 0.1)
        self.value_bias = nn.Parameter(torch.zeros(n_elements, d_model))
        self.element_embedding = nn.Parameter(torch.randn(n_elements, d_model) * 0.1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.layers = nn.ModuleList(
            AttentionEncoderLayer(d_model, heads, ff_mult, dropout, attention_dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def tokens(self, x: torch.Tensor, hidden=None, mask_token=None) -> torch.Tensor:
        """(cells, E) values -> (cells, 1 + E, d_model) tokens, [CLS] first.

        ``hidden`` (cells, E) bool marks values the model must not see (masked
        pretraining): their tokens become ``mask_token + embed(e)``.
        """
        elements = x.unsqueeze(-1) * self.value_weight + self.value_bias + self.element_embedding
        if hidden is not None:
            elements = torch.where(hidden.unsqueeze(-1), mask_token + self.element_embedding, elements)
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), elements], dim=1)

    def forward(self, x: torch.Tensor, need_weights: bool = False, hidden=None, mask_token=None):
        h = self.tokens(x, hidden, mask_token)
        attention = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h, weights = layer(h, need_weights, cls_only=(i == last and not need_weights))
            attention.append(weights)
        return self.norm(h[:, 0]), (torch.stack(attention, dim=1) if need_weights else None)


class ScaleStack(nn.Module):
    """GATv2 layers over the graph of one scale, with residual connections."""

    def __init__(self, hidden: int, heads: int, layers: int, dropout: float, attention_dropout: float):
        super().__init__()
        self.convs = nn.ModuleList(
            GATv2Conv(hidden, hidden // heads, heads=heads, dropout=attention_dropout, add_self_loops=True)
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, need_weights: bool = False):
        attention = []
        for conv, norm in zip(self.convs, self.norms):
            if need_weights:
                out, (edges, alpha) = conv(norm(h), edge_index, return_attention_weights=True)
                attention.append((edges, alpha))
            else:
                out = conv(norm(h), edge_index)
            h = h + self.dropout(nn.functional.elu(out))
        return h, attention

    def forward_grid(self, image: torch.Tensor, valid: torch.Tensor, offsets, entropy: bool = False):
        """The same layers on a (ny, nx, hidden) image through :func:`grid_gatv2` (no edge lists).

        With ``entropy`` also returns the last layer's neighbour-weight entropy (ny, nx).
        """
        spread = None
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            last = i == len(self.convs) - 1
            out = grid_gatv2(conv, norm(image), valid, offsets, entropy=entropy and last)
            if entropy and last:
                out, spread = out
            image = image + self.dropout(nn.functional.elu(out))
        return image, spread


def neighbour_entropy(edges: torch.Tensor, alpha: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """(nodes,) entropy of each node's head-mean neighbour weights (self-loop included) over log(count),
    as :func:`~mstgat_core.grid_attention.grid_gatv2` computes it on a grid."""
    from torch_geometric.utils import scatter

    p = alpha.mean(dim=-1)
    target = edges[1]
    count = scatter(torch.ones_like(p), target, dim=0, dim_size=num_nodes, reduce="sum")
    spread = -scatter(torch.special.xlogy(p, p), target, dim=0, dim_size=num_nodes, reduce="sum")
    return spread / torch.log(count)


class MSGAT(nn.Module):
    """Multiscale graph attention: one GAT stack per scale, fused per cell by a softmax over scales."""

    def __init__(
        self,
        n_elements: int,
        n_scales: int,
        hidden=32,
        heads=4,
        layers=2,
        dropout=0.1,
        attention_dropout=0.1,
        scale_readout: bool = False,
    ):
        super().__init__()
        self.scale_readout = scale_readout
        self.input = nn.Sequential(nn.Linear(n_elements, hidden), nn.GELU())
        self.stacks = nn.ModuleList(
            ScaleStack(hidden, heads, layers, dropout, attention_dropout) for _ in range(n_scales)
        )
        self.scale_score = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False))
        self.norm = nn.LayerNorm(hidden)
        self.dropped_scale: int | None = None  # index of a scale left out of the fusion (see MSTGAT.without_scale)

    def forward(self, x: torch.Tensor, edge_indices: list[torch.Tensor], need_weights: bool = False):
        h0 = self.input(x)
        per_scale, attention = [], []
        for stack, edge_index in zip(self.stacks, edge_indices):
            h, att = stack(h0, edge_index, need_weights)
            per_scale.append(h)
            attention.append(att)
        return (*self.fuse(per_scale, h0), attention)

    def forward_grid(self, x: torch.Tensor, stencil: GridStencil, entropy: bool = False):
        """Same as :meth:`forward` on a whole grid given as a stencil; the third output is
        the per-scale neighbour entropy (nodes, scales) when ``entropy`` is set, else None."""
        h0 = self.input(x)
        image = stencil.to_image(h0)
        valid = torch.from_numpy(stencil.mask)
        per_scale, spreads = [], []
        for stack, offsets in zip(self.stacks, stencil.offsets):
            h, spread = stack.forward_grid(image, valid, offsets, entropy)
            per_scale.append(stencil.to_nodes(h))
            spreads.append(stencil.to_nodes(spread) if entropy else None)
        fused, scale_weights = self.fuse(per_scale, h0)
        return fused, scale_weights, (torch.stack(spreads, dim=1) if entropy else None)

    def forward_layout(self, x: torch.Tensor, layout, entropy: bool = False):
        """:meth:`forward_grid` on a :class:`GridStencil`; on a graph with edge lists (a
        :class:`~mstgat_core.point_graph.PointGraph`) :meth:`forward`, with the same outputs."""
        if isinstance(layout, GridStencil):
            return self.forward_grid(x, layout, entropy)
        fused, scale_weights, attention = self.forward(x, list(layout.edge_index), need_weights=entropy)
        if not entropy:
            return fused, scale_weights, None
        spreads = [neighbour_entropy(*layers[-1], x.shape[0]) for layers in attention]
        return fused, scale_weights, torch.stack(spreads, dim=1)

    def fuse(self, per_scale: list[torch.Tensor], h0: torch.Tensor):
        """Per-cell softmax over scales: (cells, hidden) embedding and (cells, scales) weights.

        With ``scale_readout`` the embedding is (cells, hidden x (1 + scales)):
        the fused part, then each scale's message ``h_s - h0`` (what the scale
        added to the cell's own input projection ``h0``).
        """
        stacked = torch.stack(per_scale, dim=1)  # (cells, scales, hidden)
        scores = self.scale_score(stacked).squeeze(-1)
        if self.dropped_scale is not None:
            scores = scores.index_fill(1, torch.tensor([self.dropped_scale]), -torch.inf)
        scale_weights = torch.softmax(scores, dim=1)
        fused = self.norm((scale_weights.unsqueeze(-1) * stacked).sum(dim=1))
        if self.scale_readout:
            fused = torch.cat([fused, *(h - h0 for h in per_scale)], dim=1)
        return fused, scale_weights


@dataclass
class Details:
    """Intermediate quantities of one forward pass, for interpretation."""

    element_attention: torch.Tensor | None = None  # (cells, layers, heads, 1+E, 1+E)
    neighbour_attention: list = field(default_factory=list)  # per scale, per layer: (edge_index, alpha)
    scale_weights: torch.Tensor | None = None  # (cells, scales)


@dataclass
class GridPrediction:
    """What :meth:`MSTGAT.predict_grid` returns, one row per valid cell.

    ``probability`` is always set; the other fields only with ``details=True``
    and only for the branches the variant has (else None).
    """

    probability: torch.Tensor  # (cells,)
    cls_attention: torch.Tensor | None = None  # (cells, E): head mean, last layer, [CLS] -> element
    rollout: torch.Tensor | None = None  # (cells, E): attention rollout, rows sum to 1
    scale_weights: torch.Tensor | None = None  # (cells, scales)
    neighbour_entropy: torch.Tensor | None = None  # (cells, scales): last GAT layer, head mean, normalised
    members: torch.Tensor | None = None  # (cells, members) each member's probability (fused readout)
    label_free: torch.Tensor | None = None  # (cells,) label-free score: log mean squared reconstruction error
    novelty: torch.Tensor | None = None  # (cells,) unlikeness to the training grid, 1 = its 99.5th pct (FusedHead)
    calibrated: torch.Tensor | None = None  # (cells,) calibrated probability, when calibration was fitted


def attention_rollout(attention: torch.Tensor) -> torch.Tensor:
    """(cells, layers, heads, T, T) -> (cells, E): rollout [CLS] -> element, rows sum to 1.

    Abnar & Zuidema (2020): per layer average the heads, add the identity and
    renormalise the rows; multiply the layers (last on the left); keep the
    [CLS] row over the elements, renormalised.
    """
    a = attention.mean(dim=2)
    a = a + torch.eye(a.shape[-1], dtype=a.dtype)
    a = a / a.sum(dim=-1, keepdim=True)
    joint = a[:, 0]
    for layer in range(1, a.shape[1]):
        joint = a[:, layer] @ joint
    row = joint[:, 0, 1:]
    return row / row.sum(dim=-1, keepdim=True)


class Reconstruction(nn.Module):
    """Predicts every element of a cell from its branch embeddings (masked pretraining, label-free score)."""

    def __init__(self, width: int, n_elements: int, d_model: int | None):
        super().__init__()
        self.mask_token = nn.Parameter(torch.zeros(d_model)) if d_model else None
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, n_elements))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.mlp(embedding)


class FusedHead(nn.Module):
    """``members`` linear heads over [standardised embedding, standardised label-free score].

    Member ``k``'s logit is ``share * (head_k - logit_center_k) / logit_scale_k
    + (1 - share) * z`` where ``z`` is the standardised label-free score. The
    standardisation (``center``, ``scale``: mean and deviation over the
    training grid's cells) and ``novelty_limit`` are set after pretraining;
    the heads, ``share`` and ``calibration`` (a, b of ``sigmoid(a * logit +
    b)``; NaN: none) by fine-tuning.
    """

    STATISTICS = ("center", "scale", "precision", "novelty_limit", "score_limit")  # set by pretraining

    def __init__(self, width: int, members: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(members, width + 1))
        self.bias = nn.Parameter(torch.zeros(members))
        self.register_buffer("center", torch.zeros(width + 1))
        self.register_buffer("scale", torch.ones(width + 1))
        self.register_buffer("logit_center", torch.zeros(members))
        self.register_buffer("logit_scale", torch.ones(members))
        self.register_buffer("share", torch.tensor(0.0))
        self.register_buffer("precision", torch.eye(width))  # inverse covariance of the training embeddings
        self.register_buffer("novelty_limit", torch.tensor(1.0))  # 99.5th pct of their Mahalanobis distance²
        self.register_buffer("score_limit", torch.tensor(0.0))  # 99.5th pct of the label-free score
        self.register_buffer("calibration", torch.full((2,), float("nan")))

    def standardise(self, embedding: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        return (torch.cat([embedding, score.unsqueeze(1)], dim=1) - self.center) / self.scale

    def forward(self, embedding: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """(cells, members) logits."""
        f = self.standardise(embedding, score)
        supervised = (f @ self.weight.T + self.bias - self.logit_center) / self.logit_scale
        return self.share * supervised + (1 - self.share) * f[:, -1:]

    def distance(self, embedding: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance of embeddings to the training grid's (mean, covariance)."""
        d = embedding - self.center[:-1]
        return ((d @ self.precision) * d).sum(dim=1)

    def novelty(self, embedding: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """How unlike the training grid a cell is: 1 = the 99.5th percentile there, in either of two ways.

        The larger of the embedding's Mahalanobis distance² and the reconstruction
        error (``exp`` of the label-free score), each over its 99.5th percentile on
        the training grid: > 1 means the model has seen few cells like this one, or
        cannot reconstruct its composition as it could almost every training cell's.
        """
        return torch.maximum(self.distance(embedding) / self.novelty_limit, torch.exp(score - self.score_limit))

    def calibrate(self, logits: torch.Tensor) -> torch.Tensor | None:
        a, b = self.calibration
        return None if torch.isnan(a) else torch.sigmoid(a * logits + b)


class MSTGAT(nn.Module):
    """Spectral Transformer + MSGAT, fused into one anomaly logit per cell.

    Only the branches of ``config.variant`` are built (``spectral`` and/or
    ``spatial`` submodules); their embeddings are concatenated and the
    readout (``head``, see the module docstring) gives the logit.
    :meth:`forward` takes edge lists (training, per-edge explanations);
    :meth:`predict_grid` a whole grid (prediction).

    Parameters
    ----------
    config : ModelConfig
        Variant, sizes and readout; kept as ``self.config``.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        fused = 0
        if c.uses_spectral:
            self.spectral = SpectralTransformer(
                c.n_elements, c.d_model, c.heads, c.layers, c.ff_mult, c.dropout, c.attention_dropout
            )
            fused += c.d_model
        if c.uses_spatial:
            self.spatial = MSGAT(
                c.n_elements,
                len(c.scales),
                c.gat_hidden,
                c.gat_heads,
                c.gat_layers,
                c.dropout,
                c.attention_dropout,
                c.scale_readout,
            )
            fused += c.gat_hidden * (1 + len(c.scales) if c.scale_readout else 1)
        self.width = fused
        if c.readout == "fused":
            self.reconstruction = Reconstruction(fused, c.n_elements, c.d_model if c.uses_spectral else None)
            self.head = FusedHead(fused, c.members)
        else:
            self.head = nn.Sequential(nn.Linear(fused, fused), nn.GELU(), nn.Dropout(c.dropout), nn.Linear(fused, 1))

    @property
    def hops(self) -> int:
        """Message-passing layers: the receptive field of a cell in hops."""
        return self.config.gat_layers if self.config.uses_spatial else 0

    @property
    def fused(self) -> bool:
        return self.config.readout == "fused"

    def load_backbone(self, state: dict) -> None:
        """Load a pretrained model's state: every weight but the heads, and the head's statistics.

        ``state`` is the ``state_dict`` of a pretrained model of the same
        architecture (any member count); the heads stay to be fine-tuned.
        """
        keep = {f"head.{name}" for name in FusedHead.STATISTICS}
        self.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.") or k in keep}, strict=False)

    @contextmanager
    def without_scale(self, index: int):
        """Within the block, scale ``index`` is left out of the fusion (the others' weights renormalised).

        For scale occlusion: the logit change when a scale is removed says how
        much the readout relies on it, which the scale weights (learned by
        pretraining, without labels) cannot say.
        """
        if not self.config.uses_spatial or not 0 <= index < len(self.config.scales):
            raise ValueError(f"no scale {index} to leave out")
        if len(self.config.scales) == 1:
            raise ValueError("a single-scale model has no scale to leave out")
        self.spatial.dropped_scale = int(index)
        try:
            yield self
        finally:
            self.spatial.dropped_scale = None

    def spectral_batch(self) -> int:
        """Cells per spectral batch: about 16 MB of (cells, heads, tokens, tokens) attention.

        Measured on 2 cores: batches whose attention fits in cache run up to 2x
        faster than bigger ones (10 elements: ~8,000 cells; 39: ~650).
        """
        c = self.config
        return int(min(16384, max(256, ATTENTION_FLOATS // (c.heads * (c.n_elements + 1) ** 2))))

    def mask_groups(self, n_cells: int):
        """The label-free score's masks: bool (cells, E) per group, element e hidden in group ``e % groups``."""
        e = self.config.n_elements
        groups = min(self.config.mask_groups, e)
        return [(torch.arange(e) % groups == g).expand(n_cells, e) for g in range(groups)]

    def masked_predictions(self, embed, x: torch.Tensor) -> torch.Tensor:
        """(cells, E) each element's reconstruction when its mask group is hidden.

        ``embed(hidden)`` returns the branch embeddings of the cells of ``x``
        with ``hidden`` (cells, E) values masked.
        """
        predicted = torch.zeros_like(x)
        for hidden in self.mask_groups(x.shape[0]):
            predicted = torch.where(hidden, self.reconstruction(embed(hidden)), predicted)
        return predicted

    def label_free_score(self, embed, x: torch.Tensor) -> torch.Tensor:
        """(cells,) log mean squared error of ``x`` when each element group is hidden in turn
        (``embed`` as in :meth:`masked_predictions`)."""
        return self.score_of(self.masked_predictions(embed, x), x)

    @staticmethod
    def score_of(predicted: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(cells,) the label-free score from :meth:`masked_predictions`: log mean squared error."""
        return torch.log((predicted - x).square().mean(dim=1) + 1e-6)

    def _spectral(self, x, hidden=None, need_weights=False):
        token = self.reconstruction.mask_token if hidden is not None else None
        return self.spectral(x, need_weights=need_weights, hidden=hidden, mask_token=token)

    def embed(self, x, edge_indices, node_ids, hidden=None, details: Details | None = None) -> torch.Tensor:
        """(len(node_ids), width) branch embeddings on an edge-list graph (``hidden``: masked values, all rows)."""
        parts = []
        if self.config.uses_spectral:
            embeddings, attention = [], []
            for chunk in torch.split(node_ids, self.spectral_batch()):
                emb, att = self._spectral(x[chunk], None if hidden is None else hidden[chunk], details is not None)
                embeddings.append(emb)
                attention.append(att)
            parts.append(torch.cat(embeddings))
            if details is not None:
                details.element_attention = torch.cat(attention)
        if self.config.uses_spatial:
            if edge_indices is None:
                raise ValueError("the spatial branch needs the graph's edge indices")
            visible = x if hidden is None else x.masked_fill(hidden, 0.0)
            spatial, scale_weights, neighbour_attention = self.spatial(visible, edge_indices, details is not None)
            parts.append(spatial[node_ids])
            if details is not None:
                details.scale_weights = scale_weights[node_ids]
                details.neighbour_attention = neighbour_attention
        return torch.cat(parts, dim=1)

    def forward(self, x, edge_indices=None, nodes=None, return_details: bool = False, member: int | None = None):
        """Logits for ``nodes`` (default all) of the graph whose features are ``x``.

        ``edge_indices``: one edge index per scale (PyG layout, neighbour ->
        cell). This is the training and per-edge explanation path; to predict
        a whole grid use :meth:`predict_grid`. The spatial branch runs over the
        whole (sub)graph it is given; the spectral branch runs only on
        ``nodes``, in cache-sized batches. The fused readout's logit is the
        members' mean, or member ``member``'s when given.
        """
        if isinstance(edge_indices, GridStencil):
            raise TypeError("a GridStencil goes to predict_grid(); forward() takes edge indices")
        details = Details() if return_details else None
        node_ids = torch.arange(x.shape[0]) if nodes is None else torch.as_tensor(nodes, dtype=torch.long)
        embedding = self.embed(x, edge_indices, node_ids, details=details)
        if self.fused:
            rows = x.shape[0]

            def masked(hidden):
                return self.embed(x, edge_indices, node_ids, hidden=hidden[:1].expand(rows, -1))

            score = self.label_free_score(masked, x[node_ids])
            logits = self.head(embedding, score)
            logits = logits.mean(dim=1) if member is None else logits[:, member]
        else:
            logits = self.head(embedding).squeeze(-1)
        return (logits, details) if return_details else logits

    def _embed_grid(self, x, stencil, hidden=None, details=False, batch=None, step=None):
        """Branch embeddings of every valid cell of a grid (no gradients), plus details when asked."""
        c = self.config
        parts, out = [], {}
        if c.uses_spectral:
            embeddings, cls_rows, rollouts = [], [], []
            for chunk in torch.split(torch.arange(x.shape[0]), batch or self.spectral_batch()):
                emb, att = self._spectral(x[chunk], None if hidden is None else hidden[chunk], details)
                embeddings.append(emb)
                if details:
                    cls_rows.append(att[:, -1, :, 0, 1:].mean(dim=1))
                    rollouts.append(attention_rollout(att))
                if step is not None:
                    step()
            parts.append(torch.cat(embeddings))
            if details:
                out.update(cls_attention=torch.cat(cls_rows), rollout=torch.cat(rollouts))
        if c.uses_spatial:
            visible = x if hidden is None else x.masked_fill(hidden, 0.0)
            spatial, scale_weights, entropy = self.spatial.forward_layout(visible, stencil, entropy=details)
            parts.append(spatial)
            if details:
                out.update(scale_weights=scale_weights, neighbour_entropy=entropy)
            if step is not None:
                step()
        return torch.cat(parts, dim=1), out

    @torch.no_grad()
    def grid_features(self, x: torch.Tensor, stencil: GridStencil | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(cells, width) embeddings and (cells,) label-free scores of every valid cell (fused readout)."""
        self.eval()
        embedding, _ = self._embed_grid(x, stencil)
        score = self.label_free_score(lambda hidden: self._embed_grid(x, stencil, hidden)[0], x)
        return embedding, score

    @torch.no_grad()
    def predict_grid(
        self,
        x: torch.Tensor,
        stencil: GridStencil | None,
        details: bool = False,
        spectral_batch: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> GridPrediction:
        """Anomaly probability of every valid cell of a grid: the one prediction path.

        Puts the model in eval mode and computes no gradients. The spatial
        branch runs on the whole grid through shifted views
        (:func:`~mstgat_core.grid_attention.grid_gatv2`, no edge lists).

        Parameters
        ----------
        x : torch.Tensor
            (cells, E) normalised features of the valid cells, row-major.
        stencil : GridStencil or None
            The grid's validity mask and scale offsets; None for the spectral
            variant.
        details : bool
            Also return [CLS] attention, rollout, scale weights and neighbour
            entropy per cell (see :class:`GridPrediction`).
        spectral_batch : int, optional
            Cells per spectral batch (default :meth:`spectral_batch`).
        progress : callable, optional
            ``progress(done, total)`` after each spectral batch and after the
            spatial branch of every pass (the fused readout makes one pass plus
            one per mask group); it may raise (e.g.
            :class:`~mstgat_core.errors.Cancelled`) to stop.

        Returns
        -------
        GridPrediction
            One row per valid cell, in the order of ``x``. The fused readout
            also fills ``members``, ``label_free``, ``novelty`` and (when
            fitted) ``calibrated``.

        Raises
        ------
        ValueError
            If the variant has a spatial branch and ``stencil`` is None.
        """
        self.eval()
        c = self.config
        if c.uses_spatial and stencil is None:
            raise ValueError("the spatial branch needs the grid's stencil")
        batch = spectral_batch or self.spectral_batch()
        passes = 1 + (len(self.mask_groups(1)) if self.fused else 0)
        per_pass = (-(-x.shape[0] // batch) if c.uses_spectral else 0) + int(c.uses_spatial)
        done = [0]

        def step():
            done[0] += 1
            if progress is not None:
                progress(done[0], passes * per_pass)

        embedding, out = self._embed_grid(x, stencil, details=details, batch=batch, step=step)
        if not self.fused:
            return GridPrediction(torch.sigmoid(self.head(embedding).squeeze(-1)), **out)
        score = self.label_free_score(lambda hidden: self._embed_grid(x, stencil, hidden, batch=batch, step=step)[0], x)
        logits = self.head(embedding, score)
        mean = logits.mean(dim=1)
        return GridPrediction(
            torch.sigmoid(mean),
            **out,
            members=torch.sigmoid(logits),
            label_free=score,
            novelty=self.head.novelty(embedding, score),
            calibrated=self.head.calibrate(mean),
        )
