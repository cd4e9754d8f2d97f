"""One cell explained exactly on its receptive subgraph: attention, neighbour weights, scales, attributions."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from ..graphs.graph import receptive_subgraph
from ..model import attention_rollout
from .attribution import Member, enrichment_split, neighbour_ig, own_feature_ig
from .common import cell_of, model_of
from .scales import scale_contributions

IG_BASELINE = (
    "all-zero normalised input = the grid's robust median composition "
    "(global centre of the normaliser); other cells held at their real values"
)
CLS = "[CLS]"


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

    Examples
    --------
    A deposit cell of the bundled demo, with the bundled checkpoint (on a window of the grid, to be quick):

    >>> import numpy as np
    >>> import mstgat_core as mst
    >>> from mstgat_core.paths import DEMO_CHECKPOINT, DEMO_DEPOSITS, DEMO_GRID
    >>> fitted = mst.load_checkpoint(DEMO_CHECKPOINT)  # 5 members on 39 elements
    >>> grid = mst.load_grid(DEMO_GRID).isel(y=slice(50, 70), x=slice(80, 100))  # 20 x 20 cells, 6 of them deposits
    >>> deposits = mst.deposit_cells(grid, mst.load_deposits(DEMO_DEPOSITS))
    >>> prepared = fitted.prepare(grid)
    >>> row, col = (int(v) for v in np.argwhere(deposits.values)[0])
    >>> explanation = mst.explain_cell(fitted, prepared, row=row, col=col, ig_steps=8)
    >>> explanation.attrs["row"], explanation.attrs["col"], explanation.attrs["variant"]
    (6, 13, 'mstgat')
    >>> dict(explanation["member_attribution"].sizes), dict(explanation["scale_weights"].sizes)
    ({'member': 5, 'element': 39}, {'scale': 3})
    >>> 0 <= explanation.attrs["probability"] <= 1
    True
    """
    row, col = cell_of(prepared, row, col, x, y)
    model = model_of(fitted)
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
    radius = config.receptive_radius if ig_neighbours else r_max
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
        if model.fused and config.scale_readout and config.head == "embedding":
            data["scale_contributions"] = (("scale",), scale_contributions(fitted, prepared, [node])[0])

    attr, delta = own_feature_ig(model, x_sub, edges, pos, x_sub[pos].clone(), ig_steps)
    data["attribution"] = (("element",), attr[0].numpy())
    data["attribution_enriched"] = (("element",), enrichment_split(attr[0].numpy(), x_sub[pos][0].numpy())[0])
    attrs["ig_delta"] = float(delta[0])
    if config.readout == "fused" and config.members > 1:
        if float(model.head.share) == 0:  # the members all read the label-free score: identical logits
            members = np.repeat(attr[0].numpy()[None], config.members, axis=0)
        else:
            members = np.stack(
                [
                    own_feature_ig(Member(model, k), x_sub, edges, pos, x_sub[pos].clone(), ig_steps)[0][0].numpy()
                    for k in range(config.members)
                ]
            )
        coords["member"] = np.arange(config.members)
        data["member_attribution"] = (("member", "element"), members)
        data["attribution_spread"] = (("element",), members.std(axis=0))
    if ig_neighbours:
        data["neighbour_attribution"], attrs["ig_neighbour_delta"] = neighbour_ig(
            model, x_sub, edges, pos, subset, graph, row, col, radius, ig_steps
        )
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    return ds
