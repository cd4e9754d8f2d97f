"""Log / CLR transforms and robust scaling with global, serialisable statistics.

Statistics are fitted once over all valid cells of a grid and stored, so every
tile, batch or later prediction is scaled identically (never per tile).

Zero or negative values cannot be logged: before a log or CLR transform each
element is clipped to a floor of half its smallest positive value (fitted and
stored with the other statistics).
"""

from __future__ import annotations

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from ..errors import DataError
from .support import support_mask

TRANSFORMS = ("none", "log", "clr")
SCALINGS = ("none", "robust")
IQR_TO_SIGMA = 1.349  # IQR of a standard normal distribution


def _elements(ds: xr.Dataset, elements) -> list:
    names = list(elements) if elements is not None else list(ds.data_vars)
    missing = [e for e in names if e not in ds.data_vars]
    if missing:
        raise DataError(f"element(s) not in the grid: {', '.join(missing)}")
    return names


def valid_mask(ds: xr.Dataset, elements=None) -> np.ndarray:
    """Cells where every selected element is finite, on measured ground: the graph nodes.

    A grid that carries a ``support`` coordinate (:mod:`~mstgat_core.support`) keeps only its
    supported cells: interpolation far from any sample is not data.

    Parameters
    ----------
    ds : xr.Dataset
        A grid of ``(y, x)`` variables.
    elements : sequence of str, optional
        The elements to check (default: every variable).

    Returns
    -------
    np.ndarray
        bool ``(ny, nx)``.

    Raises
    ------
    DataError
        If an element is not in ``ds``.

    Examples
    --------
    >>> from mstgat_core import load_grid, valid_mask
    >>> from mstgat_core.paths import DEMO_GRID
    >>> mask = valid_mask(load_grid(DEMO_GRID))
    >>> mask.shape, mask.dtype, int(mask.sum())
    ((163, 141), dtype('bool'), 7533)
    """
    names = _elements(ds, elements)
    support = support_mask(ds)
    mask = np.ones((ds.sizes["y"], ds.sizes["x"]), dtype=bool) if support is None else support.copy()
    for e in names:
        mask &= np.isfinite(ds[e].values)
    return mask


def cell_matrix(ds: xr.Dataset, elements=None, mask=None):
    """Raw values of the valid cells, float32 (n_valid, E), rows in row-major order."""
    names = _elements(ds, elements)
    if mask is None:
        mask = valid_mask(ds, names)
    values = np.stack([ds[e].values[mask] for e in names], axis=1).astype("float32")
    return values, mask


class Normaliser:
    """Fitted transform (none/log/clr) followed by robust scaling (median, IQR/1.349).

    :meth:`fit` computes per element, over all valid cells: the floor (half
    the smallest positive value, 1e-6 if none) that values are clipped to
    before a log; then the centre (median) and scale (IQR/1.349, falling back
    to MAD x 1.4826, the standard deviation, then 1) of the transformed
    values. CLR is taken over the selected elements only. The statistics are
    stored (:meth:`to_dict`) so later grids and tiles are scaled identically.

    Parameters
    ----------
    transform : {"clr", "log", "none"}
        See :data:`TRANSFORMS`.
    scaling : {"robust", "none"}
        ``"none"`` keeps the transformed values (centre 0, scale 1).
    elements : sequence of str, optional
        The elements, in order (default: every variable of the grid given to
        :meth:`fit`).

    Attributes
    ----------
    transform_name, scaling, elements
        As given (``elements`` set by :meth:`fit` when None).
    floor, centre, scale : np.ndarray or None
        float64 per element; None until fitted.

    Raises
    ------
    DataError
        If ``transform`` or ``scaling`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from mstgat_core import Normaliser, make_scenario, valid_mask
    >>> grid = make_scenario(n_elements=6, seed=0).grid
    >>> normaliser = Normaliser(transform="clr").fit(grid)
    >>> normaliser.fitted, normaliser.elements
    (True, ['Li', 'Be', 'Nb', 'Sn', 'W', 'Cu'])
    >>> x = normaliser.transform(grid)  # the valid cells, row-major
    >>> x.shape == (valid_mask(grid).sum(), 6), x.dtype
    (True, dtype('float32'))
    >>> bool(np.allclose(np.median(x, axis=0), 0, atol=1e-6))  # robust scaling: median 0 per element
    True
    >>> Normaliser.from_dict(normaliser.to_dict()) == normaliser  # what checkpoints store
    True
    """

    def __init__(self, transform="clr", scaling="robust", elements=None):
        if transform not in TRANSFORMS:
            raise DataError(f"unknown transform {transform!r} (use {', '.join(TRANSFORMS)})")
        if scaling not in SCALINGS:
            raise DataError(f"unknown scaling {scaling!r} (use {', '.join(SCALINGS)})")
        self.transform_name = transform
        self.scaling = scaling
        self.elements = list(elements) if elements is not None else None
        self.floor = None
        self.centre = None
        self.scale = None

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`from_dict` with statistics) has set the statistics."""
        return self.centre is not None

    def fit(self, ds: xr.Dataset, mask=None) -> Normaliser:
        """Compute floors, centres and scales once over all valid cells."""
        self.elements = _elements(ds, self.elements)
        values, _ = cell_matrix(ds, self.elements, mask)
        if len(values) == 0:
            raise DataError("no valid cells to fit the normaliser on")
        self.floor = np.array([_positive_floor(values[:, i]) for i in range(values.shape[1])])
        transformed = self._apply_transform(values)
        if self.scaling == "robust":
            self.centre = np.median(transformed, axis=0)
            self.scale = _robust_scale(transformed)
        else:
            self.centre = np.zeros(values.shape[1])
            self.scale = np.ones(values.shape[1])
        return self

    def _apply_transform(self, values: np.ndarray) -> np.ndarray:
        values = values.astype("float64")
        if self.transform_name == "none":
            return values
        logs = np.log(np.maximum(values, self.floor))
        if self.transform_name == "clr":
            logs = logs - logs.mean(axis=1, keepdims=True)
        return logs

    def _require_fitted(self):
        if not self.fitted:
            raise DataError("the normaliser must be fitted before it is used")

    def transform(self, ds: xr.Dataset, mask=None) -> np.ndarray:
        """Normalised values of the valid cells, float32 (n_valid, E)."""
        self._require_fitted()
        values, _ = cell_matrix(ds, self.elements, mask)
        return ((self._apply_transform(values) - self.centre) / self.scale).astype("float32")

    def transform_dataset(self, ds: xr.Dataset) -> xr.Dataset:
        """The normalised values on the same grid (NaN outside valid cells), for display."""
        mask = valid_mask(ds, self.elements)
        rows = self.transform(ds, mask)
        out = xr.Dataset(coords={"y": ds["y"], "x": ds["x"]})
        for i, e in enumerate(self.elements):
            layer = np.full(mask.shape, np.nan, dtype="float32")
            layer[mask] = rows[:, i]
            out[e] = (("y", "x"), layer)
        out.attrs["normalisation"] = f"{self.transform_name} + {self.scaling}"
        return out.rio.write_crs(ds.rio.crs) if ds.rio.crs is not None else out

    def to_dict(self) -> dict:
        """Plain-JSON description (lists and floats) for checkpoints."""

        def listed(a):
            return None if a is None else [float(v) for v in a]

        return {
            "transform": self.transform_name,
            "scaling": self.scaling,
            "elements": self.elements,
            "floor": listed(self.floor),
            "centre": listed(self.centre),
            "scale": listed(self.scale),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Normaliser:
        """Rebuild a normaliser from :meth:`to_dict` output."""
        norm = cls(d["transform"], d["scaling"], d["elements"])
        for key in ("floor", "centre", "scale"):
            setattr(norm, key, None if d.get(key) is None else np.asarray(d[key], dtype="float64"))
        return norm

    def __eq__(self, other) -> bool:
        return isinstance(other, Normaliser) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Normaliser({self.transform_name!r}, {self.scaling!r}, elements={self.elements})"


def fit_table(values, elements, transform: str = "clr") -> tuple[Normaliser, np.ndarray]:
    """A :class:`Normaliser` fitted on a table of complete values (one row per point sample, one
    column per element) and the normalised rows, float32 (samples, E)."""
    # the Normaliser reads (y, x) layers: the samples as one row
    ds = xr.Dataset({e: (("y", "x"), np.asarray(values[e], dtype=float)[None, :]) for e in elements})
    normaliser = Normaliser(transform=transform, elements=list(elements)).fit(ds)
    return normaliser, normaliser.transform(ds)


def _positive_floor(column: np.ndarray) -> float:
    positive = column[column > 0]
    return float(positive.min()) / 2 if len(positive) else 1e-6


def _robust_scale(values: np.ndarray) -> np.ndarray:
    """IQR/1.349 per column, falling back to MAD*1.4826, the std, then 1."""
    centre = np.median(values, axis=0)
    tiny = 1e-9 * (1.0 + np.abs(centre))  # below this a spread is rounding noise
    q75, q25 = np.percentile(values, [75, 25], axis=0)
    scale = (q75 - q25) / IQR_TO_SIGMA
    mad = 1.4826 * np.median(np.abs(values - centre), axis=0)
    scale = np.where(scale > tiny, scale, mad)
    scale = np.where(scale > tiny, scale, values.std(axis=0))
    return np.where(scale > tiny, scale, 1.0)
