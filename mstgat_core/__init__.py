"""MSTGAT Explorer: multiscale Transformer-graph attention for geochemical anomalies.

The workflow a notebook needs, from the top-level package::

    import mstgat_core as mst

    grid = mst.load_grid("survey.nc")                      # or load_points + points_to_grid
    cells = mst.deposit_cells(grid, mst.load_deposits("deposits.csv"))
    fitted = mst.fit(grid, cells)                          # a FittedModel
    probability = fitted.predict(grid)                     # xarray DataArray on the grid
    mst.save_checkpoint(fitted, "model.safetensors")
    explanation = mst.explain_cell(fitted, fitted.prepare(grid), row=40, col=60)
    report = mst.cross_validate(grid, cells, methods=["mstgat", "random_forest"])

Names are imported on first use, so ``import mstgat_core`` stays light
(torch is loaded only when a name that needs it is used).

The bundled South China demo (grid, deposits, checkpoint) ships with the package, in a checkout
and in an installed wheel alike: :mod:`mstgat_core.paths` (``DEMO_GRID``, ``DEMO_DEPOSITS``,
``DEMO_CHECKPOINT``) says where. Most public names have runnable examples in their docstrings.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .errors import Cancelled, DataError

try:
    __version__ = version("mstgat-explorer")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"

# public name -> (module, name in that module)
_API = {
    # data
    "load_grid": ("data.io", "load_grid"),
    "save_grid": ("data.io", "save_grid"),
    "grid_info": ("data.io", "grid_info"),
    "load_points": ("data.io", "load_points"),
    "points_to_grid": ("data.io", "points_to_grid"),
    "load_deposits": ("data.io", "load_deposits"),
    "deposit_cells": ("data.io", "deposit_cells"),
    "make_scenario": ("data.synthetic", "make_scenario"),
    "Normaliser": ("data.preprocess", "Normaliser"),
    "valid_mask": ("data.preprocess", "valid_mask"),
    "TRANSFORMS": ("data.preprocess", "TRANSFORMS"),
    # model and training
    "ModelConfig": ("model", "ModelConfig"),
    "MSTGAT": ("model", "MSTGAT"),
    "VARIANTS": ("model", "VARIANTS"),
    "TrainConfig": ("training.train", "TrainConfig"),
    "PretrainConfig": ("training.pretrain", "PretrainConfig"),
    "FineTuneConfig": ("training.finetune", "FineTuneConfig"),
    "fit": ("training.pipeline", "fit"),
    "pretrain_backbone": ("training.pipeline", "pretrain_backbone"),
    "FittedModel": ("training.pipeline", "FittedModel"),
    "save_checkpoint": ("training.checkpoint", "save_checkpoint"),
    "load_checkpoint": ("training.checkpoint", "load_checkpoint"),
    # interpretation
    "explain_cell": ("interpret", "explain_cell"),
    "attention_maps": ("interpret", "attention_maps"),
    "attribution_maps": ("interpret", "attribution_maps"),
    "summarise": ("interpret", "summarise"),
    # evaluation
    "cross_validate": ("evaluation.crossval", "cross_validate_grid"),
    "METHODS": ("evaluation.crossval", "METHODS"),
    "report_markdown": ("evaluation.evaluate", "report_markdown"),
}

__all__ = ["Cancelled", "DataError", "__version__", *_API]


def __getattr__(name):
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(import_module(f".{module}", __name__), attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
