"""The Learn exercise's checks: a student's answers about a synthetic scenario, checked against its planted
truth, the model's explanation of a cell and the explanation benchmark.

Plain data in and out: ``truth`` is a synthetic scenario's planted truth
(:class:`~mstgat_core.data.synthetic.Scenario` ``.truth``: ``anomalies`` with ``elements``, ``scale``,
``centres`` as ``[row, col]`` and ``hosts_deposits``; ``elements``; ``shape``), an explanation is
:func:`~mstgat_core.interpret.explain_cell`'s Dataset or a dict of the same names (``attribution`` and
``attribution_enriched`` as element -> value, ``scale_weights`` as scale -> weight, as in
:func:`~mstgat_core.interpret.explain_report`). Each check returns a dict with a ``verdict`` (``"right"``,
``"partly"`` or ``"wrong"``), ``why`` (one or two sentences a student understands) and the facts it used.

A cell is inside a planted anomaly when its distance to the anomaly's centre cell is at most the anomaly's
``scale`` (in cells): the disc the dashboard draws as a red (ore) or orange (decoy) circle, and the
scenario's ``anomaly_mask``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..paths import EXPLAIN_REPORT

SHOWN = 15  # the attribution bars the dashboard draws for a cell (its largest |IG|)
NEAR = 1.0  # a cell at most this many cells outside an ore circle is a near miss


def _names(elements) -> str:
    elements = list(elements)
    if len(elements) <= 1:
        return "".join(elements) or "none"
    return ", ".join(elements[:-1]) + " and " + elements[-1]


def _anomalies(truth) -> list:
    if not isinstance(truth, Mapping) or not isinstance(truth.get("anomalies"), list):
        raise DataError("no planted truth: load a synthetic scenario first")
    return truth["anomalies"]


def planted_place(truth: dict, row: int, col: int) -> dict:
    """Where a cell lies in the planted truth.

    Parameters
    ----------
    truth : dict
        A synthetic scenario's planted truth.
    row, col : int
        The cell.

    Returns
    -------
    dict
        ``where``: ``"ore"``, ``"decoy"`` or ``"background"``; ``anomaly`` (name), ``elements``,
        ``radius`` (cells) and ``centre`` (``[row, col]``) of the circle holding the cell, or for the
        background of the nearest ore circle (the one whose edge is nearest); ``distance``: cells from
        the cell to that centre; ``outside``: cells beyond the circle's edge (0 inside).

    Raises
    ------
    DataError
        If there is no truth, the cell is outside the grid, or no anomaly hosts deposits.

    Examples
    --------
    >>> truth = {"shape": [20, 20], "elements": ["Li", "Be", "Sn"], "anomalies": [
    ...     {"name": "ore", "elements": ["Li", "Be"], "scale": 3, "centres": [[5, 5]], "hosts_deposits": True},
    ...     {"name": "decoy", "elements": ["Sn"], "scale": 2, "centres": [[14, 14]], "hosts_deposits": False}]}
    >>> [planted_place(truth, r, c)["where"] for r, c in ((5, 5), (5, 8), (5, 9), (14, 15))]
    ['ore', 'ore', 'background', 'decoy']
    """
    anomalies = _anomalies(truth)
    shape = truth.get("shape")
    row, col = int(row), int(col)
    if shape and not (0 <= row < shape[0] and 0 <= col < shape[1]):
        raise DataError(f"cell row {row}, col {col} is outside the {shape[0]} x {shape[1]} grid")
    circles = []
    for anomaly in anomalies:
        for r, c in anomaly["centres"]:
            distance = float(np.hypot(row - r, col - c))
            circles.append((distance - float(anomaly["scale"]), distance, anomaly, [int(r), int(c)]))
    inside = [circle for circle in circles if circle[0] <= 0]
    if inside:
        # circles never overlap in a scenario; were they to, the one the cell is deepest in
        outside, distance, anomaly, centre = min(inside, key=lambda c: c[1] / max(float(c[2]["scale"]), 1e-9))
        where = "ore" if anomaly.get("hosts_deposits", True) else "decoy"
    else:
        ore = [circle for circle in circles if circle[2].get("hosts_deposits", True)]
        if not ore:
            raise DataError("the planted truth has no ore anomaly (none hosts deposits)")
        outside, distance, anomaly, centre = min(ore, key=lambda c: c[0])
        where = "background"
    return {
        "where": where,
        "anomaly": anomaly.get("name", ""),
        "elements": list(anomaly["elements"]),
        "radius": float(anomaly["scale"]),
        "centre": centre,
        "distance": distance,
        "outside": max(outside, 0.0),
    }


def ore_elements(truth: dict) -> list:
    """The elements of the anomalies that host deposits, in the truth's order."""
    found = [e for a in _anomalies(truth) if a.get("hosts_deposits", True) for e in a["elements"]]
    return list(dict.fromkeys(found))


def check_cell(truth: dict, row: int, col: int) -> dict:
    """Is the cell the student clicked inside an ore anomaly?

    Right inside an ore circle; partly within :data:`NEAR` cell of one's edge (its enrichment fades
    with distance); wrong in a decoy or further out. Returns :func:`planted_place`'s facts with
    ``verdict``, ``why``, ``row`` and ``col``.

    Examples
    --------
    >>> truth = {"shape": [20, 20], "elements": ["Li", "Be", "Sn"], "anomalies": [
    ...     {"name": "ore", "elements": ["Li", "Be"], "scale": 3, "centres": [[5, 5]], "hosts_deposits": True},
    ...     {"name": "decoy", "elements": ["Sn"], "scale": 2, "centres": [[14, 14]], "hosts_deposits": False}]}
    >>> [check_cell(truth, r, c)["verdict"] for r, c in ((5, 5), (5, 9), (14, 14), (19, 0))]
    ['right', 'partly', 'wrong', 'wrong']
    >>> answer = check_cell(truth, 5, 7)
    >>> answer["where"], answer["distance"], answer["radius"], answer["why"][:46]
    ('ore', 2.0, 3.0, 'Row 5, col 7 is 2.0 cells from the centre of a')
    """
    place = planted_place(truth, row, col)
    r, c = place["centre"]
    where = f"Row {int(row)}, col {int(col)} is " + (
        "the centre of" if place["distance"] == 0 else f"{place['distance']:.1f} cells from the centre of"
    )
    radius = f"radius of {place['radius']:g} cells"
    centre = f" (row {r}, col {c})" if place["distance"] else ""
    elements = _names(place["elements"])
    if place["where"] == "ore":
        verdict = "right"
        why = (
            f"{where} an ore anomaly{centre}, within its {radius}: it is enriched in {elements}, "
            "and ore anomalies host the deposits."
        )
    elif place["where"] == "decoy":
        verdict = "wrong"
        why = (
            f"{where} a decoy{centre}, within its {radius}: it is enriched in {elements} as strongly "
            f"as an ore anomaly, but decoys host no deposits. The ore anomalies are enriched in "
            f"{_names(ore_elements(truth))}."
        )
    else:
        near = place["outside"] <= NEAR
        verdict = "partly" if near else "wrong"
        why = (
            f"{where} the nearest ore anomaly (row {r}, col {c}), "
            + ("just outside" if near else "beyond")
            + f" its {radius}: "
            + (
                f"its enrichment in {elements} fades with distance, and the deposits lie near the centre."
                if near
                else f"background, where nothing was planted. Look for cells where {elements} are "
                + ("all high." if len(place["elements"]) > 2 else "high.")
            )
        )
    return dict(place, verdict=verdict, why=why, row=int(row), col=int(col))


def _per_element(explanation, name: str) -> dict:
    try:
        values = explanation[name]
    except (KeyError, TypeError):
        raise DataError(f"the explanation has no {name.replace('_', ' ')}") from None
    if hasattr(values, "to_series"):
        values = values.to_series()
    return {str(k): float(v) for k, v in dict(values).items()}


def model_indicators(explanation, top: int = SHOWN) -> list:
    """The elements the model used as indicators at a cell: the red bars pointing right.

    Among the ``top`` elements with the largest absolute attribution (the bars the dashboard draws), those
    whose enriched part (:func:`~mstgat_core.interpret.enrichment_split`) is positive: above the median
    composition and raising the score. Largest first.
    """
    attribution = _per_element(explanation, "attribution")
    enriched = _per_element(explanation, "attribution_enriched")
    shown = sorted((e for e in attribution if np.isfinite(attribution[e])), key=lambda e: -abs(attribution[e]))
    used = [e for e in shown[: int(top)] if enriched.get(e, 0.0) > 0]
    return sorted(used, key=lambda e: -enriched[e])


def check_elements(truth: dict, row: int, col: int, chosen: Sequence[str], explanation, top: int = SHOWN) -> dict:
    """Did the student name the elements the model used at the cell?

    Right when ``chosen`` is exactly :func:`model_indicators` (the red bars pointing right), partly when
    they share an element, wrong otherwise; the ``why`` also compares the model's elements with the
    elements planted at the cell. Returns ``verdict``, ``why``, ``used``, ``missed`` (used, not chosen),
    ``extra`` (chosen, not used), ``planted`` (the elements enriched at the cell, empty on the
    background), ``place`` (:func:`planted_place`), ``row`` and ``col``.

    Examples
    --------
    >>> truth = {"shape": [20, 20], "elements": ["Li", "Be", "Sn"], "anomalies": [
    ...     {"name": "ore", "elements": ["Li", "Be"], "scale": 3, "centres": [[5, 5]], "hosts_deposits": True}]}
    >>> explanation = {"attribution": {"Li": 0.9, "Be": 0.4, "Sn": -0.3},
    ...                "attribution_enriched": {"Li": 0.9, "Be": 0.4, "Sn": 0.0}}
    >>> [check_elements(truth, 5, 5, chosen, explanation)["verdict"] for chosen in (["Li", "Be"], ["Li"], ["Sn"])]
    ['right', 'partly', 'wrong']
    """
    elements = list(truth.get("elements") or [])
    chosen = list(dict.fromkeys(str(e) for e in chosen))
    if not chosen:
        raise DataError("choose at least one element")
    unknown = [e for e in chosen if elements and e not in elements]
    if unknown:
        raise DataError(f"not an element of this scenario: {', '.join(unknown)}")
    place = planted_place(truth, row, col)
    used = model_indicators(explanation, top)
    missed = [e for e in used if e not in chosen]
    extra = [e for e in chosen if e not in used]
    verdict = "right" if not missed and not extra else ("partly" if len(extra) < len(chosen) else "wrong")
    if not used:
        first = (
            "No bar here is red and pointing right: the model used no enriched element to raise this cell's "
            "score (its score comes from elements below the median, or it is low)."
        )
    elif verdict == "right":
        first = f"The red bars pointing right (enriched elements that raise the score) are exactly {_names(used)}."
    else:
        first = f"The red bars pointing right (enriched elements that raise the score) are {_names(used)}." + "".join(
            part
            for part in (
                f" You missed {_names(missed)}." if missed else "",
                f" {_names(extra)} {'has' if len(extra) == 1 else 'have'} no such bar." if extra else "",
            )
        )
    planted = place["elements"] if place["where"] != "background" else []
    if place["where"] == "ore":
        kept = [e for e in planted if e in used]
        added = [e for e in used if e not in planted]
        if len(kept) == len(planted):
            second = f"The planted ore elements here are {_names(planted)}: the model used all of them"
        elif kept:
            lost = [e for e in planted if e not in used]
            second = (
                f"The planted ore elements here are {_names(planted)}: the model used {_names(kept)}, "
                f"not {_names(lost)}"
            )
        else:
            second = f"The planted ore elements here are {_names(planted)}: the model used none of them"
        second += f", and also {_names(added)}, not planted here." if added else "."
    elif place["where"] == "decoy":
        fooled = [e for e in planted if e in used]
        second = f"This cell is in a decoy enriched in {_names(planted)}, which hosts no deposits: " + (
            f"the model used {_names(fooled)}, so the decoy raised its score here."
            if fooled
            else "the model gave them no such bar, so the decoy did not raise its score."
        )
    else:
        second = (
            "Nothing was planted at this cell (background): the ore anomalies are enriched in "
            f"{_names(ore_elements(truth))}."
        )
    return {
        "verdict": verdict,
        "why": f"{first} {second}",
        "used": used,
        "missed": missed,
        "extra": extra,
        "planted": planted,
        "place": place,
        "row": int(row),
        "col": int(col),
    }


def benchmark_scale_agreement(path: Path = EXPLAIN_REPORT) -> dict | None:
    """What the explanation benchmark measured of the scale weights (the JSON the Learn tab reads):
    ``first`` (share of deposit cells where they rank the planted scale first), ``chance`` and
    ``by_kind`` (the same per scenario kind, ``small``/``large`` ore anomalies); None when it has not
    been run or holds no scale figures."""
    try:
        stats = json.loads(Path(path).read_text())["summary"]["scales"]["scale_weights"]
        return {"first": float(stats["first"]), "chance": float(stats["chance"]), "by_kind": stats.get("by_kind", {})}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _scale_weights(explanation) -> dict:
    if explanation is None:
        return {}
    try:
        values = explanation["scale_weights"]
    except (KeyError, TypeError):
        return {}
    if hasattr(values, "to_series"):
        values = values.to_series()
    return {int(k): float(v) for k, v in dict(values).items() if np.isfinite(v)}


def check_scale(
    truth: dict, row: int, col: int, scale: int, scales: Sequence[int], explanation=None, benchmark=None
) -> dict:
    """Did the student pick the scale of the planted anomaly at the cell?

    The anomaly is the circle holding the cell, or for the background the nearest ore circle; the expected
    answer is the model's scale (neighbourhood radius in cells) closest to its radius. Right when
    ``scale`` is that one; partly when it is the scale the model weighted most at the cell (its
    ``scale_weights``), which is not the anomaly's size; wrong otherwise. The ``why`` gives the planted
    radius, the model's weights and how often the scale weights ranked the planted scale first on the
    benchmark (``benchmark``: :func:`benchmark_scale_agreement`, or say it was not run). Returns
    ``verdict``, ``why``, ``expected``, ``radius``, ``weighted`` (the model's first scale, None without
    scale weights), ``place``, ``row`` and ``col``.

    Examples
    --------
    >>> truth = {"shape": [20, 20], "elements": ["Li", "Be", "Sn"], "anomalies": [
    ...     {"name": "ore", "elements": ["Li", "Be"], "scale": 3, "centres": [[5, 5]], "hosts_deposits": True}]}
    >>> explanation = {"scale_weights": {1: 0.6, 2: 0.3, 3: 0.1}}
    >>> [check_scale(truth, 5, 5, s, [1, 2, 3], explanation)["verdict"] for s in (3, 1, 2)]
    ['right', 'partly', 'wrong']
    """
    scales = [int(s) for s in scales]
    if not scales:
        raise DataError("the model has no scales to choose from")
    if scale is None or int(scale) not in scales:
        raise DataError(f"pick one of the model's scales: {', '.join(map(str, scales))}")
    scale = int(scale)
    place = planted_place(truth, row, col)
    radius = place["radius"]
    expected = min(scales, key=lambda s: (abs(s - radius), s))
    weights = _scale_weights(explanation)
    weighted = max(weights, key=weights.get) if weights else None
    verdict = "right" if scale == expected else ("partly" if scale == weighted else "wrong")
    kind = {"ore": "The ore anomaly around this cell", "decoy": "The decoy around this cell"}.get(
        place["where"], "This cell is background; the nearest ore anomaly"
    )
    first = f"{kind} has a radius of {radius:g} cells: of the model's scales, r={expected} is the closest."
    if explanation is None:
        second = "Without an explanation of this cell, the model's scale weights are not compared."
    elif weighted is None:
        second = "This model gives the cell no scale weights (it has no spatial branch)."
    else:
        second = f"The model weighted r={weighted} most here ({weights[weighted]:.2f}), " + (
            "the planted scale." if weighted == expected else "not the planted scale."
        )
    if benchmark:
        by_kind = benchmark.get("by_kind") or {}
        kinds = (
            f" ({by_kind['small']:.0%} where the ore anomalies were small, {by_kind['large']:.0%} where they "
            "were large)"
            if {"small", "large"} <= set(by_kind)
            else ""
        )
        second += (
            f" On the explanation benchmark the scale weights ranked the planted scale first at "
            f"{benchmark['first']:.0%} of deposit cells{kinds}, chance {benchmark['chance']:.0%}: they say where "
            "the model looks to reconstruct a cell, not how large the anomaly is."
        )
    else:
        second += (
            " The explanation benchmark has not been run here (no docs/results/explain.json), so how often "
            "the scale weights match the planted scale is not measured."
        )
    return {
        "verdict": verdict,
        "why": f"{first} {second}",
        "expected": expected,
        "radius": radius,
        "weighted": weighted,
        "place": place,
        "row": int(row),
        "col": int(col),
    }
