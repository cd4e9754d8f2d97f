"""Synthetic survey grids with planted anomalies and known truth.

Background: log-normal element values whose logs share a few spatially smooth
latent factors (inter-element correlation) plus smooth element-specific noise
(spatial autocorrelation). Anomalies multiply chosen elements by a gaussian
radial profile. "Ore" anomalies host deposits; "decoy" anomalies look just as
strong but host none, so single-element or unsupervised methods can be fooled.
Everything is vectorised and float32, so millions of cells take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from scipy import ndimage

from ..errors import DataError

ELEMENT_NAMES = [
    "Li",
    "Be",
    "Nb",
    "Sn",
    "W",
    "Cu",
    "Pb",
    "Zn",
    "As",
    "Sb",
    "Au",
    "Ag",
    "Mo",
    "Bi",
    "Ni",
    "Co",
    "Cr",
    "V",
    "Ba",
    "Sr",
    "Zr",
    "Y",
    "La",
    "Th",
    "U",
    "Mn",
    "Ti",
    "P",
    "F",
    "B",
]
N_FACTORS = 3
ENRICHMENT_LOG = 1.3  # peak enrichment factor exp(1.3) ~ 3.7x
ORIGIN = (400_000.0, 2_600_000.0)  # west, south edge of the grid in map units


@dataclass
class Scenario:
    """What :func:`make_scenario` returns.

    Attributes
    ----------
    grid : xr.Dataset
        float32 element values (``units`` ppm), NaN outside the surveyed area.
    deposits : gpd.GeoDataFrame
        Points with columns ``row``, ``col`` (their cell), ``anomaly`` (name of
        the hosting anomaly), ``x``, ``y``.
    truth : dict
        ``anomalies`` (per anomaly: ``name``, ``elements``, ``scale``,
        ``centres`` as ``[row, col]``, ``hosts_deposits``), ``elements``,
        ``seed``, ``shape``.
    anomaly_mask : np.ndarray
        bool ``(ny, nx)``: surveyed cells within ``scale`` cells of the centre
        of a deposit-hosting anomaly.
    """

    grid: xr.Dataset
    deposits: gpd.GeoDataFrame
    truth: dict
    anomaly_mask: np.ndarray


def element_names(n: int) -> list:
    """The first ``n`` names of :data:`ELEMENT_NAMES`, then ``E31``, ``E32``, ... beyond its 30."""
    return ELEMENT_NAMES[:n] + [f"E{i + 1}" for i in range(len(ELEMENT_NAMES), n)]


def default_anomalies(names: list) -> list:
    """The default scenario: an ore anomaly on ``names[:3]`` (scale 3, six of them, hosting the
    deposits) and a decoy on ``names[3:5]`` (scale 2, four of them, no deposits); DataError below 5 names.
    """
    if len(names) < 5:
        raise DataError("the default scenario needs at least 5 elements (or pass anomalies=)")
    return [
        {"name": "ore", "elements": names[:3], "scale": 3, "n": 6, "hosts_deposits": True},
        {"name": "decoy", "elements": names[3:5], "scale": 2, "n": 4, "hosts_deposits": False},
    ]


def scale_anomalies(names: list, ore_scale: float, decoy_scale: float, n_ore: int, n_decoy: int) -> list:
    """Ore and decoy anomalies with the same elements and peak, at different spatial scales.

    Only the spatial extent tells them apart (as nugget-effect spikes or broad
    lithological highs mimic an ore signature in the field), so a model must
    use the neighbourhood at the scale where the two differ: the scenario for
    checking that learned scale weights follow the planted scale.
    """
    if len(names) < 3:
        raise DataError("a scale scenario needs at least 3 elements")
    return [
        {"name": "ore", "elements": names[:3], "scale": ore_scale, "n": n_ore, "hosts_deposits": True},
        {"name": "decoy", "elements": names[:3], "scale": decoy_scale, "n": n_decoy, "hosts_deposits": False},
    ]


SMALL_SCALE = {"ore_scale": 1.0, "decoy_scale": 0.4, "n_ore": 10, "n_decoy": 24}  # ore 1 cell, decoys one-cell spikes
LARGE_SCALE = {"ore_scale": 4.0, "decoy_scale": 1.5, "n_ore": 6, "n_decoy": 16}  # ore 4 cells, decoys 1.5 cells


def smooth_field(rng, shape, sigma: float) -> np.ndarray:
    """Standardised gaussian-filtered white noise (float32).

    Wide filters are run on a coarser grid and interpolated up, which keeps
    large scenarios fast; the result is just as smooth.
    """
    step = max(int(sigma // 2), 1)
    coarse = tuple(-(-n // step) + 1 for n in shape) if step > 1 else tuple(shape)
    field = ndimage.gaussian_filter(rng.standard_normal(coarse, dtype=np.float32), sigma / step, mode="wrap")
    if step > 1:
        field = ndimage.zoom(field, step, order=1, grid_mode=False)[: shape[0], : shape[1]]
    return (field - field.mean()) / (field.std() + 1e-12)


def survey_boundary(rng, shape) -> np.ndarray:
    """Bool mask of surveyed cells: a wobbly ellipse filling most of the grid."""
    ny, nx = shape
    yy = (np.arange(ny, dtype=np.float32)[:, None] - (ny - 1) / 2) / (ny / 2)
    xx = (np.arange(nx, dtype=np.float32)[None, :] - (nx - 1) / 2) / (nx / 2)
    wobble = smooth_field(rng, shape, sigma=max(min(shape) / 12, 1.0))
    return np.sqrt(xx**2 + yy**2) ** 4 < 1.0 + 0.15 * wobble  # squarish, ragged edge


def background(rng, shape, names) -> np.ndarray:
    """Log-values (E, ny, nx) with correlated, autocorrelated structure."""
    sigma = max(min(shape) / 30, 1.5)
    factors = np.stack([smooth_field(rng, shape, sigma) for _ in range(N_FACTORS)])
    loadings = rng.normal(0, 0.6, size=(len(names), N_FACTORS)).astype(np.float32)
    mean = rng.uniform(0.5, 4.0, size=len(names)).astype(np.float32)
    spread = rng.uniform(0.3, 0.6, size=len(names)).astype(np.float32)
    logs = np.empty((len(names),) + tuple(shape), dtype=np.float32)
    for e in range(len(names)):  # a loop over elements, not cells
        unique = smooth_field(rng, shape, sigma / 2)
        logs[e] = mean[e] + spread[e] * (np.tensordot(loadings[e], factors, axes=1) + 0.8 * unique)
    return logs


def place_centres(rng, room: np.ndarray, taken: list, scale: float, n: int) -> list:
    """Random centres on cells with enough room that do not overlap earlier anomalies."""
    rows, cols = np.nonzero(room >= 2 * scale)
    centres = []
    for i in rng.permutation(len(rows)):
        r, c = int(rows[i]), int(cols[i])
        if all(np.hypot(r - tr, c - tc) > 2 * (scale + ts) + 1 for tr, tc, ts in taken):
            centres.append([r, c])
            taken.append((r, c, scale))
            if len(centres) == n:
                return centres
    raise DataError(f"no room for {n} anomalies of scale {scale}; use a larger shape")


def enrich(logs, names, centre, anomaly) -> np.ndarray:
    """Add a gaussian bump to the chosen elements; return the disc footprint window.

    ``anomaly["peaks"]`` (optional, element -> factor) scales an element's bump:
    0.5 is half the standard log enrichment, -1 a depletion of the same size.
    """
    r, c = centre
    s = anomaly["scale"]
    half = int(np.ceil(4 * s))
    r0, r1 = max(r - half, 0), min(r + half + 1, logs.shape[1])
    c0, c1 = max(c - half, 0), min(c + half + 1, logs.shape[2])
    dist = np.hypot(*np.meshgrid(np.arange(r0, r1) - r, np.arange(c0, c1) - c, indexing="ij"))
    bump = (ENRICHMENT_LOG * np.exp(-0.5 * (dist / s) ** 2)).astype(np.float32)
    peaks = anomaly.get("peaks", {})
    for element in anomaly["elements"]:
        logs[names.index(element), r0:r1, c0:c1] += bump * np.float32(peaks.get(element, 1.0))
    return (slice(r0, r1), slice(c0, c1)), dist <= s


def deposits_in(rng, centre, scale, count) -> list:
    """`count` (row, col) float positions near the centre, inside its footprint disc."""
    angle = rng.uniform(0, 2 * np.pi, count)
    radius = rng.uniform(0, 0.4 * scale, count)
    return [(centre[0] + 0.5 + rad * np.sin(a), centre[1] + 0.5 + rad * np.cos(a)) for a, rad in zip(angle, radius)]


def deposit_counts(rng, n_hosts: int, n_deposits) -> np.ndarray:
    """Deposits per hosting anomaly: at least one each, ``n_deposits`` in all (default 1 to 3 each, drawn)."""
    if n_deposits is None:
        return rng.integers(1, 4, size=n_hosts)
    if n_deposits < n_hosts:
        raise DataError(f"n_deposits ({n_deposits}) must be at least the number of ore anomalies ({n_hosts})")
    return 1 + np.bincount(rng.integers(0, n_hosts, n_deposits - n_hosts), minlength=n_hosts)


def make_scenario(
    shape=(64, 64), n_elements=10, anomalies=None, n_deposits=None, seed=0, cell_size=1000.0, crs="EPSG:32650"
) -> Scenario:
    """A synthetic grid, its deposits and the truth that produced them.

    See the module docstring for the model. Deposits lie within ``0.4 x
    scale`` cells of the centres of anomalies with ``hosts_deposits``.

    Parameters
    ----------
    shape : (int, int)
        Grid rows and columns.
    n_elements : int
        Number of elements, named from :data:`ELEMENT_NAMES` (then ``E31``, ...).
    anomalies : list of dict, optional
        Each with ``elements`` (names), ``scale`` (gaussian radius in cells),
        ``n`` (count), optional ``name`` and ``hosts_deposits`` (default True).
        Default: an ore anomaly on the first 3 elements (scale 3, 6 of them)
        and a decoy on the 4th and 5th (scale 2, 4 of them, no deposits).
    n_deposits : int, optional
        Total deposits, at least one per hosting anomaly (default: 1 to 3 per
        hosting anomaly).
    seed : int
        Seed of every random draw.
    cell_size : float
        Cell side in map units.
    crs : str
        CRS of the grid and the deposits; the grid's south-west corner is
        :data:`ORIGIN`.

    Returns
    -------
    Scenario

    Raises
    ------
    DataError
        If the default anomalies get fewer than 5 elements, an anomaly names an
        unknown element, anomalies do not fit in the surveyed area, or
        ``n_deposits`` is below the number of hosting anomalies.

    Examples
    --------
    >>> from mstgat_core import make_scenario
    >>> scenario = make_scenario(n_elements=6, n_deposits=8, seed=1)
    >>> list(scenario.grid.data_vars), dict(scenario.grid.sizes)
    (['Li', 'Be', 'Nb', 'Sn', 'W', 'Cu'], {'y': 64, 'x': 64})
    >>> [(a["name"], a["elements"], a["hosts_deposits"]) for a in scenario.truth["anomalies"]]
    [('ore', ['Li', 'Be', 'Nb'], True), ('decoy', ['Sn', 'W'], False)]
    >>> len(scenario.deposits), scenario.anomaly_mask.shape
    (8, (64, 64))
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in shape)
    names = element_names(n_elements)
    anomalies = default_anomalies(names) if anomalies is None else anomalies
    for a in anomalies:
        unknown = [e for e in a["elements"] if e not in names]
        if unknown:
            raise DataError(f"anomaly elements not in the scenario: {', '.join(unknown)}")
    surveyed = survey_boundary(rng, shape)
    logs = background(rng, shape, names)
    room = ndimage.distance_transform_edt(np.pad(surveyed, 1))[1:-1, 1:-1]  # cells to the survey edge
    taken, truth_anomalies, hosted = [], [], []
    anomaly_mask = np.zeros(shape, dtype=bool)
    for i, a in enumerate(anomalies):
        hosts = bool(a.get("hosts_deposits", True))
        centres = place_centres(rng, room, taken, a["scale"], a["n"])
        for centre in centres:
            window, footprint = enrich(logs, names, centre, a)
            if hosts:
                anomaly_mask[window] |= footprint
                hosted.append((centre, a["scale"], a.get("name", f"anomaly_{i + 1}")))
        truth_anomalies.append(
            {
                "name": a.get("name", f"anomaly_{i + 1}"),
                "elements": list(a["elements"]),
                "scale": a["scale"],
                "centres": centres,
                "hosts_deposits": hosts,
            }
        )
    values = np.exp(logs, out=logs)
    values[:, ~surveyed] = np.nan
    grid = _grid(values, names, cell_size, crs)
    deposits = _deposits(rng, hosted, n_deposits, grid, cell_size, crs)
    truth = {"anomalies": truth_anomalies, "elements": names, "seed": seed, "shape": list(shape)}
    return Scenario(grid=grid, deposits=deposits, truth=truth, anomaly_mask=anomaly_mask & surveyed)


def _grid(values, names, cell_size, crs) -> xr.Dataset:
    ny, nx = values.shape[1:]
    x = ORIGIN[0] + (np.arange(nx) + 0.5) * cell_size
    y = ORIGIN[1] + (np.arange(ny)[::-1] + 0.5) * cell_size
    ds = xr.Dataset({n: (("y", "x"), values[i]) for i, n in enumerate(names)}, coords={"y": y, "x": x})
    for n in names:
        ds[n].attrs["units"] = "ppm"
    ds.attrs["source"] = "mstgat_core.synthetic"
    return ds.rio.write_crs(crs)


def _deposits(rng, hosted, n_deposits, grid, cell, crs) -> gpd.GeoDataFrame:
    counts = deposit_counts(rng, len(hosted), n_deposits) if hosted else []
    rows = []
    for (centre, scale, name), count in zip(hosted, counts):
        for r, c in deposits_in(rng, centre, scale, int(count)):
            rows.append({"row": int(np.floor(r)), "col": int(np.floor(c)), "anomaly": name, "fr": r, "fc": c})
    table = pd.DataFrame(rows, columns=["row", "col", "anomaly", "fr", "fc"])
    west = float(grid["x"][0]) - cell / 2
    north = float(grid["y"][0]) + cell / 2
    table["x"] = west + table.pop("fc") * cell
    table["y"] = north - table.pop("fr") * cell
    return gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table["x"], table["y"]), crs=crs)
