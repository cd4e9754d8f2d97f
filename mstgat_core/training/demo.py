"""The bundled South China demo, loaded once per process: its grid and deposits, the bundled checkpoint
with its prepared grid and predicted layers, and the file of those layers kept beside the checkpoint
(written by ``scripts/build_checkpoint.py``, read by the dashboard instead of predicting at start).

No Panel here: the dashboard wraps :func:`load_demo_cached` with ``pn.cache`` and passes its own
warm-up to :func:`demo_model_cached`.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from ..data import io as mio
from ..paths import DEMO_CHECKPOINT, DEMO_GRID, DEMO_LAYERS

_DEMO_CACHE: dict = {}
_DEMO_MODEL_CACHE: dict = {}
_DEMO_MODEL_LOCK = threading.Lock()


def load_demo_cached(grid_path: str, deposits_path: str):
    """Demo grid and deposits, loaded once per process (keyed on the path strings).

    Callers must not modify the returned objects.

    Parameters
    ----------
    grid_path, deposits_path : str
        The demo's files (:data:`~mstgat_core.paths.DEMO_GRID`, :data:`~mstgat_core.paths.DEMO_DEPOSITS`).

    Returns
    -------
    tuple
        ``(grid, deposits)``: the grid Dataset and the deposits GeoDataFrame in the grid's CRS.
    """
    key = (grid_path, deposits_path)
    if key not in _DEMO_CACHE:
        ds = mio.load_grid(grid_path)
        deposits = mio.load_deposits(deposits_path, crs=ds.rio.crs)
        _DEMO_CACHE[key] = (ds, deposits)
    return _DEMO_CACHE[key]


def demo_model_cached(
    checkpoint_path: str, grid_path: str, deposits_path: str, warm_up: Callable | None = None
) -> tuple:
    """The bundled checkpoint on the demo grid, computed once per process: a class opening the app at
    once pays for one prediction, not one per student.

    Callers must not modify the returned objects (the network: take a copy).

    Parameters
    ----------
    checkpoint_path, grid_path, deposits_path : str
        The checkpoint and the demo's files; together the cache's key.
    warm_up : callable, optional
        ``warm_up(fitted, prepared)``, run once when the entry is made (the dashboard explains one cell,
        so that the first click does not pay for torch's first pass).

    Returns
    -------
    tuple
        ``(fitted, prepared, layers)``: the model, the grid prepared for it, its predicted layers (read
        from :func:`read_demo_layers` when they were kept for these very files, else predicted).
    """
    from .checkpoint import load_checkpoint

    key = (checkpoint_path, grid_path, deposits_path)
    with _DEMO_MODEL_LOCK:
        if key not in _DEMO_MODEL_CACHE:
            ds, _ = load_demo_cached(grid_path, deposits_path)
            fitted = load_checkpoint(checkpoint_path)
            layers = read_demo_layers(checkpoint_path, grid_path)
            if layers is None:
                layers = fitted.predict_layers(ds)
            prepared = fitted.prepare(ds)
            if warm_up is not None:
                warm_up(fitted, prepared)
            _DEMO_MODEL_CACHE[key] = (fitted, prepared, layers)
        return _DEMO_MODEL_CACHE[key]


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_demo_layers(checkpoint_path=DEMO_CHECKPOINT, grid_path=DEMO_GRID, out=DEMO_LAYERS) -> Path:
    """Predict the bundled checkpoint's layers on the demo grid once (6-7 s on one core) and keep them in
    ``out``, stamped with both files' SHA-256, so that a server starts without predicting them."""
    from ..files import atomic_output
    from .checkpoint import load_checkpoint

    fitted = load_checkpoint(checkpoint_path)
    layers = fitted.predict_layers(mio.load_grid(grid_path))
    layers.attrs.update(checkpoint_sha256=_sha256(checkpoint_path), grid_sha256=_sha256(grid_path))
    encoding = {name: {"zlib": True, "complevel": 4} for name in layers.data_vars}
    with atomic_output(Path(out)) as tmp:
        layers.to_netcdf(tmp, encoding=encoding)
    return Path(out)


def read_demo_layers(checkpoint_path, grid_path) -> xr.Dataset | None:
    """The layers :func:`write_demo_layers` kept, if they were made from these very files; else None."""
    if not DEMO_LAYERS.exists():
        return None
    try:
        layers = xr.load_dataset(DEMO_LAYERS)
    except (OSError, ValueError):
        return None
    made_from = (layers.attrs.get("checkpoint_sha256"), layers.attrs.get("grid_sha256"))
    if made_from != (_sha256(checkpoint_path), _sha256(grid_path)):
        return None
    for key in ("checkpoint_sha256", "grid_sha256"):
        layers.attrs.pop(key)
    return layers.set_coords([name for name in ("spatial_ref",) if name in layers.data_vars])
