"""What every explanation needs: the model in eval mode, the cell of a click, cancellation, grids of
per-node values, and the baseline of the attributions."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import Cancelled, DataError

IG_BASELINE = (
    "all-zero normalised input = the grid's robust median composition "
    "(global centre of the normaliser); other cells held at their real values"
)
CLS = "[CLS]"


# ---------------------------------------------------------------------- helpers


def model_of(fitted):
    """The fitted model's network, switched to eval mode (no dropout)."""
    model = fitted.model
    model.eval()
    return model


def cell_of(prepared, row, col, x, y) -> tuple[int, int]:
    """(row, col) of a cell given by index or by map coordinates (nearest cell)."""
    ny, nx = prepared.graph.mask.shape
    if row is not None or col is not None:
        if row is None or col is None:
            raise DataError("give both row and col (or x and y)")
        row, col = int(row), int(col)
    elif x is not None and y is not None:
        row = nearest_index(prepared.template["y"].values, float(y), "y")
        col = nearest_index(prepared.template["x"].values, float(x), "x")
    else:
        raise DataError("give a cell as row and col, or as map coordinates x and y")
    if not (0 <= row < ny and 0 <= col < nx):
        raise DataError(f"cell (row {row}, col {col}) is outside the grid ({ny} x {nx} cells)")
    if not prepared.graph.mask[row, col]:
        raise DataError(f"cell (row {row}, col {col}) has no data")
    return row, col


def nearest_index(coords: np.ndarray, value: float, axis: str) -> int:
    """Index of the cell centre of ``coords`` nearest ``value``; DataError when more than half a cell away."""
    i = int(np.argmin(np.abs(coords - value)))
    step = float(np.abs(np.diff(coords)).min()) if len(coords) > 1 else np.inf
    if abs(coords[i] - value) > step / 2 + 1e-9 * max(abs(value), 1.0):
        raise DataError(
            f"{axis} = {value:g} is outside the grid ({coords.min():g} .. {coords.max():g} at cell centres)"
        )
    return i


def check_cancel(cancel):
    """Raise :class:`~mstgat_core.errors.Cancelled` if ``cancel`` (a threading.Event or None) is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("interpretation cancelled")


def stack_grid(prepared, values: np.ndarray, labels, dim: str, description: str) -> xr.DataArray:
    """(nodes, k) -> DataArray (dim, y, x)."""
    layers = [prepared.to_grid(values[:, i], "tmp") for i in range(values.shape[1])]
    out = xr.concat(layers, dim=dim).assign_coords({dim: list(labels)})
    out.attrs = {"description": description}
    return out
