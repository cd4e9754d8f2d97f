"""Neighbourhood features: what a cell's surroundings look like at several radii.

The MSTGAT model's graph attention sees every cell's square neighbourhood at
radii (scales) such as 1, 2 and 3 cells. Per-cell baselines see only the cell
itself; fed :func:`neighbourhood_features` instead of the plain features they
see the same information as the model (the cell, plus the mean and max of
every element over each window), which makes the comparison fair.

Only valid cells (``mask`` True) contribute; windows are clipped at the grid
edge. Nodes are the valid cells in row-major order (``np.nonzero(mask)``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import DataError


def _check(X, mask, radii):
    X = np.asarray(X)
    mask = np.asarray(mask, dtype=bool)
    if X.ndim != 2 or mask.ndim != 2:
        raise DataError(f"expected X of shape (n_nodes, E) and a 2D mask, got {X.shape} and {mask.shape}")
    if X.shape[0] != int(mask.sum()):
        raise DataError(f"X has {X.shape[0]} rows but the mask has {int(mask.sum())} valid cells")
    radii = [int(r) for r in radii]
    if any(r < 1 for r in radii):
        raise DataError(f"neighbourhood radii must be whole numbers >= 1, got {radii}")
    return X, mask, radii


def _window_sum(image, radius):
    """Sum over the (2r+1) x (2r+1) window of each cell of ``image`` (ny, nx, ...), zero outside."""
    weights = np.ones(2 * radius + 1)
    rows_summed = ndimage.correlate1d(image, weights, axis=0, mode="constant", cval=0.0)
    return ndimage.correlate1d(rows_summed, weights, axis=1, mode="constant", cval=0.0)


def neighbourhood_features(X, mask, radii=(1, 2, 3)):
    """Each cell's own features, then the window mean and max of every element per radius.

    Parameters
    ----------
    X : array of shape (n_nodes, E)
        Features of the valid cells in row-major order.
    mask : bool array of shape (ny, nx)
        The valid cells; invalid ones never contribute to a window.
    radii : sequence of int
        Window radii r >= 1; the window is the (2r+1) x (2r+1) square centred
        on the cell (the cell included), clipped at the grid edge.

    Returns
    -------
    float32 array of shape (n_nodes, E * (1 + 2 * len(radii)))
        Columns: the E own values, then for each radius in the order given the
        E window means and then the E window maxima (see :func:`feature_names`).
    """
    X, mask, radii = _check(X, mask, radii)
    n_elements = X.shape[1]
    valid = mask.astype(np.float64)
    values = np.zeros(mask.shape + (n_elements,))  # float64: window sums of float32 would lose digits
    values[mask] = X
    highest = np.full(mask.shape + (n_elements,), -np.inf)
    highest[mask] = X
    columns = [np.asarray(X, dtype=np.float64)]
    for radius in radii:
        counts = _window_sum(valid, radius)[mask]  # >= 1: the cell itself is valid
        columns.append(_window_sum(values, radius)[mask] / counts[:, None])
        size = (2 * radius + 1, 2 * radius + 1, 1)
        columns.append(ndimage.maximum_filter(highest, size=size, mode="constant", cval=-np.inf)[mask])
    return np.concatenate(columns, axis=1).astype(np.float32)


def feature_names(elements, radii=(1, 2, 3)):
    """Column names of :func:`neighbourhood_features`.

    Parameters
    ----------
    elements : sequence of str
        The element names, in the column order of ``X``.
    radii : sequence of int
        The radii passed to :func:`neighbourhood_features`.

    Returns
    -------
    list of str
        ``["Li", ..., "Li_mean_r1", ..., "Li_max_r1", ...]``.
    """
    elements = [str(e) for e in elements]
    names = list(elements)
    for radius in radii:
        names += [f"{e}_mean_r{int(radius)}" for e in elements]
        names += [f"{e}_max_r{int(radius)}" for e in elements]
    return names
