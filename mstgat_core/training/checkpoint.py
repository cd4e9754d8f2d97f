"""Safe checkpoints: safetensors weights plus validated JSON metadata.

A checkpoint is one ``.safetensors`` file. Its tensors are the model's
``state_dict``; its header metadata holds, as JSON, the model config, the
fitted normaliser (elements and global statistics), the training protocol,
a fingerprint of the training data and the package version. Loading never
unpickles anything, so a file crafted to run code on load is just refused as
"not a checkpoint".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .. import __version__
from ..data.preprocess import Normaliser
from ..data.support import SUPPORT, support_mask, support_summary
from ..errors import DataError
from ..files import atomic_output
from ..model import MSTGAT, ModelConfig
from .pipeline import FittedModel
from .train import TrainConfig

FORMAT = "mstgat-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "mstgat"


def grid_fingerprint(ds: xr.Dataset, elements=None) -> str:
    """SHA-256 of the element names, grid coordinates and values (NaN-stable), and the sample support if any."""
    digest = hashlib.sha256()
    for name in elements or list(ds.data_vars):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(ds[name].values, dtype=np.float32).tobytes())
    for axis in ("y", "x"):
        digest.update(np.ascontiguousarray(ds[axis].values, dtype=np.float64).tobytes())
    support = support_mask(ds)
    if support is not None:
        digest.update(SUPPORT.encode())
        digest.update(np.packbits(support).tobytes())
    return "sha256:" + digest.hexdigest()


def save_checkpoint(fitted: FittedModel, path, data: xr.Dataset | None = None, extra: dict | None = None) -> Path:
    """Write ``fitted`` to ``path`` atomically (a failure leaves no partial file).

    Parameters
    ----------
    fitted : FittedModel
        The model to save; its ``metadata`` is carried over, then overwritten
        by the standard keys (format, versions, creation time, configs,
        normaliser, training summary, fingerprint).
    path : str or path-like
        The ``.safetensors`` file; missing parent folders are created.
    data : xr.Dataset, optional
        The training grid: its SHA-256 fingerprint (the model's elements'
        values, the coordinates and the sample support) is stored as
        ``data_fingerprint`` and its support summary as ``data_support``
        (None when not given).
    extra : dict, optional
        JSON-serialisable entries added to the metadata (provenance, notes);
        they may not replace the standard keys (:class:`DataError`).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    standard = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_config": fitted.config.to_dict(),
        "normaliser": fitted.normaliser.to_dict(),
        "train_config": fitted.train_config.to_dict() if fitted.train_config else None,
        "train_result": fitted.train_result.to_dict() if fitted.train_result else None,
        "data_fingerprint": grid_fingerprint(data, fitted.elements) if data is not None else None,
        "data_support": support_summary(data, fitted.elements) if data is not None else None,
    }
    clash = sorted(set(extra or {}) & set(standard))
    if clash:
        raise DataError(f"extra metadata may not replace the checkpoint's own keys: {', '.join(clash)}")
    metadata = {**fitted.metadata, **(extra or {}), **standard}
    tensors = {k: v.detach().contiguous().clone() for k, v in fitted.model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(metadata)})
    return path


def read_metadata(path) -> dict:
    """The validated metadata of a checkpoint, without building the model."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path.name} is not an MSTGAT checkpoint (safetensors) file") from exc
    try:
        metadata = json.loads(header[METADATA_KEY])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path.name} has no MSTGAT metadata") from exc
    _validate(metadata, path.name)
    return metadata


def _validate(metadata: dict, name: str) -> None:
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise DataError(f"{name} is not an MSTGAT checkpoint")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{name} has checkpoint format {metadata.get('format_version')!r}; this version reads {FORMAT_VERSION}"
        )
    config = metadata.get("model_config")
    if not isinstance(config, dict):
        raise DataError(f"{name} has an invalid model config")
    unknown = sorted(set(config) - {f.name for f in dataclasses.fields(ModelConfig)})
    if unknown:
        raise DataError(f"{name} has an invalid model config: unknown setting(s) {', '.join(map(str, unknown))}")
    elements = (metadata.get("normaliser") or {}).get("elements")
    if not isinstance(elements, list) or not elements or not all(isinstance(e, str) for e in elements):
        raise DataError(f"{name} has no valid element list")
    if config.get("n_elements") != len(elements):
        raise DataError(f"{name}: model expects {config.get('n_elements')} elements but lists {len(elements)}")


def load_checkpoint(path) -> FittedModel:
    """Rebuild a :class:`FittedModel` from a checkpoint, safely (nothing is unpickled).

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_checkpoint`.

    Returns
    -------
    FittedModel
        In eval mode, with its model config, normaliser and training config.
        ``train_result`` is None; the saved training summary is
        ``metadata["train_result"]`` (a dict), beside the other metadata
        (``data_fingerprint``, ``package_version``, ``created``, ...).

    Raises
    ------
    DataError
        If the file is missing, is not a safetensors file, has no or invalid
        MSTGAT metadata (format, format version, model config, element list),
        or its weights do not match its model config.
    """
    metadata = read_metadata(path)
    name = Path(path).name
    try:
        config = ModelConfig.from_dict(metadata["model_config"])
        normaliser = Normaliser.from_dict(metadata["normaliser"])
        train_config = TrainConfig(**metadata["train_config"]) if metadata.get("train_config") else None
    except (TypeError, ValueError, KeyError) as exc:
        raise DataError(f"{name} has invalid settings: {exc}") from exc
    with torch.device("meta"):  # the shapes the config implies, before any memory is allocated
        expected = {k: tuple(v.shape) for k, v in MSTGAT(config).state_dict().items()}
    with safe_open(str(path), framework="pt") as f:
        stored = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
        if stored != expected:
            raise DataError(f"{name}: weights do not match the model config")
        state = {key: f.get_tensor(key) for key in f.keys()}
    model = MSTGAT(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataError(f"{name}: weights do not match the model config") from exc
    extra = {k: v for k, v in metadata.items() if k not in ("model_config", "normaliser", "train_config")}
    return FittedModel(model.eval(), normaliser, train_config, metadata=extra)
