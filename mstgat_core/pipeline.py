"""From a grid and its deposit cells to a fitted model, and from a fitted model to maps.

:class:`FittedModel` bundles what a prediction needs: the network, the
normaliser with its global statistics, the element list and the graph
settings. It is what checkpoints store and what the CLI and the dashboard use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import xarray as xr

from .errors import DataError
from .graph import GridGraph, build_graph
from .model import MSTGAT, ModelConfig
from .preprocess import Normaliser, valid_mask
from .train import EpochLog, TrainConfig, TrainResult, predict_nodes, train_model


@dataclass
class PreparedGrid:
    """A grid turned into model inputs: features of valid cells and the multiscale graph."""

    x: torch.Tensor
    graph: GridGraph
    template: xr.DataArray  # a (y, x) layer of the source grid, for coordinates and CRS

    @property
    def rows_cols(self):
        return self.graph.rows_cols

    def to_grid(self, values: np.ndarray, name: str, **attrs) -> xr.DataArray:
        """Scatter per-node values back onto the grid (NaN on invalid cells)."""
        image = np.full(self.graph.mask.shape, np.nan, dtype=np.float32)
        image[self.graph.mask] = values
        out = xr.DataArray(image, coords=self.template.coords, dims=self.template.dims, name=name, attrs=attrs)
        crs = self.template.rio.crs
        return out.rio.write_crs(crs) if crs is not None else out


@dataclass
class FittedModel:
    model: MSTGAT
    normaliser: Normaliser
    train_config: TrainConfig | None = None
    train_result: TrainResult | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def elements(self) -> list[str]:
        return list(self.normaliser.elements)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def check_elements(self, ds: xr.Dataset) -> None:
        missing = [e for e in self.elements if e not in ds.data_vars]
        if missing:
            raise DataError(f"the model needs element(s) missing from the data: {', '.join(missing)}")

    def prepare(self, ds: xr.Dataset) -> PreparedGrid:
        """Features and graph of ``ds`` with the model's elements and global statistics."""
        self.check_elements(ds)
        mask = valid_mask(ds, self.elements)
        if not mask.any():
            raise DataError("no cell has finite values for all of the model's elements")
        x = torch.from_numpy(self.normaliser.transform(ds, mask))
        graph = build_graph(mask, self.config.scales, self.config.graph_mode)
        return PreparedGrid(x, graph, ds[self.elements[0]])

    def predict_prepared(self, prepared: PreparedGrid) -> np.ndarray:
        return predict_nodes(self.model, prepared.x, prepared.graph)

    def predict(self, ds: xr.Dataset, prepared: PreparedGrid | None = None) -> xr.DataArray:
        """Anomaly probability on the grid of ``ds`` (NaN where data are missing).

        Grids over ``tiling.AUTO_TILE_CELLS`` cells are predicted tile by tile
        (same result, bounded memory) unless ``prepared`` is given.
        """
        if prepared is None:
            from .tiling import automatic_tile, predict_tiled

            tile = automatic_tile((ds.sizes["y"], ds.sizes["x"]))
            if tile is not None:
                return predict_tiled(self, ds, tile=tile)
        prepared = prepared or self.prepare(ds)
        probability = self.predict_prepared(prepared)
        return prepared.to_grid(
            probability, "probability", long_name="probability of mineralisation-related anomaly",
            variant=self.config.variant,
        )


def fit(
    ds: xr.Dataset,
    deposits: xr.DataArray,
    model_config: dict | None = None,
    train_config: TrainConfig | None = None,
    transform: str = "clr",
    elements=None,
    callback: Callable[[EpochLog], None] | None = None,
    cancel: threading.Event | None = None,
) -> FittedModel:
    """Fit MSTGAT (or a variant) on ``ds`` with ``deposits`` (bool cells) as positives."""
    normaliser = Normaliser(transform=transform, elements=elements).fit(ds)
    config = ModelConfig(n_elements=len(normaliser.elements), **(model_config or {}))
    train_config = train_config or TrainConfig()
    torch.manual_seed(train_config.seed)
    fitted = FittedModel(MSTGAT(config), normaliser, train_config)
    prepared = fitted.prepare(ds)
    labels = np.asarray(deposits.values, dtype=bool)
    if labels.shape != prepared.graph.mask.shape:
        raise DataError(f"deposit grid {labels.shape} does not match the data grid {prepared.graph.mask.shape}")
    positives = np.nonzero(labels[prepared.graph.mask])[0]
    if len(positives) == 0:
        raise DataError("no deposit falls on a valid cell of the grid: nothing to train on")
    fitted.train_result = train_model(
        fitted.model, prepared.x, prepared.graph, positives,
        config=train_config, callback=callback, cancel=cancel,
    )
    return fitted
