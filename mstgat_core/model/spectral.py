"""The spectral branch: a Transformer over the element tokens of one cell, with its attention weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
        """(cells, E) values -> (cells, d_model) [CLS] embeddings and, with ``need_weights``, the
        attention (cells, layers, heads, 1 + E, 1 + E) (else None); ``hidden``/``mask_token`` as in :meth:`tokens`.
        """
        h = self.tokens(x, hidden, mask_token)
        attention = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h, weights = layer(h, need_weights, cls_only=(i == last and not need_weights))
            attention.append(weights)
        return self.norm(h[:, 0]), (torch.stack(attention, dim=1) if need_weights else None)


def cls_attention(attention: torch.Tensor) -> torch.Tensor:
    """(cells, layers, heads, T, T) -> (cells, E): the last layer's [CLS] -> element attention, head mean
    (what the maps, the summaries and the faithfulness curves read as "attention")."""
    return attention[:, -1, :, 0, 1:].mean(dim=1)


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
