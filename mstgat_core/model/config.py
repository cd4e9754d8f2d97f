"""Everything needed to rebuild a model: :class:`ModelConfig`, the variants and the readouts."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import DataError

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

    Raises
    ------
    ValueError
        If ``variant`` is unknown, or ``d_model``/``gat_hidden`` is not divisible
        by its head count. ``scales`` and ``graph_mode`` are checked only when
        a graph is built; :func:`~mstgat_core.graph.parse_scales` checks scales
        given as text.
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

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise DataError(f"unknown variant {self.variant!r}; use one of {', '.join(VARIANTS)}")
        if self.readout not in READOUTS:
            raise DataError(f"unknown readout {self.readout!r}; use one of {', '.join(READOUTS)}")
        if not 1 <= int(self.members) <= MAX_MEMBERS:
            raise DataError(f"an ensemble has 1 to {MAX_MEMBERS} members, got {self.members}")
        if self.readout == "supervised" and int(self.members) != 1:
            raise DataError("ensembles need the pretrained (fused) readout")
        if int(self.mask_groups) < 1:
            raise DataError(f"mask_groups must be at least 1, got {self.mask_groups}")
        self.members, self.mask_groups = int(self.members), int(self.mask_groups)
        self.scales = tuple(int(s) for s in self.scales)
        if self.variant == "spatial-single":
            self.scales = self.scales[:1]
        if self.d_model % self.heads or self.gat_hidden % self.gat_heads:
            raise DataError("d_model and gat_hidden must be divisible by their head counts")

    @property
    def uses_spectral(self) -> bool:
        return self.variant in ("mstgat", "spectral")

    @property
    def uses_spatial(self) -> bool:
        return self.variant != "spectral"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scales"] = list(self.scales)
        return d
