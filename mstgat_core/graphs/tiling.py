"""Tiles with halos: the geometry of tiled and distributed prediction.

A prediction at a cell depends only on the cells within the model's receptive
radius ``R = gat_layers x max(scales)`` (0 for the spectral variant): the
spectral branch, the scale fusion and the head are per cell, and each GAT
layer looks one scale radius further. So a grid can be cut into tiles, each
read with a halo of ``R`` cells, predicted on its own graph and cropped to its
interior; the result equals the whole-grid prediction (up to float rounding).

Features always use the fitted normaliser's *global* statistics (never per
tile statistics). Memory is bounded by the tile size, not the grid size.

* :meth:`FittedModel.predict <mstgat_core.pipeline.FittedModel.predict>`:
  one process, tile after tile (or the whole grid at once).
* :func:`mstgat_core.distributed.predict_distributed`: the same tiles as
  dask.distributed tasks.

This module only cuts grids into tiles; it imports no model code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import DataError

DEFAULT_TILE = 512
AUTO_TILE_CELLS = 2**20  # whole-grid prediction needs ~1.6 KB per cell (1.57 GB measured for 1 M cells)


def automatic_tile(shape) -> int | None:
    """The tile size to use when none is given: ``DEFAULT_TILE`` above ``AUTO_TILE_CELLS`` cells, else None."""
    ny, nx = (int(v) for v in shape)
    return DEFAULT_TILE if ny * nx > AUTO_TILE_CELLS else None


# --------------------------------------------------------------------------- tiles


@dataclass(frozen=True)
class Tile:
    """One tile: its interior and the window read with the halo (half-open row/col ranges)."""

    index: int
    inner: tuple[int, int, int, int]  # y0, y1, x0, x1
    outer: tuple[int, int, int, int]

    @property
    def crop(self) -> tuple[slice, slice]:
        """The interior inside the outer window."""
        y0, y1, x0, x1 = self.inner
        oy, _, ox, _ = self.outer
        return slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox)

    @property
    def inner_slices(self) -> tuple[slice, slice]:
        """The interior as (row, column) slices of the whole grid."""
        return slice(self.inner[0], self.inner[1]), slice(self.inner[2], self.inner[3])

    @property
    def outer_isel(self) -> dict:
        """The window read with its halo, as ``Dataset.isel`` keywords (``y``, ``x``)."""
        return {"y": slice(self.outer[0], self.outer[1]), "x": slice(self.outer[2], self.outer[3])}


def halo_of(fitted) -> int:
    """Cells each tile must read beyond its interior (0 for the spectral variant)."""
    return fitted.config.receptive_radius


def iter_tiles(shape, tile: int, halo: int) -> Iterator[Tile]:
    """Tiles of ``tile`` x ``tile`` cells (smaller at the far edges) covering ``shape``."""
    tile = int(tile)
    if tile < 1:
        raise DataError(f"tile size must be at least 1 cell, got {tile}")
    ny, nx = (int(v) for v in shape)
    index = 0
    for y0 in range(0, ny, tile):
        y1 = min(y0 + tile, ny)
        for x0 in range(0, nx, tile):
            x1 = min(x0 + tile, nx)
            outer = (max(y0 - halo, 0), min(y1 + halo, ny), max(x0 - halo, 0), min(x1 + halo, nx))
            yield Tile(index, (y0, y1, x0, x1), outer)
            index += 1


def count_tiles(shape, tile: int) -> int:
    """Number of ``tile`` x ``tile`` tiles covering a grid of ``shape`` (the last row and column may be partial)."""
    ny, nx = (int(v) for v in shape)
    return -(-ny // tile) * -(-nx // tile)
