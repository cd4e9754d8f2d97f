"""What the Thresholds card and the Evaluation tab's P-A plot read from a session (Panel-free): the thresholds
of the map's current layer, the P-A plot and success-rate curve of the current model against the loaded
deposits, and the target zones of the current layer as a GeoPackage download."""

from __future__ import annotations

import io as _io
from typing import TYPE_CHECKING

import numpy as np

from ..data.support import support_mask
from ..errors import DataError
from ..evaluation.thresholds import threshold_lines
from .state_selection import TOP_SHARES

if TYPE_CHECKING:
    from .state import Session

ZONES_FILE = "mstgat_target_zones.gpkg"


def ground(session: Session, values: np.ndarray) -> np.ndarray:
    """Cells of ``values`` (y, x) with a finite value on measured ground (the grid's support, when it has one)."""
    cells = np.isfinite(values)
    support = support_mask(session.data.ds) if session.data.ds is not None else None
    return cells if support is None else cells & support


def thresholds_markdown(session: Session) -> str:
    """The thresholds of the map's current layer on measured ground, as markdown: C-A breakpoints,
    75/85/95 % and the break between two populations (or why there is none)."""
    selection = session.selection
    da = selection.layer_data(selection.layer)
    if da is None:
        return "No map layer yet."
    values = np.asarray(da.values, dtype=np.float64)
    if values.ndim != 2:
        return f"**{selection.layer}**: not a map layer."
    values = values[ground(session, values)]
    if values.size == 0:
        return f"**{selection.layer}**: no value on measured ground."
    lines = [f"**Thresholds of {selection.layer}** ({values.size:,} cells of measured ground)", ""]
    return "\n".join(lines + [f"- {line}" for line in threshold_lines(values)])


def model_curves(session: Session):
    """``(P-A curve, (area, captured, AUC))`` of the current model's score against the loaded deposit cells on
    measured ground, or None without a model or deposits."""
    from ..evaluation.prediction_area import prediction_area, success_rate

    probability, deposits = session.model.probability, session.data.deposit_mask
    if probability is None or deposits is None:
        return None
    values = np.asarray(probability.values, dtype=np.float64)
    cells = ground(session, values)
    return prediction_area(values, deposits, cells), success_rate(values, deposits, cells)


def export_target_zones(session: Session) -> _io.BytesIO:
    """The target zones of the map's current layer -- the outlined top share (connected cells at or above its
    cut, on measured ground) -- with their leading elements and deposits, as a GeoPackage in the grid's CRS."""
    from ..evaluation.zones import target_zones, write_zones

    data, selection = session.data, session.selection
    da = selection.layer_data(selection.layer)
    if da is None or np.asarray(da.values).ndim != 2:
        raise DataError("no map layer to outline: load data first")
    values = np.asarray(da.values, dtype=np.float64)
    elements = [e for e in data.elements if e in data.ds.data_vars]
    zones = target_zones(
        da,
        TOP_SHARES[selection.top_share],
        ground=ground(session, values),
        grid=data.ds if elements else None,
        elements=elements,
        deposits=data.deposits,
        crs=data.ds.rio.crs,
    )
    path = session.folder.path / ZONES_FILE
    write_zones(zones, path)
    return _io.BytesIO(path.read_bytes())
