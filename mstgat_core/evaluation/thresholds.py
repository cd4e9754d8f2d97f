"""Thresholds of one map layer, as geochemists draw them: concentration-area (C-A) fractal breakpoints,
cumulative-frequency cuts and the break between two populations.

All functions take the layer's values on measured ground (any array; NaN and infinite values are dropped)
and return plain floats, so a map, a command and a test read the same numbers.

* **C-A** (Cheng, Agterberg and Ballantyne 1994): for levels ``v`` the area ``A(rho >= v)`` of the cells whose
  value is at least ``v``; on a log-log plot the curve is a few straight segments, one per population
  (background, anomaly, ...), and the thresholds are where the segments meet. The levels are the distinct
  positive values when there are at most ``max_levels`` of them, else ``max_levels`` levels evenly spaced in
  log10 from the smallest positive value to the largest. The segments are chosen by least squares: every
  split of the levels into 2 (or 3) runs of at least ``min_points`` consecutive levels, a straight line fitted
  to each run (ordinary least squares of log10 A on log10 v), the split with the smallest total squared error
  kept. ``segments="auto"`` keeps 3 segments only when they lower the Bayesian information criterion
  (``n log(SSE / n) + k log n``, ``k`` = 2 parameters per line + 1 per breakpoint) below the 2-segment fit's.
  A threshold is where two neighbouring lines cross, kept between the last level of the lower run and the
  first level of the upper one (clipped to that interval; its midpoint in log10 when the lines are parallel).
  Only positive values enter (a log-log plot); cells at 0 or below are never above a positive level.
* **Cumulative frequency**: the 75th, 85th and 95th percentiles of the values.
* **Population break**: a two-component Gaussian mixture (scikit-learn, fixed seed) fitted to the log10 values
  (to the values themselves when any is 0 or below); the threshold is the lowest value above the lower
  component's mean where the weighted densities are equal and the upper component (the larger mean) becomes
  the more likely: a cell above it more likely belongs to the upper population. None when there is no such
  value within the data (the upper component never dominates: one population). Above
  :data:`MIXTURE_SAMPLE` values the mixture is fitted to a seeded random subsample of that many.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError

PERCENTILES = (75.0, 85.0, 95.0)
MAX_LEVELS = 100
MIN_POINTS = 3  # levels per C-A segment: a line through two points always fits
MIXTURE_SAMPLE = 100_000  # values the two-population mixture is fitted on (a seeded subsample above)

__all__ = [
    "CAFit",
    "ca_curve",
    "ca_thresholds",
    "cumulative_thresholds",
    "population_break",
    "threshold_lines",
]


def finite_values(values) -> np.ndarray:
    """The finite values of an array (any shape), as float64, flattened."""
    values = np.asarray(getattr(values, "values", values), dtype=np.float64).ravel()
    return values[np.isfinite(values)]


def ca_curve(values, cell_area: float = 1.0, max_levels: int = MAX_LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """The C-A curve: levels ``v`` (ascending) and ``A(rho >= v)``, the area of the cells at or above each.

    ``cell_area`` is one cell's area (e.g. km²); see the module's docstring for how levels are chosen.
    """
    values = finite_values(values)
    positive = np.unique(values[values > 0])
    if positive.size == 0:
        raise DataError("the C-A plot needs positive values: this layer has none")
    if positive.size <= max_levels:
        levels = positive
    else:
        levels = np.logspace(np.log10(positive[0]), np.log10(positive[-1]), max_levels)
        levels[0], levels[-1] = positive[0], positive[-1]  # exactly the data's ends, not their round trip
    ranked = np.sort(values)
    counts = len(ranked) - np.searchsorted(ranked, levels, side="left")
    return levels, counts * float(cell_area)


@dataclass(frozen=True)
class CAFit:
    """A piecewise linear fit of the C-A curve in log10-log10: ``thresholds`` (ascending, in the layer's
    units), each segment's ``slopes`` and ``intercepts`` (log10 A = intercept + slope log10 v), the level
    index where each segment ``starts``, the total squared error ``sse`` and the curve itself."""

    thresholds: tuple[float, ...]
    slopes: tuple[float, ...]
    intercepts: tuple[float, ...]
    starts: tuple[int, ...]
    sse: float
    levels: np.ndarray = field(repr=False)
    areas: np.ndarray = field(repr=False)


def _segment_fits(x: np.ndarray, y: np.ndarray):
    """Least-squares line and squared error of every run ``x[i:j]`` (from prefix sums): arrays (n+1, n+1)."""
    n = len(x)
    s = [np.concatenate([[0.0], np.cumsum(t)]) for t in (np.ones(n), x, y, x * x, x * y, y * y)]
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    m, sx, sy, sxx, sxy, syy = (t[j] - t[i] for t in s)
    with np.errstate(divide="ignore", invalid="ignore"):
        sxx_c = sxx - sx * sx / m
        slope = np.where(sxx_c > 1e-300, (sxy - sx * sy / m) / sxx_c, 0.0)
        intercept = (sy - slope * sx) / m
        sse = syy - sy * sy / m - slope * (sxy - sx * sy / m)
    return slope, intercept, np.maximum(sse, 0.0)


def _best_split(sse: np.ndarray, n: int, segments: int, min_points: int):
    """The run starts (first level of each segment) minimising the total squared error."""
    if segments == 2:
        starts = [(k,) for k in range(min_points, n - min_points + 1)]
    else:
        starts = [
            (k, m) for k in range(min_points, n - 2 * min_points + 1) for m in range(k + min_points, n - min_points + 1)
        ]
    if not starts:
        raise DataError(
            f"the C-A fit with {segments} segments needs at least {segments * min_points} distinct positive "
            f"levels; this layer has {n}"
        )
    totals = [sum(sse[a, b] for a, b in zip((0, *s), (*s, n), strict=True)) for s in starts]
    best = int(np.argmin(totals))
    return starts[best], float(totals[best])


def _crossing(x, upper_start, slopes, intercepts, k) -> float:
    """log10 v where lines ``k`` and ``k + 1`` cross, clipped to the gap between their runs."""
    low, high = x[upper_start - 1], x[upper_start]
    ds = slopes[k] - slopes[k + 1]
    if abs(ds) < 1e-12:
        return (low + high) / 2
    return float(np.clip((intercepts[k + 1] - intercepts[k]) / ds, low, high))


def ca_thresholds(
    values,
    segments: int | str = "auto",
    cell_area: float = 1.0,
    max_levels: int = MAX_LEVELS,
    min_points: int = MIN_POINTS,
) -> CAFit:
    """C-A fractal thresholds of a layer: ``segments`` (2, 3 or ``"auto"``) straight lines fitted to the
    log-log C-A curve by least squares; see the module's docstring.

    Raises :class:`~mstgat_core.errors.DataError` when there are too few distinct positive values.
    """
    if segments not in (2, 3, "auto"):
        raise DataError(f"C-A segments must be 2, 3 or 'auto', got {segments!r}", setting="segments")
    levels, areas = ca_curve(values, cell_area, max_levels)
    x, y = np.log10(levels), np.log10(areas)
    n = len(x)
    slope, intercept, sse = _segment_fits(x, y)
    if segments == "auto":
        fits = {2: _best_split(sse, n, 2, min_points)}
        if n >= 3 * min_points:
            fits[3] = _best_split(sse, n, 3, min_points)
        floor = 1e-12 * n  # an exact fit: log(0) would make every exact fit equal
        bic = {s: n * np.log(max(e, floor) / n) + (3 * s - 1) * np.log(n) for s, (_, e) in fits.items()}
        segments = min(bic, key=lambda s: (bic[s], s))
        starts, total = fits[segments]
    else:
        starts, total = _best_split(sse, n, segments, min_points)
    bounds = list(zip((0, *starts), (*starts, n), strict=True))
    slopes = tuple(float(slope[a, b]) for a, b in bounds)
    intercepts = tuple(float(intercept[a, b]) for a, b in bounds)
    thresholds = tuple(float(10 ** _crossing(x, s, slopes, intercepts, k)) for k, s in enumerate(starts))
    return CAFit(thresholds, slopes, intercepts, (0, *starts), total, levels, areas)


def cumulative_thresholds(values, percentiles=PERCENTILES) -> dict[str, float]:
    """The layer's percentiles (``"75 %"`` -> value), by default the 75th, 85th and 95th."""
    values = finite_values(values)
    if values.size == 0:
        raise DataError("no finite values to take percentiles of")
    return {f"{p:g} %": float(np.percentile(values, p)) for p in percentiles}


def population_break(values, seed: int = 0) -> float | None:
    """The break between two populations: where, above the lower mean, the upper of the two Gaussians of a
    two-component mixture on the log10 values (the raw values when any is 0 or below) becomes the more likely;
    None when there is no such point. See the module's docstring."""
    from sklearn.mixture import GaussianMixture

    values = finite_values(values)
    if np.unique(values).size < 4:
        raise DataError("a two-population break needs at least 4 distinct values")
    logged = bool((values > 0).all())
    t = np.log10(values) if logged else values
    if t.size > MIXTURE_SAMPLE:
        t = np.random.default_rng(seed).choice(t, MIXTURE_SAMPLE, replace=False)
    # k-means++ starts: the default k-means start costs ~0.4 s (its thread pool) for the same fits
    gm = GaussianMixture(2, random_state=seed, n_init=3, init_params="k-means++").fit(t[:, None])
    order = np.argsort(gm.means_.ravel())
    mu = gm.means_.ravel()[order]
    var = gm.covariances_.ravel()[order]
    w = gm.weights_[order]
    # w1 N(t; mu1, var1) = w2 N(t; mu2, var2): a quadratic a t² + b t + c = 0
    a = 1 / var[1] - 1 / var[0]
    b = 2 * (mu[0] / var[0] - mu[1] / var[1])
    c = mu[1] ** 2 / var[1] - mu[0] ** 2 / var[0] + 2 * np.log(w[0] * np.sqrt(var[1]) / (w[1] * np.sqrt(var[0])))
    if abs(a) < 1e-12 and abs(b) < 1e-12:
        return None  # the same Gaussian twice
    roots = np.roots([a, b, c]) if abs(a) > 1e-12 else np.array([-c / b])
    roots = np.sort(roots[np.isreal(roots)].real)
    upper = int(order[1])
    step = 1e-6 * (t.max() - t.min())
    for root in roots[(roots > mu[0]) & (roots <= t.max())]:
        if gm.predict_proba([[root + step]])[0, upper] > 0.5:  # the upper population takes over here
            cut = float(root)
            return float(10**cut) if logged else cut
    return None


def _number(value: float) -> str:
    return f"{value:.4g}"


def threshold_lines(values, segments: int | str = "auto") -> list[str]:
    """Every threshold of a layer as lines for a person (C-A breakpoints, 75/85/95 %, the population break);
    a threshold that cannot be had says why in its line instead of raising."""
    try:
        fit = ca_thresholds(values, segments=segments)
        ca = f"C-A fractal breakpoints ({len(fit.slopes)} segments, least squares): " + ", ".join(
            map(_number, fit.thresholds)
        )
    except DataError as exc:
        ca = f"C-A fractal breakpoints: none ({exc})"
    cumulative = " · ".join(f"{k} {_number(v)}" for k, v in cumulative_thresholds(values).items())
    try:
        found = population_break(values)
        split = _number(found) if found is not None else "none (one population)"
    except DataError as exc:
        split = f"none ({exc})"
    return [ca, f"cumulative frequency: {cumulative}", f"population break (two-Gaussian mixture): {split}"]
