"""The fused model: both branches, a readout, per-cell predictions on edge lists or on a whole grid."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from ..graphs.graph import GridStencil
from .config import ATTENTION_FLOATS, ModelConfig
from .grouping import element_groups
from .readouts import HEADS, FusedHead, Reconstruction
from .spatial import MSGAT
from .spectral import SpectralTransformer, attention_rollout, cls_attention


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
    # (cells, members) each member's probability (fused readout); on the label-free route the score's under
    # other element groupings (member 0 the map's; see model.grouping)
    members: torch.Tensor | None = None
    label_free: torch.Tensor | None = None  # (cells,) label-free score: log mean squared reconstruction error
    novelty: torch.Tensor | None = None  # (cells,) unlikeness to the training grid, 1 = its 99.5th pct (FusedHead)
    calibrated: torch.Tensor | None = None  # (cells,) calibrated probability, when calibration was fitted


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
            fused += c.gat_hidden
        branches = fused  # what the reconstruction reads
        if c.uses_spatial and c.scale_readout:
            fused += c.gat_hidden * len(c.scales)
        self.width = fused
        if c.readout == "fused":
            self.reconstruction = Reconstruction(branches, c.n_elements, c.d_model if c.uses_spectral else None)
            self.head = HEADS[c.head](fused, c.members, c.n_elements)
        else:
            self.head = nn.Sequential(nn.Linear(fused, fused), nn.GELU(), nn.Dropout(c.dropout), nn.Linear(fused, 1))

    @property
    def hops(self) -> int:
        """Message-passing layers: the receptive field of a cell in hops (:attr:`ModelConfig.hops`)."""
        return self.config.hops

    @property
    def fused(self) -> bool:
        """Whether the readout is the pretrained ``fused`` one (label-free score plus fine-tuned heads)."""
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

    def mask_groups(self, n_cells: int, draw: int = 0):
        """The label-free score's masks: bool (cells, E) per group of grouping ``draw``
        (:func:`~mstgat_core.model.grouping.element_groups`; 0, the map's: element e in group ``e % groups``)."""
        e = self.config.n_elements
        group = torch.from_numpy(element_groups(e, self.config.mask_groups, draw))
        return [(group == g).expand(n_cells, e) for g in range(int(group.max()) + 1)]

    def masked_predictions(self, embed, x: torch.Tensor, draw: int = 0) -> torch.Tensor:
        """(cells, E) each element's reconstruction when its mask group (of grouping ``draw``) is hidden.

        ``embed(hidden)`` returns the branch embeddings of the cells of ``x``
        with ``hidden`` (cells, E) values masked.
        """
        predicted = torch.zeros_like(x)
        for hidden in self.mask_groups(x.shape[0], draw):
            predicted = torch.where(hidden, self.reconstruction(embed(hidden)), predicted)
        return predicted

    def label_free_score(self, embed, x: torch.Tensor, draw: int = 0) -> torch.Tensor:
        """(cells,) log mean squared error of ``x`` when each element group is hidden in turn
        (``embed`` as in :meth:`masked_predictions`)."""
        return self.score_of(self.masked_predictions(embed, x, draw), x)

    def grouping_draws(self) -> int:
        """Groupings a prediction scores: the members on the label-free route (share 0), else 1
        (:mod:`~mstgat_core.model.grouping` says why)."""
        return self.config.members if self.fused and float(self.head.share) == 0 else 1

    def grouping_scores(self, embed, x: torch.Tensor, predicted: torch.Tensor, draws: int) -> torch.Tensor:
        """(cells, draws) label-free scores: column 0 the map's (``predicted``, :meth:`masked_predictions`
        under grouping 0, already computed), column ``k`` the same score with the elements of one group of
        grouping ``k`` (:meth:`draw_mask`) hidden together instead, in one pass, and every other element
        read from ``predicted``. ``embed`` as in :meth:`masked_predictions`."""
        errors = (predicted - x).square()
        scores = [self.score_of(predicted, x)]
        for k in range(1, draws):
            hidden = self.draw_mask(x.shape[0], k)
            redrawn = torch.where(hidden, (self.reconstruction(embed(hidden)) - x).square(), errors)
            scores.append(torch.log(redrawn.mean(dim=1) + 1e-6))
        return torch.stack(scores, dim=1)

    def draw_mask(self, n_cells: int, draw: int) -> torch.Tensor:
        """Bool (cells, E): the group of grouping ``draw`` that member ``draw`` hides (group ``(draw - 1)``
        modulo the group count, so that successive draws hide groups of every size)."""
        groups = self.mask_groups(n_cells, draw)
        return groups[(draw - 1) % len(groups)]

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

            predicted = self.masked_predictions(masked, x[node_ids])
            logits = self.head(embedding, self.score_of(predicted, x[node_ids]), x[node_ids] - predicted)
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
                    cls_rows.append(cls_attention(att))
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
    def grid_features(self, x: torch.Tensor, stencil: GridStencil | None, residual: bool = False) -> tuple:
        """(cells, width) embeddings and (cells,) label-free scores of every valid cell (fused readout);
        with ``residual`` also the (cells, E) residuals ``x`` minus its masked reconstruction, which the
        score is the log mean square of (what every head of :data:`~mstgat_core.model.readouts.HEADS` reads)."""
        self.eval()
        embedding, _ = self._embed_grid(x, stencil)
        predicted = self.masked_predictions(lambda hidden: self._embed_grid(x, stencil, hidden)[0], x)
        score = self.score_of(predicted, x)
        return (embedding, score, x - predicted) if residual else (embedding, score)

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
            one per mask group, and one per further member on the label-free route); it may raise (e.g.
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
        draws = self.grouping_draws()
        passes = 1 + (len(self.mask_groups(1)) + draws - 1 if self.fused else 0)
        per_pass = (-(-x.shape[0] // batch) if c.uses_spectral else 0) + int(c.uses_spatial)
        done = [0]

        def step():
            done[0] += 1
            if progress is not None:
                progress(done[0], passes * per_pass)

        embedding, out = self._embed_grid(x, stencil, details=details, batch=batch, step=step)
        if not self.fused:
            return GridPrediction(torch.sigmoid(self.head(embedding).squeeze(-1)), **out)

        def embed(hidden):
            return self._embed_grid(x, stencil, hidden, batch=batch, step=step)[0]

        predicted = self.masked_predictions(embed, x)
        score = self.score_of(predicted, x)
        logits = self.head(embedding, score, x - predicted)
        mean = logits.mean(dim=1)
        members = torch.sigmoid(logits)
        if draws > 1:  # the label-free route: the members are the score under other element groupings
            members = self.head.grouping_members(self.grouping_scores(embed, x, predicted, draws))
        return GridPrediction(
            torch.sigmoid(mean),
            **out,
            members=members,
            label_free=score,
            novelty=self.head.novelty(embedding, score),
            calibrated=self.head.calibrate(mean),
        )
