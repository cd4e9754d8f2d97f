"""From a grid and its deposit cells to a fitted model, and from a fitted model to maps.

:class:`FittedModel` bundles what a prediction needs: the network, the
normaliser with its global statistics, the element list and the graph
settings. It is what checkpoints store and what the CLI, the dashboard and
the notebooks use. Every prediction goes through :meth:`FittedModel.predict`
(whole grid or tiles) and, below it, :meth:`MSTGAT.predict_grid`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import torch
import xarray as xr
from scipy.stats import rankdata

from ..data.preprocess import Normaliser, valid_mask
from ..data.support import SUPPORT, support_mask, without_support
from ..errors import Cancelled, DataError
from ..graphs.graph import GridGraph
from ..graphs.tiling import automatic_tile, count_tiles, halo_of, iter_tiles
from ..model import MSTGAT, GridPrediction, ModelConfig
from .finetune import FineTuneConfig, FineTuneResult
from .folds import FoldSettings
from .pretrain import PretrainConfig
from .procedure import Backbone, FitSettings, fit_network, pretrain_network, with_scale_readout
from .train import TrainConfig, TrainResult

PROBABILITY_ATTRS = {
    "long_name": "anomaly score (0-1, ranks cells; not a calibrated probability)",
    "units": "1",
}
OUTPUT_ATTRS = {
    "label_free": {"long_name": "label-free score: log mean squared reconstruction error", "units": "1"},
    "novelty": {
        "long_name": "unlikeness to the training grid: embedding distance or reconstruction error over its "
        "99.5th percentile there (> 1: unlike almost every training cell)",
        "units": "1",
    },
    "calibrated": {"long_name": "calibrated probability that the cell holds a deposit (inner-CV Platt)", "units": "1"},
}
SUPPORT_ATTRS = {
    "long_name": "sample support: 1 measured ground, 0 interpolated far from any sample (not scored)",
    "units": "1",
}
NOVEL_SHARE_WARNING = 0.1  # warn when more than this share of a grid's cells have novelty > 1


def grid_array(image, template: xr.DataArray, name: str, **attrs) -> xr.DataArray:
    """A (y, x) array (numpy or dask) on the grid of ``template``, with its CRS."""
    out = xr.DataArray(
        image, coords={"y": template["y"].values, "x": template["x"].values}, dims=("y", "x"), name=name, attrs=attrs
    )
    crs = template.rio.crs
    return out.rio.write_crs(crs) if crs is not None else out


def probability_grid(image, template: xr.DataArray, variant: str) -> xr.DataArray:
    """The anomaly-probability layer every prediction returns (and every writer saves)."""
    return grid_array(image, template, "probability", **PROBABILITY_ATTRS, variant=variant)


@dataclass
class PreparedGrid:
    """A grid turned into model inputs: features of valid cells and the multiscale graph."""

    x: torch.Tensor
    graph: GridGraph
    template: xr.DataArray  # a (y, x) layer of the source grid, for coordinates and CRS

    @property
    def rows_cols(self):
        return self.graph.rows_cols

    def scatter(self, values: np.ndarray) -> np.ndarray:
        """Per-node values as a float32 (ny, nx) image, NaN on invalid cells."""
        image = np.full(self.graph.mask.shape, np.nan, dtype=np.float32)
        image[self.graph.mask] = values
        return image

    def to_grid(self, values: np.ndarray, name: str, **attrs) -> xr.DataArray:
        """Scatter per-node values back onto the grid (NaN on invalid cells)."""
        return grid_array(self.scatter(values), self.template, name, **attrs)


@dataclass
class FittedModel:
    """A trained MSTGAT (or variant) with everything needed to apply it to a grid.

    Parameters
    ----------
    model : MSTGAT
        The network; its :class:`~mstgat_core.model.ModelConfig` gives the
        variant, scales, sizes, readout and ensemble members.
    normaliser : Normaliser
        Fitted transform and global statistics; its ``elements`` are the
        model's input elements, in order.
    train_config : TrainConfig, optional
        The protocol of the supervised readout (stored in checkpoints).
    train_result : TrainResult or FineTuneResult, optional
        Its training history, or what fine-tuning chose.
    metadata : dict
        Anything else a checkpoint carried (provenance, data fingerprint,
        pretraining and fine-tuning settings).

    Examples
    --------
    >>> fitted = fit(grid, deposit_mask)                # doctest: +SKIP
    >>> probability = fitted.predict(grid)              # doctest: +SKIP
    >>> prepared = fitted.prepare(grid)                 # doctest: +SKIP
    >>> explain_cell(fitted, prepared, row=10, col=20)  # doctest: +SKIP
    """

    model: MSTGAT
    normaliser: Normaliser
    train_config: TrainConfig | None = None
    train_result: TrainResult | FineTuneResult | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def elements(self) -> list[str]:
        """The model's input elements, in order."""
        return list(self.normaliser.elements)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def n_members(self) -> int:
        return self.config.members

    def check_elements(self, ds: xr.Dataset) -> None:
        """Raise :class:`DataError` naming the model's elements missing from ``ds``."""
        check_elements(ds, self.elements)

    def prepare(self, ds: xr.Dataset) -> PreparedGrid:
        """Features and graph of ``ds`` with the model's elements and global statistics.

        Raises :class:`DataError` if an element is missing or no cell has data
        for all of them.
        """
        return prepare_grid(ds, self.normaliser, self.config)

    def predict_prepared(self, prepared: PreparedGrid, details: bool = False, **options) -> GridPrediction:
        """Per-cell prediction on a prepared grid; ``options`` (``spectral_batch``,
        ``progress``) go to :meth:`MSTGAT.predict_grid <mstgat_core.model.MSTGAT.predict_grid>`."""
        stencil = prepared.graph.stencil if self.config.uses_spatial else None
        return self.model.predict_grid(prepared.x, stencil, details=details, **options)

    def output_names(self) -> list[str]:
        """The per-cell outputs of :meth:`window_outputs` for this model."""
        names = ["probability"]
        if self.model.fused:
            names += ["members", "label_free", "novelty"]
            if not torch.isnan(self.model.head.calibration[0]):
                names.append("calibrated")
        return names

    def window_outputs(self, window: xr.Dataset) -> dict[str, np.ndarray]:
        """Every per-cell output on every cell of ``window``, float32, NaN without data.

        ``probability`` (ny, nx); with the fused readout also ``members``
        (members, ny, nx), ``label_free``, ``novelty`` and, when calibrated,
        ``calibrated``. Cells near the window's edge see a truncated
        neighbourhood; tiled prediction keeps only the cells at least the halo
        away from a cut edge.
        """
        self.check_elements(window)
        ny, nx = window.sizes["y"], window.sizes["x"]
        names = self.output_names()
        if not valid_mask(window, self.elements).any():
            return {
                n: np.full((self.n_members, ny, nx) if n == "members" else (ny, nx), np.nan, np.float32) for n in names
            }
        prepared = self.prepare(window)
        prediction = self.predict_prepared(prepared)
        out = {}
        for name in names:
            values = getattr(prediction, name).numpy()
            out[name] = (
                np.stack([prepared.scatter(v) for v in values.T]) if name == "members" else prepared.scatter(values)
            )
        return out

    def predict_window(self, window: xr.Dataset) -> np.ndarray:
        """The probability on every cell of ``window``: float32 (ny, nx), NaN without data."""
        return self.window_outputs(window)["probability"]

    def tile_size(self, ds: xr.Dataset, tile: int | None = None) -> int | None:
        """The tile size :meth:`predict` uses for ``ds``: ``tile`` if given, else
        :func:`~mstgat_core.tiling.automatic_tile` (None = the whole grid at once)."""
        if tile is not None:
            tile = int(tile)
            if tile < 1:
                raise DataError(f"tile size must be at least 1 cell, got {tile}", setting="tile")
            return tile
        return automatic_tile((ds.sizes["y"], ds.sizes["x"]))

    def predict(
        self,
        ds: xr.Dataset,
        tile: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> xr.DataArray:
        """Anomaly score on the grid of ``ds`` (NaN where data are missing).

        Parameters
        ----------
        ds : xr.Dataset
            A grid holding the model's elements; may be lazily loaded (each
            tile then reads only its window plus halo).
        tile : int, optional
            Predict in tiles of ``tile`` x ``tile`` cells, each read with a halo
            of the receptive radius: the same result in bounded memory. By
            default grids over ``tiling.AUTO_TILE_CELLS`` cells are tiled
            (see :meth:`tile_size`).
        progress : callable, optional
            ``progress(done, total)`` after each tile (a whole-grid prediction
            is one tile).
        cancel : threading.Event, optional
            When set, raises :class:`~mstgat_core.errors.Cancelled` before the
            next tile.

        Returns
        -------
        xr.DataArray
            float32 ``probability`` on ``ds``'s (y, x) grid, with its CRS: the
            anomaly score (an ensemble's: from the members' mean logit).
        """
        return probability_grid(
            self.predict_outputs(ds, tile, progress, cancel)["probability"], ds[self.elements[0]], self.config.variant
        )

    def predict_outputs(self, ds: xr.Dataset, tile=None, progress=None, cancel=None) -> dict[str, np.ndarray]:
        """:meth:`window_outputs` on the whole grid of ``ds``, tile by tile; arguments as in :meth:`predict`."""
        self.check_elements(ds)
        shape = (ds.sizes["y"], ds.sizes["x"])
        tile = self.tile_size(ds, tile) or max(shape)
        total = count_tiles(shape, tile)
        subset = ds[self.elements]
        out = {}
        for t in iter_tiles(shape, tile, halo_of(self)):
            if cancel is not None and cancel.is_set():
                raise Cancelled("prediction cancelled")
            for name, values in self.window_outputs(subset.isel(t.outer_isel).load()).items():
                if name not in out:
                    out[name] = np.full((*values.shape[:-2], *shape), np.nan, dtype=np.float32)
                out[name][(Ellipsis, *t.inner_slices)] = values[(Ellipsis, *t.crop)]
            if progress is not None:
                progress(t.index + 1, total)
        return out

    def predict_layers(self, ds: xr.Dataset, tile=None, progress=None, cancel=None, top: float = 0.05):
        """Every map a geologist reads, as one Dataset (what ``mstgat predict`` writes).

        Returns
        -------
        xr.Dataset
            ``probability`` (the anomaly score); ``percentile`` (its rank among
            the grid's valid cells, 100 = highest: the top 5 % of the area is
            ``percentile > 95``); with the fused readout ``label_free``,
            ``novelty`` (see :data:`OUTPUT_ATTRS`) and, when fitted,
            ``calibrated``; for an ensemble also ``uncertainty`` (the members'
            standard deviation, exactly 0 where they agree; on the label-free
            route the members are the score under other element groupings,
            :mod:`~mstgat_core.model.grouping`) and
            ``top_agreement`` (share of members that put the cell in their top
            ``top`` share of valid cells); ``support`` (:meth:`support_layer`:
            every score is NaN off the grid's sample support). Arguments as in
            :meth:`predict`.
        """
        outputs = self.predict_outputs(ds, tile, progress, cancel)
        score = outputs["probability"]
        valid = np.isfinite(score)
        template = ds[self.elements[0]]
        percentile = np.full(score.shape, np.nan, dtype=np.float32)
        percentile[valid] = 100.0 * rankdata(score[valid]) / max(int(valid.sum()), 1)
        layers = {
            "probability": probability_grid(score, template, self.config.variant),
            "percentile": grid_array(
                percentile,
                template,
                "percentile",
                units="%",
                long_name="rank of the anomaly score among the valid cells (100 = highest)",
            ),
        }
        for name in ("label_free", "novelty", "calibrated"):
            if name in outputs:
                layers[name] = grid_array(outputs[name], template, name, **OUTPUT_ATTRS[name])
        layers[SUPPORT] = grid_array(self.support_layer(ds), template, SUPPORT, **SUPPORT_ATTRS)
        members = outputs.get("members")
        if members is not None and len(members) > 1:
            members = members.astype(np.float64)  # an exact 0 spread where the members agree
            cut = np.array([np.quantile(m[valid], 1 - top) for m in members]) if valid.any() else np.zeros(len(members))
            agreement = (members >= cut[:, None, None]).mean(axis=0).astype(np.float32)
            agreement[~valid] = np.nan
            layers["uncertainty"] = grid_array(
                members.std(axis=0).astype(np.float32),
                template,
                "uncertainty",
                units="1",
                long_name="standard deviation of the ensemble members' scores",
            )
            layers["top_agreement"] = grid_array(
                agreement,
                template,
                "top_agreement",
                units="1",
                long_name=f"share of members that rank the cell in their top {top:.0%}",
            )
        return xr.Dataset(layers)

    def support_layer(self, ds: xr.Dataset) -> np.ndarray:
        """float32 (ny, nx): 1 on measured ground, 0 where the model's elements have data but the grid's
        sample support does not reach (scores there are NaN), NaN without data."""
        data = valid_mask(without_support(ds), self.elements)
        support = support_mask(ds)
        layer = np.full(data.shape, np.nan, dtype=np.float32)
        layer[data] = 1.0 if support is None else support[data].astype(np.float32)
        return layer

    def novel_share(self, layers: xr.Dataset) -> float | None:
        """Share of the valid cells with novelty above 1 (None without a novelty layer)."""
        if "novelty" not in layers:
            return None
        values = layers["novelty"].values
        valid = np.isfinite(values)
        return float((values[valid] > 1).mean()) if valid.any() else None

    def applicability_warning(self, layers: xr.Dataset) -> str | None:
        """A one-line warning when much of a grid lies outside what the model saw, else None."""
        share = self.novel_share(layers)
        if share is None or share <= NOVEL_SHARE_WARNING:
            return None
        return (
            f"warning: {share:.0%} of the cells look unlike the model's training grid (novelty > 1, "
            f"about 1 % there): the model may not apply to this survey; read the map with care"
        )


def fit(
    ds: xr.Dataset,
    deposits: xr.DataArray,
    model_config: dict | None = None,
    train_config: TrainConfig | None = None,
    transform: str = "clr",
    elements=None,
    callback: Callable | None = None,
    cancel: threading.Event | None = None,
    members: int = 5,
    pretrain_config: PretrainConfig | None = None,
    finetune_config: FineTuneConfig | None = None,
    pretrained: bool = True,
    backbone: FittedModel | None = None,
    fold_settings: FoldSettings | None = None,
) -> FittedModel:
    """Fit MSTGAT (or a variant) on a grid with its deposit cells as positives.

    By default (``pretrained=True``) the branches are first pretrained on every
    cell by masked-element reconstruction (no labels,
    :mod:`~mstgat_core.pretrain`), then an ensemble of ``members`` linear heads
    is fine-tuned on the deposits with settings chosen by inner
    cross-validation (:mod:`~mstgat_core.finetune`). ``pretrained=False``
    trains the ``supervised`` readout end to end from scratch
    (:mod:`~mstgat_core.train`; one member). Both go through
    :func:`~mstgat_core.training.procedure.fit_network`, the procedure the
    cross-validation runs in every fold.

    Parameters
    ----------
    ds : xr.Dataset
        The survey grid, one variable per element (see :func:`~mstgat_core.io.load_grid`).
    deposits : xr.DataArray
        Bool (y, x) on the same grid: cells holding known deposits
        (see :func:`~mstgat_core.io.deposit_cells`).
    model_config : dict, optional
        Fields of :class:`~mstgat_core.model.ModelConfig` (``variant``,
        ``scales``, ``d_model``, ...); ``n_elements``, ``readout`` and
        ``members`` are set here. An unknown field raises
        :class:`~mstgat_core.errors.DataError`.
    train_config : TrainConfig, optional
        Protocol of the supervised readout (``pretrained=False``); its seed
        seeds pretraining and fine-tuning unless their configs are given.
    transform : {"clr", "log", "none"}
        Compositional transform before robust scaling (see
        :data:`~mstgat_core.preprocess.TRANSFORMS`).
    elements : list of str, optional
        Use only these elements (default: every variable of ``ds``).
    callback : callable, optional
        Called after every epoch with a :class:`~mstgat_core.pretrain.PretrainLog`
        (pretraining) or an :class:`~mstgat_core.train.EpochLog` (supervised).
    cancel : threading.Event, optional
        When set, stops at the next epoch with :class:`~mstgat_core.errors.Cancelled`.
    members : int
        Ensemble members (heads on the shared pretrained backbone).
    pretrain_config : PretrainConfig, optional
        Pretraining settings (default :class:`~mstgat_core.pretrain.PretrainConfig`).
    finetune_config : FineTuneConfig, optional
        Fine-tuning settings (default :class:`~mstgat_core.finetune.FineTuneConfig`).
    pretrained : bool
        Pretrain and fine-tune (default) or train from scratch.
    backbone : FittedModel, optional
        A pretrained model (``mstgat pretrain``, or any fitted model with the
        fused readout) to fine-tune instead of pretraining anew; its
        normaliser, elements and architecture are kept, except
        ``scale_readout`` when ``model_config`` gives it: the scale readout is
        a head over the same backbone (pretraining does not depend on it).
    fold_settings : FoldSettings, optional
        Link distance, buffer and minimum negative distance of fine-tuning's
        inner cross-validation (default: from the model's receptive field).

    Returns
    -------
    FittedModel
    """
    settings = FitSettings(
        pretrained=pretrained or backbone is not None,
        members=int(members),
        train=train_config or TrainConfig(),
        pretrain=pretrain_config,
        finetune=finetune_config,
        folds=fold_settings,
    )
    if backbone is not None:
        if not backbone.model.fused:
            raise DataError("the backbone is not a pretrained model (it has no label-free readout)", setting="backbone")
        normaliser, config = backbone.normaliser, backbone.config
    else:
        normaliser = Normaliser(transform=transform, elements=elements).fit(ds)
        config = ModelConfig.from_dict(
            model_config,
            n_elements=len(normaliser.elements),
            readout="fused" if settings.pretrained else "supervised",
            members=1,
        )
    prepared = prepare_grid(ds, normaliser, config)
    positives = _positives(deposits, prepared.graph.mask)
    given = None
    if backbone is not None:
        network = backbone.model
        wanted = (model_config or {}).get("scale_readout")
        if wanted is not None and bool(wanted) != config.scale_readout:
            network = with_scale_readout(network, prepared.x, prepared.graph.mask, bool(wanted))
            config = network.config
        given = Backbone.of(network, prepared.x, prepared.graph.mask)
    outcome = fit_network(
        config,
        prepared.x,
        prepared.graph,
        positives,
        settings=settings,
        backbone=given,
        callback=callback,
        cancel=cancel,
    )
    if not settings.pretrained:
        return FittedModel(outcome.model, normaliser, settings.train, outcome.result)
    if backbone is not None:
        pretrain_record = backbone.metadata.get("pretrain")
    else:
        pretrain_record = {"config": settings.pretrain_config.to_dict(), "result": outcome.backbone.result.to_dict()}
    finetune_record = {"config": settings.finetune_config.to_dict(), "result": outcome.result.to_dict()}
    return FittedModel(
        outcome.model,
        normaliser,
        None,
        outcome.result,
        metadata={"pretrain": pretrain_record, "finetune": finetune_record},
    )


def check_elements(ds: xr.Dataset, elements) -> None:
    """Raise :class:`DataError` naming the ``elements`` missing from ``ds``."""
    missing = [e for e in elements if e not in ds.data_vars]
    if missing:
        raise DataError(f"the model needs element(s) missing from the data: {', '.join(missing)}", setting="elements")


def prepare_grid(ds: xr.Dataset, normaliser: Normaliser, config: ModelConfig) -> PreparedGrid:
    """Features and graph of ``ds`` for a model of ``config`` with ``normaliser``'s elements and global statistics.

    Raises :class:`DataError` if an element is missing or no cell has data
    for all of them (:meth:`FittedModel.prepare` is this with the model's own).
    """
    check_elements(ds, normaliser.elements)
    mask = valid_mask(ds, normaliser.elements)
    if not mask.any():
        raise DataError("no cell has finite values for all of the model's elements", setting="elements")
    x = torch.from_numpy(normaliser.transform(ds, mask))
    return PreparedGrid(x, config.graph(mask), ds[normaliser.elements[0]])


def _positives(deposits: xr.DataArray, mask: np.ndarray) -> np.ndarray:
    """Node ids of the deposit cells among the valid cells of ``mask`` (DataError if the grids differ or none)."""
    labels = np.asarray(deposits.values, dtype=bool)
    if labels.shape != mask.shape:
        raise DataError(f"deposit grid {labels.shape} does not match the data grid {mask.shape}", setting="deposits")
    positives = np.nonzero(labels[mask])[0]
    if len(positives) == 0:
        raise DataError("no deposit falls on a valid cell of the grid: nothing to train on", setting="deposits")
    return positives


def pretrain_backbone(
    ds: xr.Dataset,
    model_config: dict | None = None,
    pretrain_config: PretrainConfig | None = None,
    transform: str = "clr",
    elements=None,
    callback: Callable | None = None,
    cancel: threading.Event | None = None,
) -> FittedModel:
    """Pretrain MSTGAT on every cell of ``ds``, no deposits: a label-free model and a backbone for :func:`fit`.

    Its map is the standardised label-free score (see :mod:`~mstgat_core.model`);
    arguments as in :func:`fit`. The network is built and pretrained by
    :func:`~mstgat_core.training.procedure.pretrain_network`, as in :func:`fit`.
    """
    normaliser = Normaliser(transform=transform, elements=elements).fit(ds)
    config = ModelConfig.from_dict(model_config, n_elements=len(normaliser.elements), readout="fused", members=1)
    pretrain_config = pretrain_config or PretrainConfig()
    prepared = prepare_grid(ds, normaliser, config)
    model, result = pretrain_network(config, prepared.x, prepared.graph.mask, pretrain_config, callback, cancel)
    return FittedModel(
        model, normaliser, metadata={"pretrain": {"config": pretrain_config.to_dict(), "result": result.to_dict()}}
    )
