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

* ``fused`` (what :func:`~mstgat_core.training.pipeline.fit` builds by default): the
  branches are pretrained on every cell by masked-element reconstruction
  (:mod:`~mstgat_core.training.pretrain`), which also trains a reconstruction head; the
  cell's **label-free score** is the log mean squared error of its elements
  when each of ``mask_groups`` fixed element groups is hidden in turn (the same
  groups for every cell, so the score does not depend on position or tiling).
  :class:`FusedHead` holds ``members`` linear heads over the standardised
  embedding plus that score, fine-tuned on the few deposits
  (:mod:`~mstgat_core.training.finetune`); each member's logit is
  ``share * standardised head logit + (1 - share) * standardised label-free
  score``. The logit is the members' mean. With ``share = 0`` (a freshly
  pretrained backbone) the model is a label-free anomaly detector.
  :class:`ResidualHead` (``ModelConfig.head = "residual"``) reads instead
  each element's signed reconstruction residual, the score and the
  Mahalanobis distance, with non-negative weights.
* ``supervised``: an MLP head trained end to end from scratch on the deposits
  (:mod:`~mstgat_core.training.train`); the ablation "without pretraining".

Modules: ``config`` (:class:`ModelConfig`), ``spectral`` (the Transformer),
``spatial`` (MSGAT), ``readouts`` (reconstruction and the fused head) and
``mstgat`` (the fused model).
"""

from .config import MAX_MEMBERS, READOUTS, VARIANTS, ModelConfig
from .mstgat import MSTGAT, Details, GridPrediction
from .readouts import HEADS, FusedHead, Reconstruction, ResidualHead
from .spatial import MSGAT, ScaleStack, neighbour_entropy
from .spectral import AttentionEncoderLayer, SpectralTransformer, attention_rollout

__all__ = [
    "MAX_MEMBERS",
    "MSGAT",
    "MSTGAT",
    "READOUTS",
    "VARIANTS",
    "AttentionEncoderLayer",
    "Details",
    "FusedHead",
    "HEADS",
    "ResidualHead",
    "GridPrediction",
    "ModelConfig",
    "Reconstruction",
    "ScaleStack",
    "SpectralTransformer",
    "attention_rollout",
    "neighbour_entropy",
]
