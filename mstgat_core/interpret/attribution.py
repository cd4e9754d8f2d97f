"""Integrated gradients and occlusion of the model's logit on private copies of receptive subgraphs;
per-cell attribution maps and their enriched part (the indicator ranking)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import torch
import xarray as xr

from ..graphs.graph import GridGraph, receptive_subgraph
from .common import IG_BASELINE, check_cancel, model_of, stack_grid


class Subgraphs:
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

    def forward_of(self, x: torch.Tensor, cells):
        """A function of a (copies x cells, E) batch of ``cells``' own features -> their logits.

        Each copy of each cell sees its neighbours at their real values ``x``:
        :meth:`forward_one_hop` with one GAT layer, else :func:`replicated_forward`
        on the cells' private receptive subgraphs (:meth:`build`). What IG,
        occlusion and the faithfulness curves all perturb.
        """
        if self.spatial and self.hops == 1:
            return self.forward_one_hop(x, cells)
        index, edges, positions = self.build(cells)
        return replicated_forward(self.model, x[index], edges, positions)

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


class Member(torch.nn.Module):
    """One member of a fused ensemble as a model whose logit is that member's."""

    def __init__(self, model, member: int):
        super().__init__()
        self.model, self.member = model, member

    @property
    def config(self):
        """The wrapped model's :class:`~mstgat_core.model.ModelConfig`."""
        return self.model.config

    @property
    def hops(self):
        """The wrapped model's message-passing hops (its receptive radius in graph steps)."""
        return self.model.hops

    def forward(self, x, edge_indices=None, nodes=None):
        """The logit of this member only (arguments as the wrapped model's ``forward``)."""
        return self.model(x, edge_indices, nodes, member=self.member)


def own_feature_ig(model, x_sub, edges, positions, inputs, steps, internal_batch_size=None, forward=None):
    """IG of each cell's logit w.r.t. its own features (rows of ``inputs`` = x_sub[positions]).

    By default each IG step gets its own copy of the (sub)graph in which only
    the cells at ``positions`` carry the moving features.
    """
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(forward or replicated_forward(model, x_sub, edges, positions))
    attr, delta = ig.attribute(
        inputs,
        baselines=torch.zeros_like(inputs),
        n_steps=steps,
        internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    return attr.detach(), delta.detach()


def own_feature_occlusion(model, x_sub, edges, positions, inputs, forward=None):
    """Occlusion of each cell's own features: logit(cell) - logit(cell with one element at the baseline).

    Captum ``FeatureAblation`` with the IG baseline (0 = the grid's median
    composition); one element at a time, neighbours at their real values.
    Unlike IG the contributions need not sum to the logit change.
    """
    from captum.attr import FeatureAblation

    with torch.no_grad():
        attr = FeatureAblation(forward or replicated_forward(model, x_sub, edges, positions)).attribute(
            inputs, baselines=0.0
        )
    return attr.detach()


def replicated_forward(model, x_sub, edges, positions):
    """A function of a (copies x cells, E) batch of the cells' own features: each copy of the
    subgraph gets its cells' values and the model returns their logits (what Captum differentiates).
    """
    b = len(positions)

    def forward(values):
        copies = values.shape[0] // b
        xb, eb, pos = Subgraphs.replicate(x_sub, edges, positions, copies)
        xb = xb.index_put((pos,), values)
        return model(xb, eb, pos)

    return forward


# ------------------------------------------------------------- attribution_maps


def attribute_nodes(
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
    "occlusion" (:func:`own_feature_occlusion`; ``delta`` is zero).
    ``member``: attribute that ensemble member's logit instead of the mean.
    """
    if method not in ("ig", "occlusion"):
        raise ValueError(f"unknown attribution method {method!r}")
    model = model_of(fitted)
    if member is not None:
        model = Member(model, member)
    builder = Subgraphs(model, prepared.graph)
    nodes = np.asarray(nodes, dtype=np.int64)
    out = np.zeros((len(nodes), prepared.x.shape[1]), np.float32)
    deltas = np.zeros(len(nodes), np.float32)
    starts = list(range(0, len(nodes), max(int(batch_size), 1)))
    for i, start in enumerate(starts):
        check_cancel(cancel)
        cells = nodes[start : start + batch_size]
        internal = max(len(cells), (max_cell_steps // len(cells)) * len(cells))
        inputs = prepared.x[torch.from_numpy(cells)].clone()
        forward = builder.forward_of(prepared.x, cells)
        if method == "ig":
            attr, delta = own_feature_ig(model, None, None, None, inputs, steps, internal, forward=forward)
            deltas[start : start + len(cells)] = np.abs(delta.numpy())
        else:
            attr = own_feature_occlusion(model, None, None, None, inputs, forward=forward)
        out[start : start + len(cells)] = attr.numpy()
        if progress is not None:
            progress(i + 1, len(starts))
    return out, deltas


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

    Examples
    --------
    >>> import numpy as np
    >>> import mstgat_core as mst
    >>> from mstgat_core.paths import DEMO_CHECKPOINT, DEMO_DEPOSITS, DEMO_GRID
    >>> fitted = mst.load_checkpoint(DEMO_CHECKPOINT)  # 5 members on 39 elements
    >>> grid = mst.load_grid(DEMO_GRID).isel(y=slice(50, 70), x=slice(80, 100))  # 20 x 20 cells, 6 of them deposits
    >>> deposits = mst.deposit_cells(grid, mst.load_deposits(DEMO_DEPOSITS))
    >>> prepared = fitted.prepare(grid)
    >>> attribution = mst.attribution_maps(fitted, prepared, steps=4)
    >>> attribution.name, dict(attribution.sizes)
    ('attribution', {'element': 39, 'y': 20, 'x': 20})
    >>> int(np.isfinite(attribution.isel(element=0)).sum()) == int(mst.valid_mask(grid).sum())
    True
    """
    values, deltas = attribute_nodes(
        fitted, prepared, np.arange(prepared.graph.num_nodes), steps, batch_size, progress, cancel
    )
    out = stack_grid(
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


def neighbour_ig(model, x_sub, edges, pos, subset, graph, row, col, radius, steps):
    """Integrated gradients of the cell's logit w.r.t. every cell of its receptive subgraph at once.

    Returns ``((("dy", "dx"), image), delta)``: the attribution summed over elements, as a
    (2 radius + 1) square centred on the cell (NaN where there is no cell), and the convergence delta.
    """
    from captum.attr import IntegratedGradients

    n = x_sub.shape[0]

    def forward(values):  # (copies, n, E)
        copies = values.shape[0]
        _, eb, pb = Subgraphs.replicate(x_sub, edges, pos, copies)
        return model(values.reshape(copies * n, -1), eb, pb)

    inputs = x_sub.unsqueeze(0).clone()
    ig = IntegratedGradients(forward)
    attr, delta = ig.attribute(inputs, baselines=torch.zeros_like(inputs), n_steps=steps, return_convergence_delta=True)
    per_cell = attr[0].sum(dim=1).detach().numpy()
    rows, cols = graph.rows_cols
    image = np.full((2 * radius + 1, 2 * radius + 1), np.nan, np.float32)
    image[rows[subset.numpy()] - row + radius, cols[subset.numpy()] - col + radius] = per_cell
    return (("dy", "dx"), image), float(delta[0])
