"""The spatial branch: MSGAT, a stack of GATv2 layers per neighbourhood scale fused by a per-cell softmax."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import GATv2Conv

from ..graphs.graph import GridStencil
from ..graphs.grid_attention import grid_gatv2


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
        """Node features through the scale's GATv2 layers on ``edge_index``.

        Returns the (nodes, hidden) features and, with ``need_weights``, one ``(edges, alpha)`` pair per
        layer (an empty list otherwise).
        """
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
        """Cells through every scale's stack on its edge list, fused per cell.

        Returns ``(embedding, scale_weights, attention)``: see :meth:`fuse` for the first two; ``attention``
        holds, per scale, the per-layer ``(edges, alpha)`` pairs of :meth:`ScaleStack.forward`.
        """
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
