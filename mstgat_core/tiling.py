"""Tiled and distributed prediction with halos.

A prediction at a cell depends only on the cells within the model's receptive
radius ``R = gat_layers x max(scales)`` (0 for the spectral variant): the
spectral branch, the scale fusion and the head are per cell, and each GAT
layer looks one scale radius further. So a grid can be cut into tiles, each
read with a halo of ``R`` cells, predicted on its own graph and cropped to its
interior; the result equals the whole-grid prediction (up to float rounding).

Features always use the fitted normaliser's *global* statistics (never per
tile statistics). Memory is bounded by the tile size, not the grid size.

* :func:`predict_tiled`: one process, tile after tile.
* :func:`predict_distributed`: the same tiles as dask.distributed tasks; each
  task reads only its window of a chunked NetCDF/Zarr input and writes its
  interior into one chunk of a pre-created Zarr store (optionally converted to
  NetCDF at the end). The output appears atomically (temp path, then rename).
"""

from __future__ import annotations

import gc
import os
import shutil
import threading
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import torch
import xarray as xr

from .errors import Cancelled, DataError
from .graph import GridStencil, receptive_radius
from .preprocess import valid_mask

DEFAULT_TILE = 512
_NETCDF_LOCK = threading.Lock()
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
        return slice(self.inner[0], self.inner[1]), slice(self.inner[2], self.inner[3])

    @property
    def outer_isel(self) -> dict:
        return {"y": slice(self.outer[0], self.outer[1]), "x": slice(self.outer[2], self.outer[3])}


def halo_of(fitted) -> int:
    """Cells each tile must read beyond its interior (0 for the spectral variant)."""
    hops = fitted.model.hops
    return receptive_radius(fitted.config.scales, hops) if hops > 0 else 0


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
    ny, nx = (int(v) for v in shape)
    return -(-ny // tile) * -(-nx // tile)


# --------------------------------------------------------------------------- one window


@torch.no_grad()
def predict_window(fitted, window: xr.Dataset, spectral_batch: int | None = None) -> np.ndarray:
    """Probabilities on every cell of ``window`` (NaN on invalid cells), float32 (ny, nx).

    Cells near the window's edge see a truncated neighbourhood; callers keep
    only the cells at least the halo away from a cut edge.
    """
    elements = fitted.elements
    mask = valid_mask(window, elements)
    image = np.full(mask.shape, np.nan, dtype=np.float32)
    if not mask.any():
        return image
    x = torch.from_numpy(fitted.normaliser.transform(window, mask))
    model = fitted.model
    model.eval()
    config = fitted.config
    stencil = GridStencil.of(mask, config.scales, config.graph_mode) if config.uses_spatial else None
    logits = model(x, stencil, spectral_batch=spectral_batch)
    image[mask] = torch.sigmoid(logits).numpy()
    return image


def _probability_array(image: np.ndarray, template: xr.DataArray, variant: str) -> xr.DataArray:
    out = xr.DataArray(
        image, coords={"y": template["y"], "x": template["x"]}, dims=("y", "x"), name="probability",
        attrs={"long_name": "probability of mineralisation-related anomaly", "variant": variant},
    )
    crs = template.rio.crs
    return out.rio.write_crs(crs) if crs is not None else out


# --------------------------------------------------------------------------- tiled


def predict_tiled(
    fitted,
    ds: xr.Dataset,
    tile: int = DEFAULT_TILE,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> xr.DataArray:
    """Whole-grid probabilities computed tile by tile (equal to ``fitted.predict(ds)``).

    ``ds`` may be lazily loaded (dask-backed): each tile reads only its window
    plus halo. ``progress(done, total)`` is called after each tile; setting
    ``cancel`` raises :class:`~mstgat_core.errors.Cancelled` before the next tile.
    """
    fitted.check_elements(ds)
    shape = (ds.sizes["y"], ds.sizes["x"])
    halo = halo_of(fitted)
    total = count_tiles(shape, tile)
    image = np.full(shape, np.nan, dtype=np.float32)
    subset = ds[fitted.elements]
    for t in iter_tiles(shape, tile, halo):
        if cancel is not None and cancel.is_set():
            raise Cancelled("prediction cancelled")
        window = subset.isel(t.outer_isel).load()
        image[t.inner_slices] = predict_window(fitted, window)[t.crop]
        if progress is not None:
            progress(t.index + 1, total)
    return _probability_array(image, ds[fitted.elements[0]], fitted.config.variant)


# --------------------------------------------------------------------------- distributed


def model_payload(fitted) -> dict:
    """What a worker needs to rebuild the model: weights (numpy), config and normaliser dicts."""
    return {
        "token": uuid.uuid4().hex,
        "state": {k: v.detach().cpu().numpy().copy() for k, v in fitted.model.state_dict().items()},
        "config": fitted.config.to_dict(),
        "normaliser": fitted.normaliser.to_dict(),
    }


_WORKER_MODELS: dict = {}


def _fitted_from_payload(payload: dict):
    cached = _WORKER_MODELS.get(payload["token"])
    if cached is not None:
        return cached
    from .model import MSTGAT, ModelConfig
    from .pipeline import FittedModel
    from .preprocess import Normaliser

    model = MSTGAT(ModelConfig(**payload["config"]))
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in payload["state"].items()})
    model.eval()
    fitted = FittedModel(model, Normaliser.from_dict(payload["normaliser"]))
    _WORKER_MODELS.clear()  # one model per worker at a time
    _WORKER_MODELS[payload["token"]] = fitted
    return fitted


def open_lazy(path, chunks=None) -> xr.Dataset:
    """Open a NetCDF or Zarr grid lazily; nothing is read until used.

    ``chunks=None`` keeps xarray's lazy backend arrays, so ``.isel(window).load()``
    reads just that window from disk (what each tile task does); an int gives
    dask chunks of that size, ``{}`` the on-disk chunks.
    """
    if isinstance(chunks, int):
        chunks = {"y": chunks, "x": chunks}
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith(".zarr"):
            with warnings.catch_warnings():  # unconsolidated stores (ours) are fine
                warnings.simplefilter("ignore", RuntimeWarning)
                ds = xr.open_zarr(path, decode_coords="all", consolidated=None, chunks=chunks)
        elif name.endswith(".nc"):
            ds = xr.open_dataset(path, decode_coords="all", chunks=chunks)
        else:
            raise DataError(f"lazy reading needs a .nc or .zarr grid, got {path.name}")
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot read {path.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return ds.rename({k: v for k, v in {"lat": "y", "lon": "x"}.items() if k in ds.dims})


def _read_window(data_path: str, elements, tile: Tile, chunks) -> xr.Dataset:
    """The tile's window (with halo), in memory; the file is opened per task so a rewritten file is never stale.

    The netCDF4/HDF5 C libraries are not thread-safe, and xarray closes files
    from ``__del__`` at arbitrary times: with several worker threads in one
    process, reads and closes of a NetCDF file crashed the process. NetCDF
    windows are therefore read, closed and collected under one process-wide
    lock, without dask (the window is small).
    """
    if not str(data_path).lower().endswith(".nc"):
        with open_lazy(data_path, chunks) as ds:
            return ds[elements].isel(tile.outer_isel).load()
    with _NETCDF_LOCK:
        with open_lazy(data_path, chunks=None) as ds:
            window = ds[elements].isel(tile.outer_isel).load()
        del ds
        gc.collect()  # run the file managers' __del__ here, under the lock
    return window


def _run_tile(payload: dict, data_path: str, store: str, tile: Tile, chunks, torch_threads: int | None) -> int:
    """Dask task: read one window, predict, write the interior into the Zarr store."""
    import zarr

    if torch_threads:
        torch.set_num_threads(torch_threads)
    fitted = _fitted_from_payload(payload)
    window = _read_window(data_path, fitted.elements, tile, chunks)
    values = predict_window(fitted, window)[tile.crop]
    zarr.open_array(os.path.join(store, "probability"), mode="r+")[tile.inner_slices] = values
    return tile.index


def _create_store(template: xr.DataArray, path: Path, tile: int, variant: str) -> None:
    """An empty Zarr store with the output's coordinates, CRS and tile-sized chunks."""
    import dask.array as da

    ny, nx = template.shape
    empty = da.full((ny, nx), np.nan, dtype=np.float32, chunks=(tile, tile))
    out = xr.DataArray(
        empty, coords={"y": template["y"].values, "x": template["x"].values}, dims=("y", "x"), name="probability",
        attrs={"long_name": "probability of mineralisation-related anomaly", "variant": variant},
    )
    crs = template.rio.crs
    dataset = out.to_dataset()
    if crs is not None:
        dataset = dataset.rio.write_crs(crs)
    for name in dataset.variables:
        dataset[name].encoding = {}
    dataset["probability"].encoding = {"chunks": (tile, tile)}
    dataset.to_zarr(path, mode="w", compute=False, consolidated=False)


def _to_netcdf(store: Path, path: Path, tile: int) -> None:
    ds = xr.open_zarr(store, decode_coords="all", consolidated=False, chunks={})
    encoding = {"probability": {"zlib": True, "complevel": 4, "dtype": "float32",
                                "chunksizes": (min(tile, ds.sizes["y"]), min(tile, ds.sizes["x"]))}}
    ds.to_netcdf(path, encoding=encoding, engine="netcdf4")
    ds.close()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def predict_distributed(
    fitted,
    data_path,
    out_path,
    tile: int = DEFAULT_TILE,
    scheduler: str | None = None,
    n_workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Predict the grid at ``data_path`` on a dask cluster; write ``out_path`` (.zarr or .nc).

    ``scheduler`` None or ``"local"`` starts a ``LocalCluster(n_workers,
    threads_per_worker=1, processes=True)`` for the call; anything else is the
    address of a running scheduler (``tcp://host:8786``), whose workers must
    see ``data_path`` and ``out_path`` at the same paths (shared filesystem).
    Inputs other than NetCDF/Zarr are loaded here and staged as a temporary
    Zarr store next to the output. Returns the output path.
    """
    from distributed import Client, LocalCluster, as_completed

    data_path = Path(data_path).resolve()
    out_path = Path(out_path).resolve()
    tile = int(tile)
    if tile < 1:
        raise DataError(f"tile size must be at least 1 cell, got {tile}")
    if not data_path.exists():
        raise DataError(f"file not found: {data_path}")
    if not out_path.parent.exists():
        raise DataError(f"output folder does not exist: {out_path.parent}")
    as_zarr = out_path.name.lower().endswith(".zarr")
    as_tif = out_path.name.lower().endswith((".tif", ".tiff"))
    if not (as_zarr or as_tif or out_path.name.lower().endswith(".nc")):
        raise DataError(f"unknown output format: {out_path.name} (use .zarr, .nc or .tif)")

    stem = f".{out_path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    store = out_path.with_name(stem + ".zarr")
    staged = None
    cluster = client = None
    try:
        if not data_path.name.lower().endswith((".nc", ".zarr")):
            from .io import save_grid, load_grid

            staged = out_path.with_name(stem + "-input.zarr")
            save_grid(load_grid(data_path, fitted.elements), staged)
            data_path = staged
        ds = open_lazy(data_path)
        fitted.check_elements(ds)
        template = ds[fitted.elements[0]]
        shape = (ds.sizes["y"], ds.sizes["x"])
        _create_store(template, store, tile, fitted.config.variant)
        ds.close()

        if scheduler in (None, "local"):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
            torch_threads = 1
        else:
            client = Client(scheduler)
            torch_threads = None
        payload = client.scatter(model_payload(fitted), broadcast=True)
        tiles = list(iter_tiles(shape, tile, halo_of(fitted)))
        futures = [
            client.submit(_run_tile, payload, str(data_path), str(store), t, None, torch_threads,
                          key=f"mstgat-tile-{store.name}-{t.index}", pure=False)
            for t in tiles
        ]
        done = 0
        for future in as_completed(futures):
            future.result()  # re-raises a worker's error here
            done += 1
            if progress is not None:
                progress(done, len(tiles))

        if as_zarr:
            final_tmp = store
        elif as_tif:  # GeoTIFF: written whole from the client (float32, 4 bytes per cell)
            from .io import save_grid

            with xr.open_zarr(store, decode_coords="all", consolidated=False) as result:
                save_grid(result.load(), out_path)  # atomic (temp file, then rename)
            return out_path
        else:
            final_tmp = out_path.with_name(stem + ".nc")
            _to_netcdf(store, final_tmp, tile)
        if out_path.exists():
            _remove(out_path)
        os.replace(final_tmp, out_path)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        _remove(store)
        for extra in (out_path.with_name(stem + ".nc"), staged):
            if extra is not None:
                _remove(extra)
    return out_path
