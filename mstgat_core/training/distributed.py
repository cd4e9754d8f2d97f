"""Prediction of large grids on a dask.distributed cluster, tile by tile.

Each task reads only its tile's window (plus halo, see :mod:`mstgat_core.tiling`)
of a chunked NetCDF/Zarr input, predicts it with
:meth:`FittedModel.predict_window <mstgat_core.pipeline.FittedModel.predict_window>`
and writes its interior into one chunk of a pre-created Zarr store
(optionally converted to NetCDF or GeoTIFF at the end). The output appears
atomically (temporary path, then rename).
"""

from __future__ import annotations

import gc
import os
import threading
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from ..data.io import load_grid, save_grid
from ..data.preprocess import Normaliser
from ..errors import DataError, one_line
from ..files import atomic_output, remove_path
from ..graphs.tiling import DEFAULT_TILE, Tile, halo_of, iter_tiles
from ..model import MSTGAT, ModelConfig
from .pipeline import FittedModel, probability_grid

_NETCDF_LOCK = threading.Lock()


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
    model = MSTGAT(ModelConfig.from_dict(payload["config"]))
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
    except DataError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read {path.name}: {one_line(exc)}") from None
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
    values = fitted.predict_window(window)[tile.crop]
    zarr.open_array(os.path.join(store, "probability"), mode="r+")[tile.inner_slices] = values
    return tile.index


def _create_store(template: xr.DataArray, path: Path, tile: int, variant: str) -> None:
    """An empty Zarr store with the output's coordinates, CRS and tile-sized chunks."""
    import dask.array as da

    empty = da.full(template.shape, np.nan, dtype=np.float32, chunks=(tile, tile))
    dataset = probability_grid(empty, template, variant).to_dataset()
    for name in dataset.variables:
        dataset[name].encoding = {}
    dataset["probability"].encoding = {"chunks": (tile, tile)}
    dataset.to_zarr(path, mode="w", compute=False, consolidated=False)


def _to_netcdf(store: Path, path: Path, tile: int) -> None:
    ds = xr.open_zarr(store, decode_coords="all", consolidated=False, chunks={})
    encoding = {
        "probability": {
            "zlib": True,
            "complevel": 4,
            "dtype": "float32",
            "chunksizes": (min(tile, ds.sizes["y"]), min(tile, ds.sizes["x"])),
        }
    }
    ds.to_netcdf(path, encoding=encoding, engine="netcdf4")
    ds.close()


def predict_distributed(
    fitted,
    data_path,
    out_path,
    tile: int = DEFAULT_TILE,
    scheduler: str | None = None,
    n_workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Predict the grid at ``data_path`` on a dask cluster; write ``out_path`` (.zarr, .nc or .tif).

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
        raise DataError(f"tile size must be at least 1 cell, got {tile}", setting="tile")
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
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
            torch_threads = 1
        else:
            client = Client(scheduler)
            torch_threads = None
        payload = client.scatter(model_payload(fitted), broadcast=True)
        tiles = list(iter_tiles(shape, tile, halo_of(fitted)))
        futures = [
            client.submit(
                _run_tile,
                payload,
                str(data_path),
                str(store),
                t,
                None,
                torch_threads,
                key=f"mstgat-tile-{store.name}-{t.index}",
                pure=False,
            )
            for t in tiles
        ]
        done = 0
        for future in as_completed(futures):
            future.result()  # re-raises a worker's error here
            done += 1
            if progress is not None:
                progress(done, len(tiles))

        if as_tif:  # GeoTIFF: written whole from the client (float32, 4 bytes per cell)
            with xr.open_zarr(store, decode_coords="all", consolidated=False) as result:
                save_grid(result.load(), out_path)
        else:
            with atomic_output(out_path) as final:
                if as_zarr:
                    os.replace(store, final)
                else:
                    _to_netcdf(store, final, tile)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        for temporary in (store, staged):
            if temporary is not None:
                remove_path(temporary)
    return out_path
