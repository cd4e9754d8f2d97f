"""From a grid and its deposit cells to a fitted model, and from a fitted model to maps.

:class:`FittedModel` bundles what a prediction needs: the network, the
normaliser with its global statistics, the element list and the graph
settings. It is what checkpoints store and what the CLI, the dashboard and
the notebooks use. Every prediction goes through :meth:`FittedModel.predict`
(whole grid or tiles) and, below it, :meth:`MSTGAT.predict_grid`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import torch
import xarray as xr
from scipy.stats import rankdata

from .errors import Cancelled, DataError
from .graph import GridGraph, build_graph
from .model import MSTGAT, GridPrediction, ModelConfig
from .preprocess import Normaliser, valid_mask
from .pretrain import PretrainConfig, pretrain
from .tiling import automatic_tile, count_tiles, halo_of, iter_tiles
from .train import EpochLog, TrainConfig, TrainResult, train_model

PROBABILITY_ATTRS = {"long_name": "probability of mineralisation-related anomaly", "units": "1"}


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
        variant, scales and sizes.
    normaliser : Normaliser
        Fitted transform and global statistics; its ``elements`` are the
        model's input elements, in order.
    train_config : TrainConfig, optional
        The protocol it was trained with (stored in checkpoints).
    train_result : TrainResult, optional
        Its training history.
    metadata : dict
        Anything else a checkpoint carried (provenance, data fingerprint).
    members : list of MSTGAT, optional
        A deep ensemble: every member, ``model`` first (empty: ``model``
        alone). The map is the members' mean probability; their spread is
        the uncertainty (:meth:`predict_layers`). Explanations use
        ``model``.

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
    train_result: TrainResult | None = None
    metadata: dict = field(default_factory=dict)
    members: list[MSTGAT] = field(default_factory=list)

    @property
    def ensemble(self) -> list[MSTGAT]:
        """Every member of the ensemble (``[model]`` for a single model)."""
        return self.members or [self.model]

    @property
    def elements(self) -> list[str]:
        """The model's input elements, in order."""
        return list(self.normaliser.elements)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def check_elements(self, ds: xr.Dataset) -> None:
        """Raise :class:`DataError` naming the model's elements missing from ``ds``."""
        missing = [e for e in self.elements if e not in ds.data_vars]
        if missing:
            raise DataError(f"the model needs element(s) missing from the data: {', '.join(missing)}")

    def prepare(self, ds: xr.Dataset) -> PreparedGrid:
        """Features and graph of ``ds`` with the model's elements and global statistics.

        Raises :class:`DataError` if an element is missing or no cell has data
        for all of them.
        """
        self.check_elements(ds)
        mask = valid_mask(ds, self.elements)
        if not mask.any():
            raise DataError("no cell has finite values for all of the model's elements")
        x = torch.from_numpy(self.normaliser.transform(ds, mask))
        graph = build_graph(mask, self.config.scales, self.config.graph_mode)
        return PreparedGrid(x, graph, ds[self.elements[0]])

    def predict_prepared(self, prepared: PreparedGrid, details: bool = False, **options) -> GridPrediction:
        """Per-cell prediction on a prepared grid; ``options`` (``spectral_batch``,
        ``progress``) go to :meth:`MSTGAT.predict_grid <mstgat_core.model.MSTGAT.predict_grid>`."""
        stencil = prepared.graph.stencil if self.config.uses_spatial else None
        return self.model.predict_grid(prepared.x, stencil, details=details, **options)

    def member_window(self, window: xr.Dataset) -> np.ndarray:
        """Every member's probabilities on every cell of ``window``: float32 (members, ny, nx), NaN without data.

        Cells near the window's edge see a truncated neighbourhood; tiled
        prediction keeps only the cells at least the halo away from a cut edge.
        """
        self.check_elements(window)
        shape = (len(self.ensemble), window.sizes["y"], window.sizes["x"])
        if not valid_mask(window, self.elements).any():
            return np.full(shape, np.nan, dtype=np.float32)
        prepared = self.prepare(window)
        stencil = prepared.graph.stencil if self.config.uses_spatial else None
        return np.stack(
            [prepared.scatter(m.predict_grid(prepared.x, stencil).probability.numpy()) for m in self.ensemble]
        )

    def predict_window(self, window: xr.Dataset) -> np.ndarray:
        """The (ensemble-mean) probability on every cell of ``window``: float32 (ny, nx), NaN without data."""
        members = self.member_window(window)
        return members[0] if len(members) == 1 else members.mean(axis=0)

    def tile_size(self, ds: xr.Dataset, tile: int | None = None) -> int | None:
        """The tile size :meth:`predict` uses for ``ds``: ``tile`` if given, else
        :func:`~mstgat_core.tiling.automatic_tile` (None = the whole grid at once)."""
        if tile is not None:
            tile = int(tile)
            if tile < 1:
                raise DataError(f"tile size must be at least 1 cell, got {tile}")
            return tile
        return automatic_tile((ds.sizes["y"], ds.sizes["x"]))

    def predict(
        self,
        ds: xr.Dataset,
        tile: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> xr.DataArray:
        """Anomaly probability on the grid of ``ds`` (NaN where data are missing).

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
            float32 ``probability`` on ``ds``'s (y, x) grid, with its CRS.
        """
        members = self.predict_members(ds, tile, progress, cancel)
        image = members[0] if len(members) == 1 else members.mean(axis=0)
        return probability_grid(image, ds[self.elements[0]], self.config.variant)

    def predict_members(self, ds: xr.Dataset, tile=None, progress=None, cancel=None) -> np.ndarray:
        """Every member's probability map, float32 (members, ny, nx); arguments as in :meth:`predict`."""
        self.check_elements(ds)
        shape = (ds.sizes["y"], ds.sizes["x"])
        tile = self.tile_size(ds, tile) or max(shape)
        total = count_tiles(shape, tile)
        subset = ds[self.elements]
        images = np.full((len(self.ensemble), *shape), np.nan, dtype=np.float32)
        for t in iter_tiles(shape, tile, halo_of(self)):
            if cancel is not None and cancel.is_set():
                raise Cancelled("prediction cancelled")
            images[(slice(None), *t.inner_slices)] = self.member_window(subset.isel(t.outer_isel).load())[
                (slice(None), *t.crop)
            ]
            if progress is not None:
                progress(t.index + 1, total)
        return images

    def predict_layers(self, ds: xr.Dataset, tile=None, progress=None, cancel=None, top: float = 0.05):
        """The map, its percentile rank and, for an ensemble, how much the members agree: one Dataset.

        Returns
        -------
        xr.Dataset
            ``probability`` (the members' mean); ``percentile`` (its rank among
            the grid's valid cells, 100 = highest: the top 5 % of the area is
            ``percentile > 95``); for an ensemble also ``uncertainty`` (the
            members' standard deviation, exactly 0 where they agree) and
            ``top_agreement`` (share of members that put the cell in their top
            ``top`` share of valid cells). Arguments as in :meth:`predict`.
        """
        members = self.predict_members(ds, tile, progress, cancel).astype(np.float64)  # exact 0 spread if equal
        valid = np.isfinite(members[0])
        mean = members.mean(axis=0)
        template = ds[self.elements[0]]
        percentile = np.full(mean.shape, np.nan, dtype=np.float32)
        percentile[valid] = 100.0 * rankdata(mean[valid]) / max(int(valid.sum()), 1)
        layers = {
            "probability": probability_grid(mean.astype(np.float32), template, self.config.variant),
            "percentile": grid_array(
                percentile,
                template,
                "percentile",
                units="%",
                long_name="rank of the probability among the valid cells (100 = highest)",
            ),
        }
        if len(members) > 1:
            cut = np.array([np.quantile(m[valid], 1 - top) for m in members]) if valid.any() else np.zeros(len(members))
            agreement = (members >= cut[:, None, None]).mean(axis=0).astype(np.float32)
            agreement[~valid] = np.nan
            layers["uncertainty"] = grid_array(
                members.std(axis=0).astype(np.float32),
                template,
                "uncertainty",
                units="1",
                long_name="standard deviation of the members' probabilities",
            )
            layers["top_agreement"] = grid_array(
                agreement,
                template,
                "top_agreement",
                units="1",
                long_name=f"share of members that rank the cell in their top {top:.0%}",
            )
        return xr.Dataset(layers)


def fit(
    ds: xr.Dataset,
    deposits: xr.DataArray,
    model_config: dict | None = None,
    train_config: TrainConfig | None = None,
    transform: str = "clr",
    elements=None,
    callback: Callable[[EpochLog], None] | None = None,
    cancel: threading.Event | None = None,
    members: int = 1,
    pretrain_config: PretrainConfig | None = None,
) -> FittedModel:
    """Fit MSTGAT (or a variant) on a grid with its deposit cells as positives.

    Parameters
    ----------
    ds : xr.Dataset
        The survey grid, one variable per element (see :func:`~mstgat_core.io.load_grid`).
    deposits : xr.DataArray
        Bool (y, x) on the same grid: cells holding known deposits
        (see :func:`~mstgat_core.io.deposit_cells`).
    model_config : dict, optional
        Fields of :class:`~mstgat_core.model.ModelConfig` (``variant``,
        ``scales``, ``d_model``, ...); ``n_elements`` is set from the data.
    train_config : TrainConfig, optional
        Training protocol (epochs, learning rate, validation split, seed).
    transform : {"clr", "log", "none"}
        Compositional transform before robust scaling (see
        :data:`~mstgat_core.preprocess.TRANSFORMS`).
    elements : list of str, optional
        Use only these elements (default: every variable of ``ds``).
    callback : callable, optional
        Called with an :class:`~mstgat_core.train.EpochLog` after every epoch.
    cancel : threading.Event, optional
        When set, training stops at the next epoch with
        :class:`~mstgat_core.errors.Cancelled`.
    members : int
        Train a deep ensemble of this many members (seeds ``seed``,
        ``seed + 1``, ...); ``callback`` then sees every member's epochs.
    pretrain_config : PretrainConfig, optional
        First pretrain the branches on every cell by masked-element
        reconstruction (no labels, :mod:`~mstgat_core.pretrain`); every member
        starts from the pretrained weights.

    Returns
    -------
    FittedModel
    """
    normaliser = Normaliser(transform=transform, elements=elements).fit(ds)
    config = ModelConfig(**{**(model_config or {}), "n_elements": len(normaliser.elements)})
    train_config = train_config or TrainConfig()
    if int(members) < 1:
        raise DataError(f"an ensemble needs at least one member, got {members}")
    torch.manual_seed(train_config.seed)
    fitted = FittedModel(MSTGAT(config), normaliser, train_config)
    prepared = fitted.prepare(ds)
    labels = np.asarray(deposits.values, dtype=bool)
    if labels.shape != prepared.graph.mask.shape:
        raise DataError(f"deposit grid {labels.shape} does not match the data grid {prepared.graph.mask.shape}")
    positives = np.nonzero(labels[prepared.graph.mask])[0]
    if len(positives) == 0:
        raise DataError("no deposit falls on a valid cell of the grid: nothing to train on")
    backbone = None
    if pretrain_config is not None:  # no labels: every cell of the grid
        pretrain(fitted.model, prepared.x, prepared.graph.mask, pretrain_config, cancel=cancel)
        backbone = {k: v.clone() for k, v in fitted.model.state_dict().items()}
    results, models = [], [fitted.model]
    for i in range(int(members)):
        seed = train_config.seed + i
        if i > 0:
            torch.manual_seed(seed)
            models.append(MSTGAT(config))
        member = models[i]
        if backbone is not None:
            member.load_state_dict(backbone)
        results.append(
            train_model(
                member,
                prepared.x,
                prepared.graph,
                positives,
                config=dataclasses.replace(train_config, seed=seed),
                callback=callback,
                cancel=cancel,
            )
        )
    if int(members) > 1:
        fitted.members = models
        fitted.metadata["member_results"] = [r.to_dict() for r in results]
    fitted.train_result = results[0]
    return fitted
