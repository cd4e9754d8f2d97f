"""One fit procedure: pretrain (or take a backbone) and fine-tune the heads, or train from scratch.

:func:`fit_network` is the only place where a network is fitted on a grid's
deposits: :func:`~mstgat_core.training.pipeline.fit` calls it once on the
whole grid, and the cross-validation
(:mod:`~mstgat_core.evaluation.crossval`) once per fold, with the fold's
training deposits and negative pool. Both hand it the same objects:

* the model's architecture (a :class:`~mstgat_core.model.ModelConfig`; the
  procedure sets its readout, members and head: ``FineTuneConfig.readout``),
* the features and the grid's :class:`~mstgat_core.graph.GridGraph`,
* the training positives and, optionally, where negatives may come from,
* the settings (:class:`FitSettings`: pretrained or from scratch, members,
  the pretraining, fine-tuning and training configs, and the fold settings
  of fine-tuning's inner cross-validation),
* optionally a :class:`Backbone` (pretrained weights with their frozen
  features), which cross-validation pretrains once per (variant, seed) and
  reuses in every fold: pretraining reads no label.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import DataError
from ..graphs.graph import GridGraph, GridStencil
from ..model import MSTGAT, ModelConfig
from .finetune import FineTuneConfig, FineTuneResult, finetune
from .folds import FoldSettings
from .pretrain import PretrainConfig, PretrainResult, fit_statistics, pretrain
from .train import TrainConfig, TrainResult, train_model


@dataclass(frozen=True)
class FitSettings:
    """How a network is fitted on deposits: every choice frozen before the fit (stored with it).

    Parameters
    ----------
    pretrained : bool
        Pretrain by masked-element reconstruction (or take a backbone) and
        fine-tune ``members`` heads (default), or train the ``supervised``
        readout from scratch (one member).
    members : int
        Ensemble members (heads on the shared backbone).
    train : TrainConfig
        The from-scratch protocol; its seed is the default seed of the others.
    pretrain : PretrainConfig, optional
        Pretraining (default ``PretrainConfig(seed=train.seed)``).
    finetune : FineTuneConfig, optional
        Fine-tuning (default ``FineTuneConfig(seed=train.seed)``).
    folds : FoldSettings, optional
        Link distance, buffer and minimum negative distance of fine-tuning's
        inner cross-validation: a cross-validation passes its own (outer)
        settings; default from the model's receptive field
        (:meth:`FoldSettings.for_config <mstgat_core.training.folds.FoldSettings.for_config>`).

    Raises
    ------
    DataError
        Fewer than one member, or an ensemble without pretraining.
    """

    pretrained: bool = True
    members: int = 5
    train: TrainConfig = field(default_factory=TrainConfig)
    pretrain: PretrainConfig | None = None
    finetune: FineTuneConfig | None = None
    folds: FoldSettings | None = None

    def __post_init__(self):
        if int(self.members) < 1:
            raise DataError(f"an ensemble needs at least one member, got {self.members}", setting="members")
        if not self.pretrained and int(self.members) != 1:
            raise DataError(
                "an ensemble needs pretraining: members share the pretrained backbone", setting="members", values=(1,)
            )

    @property
    def pretrain_config(self) -> PretrainConfig:
        """The pretraining settings in use (seeded by ``train.seed`` unless given)."""
        return self.pretrain if self.pretrain is not None else PretrainConfig(seed=self.train.seed)

    @property
    def finetune_config(self) -> FineTuneConfig:
        """The fine-tuning settings in use (seeded by ``train.seed`` unless given)."""
        return self.finetune if self.finetune is not None else FineTuneConfig(seed=self.train.seed)

    def reseeded(self, seed: int) -> FitSettings:
        """The same settings with every seed (training, pretraining, fine-tuning) set to ``seed``:
        one replicate of a cross-validation."""
        return dataclasses.replace(
            self,
            train=dataclasses.replace(self.train, seed=seed),
            pretrain=dataclasses.replace(self.pretrain_config, seed=seed),
            finetune=dataclasses.replace(self.finetune_config, seed=seed),
        )


@dataclass
class Backbone:
    """A pretrained network (fused readout) with its frozen features on one grid.

    Attributes
    ----------
    config : ModelConfig
        Its architecture (fused readout).
    state : dict
        A copy of its ``state_dict`` (loaded into each fine-tuned network with
        :meth:`MSTGAT.load_backbone <mstgat_core.model.MSTGAT.load_backbone>`).
    stencil : GridStencil or None
        The grid's stencil at its scales (None for ``spectral``).
    features : tuple of torch.Tensor
        ``(embedding, label-free score, residuals)`` of every valid cell
        (:meth:`MSTGAT.grid_features <mstgat_core.model.MSTGAT.grid_features>`):
        the backbone is frozen, so they are computed once, for every readout.
    result : PretrainResult, optional
        Its pretraining history, when it was pretrained here.
    x : torch.Tensor, optional
        The cells' normalised features, for :meth:`grouping_spread` (None: no spread over groupings,
        as for the point surveys' backbones).
    """

    config: ModelConfig
    state: dict
    stencil: GridStencil | None
    features: tuple
    result: PretrainResult | None = None
    x: torch.Tensor | None = None
    _spreads: dict = field(default_factory=dict, repr=False)

    @torch.no_grad()
    def grouping_spread(self, draws: int) -> np.ndarray | None:
        """Every cell's standard deviation (float64) of the label-free route's members over ``draws`` element
        groupings (:mod:`~mstgat_core.model.grouping`): the ``uncertainty`` layer of a label-free model with
        ``draws`` members. Computed once per count; None without ``x`` or with fewer than two draws."""
        if self.x is None or draws < 2:
            return None
        if draws not in self._spreads:
            model = MSTGAT(self.config)
            model.load_state_dict(self.state)
            model.eval()

            def embed(hidden):
                return model._embed_grid(self.x, self.stencil, hidden)[0]

            scores = model.grouping_scores(embed, self.x, self.x - self.features[2], draws)
            self._spreads[draws] = model.head.grouping_members(scores).double().numpy().std(axis=1)
        return self._spreads[draws]

    @classmethod
    def of(cls, model: MSTGAT, x: torch.Tensor, mask: np.ndarray, result: PretrainResult | None = None) -> Backbone:
        """The backbone of a pretrained ``model`` on the grid whose valid cells are ``mask``
        (``x``: their normalised features)."""
        if not model.fused:
            raise DataError("the backbone is not a pretrained model (it has no label-free readout)", setting="backbone")
        stencil = model.config.stencil(mask)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        return cls(model.config, state, stencil, model.grid_features(x, stencil, residual=True), result, x)

    @classmethod
    def pretrained(
        cls,
        config: ModelConfig,
        x: torch.Tensor,
        mask: np.ndarray,
        pretrain_config: PretrainConfig | None = None,
        callback: Callable | None = None,
        cancel: threading.Event | None = None,
    ) -> Backbone:
        """Pretrain a fresh network of ``config`` (fused readout, one member) on every valid cell of
        ``mask`` (:func:`pretrain_network`) and freeze its features."""
        model, result = pretrain_network(config, x, mask, pretrain_config or PretrainConfig(), callback, cancel)
        return cls.of(model, x, mask, result)


def backbone_config(config: ModelConfig) -> ModelConfig:
    """``config`` as pretraining builds it: the fused readout with one member and the embedding head (the
    head's kind is fine-tuning's choice; every kind shares the statistics pretraining sets)."""
    return ModelConfig.from_dict(config.to_dict(), readout="fused", members=1, head="embedding")


@torch.no_grad()
def with_scale_readout(model: MSTGAT, x: torch.Tensor, mask, scale_readout: bool = True) -> MSTGAT:
    """The pretrained backbone of ``model`` with heads that read each scale's message (or, with
    ``scale_readout=False``, do not): a new network, ready for fine-tuning.

    Pretraining does not depend on ``scale_readout`` (the reconstruction reads the branch embeddings
    only), so the backbone's weights are kept as they are; the head statistics (standardisation,
    novelty) are recomputed over the valid cells of ``mask`` (``x``: their normalised features) for the
    new embedding width, and any fine-tuned heads are dropped.
    """
    if not model.fused:
        raise DataError("the backbone is not a pretrained model (it has no label-free readout)", setting="backbone")
    config = backbone_config(ModelConfig.from_dict(model.config.to_dict(), scale_readout=bool(scale_readout)))
    wider = MSTGAT(config)
    wider.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("head.")}, strict=False)
    fit_statistics(wider, x, mask)
    return wider.eval()


def pretrain_network(
    config: ModelConfig,
    x: torch.Tensor,
    mask,
    pretrain_config: PretrainConfig,
    callback: Callable | None = None,
    cancel: threading.Event | None = None,
) -> tuple[MSTGAT, PretrainResult]:
    """A fresh network of ``config`` (as :func:`backbone_config`) pretrained on every valid cell of ``mask``
    (bool (ny, nx); or every sample of a point graph, see :func:`~mstgat_core.pretrain.pretrain`), ``x``
    their normalised features, and its pretraining history.

    Torch is seeded with ``pretrain_config.seed`` before the network is built,
    so its initial weights and its pretraining depend on that seed only.
    """
    torch.manual_seed(pretrain_config.seed)
    model = MSTGAT(backbone_config(config))
    return model, pretrain(model, x, mask, pretrain_config, callback, cancel)


@dataclass
class FitOutcome:
    """What :func:`fit_network` returns: the fitted network and what it chose.

    Attributes
    ----------
    model : MSTGAT
        The fitted network (in eval mode).
    result : FineTuneResult or TrainResult
        What fine-tuning chose (share, C, how, every inner figure, the inner
        fold settings) or the from-scratch training history.
    backbone : Backbone or None
        The backbone it was fine-tuned from (None from scratch).
    """

    model: MSTGAT
    result: FineTuneResult | TrainResult
    backbone: Backbone | None = None

    @property
    def how(self) -> str:
        """``"fine-tuned"`` (pretrained backbone, heads fitted) or ``"from scratch"``."""
        return "from scratch" if self.backbone is None else "fine-tuned"

    @torch.no_grad()
    def node_scores(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Every valid cell's score and calibrated probability (None when not calibrated) from the
        backbone's frozen features (fine-tuned networks only): the members' mean logit through a sigmoid."""
        if self.backbone is None:
            raise ValueError("node_scores needs a fine-tuned network; predict a from-scratch one on its grid")
        mean = self.model.head(*self.backbone.features).mean(dim=1)
        calibrated = self.model.head.calibrate(mean)
        return torch.sigmoid(mean).numpy(), None if calibrated is None else calibrated.double().numpy()

    @torch.no_grad()
    def member_spread(self) -> np.ndarray:
        """Every valid cell's standard deviation of the members' probabilities (float64, exactly 0 where they
        agree): the ``uncertainty`` layer of :meth:`~mstgat_core.training.pipeline.FittedModel.predict_layers`
        (on the label-free route over element groupings, :mod:`~mstgat_core.model.grouping`; 0 there when the
        backbone cannot score other groupings)."""
        if self.backbone is None:
            raise ValueError("member_spread needs a fine-tuned network")
        spread = self.backbone.grouping_spread(self.model.grouping_draws())
        if spread is not None:
            return spread
        members = torch.sigmoid(self.model.head(*self.backbone.features)).double().numpy()
        return members.std(axis=1)


def fit_network(
    config: ModelConfig,
    x: torch.Tensor | None,
    graph: GridGraph,
    positives,
    negative_candidates=None,
    settings: FitSettings | None = None,
    backbone: Backbone | None = None,
    callback: Callable | None = None,
    cancel: threading.Event | None = None,
) -> FitOutcome:
    """Fit a network on a grid's deposits: pretrain (or take ``backbone``) and fine-tune, or train from scratch.

    Parameters
    ----------
    config : ModelConfig
        The architecture (``n_elements``, variant, scales, sizes); the
        procedure sets ``readout`` and ``members`` from ``settings`` (a
        backbone's own architecture is used when one is given).
    x : torch.Tensor or None
        (cells, E) normalised features of the valid cells; may be None when
        fine-tuning a given ``backbone`` (its features are frozen).
    graph : GridGraph
        The grid's graph at the model's scales (:meth:`ModelConfig.graph
        <mstgat_core.model.ModelConfig.graph>`): its mask gives the cells.
    positives : array of int
        Training deposit cells (node ids).
    negative_candidates : array of int, optional
        Where negatives may come from (a cross-validation fold's training
        pool); default every cell far enough from the positives.
    settings : FitSettings, optional
        Default :class:`FitSettings`.
    backbone : Backbone, optional
        Pretrained weights and features to fine-tune instead of pretraining
        anew (``settings.pretrained`` must be True).
    callback : callable, optional
        Called after every epoch of pretraining or training from scratch.
    cancel : threading.Event, optional
        When set, stops pretraining or training with
        :class:`~mstgat_core.errors.Cancelled`.

    Returns
    -------
    FitOutcome
    """
    settings = settings or FitSettings()
    positives = np.asarray(positives, dtype=np.int64)
    if not settings.pretrained:
        if backbone is not None:
            raise ValueError("a backbone is fine-tuned, not trained from scratch: use pretrained=True")
        config = ModelConfig.from_dict(config.to_dict(), readout="supervised", members=1)
        torch.manual_seed(settings.train.seed)
        model = MSTGAT(config)
        result = train_model(
            model,
            x,
            graph,
            positives,
            negative_candidates=negative_candidates,
            config=settings.train,
            callback=callback,
            cancel=cancel,
        )
        return FitOutcome(model.eval(), result)
    if backbone is None:
        backbone = Backbone.pretrained(config, x, graph.mask, settings.pretrain_config, callback, cancel)
    finetune_config = settings.finetune_config
    head = finetune_config.readout
    model = MSTGAT(ModelConfig.from_dict(backbone.config.to_dict(), members=int(settings.members), head=head))
    model.load_backbone(backbone.state)
    rows, cols = graph.rows_cols
    result = finetune(
        model,
        x,
        backbone.stencil,
        rows,
        cols,
        positives,
        negative_candidates=negative_candidates,
        config=finetune_config,
        settings=settings.folds,
        features=backbone.features,
    )
    return FitOutcome(model.eval(), result, backbone)
