"""What a fitted MSTGAT looked at: attention, neighbour weights, scale weights, attributions.

Everything here runs the model in eval mode (dropout also hits the attention
weights) and returns xarray objects on the grid, or plain dicts.

* :func:`explain_cell` explains one cell exactly on its receptive subgraph
  (:func:`~mstgat_core.graphs.graph.receptive_subgraph`): element attention per
  layer/head, [CLS]->element attention, attention rollout, GAT neighbour
  weights as (dy, dx) offset images per scale, the cell's scale weights and
  integrated-gradients (IG) attributions.
* :func:`attention_maps` gives per-cell maps over the whole grid.
* :func:`attribution_maps` gives IG of every cell's logit w.r.t. its own
  features.
* :func:`summarise` compares a region (deposit cells, a drawn box, a
  threshold) with the rest of the grid.

Modules: ``cell`` (one cell), ``maps`` (attention maps), ``attribution``
(integrated gradients, occlusion, the enriched part), ``scales`` (scale
readings through the heads), ``readout`` (the residual readout's weights
per element), ``summary`` (regions, the text report), ``teaching`` (the Learn
exercise's checks of a student's answers against planted truth) and
``common`` (what they share).

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

from .attribution import attribute_nodes, attribution_maps, enrichment_split
from .cell import explain_cell
from .common import CLS, IG_BASELINE
from .maps import attention_maps
from .readout import residual_weights
from .scales import scale_contributions, scale_evidence, scale_occlusion
from .summary import explain_report, summarise

__all__ = [
    "residual_weights",
    "CLS",
    "IG_BASELINE",
    "attention_maps",
    "attribute_nodes",
    "attribution_maps",
    "enrichment_split",
    "explain_cell",
    "explain_report",
    "scale_contributions",
    "scale_evidence",
    "scale_occlusion",
    "summarise",
]
