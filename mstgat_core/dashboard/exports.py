"""The session's downloads: its map layers as one GeoTIFF or NetCDF file, the map shown as a PNG, a point
survey's sample scores as CSV or GeoPackage
(Panel-free; the evaluation table is :meth:`.EvaluationState.csv`, the model
:meth:`.ModelState.checkpoint_bytes`)."""

from __future__ import annotations

import io as _io
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from ..data import io as mio
from ..errors import DataError

if TYPE_CHECKING:
    from .state import Session


def export_layers(session: Session, fmt: str) -> _io.BytesIO:
    """Probability, model, attention and attribution maps as one .nc or multi-band .tif (``fmt``)."""
    model, explanation = session.model, session.explanation
    if model.probability is None:
        raise DataError("nothing to export: train or load a model first")
    layers = {"probability": model.probability}
    if model.layers is not None:
        layers.update({k: v for k, v in model.layers.data_vars.items() if k != "probability"})
    maps = explanation.maps
    if maps is not None and "cls_attention" in maps:
        for e in maps["element"].values:
            layers[f"cls_attention_{e}"] = maps["cls_attention"].sel(element=e, drop=True)
    if maps is not None and "scale_weights" in maps:
        for s in maps["scale"].values:
            layers[f"scale_weight_{s}"] = maps["scale_weights"].sel(scale=s, drop=True)
    if explanation.attributions is not None:
        for e in explanation.attributions["element"].values:
            layers[f"attribution_{e}"] = explanation.attributions.sel(element=e, drop=True)
    clean = {}
    for k, v in layers.items():
        v = v.reset_coords(drop=True).astype("float32")
        v.attrs = {}
        clean[k] = v
    ds = xr.Dataset(clean)
    crs = session.data.ds.rio.crs
    if crs is not None:
        ds = ds.rio.write_crs(crs)
    path = session.folder.path / f"mstgat_maps.{fmt}"
    mio.save_grid(ds, path)
    return _io.BytesIO(path.read_bytes())


def export_png(session: Session) -> _io.BytesIO:
    """The map's current layer (with the deposits when they are shown) as a PNG figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data, selection = session.data, session.selection
    da = selection.layer_data(selection.layer)
    if da is None:
        raise DataError("no map layer to export")
    fig, ax = plt.subplots(figsize=(7, 7), dpi=120)
    xs, ys = da["x"].values, da["y"].values
    extent = [xs.min(), xs.max(), ys.min(), ys.max()]
    img = ax.imshow(
        np.asarray(da.values, dtype=float),
        extent=extent,
        origin="upper" if ys[0] > ys[-1] else "lower",
        cmap="viridis",
    )
    fig.colorbar(img, ax=ax, shrink=0.7, label=selection.layer)
    if data.deposits is not None and selection.show_deposits:
        dep = data.deposits.to_crs(data.ds.rio.crs) if data.ds.rio.crs is not None else data.deposits
        ax.scatter(dep.geometry.x, dep.geometry.y, c="red", s=18, marker="^", edgecolor="white", label="deposits")
        ax.legend(loc="lower right")
    ax.set_title(f"{selection.layer} - {data.label}")
    ax.set_aspect("equal")
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    buf.seek(0)
    return buf


def export_sample_scores(session: Session, fmt: str) -> _io.BytesIO:
    """The scored samples as ``mstgat score`` writes them (``fmt``: ``csv``, or ``gpkg`` in the input's CRS)."""
    from ..training.scoring import write_point_scores

    table = session.model.sample_scores_table()
    path = session.folder.path / f"mstgat_sample_scores.{fmt}"
    write_point_scores(table, path, session.data.samples)
    return _io.BytesIO(path.read_bytes())
