"""The session's downloads: its map layers as one GeoTIFF or NetCDF file, the map shown as a PNG, a point
survey's sample scores as CSV or GeoPackage, the kept selections' cells as CSV
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


def map_figure(session: Session):
    """The map as shown, as a matplotlib figure: its layer with the map's colours and colour limits (the same
    :func:`~.plots_map.image` options), the outlined top share, the deposits and the samples when they are
    shown, axes in km naming the CRS, and the legend below the map, off the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.ticker import FuncFormatter

    from . import plots_map

    data, selection = session.data, session.selection
    da = selection.layer_data(selection.layer)
    if da is None:
        raise DataError("no map layer to export")
    key = selection.layer_key(selection.layer)
    log = selection.log_elements and key is not None and key.kind == "element"
    shown = plots_map.image(da, title=selection.layer, kind=key.colours if key else "value", log=log)
    style = shown.opts.get().kwargs
    values = np.asarray(da.values, dtype=float)
    finite = values[np.isfinite(values)]
    log = log and (finite > 0).any()
    if log:
        values = np.where(np.isfinite(values), np.maximum(values, finite[finite > 0].min()), np.nan)
    low, high = style["clim"]
    fig, ax = plt.subplots(figsize=(8, 8.5), dpi=120)
    xs, ys = da["x"].values, da["y"].values
    half_x = abs(float(xs[1] - xs[0])) / 2 if len(xs) > 1 else 0.5
    half_y = abs(float(ys[1] - ys[0])) / 2 if len(ys) > 1 else 0.5
    extent = [xs.min() - half_x, xs.max() + half_x, ys.min() - half_y, ys.max() + half_y]
    img = ax.imshow(
        values,
        extent=extent,
        origin="upper" if ys[0] > ys[-1] else "lower",
        cmap=style["cmap"],
        norm=LogNorm(low, high) if log else Normalize(low, high),
        interpolation="nearest",
    )
    fig.colorbar(img, ax=ax, shrink=0.7, label=style["clabel"])
    cut = selection.zone_cut()
    if selection.show_zones and cut is not None:
        probability = session.model.probability
        ax.contour(
            probability["x"].values, probability["y"].values, np.nan_to_num(probability.values, nan=-1.0),
            levels=[cut], colors="white", linewidths=1.5,
        )  # fmt: skip
        ax.plot([], [], color="white", linewidth=1.5, label=f"outline: {selection.top_share} of the area")
    crs = data.ds.rio.crs
    if data.deposits is not None and selection.show_deposits:
        dep = data.deposits.to_crs(crs) if crs is not None and data.deposits.crs is not None else data.deposits
        ax.scatter(dep.geometry.x, dep.geometry.y, c="red", s=30, marker="^", edgecolor="white", label="deposits")
    samples = data.sample_names() if selection.show_samples else None
    if samples is not None:
        ax.scatter(samples["x"], samples["y"], c="black", s=2, alpha=0.6, label="samples")
    axes = plots_map.crs_axes(crs)
    ax.set_xlabel(axes["xlabel"])
    ax.set_ylabel(axes["ylabel"])
    if "xformatter" in axes:  # metres shown in km, as on the map (no 1e6 offset)
        km = FuncFormatter(lambda v, _: f"{v / 1000:,.0f}")
        ax.xaxis.set_major_formatter(km)
        ax.yaxis.set_major_formatter(km)
    ax.set_xlim(extent[:2])
    ax.set_ylim(extent[2:])
    ax.set_facecolor("#dddddd")
    ax.set_title(f"{selection.layer} - {data.label}")
    ax.set_aspect("equal")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
    return fig


def export_png(session: Session) -> _io.BytesIO:
    """The map shown (:func:`map_figure`) as a PNG image."""
    import matplotlib.pyplot as plt

    fig = map_figure(session)
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


def export_kept_selections(session: Session) -> _io.BytesIO:
    """The kept selections' cells as CSV: row, col, x, y (the grid's CRS), selection (its name), colour."""
    table = session.selection.kept_table()
    if table.empty:
        raise DataError("no kept selection to export: pick cells and keep them under a name first")
    return _io.BytesIO(table.to_csv(index=False).encode())
