"""Indicator rankings of the real surveys against the published pathfinder suite of their deposit type.

``python -m mstgat_core.experiments.pathfinders --json docs/results/pathfinders.json [--surveys ...]``
(issue 28, item 5). For each survey with deposits (:func:`~mstgat_core.experiments.surveys.surveys`),
two element rankings over the deposit cells (grid) or the deposit-near samples (points):

**model** (South China, a grid)
    The bundled checkpoint (:data:`~mstgat_core.paths.DEMO_CHECKPOINT`, no refit) on the bundled grid:
    ``summarise(fitted, prepared, deposit cells)["elements_by_enrichment"]``, the IG carried by enriched
    elements averaged over the deposit cells (the product's indicator ranking).
**model** (point surveys)
    The product's default scoring path, what ``mstgat score`` does: a label-free point model pretrained
    on the samples as loaded (:func:`~mstgat_core.training.point_model.pretrain_points`, nearest-sample
    scales 8, 24, 48, 30 epochs, seed 0), read by :meth:`PointModel.scores`. Point models have no IG
    path (``PointModel.explain`` gives a sample's [CLS] attention and neighbour weights only); the
    per-sample element ranking the product shows (``top_elements``, the dashboard's red bars) is the
    residual contribution ``(value - prediction)^2 / E`` signed by the residual. The ranking here is its
    enriched part averaged over the deposit-near samples: mean of ``contribution * (residual > 0)``
    (method ``enriched_contribution``; the mean signed residual is reported beside it, not in the table).
    Deposit-near samples: each site labels its nearest sample within the reach R of the survey protocol
    (:func:`~mstgat_core.evaluation.point_crossval.site_positives`).
**data alone**
    The mean normalised value (CLR, robust scaling: what the model reads) at the deposit cells / samples
    minus that of every other cell / sample; no model.

Names are matched by :func:`canonical` (oxides to their metal, lanthanides to ``REE``); elements
sharing a canonical name (the lanthanides of sed1) become one item scored by their mean. Against each
suite, :func:`overlap` counts the suite elements present in the top k (k = number of suite elements
present) and gives the exact hypergeometric probability of at least that many by chance.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import write_text_atomically


@dataclass(frozen=True)
class Suite:
    """A published pathfinder suite: canonical element names and one reference."""

    title: str
    elements: tuple
    reference: str  # short, for tables
    citation: str  # full, for the docs


SUITES = {
    "li_pegmatite": Suite(
        "Li pegmatite and granite",
        ("Li", "Be", "Nb", "Ta", "Sn", "Rb", "Cs", "F", "W"),
        "Bradley et al. 2017",
        "Bradley, D.C., Stillings, L.L., Jaskula, B.W., Munk, L., McCauley, A.D., 2017, Lithium, chap. K of "
        "Schulz, K.J., DeYoung, "
        "J.H., Jr., Seal, R.R., II, Bradley, D.C., eds., Critical mineral resources of the United States - "
        "Economic and environmental geology and prospects for future supply: U.S. Geological Survey "
        "Professional Paper 1802, p. K1-K21, https://doi.org/10.3133/pp1802K",
    ),
    "orogenic_au": Suite(
        "orogenic and intrusion-related Au",
        ("Au", "As", "Sb", "W", "Bi", "Te", "Hg"),
        "Goldfarb et al. 2005",
        "Goldfarb, R.J., Baker, T., Dube, B., Groves, D.I., Hart, C.J.R., Gosselin, P., 2005, Distribution, "
        "character, and genesis of gold deposits in metamorphic terranes, in Hedenquist, J.W., Thompson, "
        "J.F.H., Goldfarb, R.J., Richards, J.P., eds., Economic Geology 100th Anniversary Volume, Society of "
        "Economic Geologists, p. 407-450",
    ),
    "porphyry_cu": Suite(
        "porphyry Cu",
        ("Cu", "Mo", "Au", "Ag", "Re"),
        "Sillitoe 2010",
        "Sillitoe, R.H., 2010, Porphyry copper systems: Economic Geology, v. 105, p. 3-41, "
        "https://doi.org/10.2113/gsecongeo.105.1.3",
    ),
    "iocg": Suite(
        "IOCG",
        ("Cu", "Au", "Co", "U", "REE", "Fe"),
        "Williams et al. 2005",
        "Williams, P.J., Barton, M.D., Johnson, D.A., Fontbote, L., de Haller, A., Mark, G., Oliver, N.H.S., "
        "Marschik, R., 2005, Iron oxide copper-gold deposits: Geology, space-time distribution, and possible "
        "modes of origin, in Hedenquist, J.W., et al., eds., Economic Geology 100th Anniversary Volume, "
        "Society of Economic Geologists, p. 371-405",
    ),
}

SURVEY_TYPES = {
    "south_china_li": "li_pegmatite",
    "lapland_points": "iocg",
    "sed1": "orogenic_au",
    "gm46c_au": "orogenic_au",
    "gm46c_cu": "porphyry_cu",
    "alaska_au": "orogenic_au",
    "alaska_cu": "porphyry_cu",
}
CAVEATS = {
    "gm46c_cu": "MODS Cu occurrences of the Arabian Shield are of mixed types (VMS, vein, porphyry-style), "
    "not all porphyry: the comparison with the porphyry suite is rough",
    "alaska_cu": "ARDF Cu sites of Southeast Alaska are of mixed types (VMS, skarn, magmatic Ni-Cu, porphyry), "
    "not all porphyry: the comparison with the porphyry suite is rough",
}
COMMODITY = {  # the metal the sites were chosen for: a suite member by construction
    "south_china_li": "Li",
    "lapland_points": "Cu",
    "sed1": "Au",
    "gm46c_au": "Au",
    "gm46c_cu": "Cu",
    "alaska_au": "Au",
    "alaska_cu": "Cu",
}
LANTHANIDES = ("La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu")
DEFAULT_ORDER = ("south_china_li", "lapland_points", "sed1", "gm46c_au", "gm46c_cu", "alaska_au", "alaska_cu")
POINT_METHOD = "enriched_contribution"
POINT_SEED, POINT_EPOCHS = 0, 30  # `mstgat score`'s defaults

_OXIDE = re.compile(r"^([A-Z][a-z]?)\d*O\d*(?:T|t|tot|TOT|total)?$")


# ------------------------------------------------------------------------------------- names


def canonical(name: str, y_as_ree: bool = False) -> str:
    """The element a survey column stands for: ``Fe2O3``/``FeO``/``Fe2O3T`` -> ``Fe``, ``La``..``Lu``
    -> ``REE`` (and ``Y`` with ``y_as_ree``), ``Au_ppb`` / ``Au (ppm)`` -> ``Au``; anything else
    unchanged (``LOI``, ``TC``: total carbon, not technetium, so letter case is kept as the loaders give it)."""
    token = re.split(r"[\s_(\[/]", str(name).strip(), maxsplit=1)[0]
    match = _OXIDE.match(token)
    if match:
        token = match.group(1)
    if token in LANTHANIDES or (y_as_ree and token == "Y"):
        return "REE"
    return token


def collapse(scores: dict, y_as_ree: bool = False) -> tuple[list, dict, dict]:
    """(ranking, item scores, members) of canonical items from ``scores`` (element -> score, in the
    survey's column order). An item's score is the mean of its members'; ties (and NaN, last) keep
    the order of first appearance, so the ranking is deterministic."""
    members: dict = {}
    for name in scores:
        members.setdefault(canonical(name, y_as_ree), []).append(name)
    items = {}
    for item, names in members.items():
        values = np.array([scores[n] for n in names], dtype=float)
        items[item] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return rank(items), items, members


def rank(scores: dict) -> list:
    """Keys of ``scores``, highest first; ties keep their order in ``scores``; NaN last."""
    keys = list(scores)
    values = np.array([scores[k] for k in keys], dtype=float)
    key = np.where(np.isfinite(values), -values, np.inf)
    return [keys[i] for i in np.argsort(key, kind="stable")]


def suite_present(suite: Suite, items) -> list:
    """The suite's elements among a survey's canonical items, in the suite's order."""
    have = set(items)
    return [e for e in suite.elements if e in have]


# ------------------------------------------------------------------------------------- chance


def overlap(ranking, suite_present, k: int | None = None) -> dict:
    """Hits of ``suite_present`` in the top ``k`` of ``ranking`` (default k = its size) against chance.

    ``p``: exact hypergeometric probability of at least ``hits`` when k of the ``n`` ranked items are
    drawn at random (``scipy.stats.hypergeom``); ``expected``: k K / n.
    """
    from scipy.stats import hypergeom

    ranking = list(ranking)
    suite = [e for e in dict.fromkeys(suite_present)]
    missing = [e for e in suite if e not in ranking]
    if missing:
        raise DataError(f"suite elements {', '.join(missing)} are not in the ranking")
    n, big_k = len(ranking), len(suite)
    k = big_k if k is None else int(k)
    if not 0 <= k <= n:
        raise DataError(f"k = {k} outside 0..{n}")
    top = ranking[:k]
    hits = sum(e in set(suite) for e in top)
    p = float(hypergeom.sf(hits - 1, n, big_k, k)) if big_k else 1.0
    return {
        "k": k,
        "n_items": n,
        "top_k": top,
        "hits": int(hits),
        "hit_elements": [e for e in top if e in set(suite)],
        "expected": k * big_k / n if n else 0.0,
        "p": min(p, 1.0),
    }


# -------------------------------------------------------------------------------- rankings


def _contrast(x: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Mean of ``x`` (n, E) inside minus outside (outside 0 when everything is inside)."""
    outside = x[~inside].mean(axis=0) if (~inside).any() else np.zeros(x.shape[1])
    return x[inside].mean(axis=0) - outside


def grid_rankings(survey) -> dict:
    """South China: the bundled checkpoint's indicator ranking at the deposit cells, and the data alone."""
    import xarray as xr

    from ..data.io import deposit_cells, load_deposits, load_grid
    from ..interpret import summarise
    from ..paths import DEMO_CHECKPOINT, DEMO_DEPOSITS, DEMO_GRID
    from ..training.checkpoint import load_checkpoint

    if survey.name != "south_china_li":
        raise DataError(f"{survey.name}: only the South China grid has a bundled checkpoint")
    fitted = load_checkpoint(DEMO_CHECKPOINT)
    grid = load_grid(DEMO_GRID)
    cells = deposit_cells(grid, load_deposits(DEMO_DEPOSITS))
    prepared = fitted.prepare(grid)
    summary = summarise(fitted, prepared, cells, maps=xr.Dataset())  # no attention maps: the IG ranking only
    inside = np.asarray(cells.values, dtype=bool)[prepared.graph.mask]
    data = _contrast(prepared.x.numpy(), inside)
    elements = list(fitted.elements)
    return {
        "elements": elements,
        "n_deposit_units": int(summary["n_cells"]),
        "units": "deposit cells",
        "model": {
            "method": "summarise(...)['elements_by_enrichment']: mean IG carried by enriched elements over the "
            "deposit cells, bundled checkpoint (DEMO_CHECKPOINT, fitted with these deposits), no refit",
            "scores": {e: summary["enrichment_inside"][e] for e in elements},
        },
        "data": {
            "method": "mean normalised value (the checkpoint's CLR + robust scaling) at the deposit cells minus "
            "the other cells",
            "scores": dict(zip(elements, data.tolist())),
        },
    }


def point_rankings(survey, cache: dict | None = None, log=print) -> dict:
    """A point survey: the default scoring path's residual contributions at the deposit-near samples."""
    import torch

    from ..evaluation.point_crossval import point_distances, site_positives
    from ..graphs.point_graph import DEFAULT_NEIGHBOURS
    from ..model import ModelConfig
    from ..training.point_model import pretrain_points
    from ..training.pretrain import PretrainConfig
    from .surveys import _xy_km

    torch.set_num_threads(1)
    data = survey.load()
    samples = data.samples
    cache = {} if cache is None else cache
    started = time.perf_counter()
    if data.key in cache:
        model, scores, seconds = cache[data.key]
    else:
        config = PretrainConfig(epochs=POINT_EPOCHS, seed=POINT_SEED)
        model = pretrain_points(samples, DEFAULT_NEIGHBOURS, kind="knn", pretrain_config=config)
        scores = model.scores()
        seconds = time.perf_counter() - started
        cache[data.key] = (model, scores, seconds)
        log(f"  {survey.title}: point model pretrained and scored in {seconds:.0f} s ({len(samples.table)} samples)")
    xy_km = _xy_km(samples.table)
    sites_km = _xy_km(data.sites.to_crs(samples.table.crs))
    layers = ModelConfig.from_dict(None, n_elements=len(model.elements)).gat_layers
    distances = point_distances(xy_km, DEFAULT_NEIGHBOURS, layers)
    positives, site_info = site_positives(xy_km, sites_km, distances.site_km)
    inside = np.zeros(len(xy_km), dtype=bool)
    inside[positives] = True
    elements = model.elements
    residual = scores.residuals.to_numpy()
    enriched = (scores.contributions.to_numpy() * (residual > 0))[inside].mean(axis=0)
    data_scores = _contrast(model.x.numpy().astype(float), inside)
    return {
        "elements": elements,
        "n_deposit_units": int(inside.sum()),
        "units": "deposit-near samples",
        "sites": {**site_info, "reach_km": float(distances.site_km)},
        "model": {
            "method": f"{POINT_METHOD}: mean over the deposit-near samples of each element's residual "
            "contribution (value - prediction)^2 / E where the residual is positive (richer than predicted); "
            "label-free point model as `mstgat score` pretrains it (knn 8,24,48, "
            f"{POINT_EPOCHS} epochs, seed {POINT_SEED}), PointModel.scores(); point models have no IG path",
            "scores": dict(zip(elements, enriched.tolist())),
            "mean_residual": dict(zip(elements, residual[inside].mean(axis=0).tolist())),
            "pretrain_and_score_seconds": seconds,
        },
        "data": {
            "method": "mean normalised value (the point model's CLR + robust scaling, medians filled) at the "
            "deposit-near samples minus the other samples",
            "scores": dict(zip(elements, data_scores.tolist())),
        },
    }


def survey_rankings(survey, cache: dict | None = None, log=print) -> dict:
    """The model's and the data's per-element scores of one survey (:func:`grid_rankings` or :func:`point_rankings`)."""
    if survey.kind == "grid":
        return grid_rankings(survey)
    return point_rankings(survey, cache, log)


def compare(name: str, rankings: dict) -> dict:
    """Both rankings of a survey against the suite of its deposit type (:data:`SURVEY_TYPES`)."""
    suite_key = SURVEY_TYPES[name]
    suite = SUITES[suite_key]
    out = {"deposit_type": suite_key, "suite": suite.title, "suite_elements": list(suite.elements)}
    for which in ("model", "data"):
        ranking, items, members = collapse(rankings[which]["scores"])
        present = suite_present(suite, ranking)
        out[which] = {"method": rankings[which]["method"], "ranking": ranking, **overlap(ranking, present)}
        out["suite_present"] = present  # the same items in both rankings
        out["merged_items"] = {k: v for k, v in members.items() if len(v) > 1 or k != v[0]}
    out["suite_absent"] = [e for e in suite.elements if e not in out["suite_present"]]
    # pathfinders only: the commodity itself left out of both the ranking and the suite
    metal = COMMODITY.get(name)
    if metal in out["suite_present"] and len(out["suite_present"]) > 1:
        rest = [e for e in out["suite_present"] if e != metal]
        out["without_commodity"] = {
            "commodity": metal,
            **{w: overlap([e for e in out[w]["ranking"] if e != metal], rest) for w in ("model", "data")},
        }
    if name in CAVEATS:
        out["caveat"] = CAVEATS[name]
    return out


# ---------------------------------------------------------------------------------- runner


def run(names=None, json_path=None, log=print) -> dict:
    """Compare every chosen survey (default :data:`DEFAULT_ORDER`); write ``json_path`` after each survey.

    A survey whose files are missing is skipped with one line; an existing ``json_path`` keeps the
    surveys not run now."""
    from .benchmark import versions
    from .surveys import surveys

    known = {s.name: s for s in surveys("surveys") if s.name in SURVEY_TYPES}
    names = list(names or DEFAULT_ORDER)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise DataError(f"no survey {', '.join(unknown)}; choose from {', '.join(known)}", setting="surveys")
    report = {"surveys": {}, "skipped": {}}
    if json_path is not None and Path(json_path).is_file():
        report = json.loads(Path(json_path).read_text())
        report.setdefault("skipped", {})
    report["suites"] = {
        k: {"title": s.title, "elements": list(s.elements), "reference": s.reference, "citation": s.citation}
        for k, s in SUITES.items()
    }
    report["chance"] = (
        "hits in the top k (k = suite elements present) against drawing k of the n ranked items at random: "
        "exact hypergeometric P(X >= hits), expected k^2 / n"
    )

    def save():
        report["versions"] = versions()
        if json_path is not None:
            Path(json_path).parent.mkdir(parents=True, exist_ok=True)
            write_text_atomically(Path(json_path), json.dumps(report, indent=1))

    cache: dict = {}
    for name in names:
        survey = known[name]
        missing = [str(p) for p in survey.needs if not Path(p).exists()]
        if missing:
            log(f"{survey.title}: skipped ({missing[0]} not found)")
            report["skipped"][name] = f"{missing[0]} not found"
            report["surveys"].pop(name, None)
            save()
            continue
        log(f"{survey.title}: ranking ...")
        began = time.perf_counter()
        rankings = survey_rankings(survey, cache, log)
        entry = {
            "title": survey.title,
            "kind": survey.kind,
            "elements": list(rankings["elements"]),
            "units": rankings["units"],
            "n_deposit_units": rankings["n_deposit_units"],
            **({"sites": rankings["sites"]} if "sites" in rankings else {}),
            **compare(name, rankings),
            "scores": {w: rankings[w]["scores"] for w in ("model", "data")},
            "seconds": time.perf_counter() - began,
        }
        if "mean_residual" in rankings["model"]:
            entry["scores"]["mean_residual"] = rankings["model"]["mean_residual"]
            entry["pretrain_and_score_seconds"] = rankings["model"]["pretrain_and_score_seconds"]
        report["surveys"][name] = entry
        report["skipped"].pop(name, None)
        m, d = entry["model"], entry["data"]
        log(
            f"  {survey.title}: k = {m['k']} of {m['n_items']}; model {m['hits']}/{m['k']} (p {m['p']:.3g}) "
            f"{', '.join(m['top_k'])}; data {d['hits']}/{d['k']} (p {d['p']:.3g}) {', '.join(d['top_k'])}; "
            f"{entry['seconds']:.0f} s"
        )
        save()
    return report


def recompare(report: dict) -> dict:
    """Every survey's comparison computed again from the scores stored in ``report`` (nothing is fitted):
    for a change of the name matching or of a suite."""
    for name, entry in report["surveys"].items():
        rankings = {w: {"method": entry[w]["method"], "scores": entry["scores"][w]} for w in ("model", "data")}
        entry.update(compare(name, rankings))
        if name not in CAVEATS:
            entry.pop("caveat", None)
    return report


def markdown_table(report: dict) -> str:
    """The results table of docs/results.md from a report."""
    lines = [
        "| survey | deposit type | suite elements present (k) | model top-k hits / k | p | data-alone hits / k | p "
        "| expected by chance |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in [n for n in DEFAULT_ORDER if n in report["surveys"]]:
        e = report["surveys"][name]
        m, d = e["model"], e["data"]
        mark = " *" if "caveat" in e else ""
        lines.append(
            f"| {e['title']} | {e['suite']}{mark} | {', '.join(e['suite_present'])} ({m['k']} of {m['n_items']}) "
            f"| {m['hits']} / {m['k']} ({', '.join(m['top_k'])}) | {m['p']:.3g} "
            f"| {d['hits']} / {d['k']} ({', '.join(d['top_k'])}) | {d['p']:.3g} | {m['expected']:.2f} |"
        )
    lines += [
        "",
        "Pathfinders only (the commodity the sites were chosen for left out of the ranking and the suite):",
        "",
        "| survey | commodity left out | k | model hits / k | p | data-alone hits / k | p | expected |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in [n for n in DEFAULT_ORDER if n in report["surveys"]]:
        e = report["surveys"][name]
        w = e.get("without_commodity")
        if w is None:
            continue
        m, d = w["model"], w["data"]
        lines.append(
            f"| {e['title']} | {w['commodity']} | {m['k']} of {m['n_items']} "
            f"| {m['hits']} / {m['k']} ({', '.join(m['top_k'])}) | {m['p']:.3g} "
            f"| {d['hits']} / {d['k']} ({', '.join(d['top_k'])}) | {d['p']:.3g} | {m['expected']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mstgat_core.experiments.pathfinders", description=__doc__)
    parser.add_argument("--json", required=True, help="report to write (kept surveys not run now)")
    parser.add_argument("--surveys", nargs="*", help=f"surveys to run (default: {' '.join(DEFAULT_ORDER)})")
    parser.add_argument("--table", action="store_true", help="print the markdown table of --json; run nothing")
    parser.add_argument(
        "--recompare", action="store_true", help="recompute the comparisons of --json from its stored scores"
    )
    args = parser.parse_args(argv)
    try:
        if args.recompare:
            report = recompare(json.loads(Path(args.json).read_text()))
            write_text_atomically(Path(args.json), json.dumps(report, indent=1))
        if args.table or args.recompare:
            print(markdown_table(json.loads(Path(args.json).read_text())), end="")
            return 0
        report = run(args.surveys, args.json, log=lambda line: print(line, flush=True))
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(markdown_table(report), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
