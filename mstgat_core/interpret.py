"""What a fitted MSTGAT looked at: attention, neighbour weights, scale weights, attributions.

Everything here runs the model in eval mode (dropout also hits the attention
weights) and returns xarray objects on the grid, or plain dicts.

* :func:`explain_cell` explains one cell exactly on its receptive subgraph
  (:func:`~mstgat_core.graph.receptive_subgraph`): element attention per
  layer/head, [CLS]->element attention, attention rollout, GAT neighbour
  weights as (dy, dx) offset images per scale, the cell's scale weights and
  integrated-gradients (IG) attributions.
* :func:`attention_maps` gives per-cell maps over the whole grid.
* :func:`attribution_maps` gives IG of every cell's logit w.r.t. its own
  features.
* :func:`summarise` compares a region (deposit cells, a drawn box, a
  threshold) with the rest of the grid.

Definitions
-----------
Element attention
    Weights of ``nn.MultiheadAttention`` per layer and head, rows = queries,
    columns = keys, token 0 = [CLS]; each row sums to 1.
[CLS] attention (maps)
    Row [CLS]->elements of the **last** Transformer layer, averaged over
    heads. It does not sum to 1 over the elements (part of it goes to [CLS]).
Rollout
    Abnar & Zuidema (2020): per layer, average the heads, add the identity,
    renormalise rows; multiply the layers (last on the left); take the
    [CLS] row over the elements and renormalise it to sum to 1.
Neighbour weights
    GATv2 attention of the edge from the neighbour at (row+dy, col+dx) into
    the cell, per scale, GAT layer and head; the cell's own weight at (0, 0)
    is its self-loop. Weights into one cell sum to 1 at each scale, layer and
    head. NaN where there is no such edge (offset not in the scale, or the
    neighbour is outside the grid or has no data). For ``gat_layers > 1``,
    every layer still shows the *direct* neighbours' weights into the cell.
Neighbour entropy (maps)
    Shannon entropy of a cell's incoming weights at a scale (head mean, last
    GAT layer) divided by log(number of incoming edges, self-loop included):
    1 = uniform, 0 = all weight on one neighbour; NaN for an isolated cell.
Integrated gradients
    Captum ``IntegratedGradients`` of the cell's *logit*. The baseline is the
    all-zero input, which after the normaliser's robust scaling is the grid's
    median composition (the global centre stored in the normaliser). For the
    cell's own features the other cells are held at their real values, so
    the attributions sum to logit(cell) - logit(cell at baseline, neighbours
    real) up to the reported convergence delta. ``neighbour_attribution``
    attributes the same logit jointly to every cell of the receptive field
    (all moved from the baseline together) and sums over elements.

Indicator elements
    The part of a cell's IG carried by elements above the baseline
    composition (:func:`enrichment_split`); regions rank elements by its
    mean. The rest (elements below the baseline) is evidence from depletion,
    which in a closed composition follows any enrichment of other elements.
    On the planted-truth benchmark (``mstgat benchmark --suite explain``,
    docs/results.md) this ranking recovers the ore elements far more often
    than the full IG, occlusion or attention.
Occlusion
    Captum ``FeatureAblation``: the logit drop when one element of the cell
    is set to the baseline (``_attribute_nodes(..., method="occlusion")``).
Scales
    The scale weights are learned during pretraining, without labels: they
    say which neighbourhood best reconstructs a cell's elements, not which
    scale the deposits' anomalies have (on the benchmark the pretrained
    default puts r=1 first at every deposit cell). :func:`scale_occlusion`
    (logit drop without a scale), :func:`scale_evidence` (positive
    neighbour IG by ring) and, for models trained with ``scale_readout``,
    :func:`scale_contributions` (each scale's exact additive share of the
    logit) read the scales through the fitted heads.

Ensembles
    The members of a pretrained model share its backbone, so attention,
    neighbour weights and scale weights are the same for every member; they
    differ in their heads. :func:`explain_cell` therefore also gives each
    member's integrated gradients (``member_attribution``) and their spread
    (``attribution_spread``, the standard deviation over members), beside
    ``attribution`` for the ensemble's mean logit. The fused readout's logit
    includes the label-free score, whose masked passes are part of the
    differentiated function.

Variants: ``spectral`` has no spatial branch, so ``neighbour_weights``,
``scale_weights`` and ``neighbour_entropy`` are absent; ``spatial`` and
``spatial-single`` have no Transformer, so ``element_attention``,
``cls_attention``, ``cls_attention_mean`` and ``rollout`` are absent (in
:func:`summarise` the corresponding entries are empty). The attrs
``has_spectral`` / ``has_spatial`` say which is which.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import torch
import xarray as xr

from .errors import Cancelled, DataError
from .graph import GridGraph, receptive_subgraph
from .model import attention_rollout
from .pipeline import probability_grid

IG_BASELINE = (
    "all-zero normalised input = the grid's robust median composition "
    "(global centre of the normaliser); other cells held at their real values"
)
CLS = "[CLS]"


# ---------------------------------------------------------------------- helpers


def _model(fitted):
    model = fitted.model
    model.eval()
    return model


def _cell_of(prepared, row, col, x, y) -> tuple[int, int]:
    """(row, col) of a cell given by index or by map coordinates (nearest cell)."""
    ny, nx = prepared.graph.mask.shape
    if row is not None or col is not None:
        if row is None or col is None:
            raise DataError("give both row and col (or x and y)")
        row, col = int(row), int(col)
    elif x is not None and y is not None:
        row = _nearest(prepared.template["y"].values, float(y), "y")
        col = _nearest(prepared.template["x"].values, float(x), "x")
    else:
        raise DataError("give a cell as row and col, or as map coordinates x and y")
    if not (0 <= row < ny and 0 <= col < nx):
        raise DataError(f"cell (row {row}, col {col}) is outside the grid ({ny} x {nx} cells)")
    if not prepared.graph.mask[row, col]:
        raise DataError(f"cell (row {row}, col {col}) has no data")
    return row, col


def _nearest(coords: np.ndarray, value: float, axis: str) -> int:
    i = int(np.argmin(np.abs(coords - value)))
    step = float(np.abs(np.diff(coords)).min()) if len(coords) > 1 else np.inf
    if abs(coords[i] - value) > step / 2 + 1e-9 * max(abs(value), 1.0):
        raise DataError(
            f"{axis} = {value:g} is outside the grid ({coords.min():g} .. {coords.max():g} at cell centres)"
        )
    return i


def _check_cancel(cancel):
    if cancel is not None and cancel.is_set():
        raise Cancelled("interpretation cancelled")


class _Subgraphs:
    """Disjoint union of the receptive subgraphs of many cells, replicated for IG steps.

    Each cell gets its own copy of its receptive field, so changing one cell's
    features changes only that cell's logit (no cross-talk between cells of a
    batch). With one GAT layer see :meth:`forward_one_hop` (vectorised); with
    more layers each cell's copy comes from :func:`receptive_subgraph`, cell
    by cell (slower).
    """

    def __init__(self, model, graph: GridGraph):
        self.model = model
        self.graph = graph
        self.hops = model.hops
        self.spatial = model.config.uses_spatial
        if self.spatial and self.hops == 1:
            self.csr = []
            n = graph.num_nodes
            for edge_index in graph.edge_index:
                ei = edge_index.numpy()
                order = np.argsort(ei[1], kind="stable")
                src, tgt = ei[0, order], ei[1, order]
                self.csr.append((src, np.searchsorted(tgt, np.arange(n + 1))))

    def build(self, cells):
        """(node ids into x, edges per scale or None, positions of ``cells``) for hops != 1."""
        cells = np.asarray(cells, dtype=np.int64)
        if not self.spatial:
            return torch.from_numpy(cells), None, torch.arange(len(cells))
        parts, edges, positions, offset = [], [[] for _ in self.graph.edge_index], [], 0
        for cell in cells:
            subset, sub_edges, pos = receptive_subgraph(self.graph, [int(cell)], self.hops)
            parts.append(subset)
            for s, e in enumerate(sub_edges):
                edges[s].append(e + offset)
            positions.append(pos + offset)
            offset += len(subset)
        return torch.cat(parts), [torch.cat(e, dim=1) for e in edges], torch.cat(positions)

    def forward_one_hop(self, x: torch.Tensor, cells):
        """A forward function for IG of ``cells`` (one GAT layer): the logits of private copies of the cells.

        The graph holds each in-neighbour once, at its real features, and, per
        IG step, a private node per cell carrying the moving features; edges
        run from the shared neighbours into the private nodes only. With one
        GAT layer a cell's logit depends on its own features and its
        in-neighbours' input features only, so this is exact.
        """
        cells = np.asarray(cells, dtype=np.int64)
        b = len(cells)
        batch = np.arange(b)
        pairs = []
        for src, ptr in self.csr:
            start, deg = ptr[cells], ptr[cells + 1] - ptr[cells]
            idx = np.arange(deg.sum()) - np.repeat(np.cumsum(deg) - deg, deg) + np.repeat(start, deg)
            pairs.append((np.repeat(batch, deg), src[idx]))
        shared, inverse = np.unique(np.concatenate([p[1] for p in pairs]), return_inverse=True)
        x_shared = x[torch.from_numpy(shared)]
        n_shared = len(shared)
        edges, offset = [], 0
        for owner, sources in pairs:
            local = inverse[offset : offset + len(sources)]
            offset += len(sources)
            edges.append((torch.from_numpy(local), torch.from_numpy(owner)))
        model = self.model

        def forward(values):
            copies = values.shape[0] // b
            shift = (b * torch.arange(copies)).view(-1, 1)
            eb = [
                torch.stack([src.repeat(copies), (n_shared + tgt.unsqueeze(0) + shift).reshape(-1)])
                for src, tgt in edges
            ]
            positions = torch.arange(n_shared, n_shared + values.shape[0])
            return model(torch.cat([x_shared, values]), eb, positions)

        return forward

    @staticmethod
    def replicate(x_sub, edges, positions, copies: int):
        """``copies`` disjoint copies of a (sub)graph: features, edges and node positions."""
        n = x_sub.shape[0]
        shift = n * torch.arange(copies)
        xb = x_sub.repeat(copies, 1)
        pos = (positions.unsqueeze(0) + shift.unsqueeze(1)).reshape(-1)
        if edges is None:
            return xb, None, pos
        eb = [(e.unsqueeze(0) + shift.view(-1, 1, 1)).permute(1, 0, 2).reshape(2, -1) for e in edges]
        return xb, eb, pos


class _Member(torch.nn.Module):
    """One member of a fused ensemble as a model whose logit is that member's."""

    def __init__(self, model, member: int):
        super().__init__()
        self.model, self.member = model, member

    @property
    def config(self):
        return self.model.config

    @property
    def hops(self):
        return self.model.hops

    def forward(self, x, edge_indices=None, nodes=None):
        return self.model(x, edge_indices, nodes, member=self.member)


def _own_feature_ig(model, x_sub, edges, positions, inputs, steps, internal_batch_size=None, forward=None):
    """IG of each cell's logit w.r.t. its own features (rows of ``inputs`` = x_sub[positions]).

    By default each IG step gets its own copy of the (sub)graph in which only
    the cells at ``positions`` carry the moving features.
    """
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(forward or _replicated_forward(model, x_sub, edges, positions))
    attr, delta = ig.attribute(
        inputs,
        baselines=torch.zeros_like(inputs),
        n_steps=steps,
        internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    return attr.detach(), delta.detach()


def _own_feature_occlusion(model, x_sub, edges, positions, inputs, forward=None):
    """Occlusion of each cell's own features: logit(cell) - logit(cell with one element at the baseline).

    Captum ``FeatureAblation`` with the IG baseline (0 = the grid's median
    composition); one element at a time, neighbours at their real values.
    Unlike IG the contributions need not sum to the logit change.
    """
    from captum.attr import FeatureAblation

    with torch.no_grad():
        attr = FeatureAblation(forward or _replicated_forward(model, x_sub, edges, positions)).attribute(
            inputs, baselines=0.0
        )
    return attr.detach()


def _replicated_forward(model, x_sub, edges, positions):
    b = len(positions)

    def forward(values):
        copies = values.shape[0] // b
        xb, eb, pos = _Subgraphs.replicate(x_sub, edges, positions, copies)
        xb = xb.index_put((pos,), values)
        return model(xb, eb, pos)

    return forward


# ----------------------------------------------------------------- explain_cell


def explain_cell(
    fitted, prepared, row=None, col=None, x=None, y=None, ig_steps: int = 32, ig_neighbours: bool = False
) -> xr.Dataset:
    """Everything the model used for one cell, computed exactly on its receptive subgraph.

    The cell is given by ``row``/``col`` or by map coordinates ``x``/``y``
    (nearest cell centre, at most half a cell away). See the module docstring
    for the definitions.

    Parameters
    ----------
    fitted : FittedModel
        The model.
    prepared : PreparedGrid
        ``fitted.prepare(grid)``.
    row, col : int, optional
        The cell's indices (give both).
    x, y : float, optional
        Map coordinates instead of ``row``/``col`` (give both).
    ig_steps : int
        Integrated-gradients steps.
    ig_neighbours : bool
        Also compute ``neighbour_attribution``; the ``dy``/``dx`` window then
        widens to the receptive radius ``gat_layers x max(scales)``.

    Returns
    -------
    xr.Dataset
        Variables, by branch (see the module docstring's Variants):
        ``element_attention`` (layer, head, query, key), ``cls_attention``
        (layer, head, element), ``cls_attention_mean`` (layer, element),
        ``rollout`` (element); ``neighbour_weights`` (scale, gat_layer,
        gat_head, dy, dx), ``scale_weights`` (scale), ``scale_contributions``
        (scale; models with ``scale_readout``); always ``attribution``
        (element) and ``attribution_enriched`` (its part carried by elements
        above the baseline composition, :func:`enrichment_split`);
        ``neighbour_attribution`` (dy, dx) with ``ig_neighbours``;
        for an ensemble ``member_attribution`` (member, element) and
        ``attribution_spread`` (element).
        attrs: ``probability``, ``logit``, ``row``, ``col``, ``x``, ``y``,
        ``variant``, ``has_spectral``, ``has_spatial``, ``ig_baseline``,
        ``ig_steps``, ``ig_delta`` (signed convergence delta, logits),
        ``ig_neighbour_delta`` (with ``ig_neighbours``) and definitions.

    Raises
    ------
    DataError
        If the cell is not given by both of row/col or x/y, lies outside the
        grid or has no data.
    """
    row, col = _cell_of(prepared, row, col, x, y)
    model = _model(fitted)
    config = fitted.config
    graph = prepared.graph
    node = graph.node_of(row, col)
    elements = fitted.elements
    subset, edges, pos = receptive_subgraph(graph, [node], model.hops)
    edges = edges if config.uses_spatial else None
    x_sub = prepared.x[subset]
    with torch.no_grad():
        logit, details = model(x_sub, edges, pos, return_details=True)
    logit = float(logit[0])

    r_max = max(config.scales) if config.uses_spatial else 0
    radius = r_max * max(model.hops, 1) if ig_neighbours else r_max
    offsets = np.arange(-radius, radius + 1)
    attrs = {
        "probability": float(1 / (1 + np.exp(-logit))),
        "logit": logit,
        "row": row,
        "col": col,
        "x": float(prepared.template["x"].values[col]),
        "y": float(prepared.template["y"].values[row]),
        "ig_baseline": IG_BASELINE,
        "ig_steps": int(ig_steps),
        "variant": config.variant,
        "has_spectral": int(config.uses_spectral),
        "has_spatial": int(config.uses_spatial),
        "cls_attention_definition": "[CLS]->element attention per layer and head",
        "rollout_definition": "Abnar & Zuidema attention rollout, [CLS] row over elements, sums to 1",
    }
    data = {}
    coords = {"element": elements, "query": [CLS] + elements, "key": [CLS] + elements, "dy": offsets, "dx": offsets}
    if config.uses_spectral:
        att = details.element_attention[0]  # (layers, heads, T, T)
        coords["layer"] = np.arange(att.shape[0])
        coords["head"] = np.arange(att.shape[1])
        data["element_attention"] = (("layer", "head", "query", "key"), att.numpy())
        data["cls_attention"] = (("layer", "head", "element"), att[:, :, 0, 1:].numpy())
        data["cls_attention_mean"] = (("layer", "element"), att[:, :, 0, 1:].mean(1).numpy())
        data["rollout"] = (("element",), attention_rollout(att.unsqueeze(0))[0].numpy())
    if config.uses_spatial:
        rows, cols = graph.rows_cols
        sub_rows, sub_cols = rows[subset.numpy()], cols[subset.numpy()]
        n_layers, n_heads = config.gat_layers, config.gat_heads
        weights = np.full((len(config.scales), n_layers, n_heads, len(offsets), len(offsets)), np.nan, np.float32)
        target = int(pos[0])
        for s, per_layer in enumerate(details.neighbour_attention):
            for layer, (ei, alpha) in enumerate(per_layer):
                into = (ei[1] == target).numpy()
                src = ei[0].numpy()[into]
                dy = sub_rows[src] - row + radius
                dx = sub_cols[src] - col + radius
                weights[s, layer][:, dy, dx] = alpha[into].numpy().T
        coords["scale"] = list(config.scales)
        coords["gat_layer"] = np.arange(n_layers)
        coords["gat_head"] = np.arange(n_heads)
        # dims gat_layer/gat_head, not layer/head: GAT and Transformer layer/head counts can differ
        data["neighbour_weights"] = (("scale", "gat_layer", "gat_head", "dy", "dx"), weights)
        data["scale_weights"] = (("scale",), details.scale_weights[0].numpy())
        if model.fused and config.scale_readout:
            data["scale_contributions"] = (("scale",), scale_contributions(fitted, prepared, [node])[0])

    attr, delta = _own_feature_ig(model, x_sub, edges, pos, x_sub[pos].clone(), ig_steps)
    data["attribution"] = (("element",), attr[0].numpy())
    data["attribution_enriched"] = (("element",), enrichment_split(attr[0].numpy(), x_sub[pos][0].numpy())[0])
    attrs["ig_delta"] = float(delta[0])
    if config.readout == "fused" and config.members > 1:
        if float(model.head.share) == 0:  # the members all read the label-free score: identical logits
            members = np.repeat(attr[0].numpy()[None], config.members, axis=0)
        else:
            members = np.stack(
                [
                    _own_feature_ig(_Member(model, k), x_sub, edges, pos, x_sub[pos].clone(), ig_steps)[0][0].numpy()
                    for k in range(config.members)
                ]
            )
        coords["member"] = np.arange(config.members)
        data["member_attribution"] = (("member", "element"), members)
        data["attribution_spread"] = (("element",), members.std(axis=0))
    if ig_neighbours:
        data["neighbour_attribution"], attrs["ig_neighbour_delta"] = _neighbour_ig(
            model, x_sub, edges, pos, subset, graph, row, col, radius, ig_steps
        )
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    return ds


def _neighbour_ig(model, x_sub, edges, pos, subset, graph, row, col, radius, steps):
    from captum.attr import IntegratedGradients

    n = x_sub.shape[0]

    def forward(values):  # (copies, n, E)
        copies = values.shape[0]
        _, eb, pb = _Subgraphs.replicate(x_sub, edges, pos, copies)
        return model(values.reshape(copies * n, -1), eb, pb)

    inputs = x_sub.unsqueeze(0).clone()
    ig = IntegratedGradients(forward)
    attr, delta = ig.attribute(inputs, baselines=torch.zeros_like(inputs), n_steps=steps, return_convergence_delta=True)
    per_cell = attr[0].sum(dim=1).detach().numpy()
    rows, cols = graph.rows_cols
    image = np.full((2 * radius + 1, 2 * radius + 1), np.nan, np.float32)
    image[rows[subset.numpy()] - row + radius, cols[subset.numpy()] - col + radius] = per_cell
    return (("dy", "dx"), image), float(delta[0])


def scale_contributions(fitted, prepared, nodes) -> np.ndarray:
    """(nodes, scales) each scale's exact additive share of the ensemble's mean logit.

    Needs the fused readout with ``scale_readout``: the heads are linear in
    the standardised embedding, whose per-scale blocks are each scale's
    neighbourhood message, so a scale's contribution is ``share x mean over
    members of (w_k,block . z_block) / logit_scale_k``. Zero on average over
    the training grid (the embedding is standardised there); positive where
    that scale's neighbourhood raises the cell's score.
    """
    model = _model(fitted)
    config = fitted.config
    if not (model.fused and config.uses_spatial and config.scale_readout):
        raise DataError("scale contributions need a pretrained model with scale_readout")
    subset, edges, pos = receptive_subgraph(prepared.graph, np.asarray(nodes, dtype=np.int64), model.hops)
    head = model.head
    with torch.no_grad():
        embedding = model.embed(prepared.x[subset], edges, pos)
        width = embedding.shape[1]
        z = (embedding - head.center[:width]) / head.scale[:width]
        start = (config.d_model if config.uses_spectral else 0) + config.gat_hidden
        out = []
        for s in range(len(config.scales)):
            block = slice(start + s * config.gat_hidden, start + (s + 1) * config.gat_hidden)
            per_member = z[:, block] @ head.weight[:, block].T / head.logit_scale  # (nodes, members)
            out.append(head.share * per_member.mean(dim=1))
    return torch.stack(out, dim=1).numpy()


def scale_evidence(fitted, prepared, nodes, steps: int = 16) -> np.ndarray:
    """(nodes, scales) positive neighbour attribution in each scale's ring, as shares of the neighbours' total.

    Integrated gradients of a cell's logit over every cell of its receptive
    field (all moved from the baseline together, summed over elements), then
    the positive part summed by ring: Chebyshev distance in (previous scale,
    scale]; the cell itself is left out (its own evidence says nothing about
    scale). It says at what distance the
    evidence for the cell lies, which the scale weights (learned by
    pretraining, without labels) cannot say.
    """
    model = _model(fitted)
    config = fitted.config
    if not config.uses_spatial:
        raise DataError("the spectral variant has no scales")
    graph = prepared.graph
    rows, cols = graph.rows_cols
    radius = max(config.scales) * max(model.hops, 1)
    offsets = np.arange(-radius, radius + 1)
    distance = np.maximum(np.abs(offsets)[:, None], np.abs(offsets)[None, :])
    bounds = [0, *config.scales[:-1]]
    rings = [(distance <= s) & (distance > lo) for lo, s in zip(bounds, config.scales)]
    rings[-1] |= distance > config.scales[-1]  # deeper hops count with the largest scale
    out = np.zeros((len(nodes), len(config.scales)), np.float32)
    for i, node in enumerate(np.asarray(nodes, dtype=np.int64)):
        subset, edges, pos = receptive_subgraph(graph, [int(node)], model.hops)
        (_, image), _ = _neighbour_ig(
            model, prepared.x[subset], edges, pos, subset, graph, int(rows[node]), int(cols[node]), radius, steps
        )
        positive = np.nan_to_num(np.clip(image, 0, None))
        positive[radius, radius] = 0.0
        total = positive.sum()
        out[i] = [positive[ring].sum() / total if total > 0 else 0.0 for ring in rings]
    return out


# --------------------------------------------------------------- attention_maps


def attention_maps(
    fitted,
    prepared,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> xr.Dataset:
    """Per-cell maps on the grid: probability, [CLS] attention, rollout, scale weights, neighbour entropy.

    One pass of :meth:`MSTGAT.predict_grid <mstgat_core.model.MSTGAT.predict_grid>`
    with ``details=True``. ``cls_attention`` (element, y, x) is the head mean
    of the last Transformer layer's [CLS]->element row; ``rollout`` (element,
    y, x) the attention rollout; ``scale_weights`` and ``neighbour_entropy``
    (scale, y, x) come from the spatial branch on the grid path (head mean,
    last GAT layer for the entropy).

    Parameters
    ----------
    fitted : FittedModel
        The model.
    prepared : PreparedGrid
        ``fitted.prepare(grid)``.
    batch_size : int, optional
        Cells per spectral batch (default: the model's cache-sized batch).
    progress : callable, optional
        ``progress(done, total)`` after each spectral batch and after the
        spatial branch.
    cancel : threading.Event, optional
        Checked before the pass and after each step; when set, raises
        :class:`~mstgat_core.errors.Cancelled`.

    Returns
    -------
    xr.Dataset
        ``probability`` (y, x) and, by branch, ``cls_attention`` and
        ``rollout`` (element, y, x), ``scale_weights`` and
        ``neighbour_entropy`` (scale, y, x); NaN on cells without data.
        attrs ``variant``, ``has_spectral``, ``has_spatial``.
    """
    config = fitted.config

    def step(done, total):
        _check_cancel(cancel)
        if progress is not None:
            progress(done, total)

    _check_cancel(cancel)
    result = fitted.predict_prepared(prepared, details=True, spectral_batch=batch_size, progress=step)
    elements = fitted.elements
    scales = list(config.scales)
    variables = {}
    if config.uses_spectral:
        variables["cls_attention"] = _stack_grid(
            prepared,
            result.cls_attention.numpy(),
            elements,
            "element",
            "head-mean [CLS]->element attention of the last layer",
        )
        variables["rollout"] = _stack_grid(
            prepared, result.rollout.numpy(), elements, "element", "attention rollout [CLS]->element (sums to 1)"
        )
    if config.uses_spatial:
        variables["scale_weights"] = _stack_grid(
            prepared,
            result.scale_weights.numpy(),
            scales,
            "scale",
            "per-cell softmax weight of each scale (radius in cells)",
        )
        variables["neighbour_entropy"] = _stack_grid(
            prepared,
            result.neighbour_entropy.numpy(),
            scales,
            "scale",
            "entropy of incoming neighbour weights (head mean, last GAT layer) / log(incoming edges); 1 = uniform",
        )
    variables["probability"] = probability_grid(
        prepared.scatter(result.probability.numpy()), prepared.template, config.variant
    )
    return xr.Dataset(
        variables,
        attrs={
            "variant": config.variant,
            "has_spectral": int(config.uses_spectral),
            "has_spatial": int(config.uses_spatial),
        },
    )


def _stack_grid(prepared, values: np.ndarray, labels, dim: str, description: str) -> xr.DataArray:
    """(nodes, k) -> DataArray (dim, y, x)."""
    layers = [prepared.to_grid(values[:, i], "tmp") for i in range(values.shape[1])]
    out = xr.concat(layers, dim=dim).assign_coords({dim: list(labels)})
    out.attrs = {"description": description}
    return out


# ------------------------------------------------------------- attribution_maps


def _attribute_nodes(
    fitted,
    prepared,
    nodes,
    steps=16,
    batch_size=1024,
    progress=None,
    cancel=None,
    max_cell_steps: int = 8192,
    method: str = "ig",
    member: int | None = None,
):
    """Attributions of each node's logit to its own features, neighbours at their real values: (nodes, E), |delta|.

    ``method`` "ig" (integrated gradients; ``delta`` its convergence delta) or
    "occlusion" (:func:`_own_feature_occlusion`; ``delta`` is zero).
    ``member``: attribute that ensemble member's logit instead of the mean.
    """
    if method not in ("ig", "occlusion"):
        raise ValueError(f"unknown attribution method {method!r}")
    model = _model(fitted)
    if member is not None:
        model = _Member(model, member)
    builder = _Subgraphs(model, prepared.graph)
    nodes = np.asarray(nodes, dtype=np.int64)
    out = np.zeros((len(nodes), prepared.x.shape[1]), np.float32)
    deltas = np.zeros(len(nodes), np.float32)
    starts = list(range(0, len(nodes), max(int(batch_size), 1)))
    for i, start in enumerate(starts):
        _check_cancel(cancel)
        cells = nodes[start : start + batch_size]
        internal = max(len(cells), (max_cell_steps // len(cells)) * len(cells))
        inputs = prepared.x[torch.from_numpy(cells)].clone()
        if builder.spatial and builder.hops == 1:
            forward = builder.forward_one_hop(prepared.x, cells)
            x_sub, edges, positions = None, None, torch.arange(len(cells))
        else:
            forward = None
            index, edges, positions = builder.build(cells)
            x_sub = prepared.x[index]
        if method == "ig":
            attr, delta = _own_feature_ig(model, x_sub, edges, positions, inputs, steps, internal, forward=forward)
            deltas[start : start + len(cells)] = np.abs(delta.numpy())
        else:
            attr = _own_feature_occlusion(model, x_sub, edges, positions, inputs, forward=forward)
        out[start : start + len(cells)] = attr.numpy()
        if progress is not None:
            progress(i + 1, len(starts))
    return out, deltas


def scale_occlusion(fitted, prepared, nodes) -> np.ndarray:
    """(nodes, scales) logit drop when each scale is left out of the fusion (others renormalised).

    Positive: the cell's score relies on that scale. Computed exactly on the
    receptive subgraph of ``nodes`` (see :meth:`MSTGAT.without_scale
    <mstgat_core.model.MSTGAT.without_scale>`).
    """
    model = _model(fitted)
    if not fitted.config.uses_spatial:
        raise DataError("the spectral variant has no scales")
    subset, edges, pos = receptive_subgraph(prepared.graph, np.asarray(nodes, dtype=np.int64), model.hops)
    x_sub = prepared.x[subset]
    with torch.no_grad():
        full = model(x_sub, edges, pos)
        drops = []
        for s in range(len(fitted.config.scales)):
            with model.without_scale(s):
                drops.append(full - model(x_sub, edges, pos))
    return torch.stack(drops, dim=1).numpy()


def attribution_maps(
    fitted,
    prepared,
    steps: int = 16,
    batch_size: int = 1024,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> xr.DataArray:
    """Integrated gradients of every cell's logit w.r.t. its own features, as (element, y, x).

    Exact per cell: each cell of a batch gets its own copy of its receptive
    subgraph in which only its own features move along the IG path and its
    neighbours keep their real values (no cross-talk between cells of a
    batch). Baseline: see the module docstring.

    Parameters
    ----------
    fitted : FittedModel
        The model.
    prepared : PreparedGrid
        ``fitted.prepare(grid)``.
    steps : int
        Gauss-Legendre steps of the IG path.
    batch_size : int
        Cells per IG batch.
    progress : callable, optional
        ``progress(done, total)`` after each batch.
    cancel : threading.Event, optional
        Checked before each batch; when set, raises
        :class:`~mstgat_core.errors.Cancelled`.

    Returns
    -------
    xr.DataArray
        ``attribution`` (element, y, x), NaN on cells without data; attrs
        ``ig_baseline``, ``ig_steps``, ``max_abs_delta`` and ``mean_abs_delta``
        (|convergence delta| in logits), ``variant``, ``description``.
    """
    values, deltas = _attribute_nodes(
        fitted, prepared, np.arange(prepared.graph.num_nodes), steps, batch_size, progress, cancel
    )
    out = _stack_grid(
        prepared, values, fitted.elements, "element", "integrated gradients of the cell's logit w.r.t. its own features"
    )
    out.name = "attribution"
    out.attrs.update(
        ig_baseline=IG_BASELINE,
        ig_steps=int(steps),
        max_abs_delta=float(deltas.max()),
        mean_abs_delta=float(deltas.mean()),
        variant=fitted.config.variant,
    )
    return out


# -------------------------------------------------------------------- summarise


def _region_nodes(prepared, region) -> np.ndarray:
    mask = prepared.graph.mask
    values = np.asarray(region.values if isinstance(region, xr.DataArray) else region)
    if values.shape != mask.shape:
        raise DataError(f"region grid {values.shape} does not match the data grid {mask.shape}")
    values = np.nan_to_num(values.astype(float)) != 0
    return values[mask]  # bool per node


def summarise(
    fitted, prepared, region, maps: xr.Dataset | None = None, attributions: xr.DataArray | None = None
) -> dict:
    """Compare a region (bool (y, x): deposits, a box, a threshold) with the rest of the grid.

    Elements are ranked by mean [CLS] attention (head mean, last layer)
    inside minus outside the region, by mean signed IG attribution inside
    the region, and by the part of it carried by enriched elements (the
    indicator ranking). Only cells with data count.

    Parameters
    ----------
    fitted : FittedModel
        The model.
    prepared : PreparedGrid
        ``fitted.prepare(grid)``.
    region : xr.DataArray or array-like
        ``(ny, nx)`` on the same grid; nonzero, non-NaN cells are inside.
    maps : xr.Dataset, optional
        :func:`attention_maps` of ``prepared`` (computed when not given).
    attributions : xr.DataArray, optional
        :func:`attribution_maps` of ``prepared`` (default: IG computed for the
        region's cells only, 16 steps).

    Returns
    -------
    dict
        Plain JSON types: ``n_cells``, ``variant``, ``elements_by_attention``,
        ``attention_inside``/``attention_outside`` (element -> mean [CLS]
        attention; outside is 0 when the region holds every cell),
        ``attention_matrix`` (E x E mean head-mean last-layer element->element
        attention over the region, rows = queries; None without a spectral
        branch), ``matrix_elements``, ``scale_weights`` (scale -> mean weight
        inside), ``scale_contributions`` (scale -> mean inside; models with
        ``scale_readout`` only), ``elements_by_attribution``, ``attribution_inside``
        (element -> mean IG inside), ``elements_by_enrichment`` and
        ``enrichment_inside`` (the same for the IG carried by enriched
        elements, :func:`enrichment_split`: the indicator ranking). Entries
        of a missing branch are empty.

    Raises
    ------
    DataError
        If ``region`` is not on the data grid or holds no cell with data.
    """
    inside = _region_nodes(prepared, region)
    n_cells = int(inside.sum())
    if n_cells == 0:
        raise DataError("the region holds no cell with data")
    config = fitted.config
    elements = fitted.elements
    maps = maps if maps is not None else attention_maps(fitted, prepared)
    mask = prepared.graph.mask
    out = {
        "n_cells": n_cells,
        "variant": config.variant,
        "elements_by_attention": [],
        "attention_inside": {},
        "attention_outside": {},
        "attention_matrix": None,
        "matrix_elements": elements,
        "scale_weights": {},
    }
    if "cls_attention" in maps:
        cls = maps["cls_attention"].values[:, mask]  # (E, nodes)
        a_in = cls[:, inside].mean(axis=1)
        a_out = cls[:, ~inside].mean(axis=1) if (~inside).any() else np.zeros(len(elements))
        order = np.argsort(-(a_in - a_out), kind="stable")
        out["elements_by_attention"] = [elements[i] for i in order]
        out["attention_inside"] = {e: float(v) for e, v in zip(elements, a_in)}
        out["attention_outside"] = {e: float(v) for e, v in zip(elements, a_out)}
        nodes = torch.from_numpy(np.nonzero(inside)[0])
        model = _model(fitted)
        total = torch.zeros(len(elements), len(elements))
        with torch.no_grad():
            for chunk in torch.split(nodes, 4096):
                _, att = model.spectral(prepared.x[chunk], need_weights=True)
                total += att[:, -1, :, 1:, 1:].mean(dim=1).sum(dim=0)
        out["attention_matrix"] = (total / n_cells).tolist()
    if "scale_weights" in maps:
        sw = maps["scale_weights"].values[:, mask][:, inside].mean(axis=1)
        out["scale_weights"] = {str(s): float(v) for s, v in zip(config.scales, sw)}
    if fitted.model.fused and config.uses_spatial and config.scale_readout:
        contributions = scale_contributions(fitted, prepared, np.nonzero(inside)[0]).mean(axis=0)
        out["scale_contributions"] = {str(s): float(v) for s, v in zip(config.scales, contributions)}
    if attributions is not None:
        values = np.asarray(attributions.values)[:, mask][:, inside].T
    else:
        values, _ = _attribute_nodes(fitted, prepared, np.nonzero(inside)[0])
    attr = values.mean(axis=0)
    enriched = enrichment_split(values, prepared.x[torch.from_numpy(np.nonzero(inside)[0])].numpy())[0].mean(axis=0)
    out["elements_by_attribution"] = [elements[i] for i in np.argsort(-attr, kind="stable")]
    out["attribution_inside"] = {e: float(v) for e, v in zip(elements, attr)}
    out["elements_by_enrichment"] = [elements[i] for i in np.argsort(-enriched, kind="stable")]
    out["enrichment_inside"] = {e: float(v) for e, v in zip(elements, enriched)}
    return out


def enrichment_split(attribution: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(enriched, depleted): the attributions carried by elements above / below the baseline composition.

    ``x`` are the normalised features (0 = the grid's median log-ratio), so
    the two parts sum to the attribution. The enriched part ranks indicator
    elements: in a closed composition an enrichment of some elements lowers
    the log-ratios of all others, and a model may rightly use that; those
    depletions are evidence, but not indicators (on the explanation
    benchmark, ranking by the enriched part recovers the planted ore elements
    far more often than the full attribution, see docs/results.md).
    """
    above = np.asarray(x) > 0
    attribution = np.asarray(attribution)
    return attribution * above, attribution * ~above


# ------------------------------------------------------------------- reporting


def _ranked(values: dict) -> list:
    return sorted(values, key=lambda e: -values[e])


def explain_report(
    fitted, grid: xr.Dataset, row=None, col=None, x=None, y=None, region=None, top: int = 5
) -> tuple[dict, str]:
    """(JSON-ready dict, text) explaining one cell, or summarising ``region`` when given (for the CLI)."""
    prepared = fitted.prepare(grid)
    top = max(int(top), 1)
    if region is not None:
        report = summarise(fitted, prepared, region)
        lines = [f"region: {report['n_cells']} cells ({report['variant']})"]
        if report["elements_by_attention"]:
            lines.append(
                "elements by [CLS] attention, inside minus outside: "
                + ", ".join(
                    f"{e} {report['attention_inside'][e] - report['attention_outside'][e]:+.4f}"
                    for e in report["elements_by_attention"][:top]
                )
            )
        lines.append(
            "indicator elements (mean IG carried by enriched elements inside): "
            + ", ".join(f"{e} {report['enrichment_inside'][e]:+.3f}" for e in report["elements_by_enrichment"][:top])
        )
        lines.append(
            "elements by attribution (mean IG inside, depletions included): "
            + ", ".join(f"{e} {report['attribution_inside'][e]:+.3f}" for e in report["elements_by_attribution"][:top])
        )
        if report["scale_weights"]:
            lines.append("scale weights: " + ", ".join(f"r={s} {w:.3f}" for s, w in report["scale_weights"].items()))
        if report.get("scale_contributions"):
            lines.append(
                "scale contributions to the score (logit): "
                + ", ".join(f"r={s} {v:+.3f}" for s, v in report["scale_contributions"].items())
            )
        return report, "\n".join(lines)

    ds = explain_cell(fitted, prepared, row=row, col=col, x=x, y=y)
    a = ds.attrs
    attribution = {e: float(v) for e, v in zip(fitted.elements, ds["attribution"].values)}
    enriched = {e: float(v) for e, v in zip(fitted.elements, ds["attribution_enriched"].values)}
    report = {
        "row": a["row"],
        "col": a["col"],
        "x": a["x"],
        "y": a["y"],
        "probability": a["probability"],
        "variant": a["variant"],
        "elements_by_attribution": _ranked(attribution),
        "attribution": attribution,
        "elements_by_enrichment": _ranked(enriched),
        "attribution_enriched": enriched,
        "ig_baseline": a["ig_baseline"],
        "ig_delta": a["ig_delta"],
        "elements_by_attention": [],
        "cls_attention": {},
        "scale_weights": {},
        "neighbour_weights": {},
    }
    lines = [
        f"cell row {a['row']}, col {a['col']} (x {a['x']:g}, y {a['y']:g}): "
        f"probability {a['probability']:.4f} ({a['variant']})"
    ]
    if "cls_attention_mean" in ds:
        cls = {e: float(v) for e, v in zip(fitted.elements, ds["cls_attention_mean"].values[-1])}
        report["cls_attention"] = cls
        report["elements_by_attention"] = _ranked(cls)
        lines.append(
            "elements by [CLS] attention (last layer, head mean): "
            + ", ".join(f"{e} {cls[e]:.3f}" for e in report["elements_by_attention"][:top])
        )
    lines.append(
        "indicator elements (IG carried by elements above the median composition): "
        + ", ".join(f"{e} {enriched[e]:+.3f}" for e in report["elements_by_enrichment"][:top] if enriched[e] > 0)
    )
    if "attribution_spread" in ds:
        spread = {e: float(v) for e, v in zip(fitted.elements, ds["attribution_spread"].values)}
        report["attribution_spread"] = spread
        report["member_attribution"] = ds["member_attribution"].values.tolist()
        lines.append(
            f"elements by attribution (IG, ensemble mean logit; ± spread over {len(ds['member'])} members): "
            + ", ".join(f"{e} {attribution[e]:+.3f} ± {spread[e]:.3f}" for e in report["elements_by_attribution"][:top])
        )
    else:
        lines.append(
            "elements by attribution (IG): "
            + ", ".join(f"{e} {attribution[e]:+.3f}" for e in report["elements_by_attribution"][:top])
        )
    if "scale_weights" in ds:
        report["scale_weights"] = {str(s): float(w) for s, w in zip(ds["scale"].values, ds["scale_weights"].values)}
        lines.append("scale weights: " + ", ".join(f"r={s} {w:.3f}" for s, w in report["scale_weights"].items()))
        if "scale_contributions" in ds:
            report["scale_contributions"] = {
                str(s): float(v) for s, v in zip(ds["scale"].values, ds["scale_contributions"].values)
            }
            lines.append(
                "scale contributions to the score (logit): "
                + ", ".join(f"r={s} {v:+.3f}" for s, v in report["scale_contributions"].items())
            )
        weights = ds["neighbour_weights"].isel(gat_layer=-1).mean("gat_head")
        for scale in ds["scale"].values:
            image = weights.sel(scale=scale)
            r = int(scale)
            image = image.sel(dy=slice(-r, r), dx=slice(-r, r)).values
            report["neighbour_weights"][str(int(scale))] = [
                [None if np.isnan(v) else float(v) for v in line] for line in image
            ]
            lines.append(f"neighbour weights, scale r={r} (head mean, last GAT layer; rows dy, columns dx):")
            lines += ["  " + " ".join("  .  " if np.isnan(v) else f"{v:.3f}" for v in line) for line in image]
    return report, "\n".join(lines)
