"""Everything needed to rebuild a model: :class:`ModelConfig`, the variants and the readouts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from ..errors import DataError
from ..graphs.graph import GridGraph, GridStencil, build_graph, receptive_radius
from .readouts import HEADS

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
    head : str
        What the ``fused`` readout's supervised heads read, a key of
        :data:`~mstgat_core.model.readouts.HEADS`: ``"embedding"`` (the
        standardised embedding and score) or ``"residual"`` (per-element
        reconstruction residuals, score and Mahalanobis distance, non-negative
        weights). Fine-tuning sets it from ``FineTuneConfig.readout``;
        checkpoints without it are ``"embedding"`` (the only head before).

    Raises
    ------
    DataError
        If ``variant``, ``readout`` or ``head`` is unknown (or a head other
        than ``embedding`` without the fused readout), ``members`` or
        ``mask_groups`` is out of range, or ``d_model``/``gat_hidden`` is not
        divisible by its head count. ``scales`` and ``graph_mode`` are checked
        only when a graph is built; :func:`~mstgat_core.graph.parse_scales`
        checks scales given as text.

    Notes
    -----
    The config owns what follows from it: :attr:`hops`,
    :attr:`receptive_radius`, :meth:`stencil` and :meth:`graph` (consumers
    call these instead of rebuilding them from ``scales``), and
    :meth:`from_dict` rebuilds it from a stored dict with overrides.
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
    head: str = "embedding"

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise DataError(f"unknown variant {self.variant!r}; use one of {', '.join(VARIANTS)}", setting="variant")
        if self.readout not in READOUTS:
            raise DataError(f"unknown readout {self.readout!r}; use one of {', '.join(READOUTS)}", setting="readout")
        if self.head not in HEADS:
            raise DataError(f"unknown head {self.head!r}; use one of {', '.join(HEADS)}", setting="head")
        if self.head != "embedding" and self.readout != "fused":
            raise DataError(f"the {self.head} head needs the pretrained (fused) readout", setting="head")
        if not 1 <= int(self.members) <= MAX_MEMBERS:
            raise DataError(f"an ensemble has 1 to {MAX_MEMBERS} members, got {self.members}", setting="members")
        if self.readout == "supervised" and int(self.members) != 1:
            raise DataError("ensembles need the pretrained (fused) readout", setting="members", values=(1,))
        if int(self.mask_groups) < 1:
            raise DataError(f"mask_groups must be at least 1, got {self.mask_groups}", setting="mask_groups")
        self.members, self.mask_groups = int(self.members), int(self.mask_groups)
        self.scales = tuple(int(s) for s in self.scales)
        if self.variant == "spatial-single":
            self.scales = self.scales[:1]
        if self.d_model % self.heads or self.gat_hidden % self.gat_heads:
            raise DataError(
                "d_model and gat_hidden must be divisible by their head counts", setting=("d_model", "gat_hidden")
            )

    @classmethod
    def from_dict(cls, settings: dict | None = None, **overrides) -> ModelConfig:
        """A config from a stored dict (:meth:`to_dict`, a checkpoint, a user's settings) with ``overrides``.

        Parameters
        ----------
        settings : dict, optional
            Fields of the config (``scales`` may be a list); missing fields
            take their defaults.
        **overrides
            Fields that replace those of ``settings`` (e.g. ``n_elements``,
            ``readout``, ``members``).

        Returns
        -------
        ModelConfig

        Raises
        ------
        DataError
            A key that is no field of the config (nothing is ignored
            silently: the message names every unknown key), no
            ``n_elements``, or a value the config refuses.

        Examples
        --------
        >>> config = ModelConfig.from_dict({"scales": [1, 2], "d_model": 16}, n_elements=6, members=3, readout="fused")
        >>> config.scales, config.members
        ((1, 2), 3)
        """
        merged = {**(settings or {}), **overrides}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise DataError(
                f"unknown model setting(s): {', '.join(map(str, unknown))}; the model's settings are "
                f"{', '.join(sorted(known))}",
                setting=tuple(unknown),
            )
        if "n_elements" not in merged:
            raise DataError("model settings need n_elements (input features per cell)", setting="n_elements")
        return cls(**merged)

    @property
    def uses_spectral(self) -> bool:
        """Whether the variant has the spectral Transformer branch."""
        return self.variant in ("mstgat", "spectral")

    @property
    def uses_spatial(self) -> bool:
        """Whether the variant has the spatial (MSGAT) branch."""
        return self.variant != "spectral"

    @property
    def hops(self) -> int:
        """Message-passing layers: the receptive field of a cell in hops (0 without a spatial branch)."""
        return int(self.gat_layers) if self.uses_spatial else 0

    @property
    def receptive_radius(self) -> int:
        """Cells a prediction sees in each direction: ``gat_layers x max(scales)`` (0 for ``spectral``).

        The halo a tile needs and the base of the default fold settings
        (:meth:`FoldSettings.for_config <mstgat_core.training.folds.FoldSettings.for_config>`).
        """
        return receptive_radius(self.scales, self.hops) if self.hops > 0 else 0

    def stencil(self, mask: np.ndarray) -> GridStencil | None:
        """The :class:`~mstgat_core.graph.GridStencil` the spatial branch runs on over the valid cells of
        ``mask`` (bool (ny, nx)) at this config's scales and graph mode; None for ``spectral``."""
        return GridStencil.of(mask, self.scales, self.graph_mode) if self.uses_spatial else None

    def graph(self, mask: np.ndarray) -> GridGraph:
        """The multiscale :class:`~mstgat_core.graph.GridGraph` of ``mask`` at this config's scales and graph
        mode (edge lists built on first use); every variant gets one, for its node order and training batches."""
        return build_graph(mask, self.scales, self.graph_mode)

    def to_dict(self) -> dict:
        """Plain-JSON fields (``scales`` as a list): what checkpoints store and :meth:`from_dict` reads."""
        d = asdict(self)
        d["scales"] = list(self.scales)
        return d
