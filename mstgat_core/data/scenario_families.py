"""Scenario families where the deposits' raw composition misleads (explanation benchmark, issue 28).

In the control scenarios of ``mstgat benchmark --suite explain`` the deposits
sit at the peaks of the ore elements, so the mean composition at the deposits
(no model) names them as well as any explanation can. Each family here plants
an ore signal that only a comparison of ore with barren ground reveals,
beside something that dominates the deposits' own composition:

``association``
    The ore raises 3 elements together, moderately (x1.6 at the peak). Every
    ore body lies in a host lithology that raises 2 other elements far more
    (x7.4), and the lithology is mostly barren; each ore element also makes
    stronger anomalies of its own (x4.8) on barren ground. The deposits'
    composition names the lithology; only the association is ore.
``depletion``
    Alteration around the deposits removes Na2O and CaO (x0.27) and adds one
    trace element moderately (x1.6), inside a host lithology that raises one
    trace element and lowers two others far more (x7.4, x0.14). An
    enrichment ranking cannot name a depleted element at all, and the most
    depleted elements at the deposits belong to the host.
``ratio``
    One element rises and its usual partner falls (x1.7 and x0.59) around
    the deposits: the pair co-varies tightly in the background, so their
    ratio is far out while each stays within its own range. Barren
    anomalies raise both together (x3.7), and the deposits lie in a host
    lithology that raises 2 other elements (x7.4).
``trend``
    A regional trend (cubic along a random direction, up to x20) crosses the
    survey and the deposits lie on its high side; the ore raises 3 elements
    moderately (x1.6). At the deposits the trend elements stand highest.
``barren``
    Barren anomalies with the ore's own 3 elements, peak and scale; only a
    co-element (x2.2) sets the ore apart. The indicator a geochemist needs
    is the co-element, while the deposits' composition is led by the shared
    elements.

:func:`make_family` returns ``(scenario, truth)`` with ``truth``: ``ore``
(the indicator elements a geochemist should read), ``depleted`` (those of
them the ore lowers), ``decoy`` (elements that mislead: they stand out at the
deposits or on barren ground but are not ore), ``ore_scale``. The values are
closed (every cell sums to ``closure`` ppm), as in the control.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import DataError
from .synthetic import (
    ENRICHMENT_LOG,
    Scenario,
    _deposits,
    _grid,
    background,
    element_names,
    enrich,
    place_centres,
    smooth_field,
    survey_boundary,
)

FAMILIES = ("association", "depletion", "ratio", "trend", "barren")
ORE_SCALE = 2.0
N_ORE = 6  # ore anomalies, each hosting 1-3 deposits
WEAK, STRONG = 0.6, 1.2  # peak factors of ENRICHMENT_LOG (1.3): x2.2 and x4.8
CONTEXT_LOG = 2.0  # host lithology: x7.4 on its elements
HOST_RADIUS, HOST_EXTRA = 5.0, 4  # host bodies: radius in cells, barren ones beside those around the ore
TREND_LOG, TREND_SIDE = 3.0, 0.7  # trend amplitude (log) and the share of its range below the ore
MAJORS = ("Na2O", "CaO")
MAJOR_LOG = 8.0  # majors ~ 1-5 wt %


def close(grid, names, closure: float):
    """Rescale every cell so its elements sum to ``closure`` (ppm), in place; return the grid."""
    total = sum(grid[e] for e in names)
    for e in names:
        grid[e] = (grid[e] / total * closure).astype(np.float32).assign_attrs(units="ppm")
    return grid


class _Builder:
    """A background with anomalies and context fields added in log space, then closed."""

    def __init__(self, rng, shape, names):
        self.rng, self.shape, self.names = rng, tuple(shape), list(names)
        self.surveyed = survey_boundary(rng, self.shape)
        self.logs = background(rng, self.shape, self.names)
        self.room = ndimage.distance_transform_edt(np.pad(self.surveyed, 1))[1:-1, 1:-1]
        self.taken, self.hosted, self.truth = [], [], []
        self.mask = np.zeros(self.shape, dtype=bool)

    def anomalies(self, name, peaks: dict, n: int, hosts: bool, room=None, scale=ORE_SCALE) -> list:
        """``n`` gaussian anomalies changing each element by ``peaks[e] x ENRICHMENT_LOG`` at the centre."""
        anomaly = {"name": name, "elements": list(peaks), "peaks": peaks, "scale": scale}
        centres = place_centres(self.rng, self.room if room is None else room, self.taken, scale, n)
        for centre in centres:
            window, footprint = enrich(self.logs, self.names, centre, anomaly)
            if hosts:
                self.mask[window] |= footprint
                self.hosted.append((centre, scale, name))
        self.truth.append(
            {"name": name, "elements": list(peaks), "scale": scale, "centres": centres, "hosts_deposits": hosts}
        )
        return centres

    def host(self, around: list, peaks: dict) -> None:
        """A host lithology: flat-topped bodies around ``around`` (off-centre) and as many barren ones again."""
        barren = place_centres(self.rng, self.room, self.taken, HOST_RADIUS / 2, HOST_EXTRA)
        shifted = [(r + self.rng.uniform(-2, 2), c + self.rng.uniform(-2, 2)) for r, c in around]
        rows, cols = np.indices(self.shape)
        field = np.zeros(self.shape, np.float32)
        for r, c in shifted + [tuple(b) for b in barren]:
            plateau = 1 / (1 + np.exp(np.hypot(rows - r, cols - c) - HOST_RADIUS))
            field = np.maximum(field, plateau.astype(np.float32))
        self.context(field, peaks)
        self.truth.append({"name": "host", "elements": list(peaks), "share": float(field[self.surveyed].mean())})

    def context(self, field, peaks: dict) -> None:
        for e, peak in peaks.items():
            self.logs[self.names.index(e)] += np.float32(peak) * field

    def finish(self, seed, closure: float) -> Scenario:
        values = np.exp(self.logs)
        values[:, ~self.surveyed] = np.nan
        grid = close(_grid(values, self.names, 1000.0, "EPSG:32650"), self.names, closure)
        deposits = _deposits(self.rng, self.hosted, None, grid, 1000.0, "EPSG:32650")
        truth = {"anomalies": self.truth, "elements": self.names, "seed": seed, "shape": list(self.shape)}
        return Scenario(grid=grid, deposits=deposits, truth=truth, anomaly_mask=self.mask & self.surveyed)


def _association(b: _Builder, picked: list) -> dict:
    ore, host = picked[:3], picked[3:5]
    centres = b.anomalies("ore", dict.fromkeys(ore, WEAK), N_ORE, hosts=True)
    b.host(centres, dict.fromkeys(host, CONTEXT_LOG))
    for e in ore:
        b.anomalies(f"single_{e}", {e: STRONG}, 2, hosts=False)
    return {"ore": ore, "depleted": [], "decoy": host}


def _depletion(b: _Builder, picked: list) -> dict:
    trace = [e for e in picked if e not in MAJORS]
    path, host_up, host_down, decoy = trace[0], trace[1], trace[2:4], trace[4:6]
    centres = b.anomalies("ore", {path: WEAK, MAJORS[0]: -1.0, MAJORS[1]: -1.0}, N_ORE, hosts=True)
    b.host(centres, {host_up: CONTEXT_LOG} | dict.fromkeys(host_down, -CONTEXT_LOG))
    b.anomalies("decoy", dict.fromkeys(decoy, 1.0), 4, hosts=False)
    return {"ore": [path, *MAJORS], "depleted": list(MAJORS), "decoy": [host_up, *host_down, *decoy]}


def _ratio(b: _Builder, picked: list) -> dict:
    up, partner, host = picked[0], picked[1], picked[2:4]
    i, j = b.names.index(up), b.names.index(partner)
    b.logs[j] = b.logs[j].mean() + (b.logs[i] - b.logs[i].mean()) + 0.15 * smooth_field(b.rng, b.shape, 2.0)
    centres = b.anomalies("ore", {up: 0.4, partner: -0.4}, N_ORE, hosts=True)
    b.host(centres, dict.fromkeys(host, CONTEXT_LOG))
    b.anomalies("both_high", {up: 1.0, partner: 1.0}, 4, hosts=False)
    return {"ore": [up, partner], "depleted": [partner], "decoy": host}


def _trend(b: _Builder, picked: list) -> dict:
    ore, trend, decoy = picked[:3], picked[3:5], picked[5:7]
    angle = b.rng.uniform(0, 2 * np.pi)
    rows, cols = np.indices(b.shape)
    t = np.cos(angle) * cols + np.sin(angle) * rows
    lo, hi = t[b.surveyed].min(), t[b.surveyed].max()
    t = ((t - lo) / (hi - lo)).astype(np.float32)
    b.context(np.clip(t, 0, 1) ** 3, dict.fromkeys(trend, TREND_LOG))
    b.anomalies("ore", dict.fromkeys(ore, WEAK), N_ORE - 1, hosts=True, room=np.where(t > TREND_SIDE, b.room, 0))
    b.anomalies("decoy", dict.fromkeys(decoy, 1.0), 4, hosts=False)
    return {"ore": ore, "depleted": [], "decoy": trend + decoy}


def _barren(b: _Builder, picked: list) -> dict:
    shared, co = picked[:3], picked[3]
    b.anomalies("ore", dict.fromkeys(shared, 1.0) | {co: 0.6}, N_ORE, hosts=True)
    b.anomalies("barren", dict.fromkeys(shared, 1.0), N_ORE, hosts=False)
    return {"ore": [co], "depleted": [], "decoy": shared, "shared": shared}


_MAKERS = {"association": _association, "depletion": _depletion, "ratio": _ratio, "trend": _trend, "barren": _barren}


def make_family(kind: str, seed: int, shape=(72, 72), n_elements: int = 10, closure: float = 1e6):
    """(scenario, truth) of one scenario of family ``kind`` (see the module docstring).

    Seeds are drawn per family, so the same seed in two families gives unrelated scenarios.
    """
    if kind not in _MAKERS:
        raise DataError(f"unknown scenario family {kind!r}; use one of {', '.join(FAMILIES)}")
    rng = np.random.default_rng([FAMILIES.index(kind) + 1, seed])
    names = element_names(n_elements - len(MAJORS)) + list(MAJORS) if kind == "depletion" else element_names(n_elements)
    b = _Builder(rng, shape, names)
    if kind == "depletion":
        for e in MAJORS:
            b.logs[names.index(e)] += MAJOR_LOG
    truth = _MAKERS[kind](b, [str(e) for e in rng.permutation(names)])
    truth["ore_scale"] = ORE_SCALE
    scenario = b.finish(seed, closure)
    scenario.truth["family"] = kind
    return scenario, truth


__all__ = ["ENRICHMENT_LOG", "FAMILIES", "close", "make_family"]
