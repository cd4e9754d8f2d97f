"""Per-family figures of the explanation benchmark: the signed top-k rule and exact McNemar tests (issue 28).

**Signed top-k rule** (:func:`named`). The planted truth may include
elements the ore *lowers* (Na2O and CaO in the ``depletion`` family, the
partner of a ratio). Methods that keep the direction give two rankings:
``composition`` ranks elements by their mean normalised value at the deposits
(enriched: highest first; depleted: lowest first), and the IG enrichment
split (``ig_enrichment`` and its shuffled-weight reference) ranks the IG
carried by elements above the baseline composition (enriched) and, apart,
the IG carried by elements below it (depleted; IG is positive there when a
low value raises the score). A scenario counts as named when the top k+ of
the enriched ranking are the ore's enriched elements and the top k- of the
depleted ranking are its depleted ones (k+, k- their numbers). Keeping the
two rankings apart, rather than one ranking by absolute value, leaves the
control unchanged (k- = 0: the enriched top k, as before) and keeps the
small depletions that closure gives every other element out of the
enriched ranking. Methods without a direction (attention, rollout, the full
IG, occlusion) give one ranking of evidence; they name the ore when its top
k (k = all ore elements) holds every ore element, whatever their direction.

**Paired tests.** Per family, every method's hits are set against those of
the data alone (``composition``) and of the shuffled-weight model
(``ig_enrichment_shuffled``) on the same scenarios: exact McNemar, i.e. a
two-sided binomial test of the discordant pairs against 1/2 (p = 1 when
there are none).
"""

from __future__ import annotations

import numpy as np

REFERENCES = {"data": "composition", "shuffled": "ig_enrichment_shuffled"}
CONTROL = "enrichment"  # the family of the original kinds (small, large)
CONTROL_KINDS = ("small", "large")


def family(kind: str) -> str:
    """The family of a scenario kind: ``enrichment`` for the control kinds, else the kind itself."""
    return CONTROL if kind in CONTROL_KINDS else kind


def _top(scores, names: list, k: int) -> set:
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    return {names[i] for i in order[:k]}


def named(record: dict, method: str) -> bool | None:
    """Whether ``method`` names every ore element of the record under the signed top-k rule; None without it."""
    scores = record["elements_scores"].get(method)
    if scores is None:
        return None
    names, ore = record["elements"], list(record["truth"]["ore"])
    depleted = set(record["truth"].get("depleted", []))
    enriched = {e for e in ore if e not in depleted}
    lowered = record.get("depleted_scores", {}).get(method)
    if lowered is None:
        return _top(scores, names, len(ore)) == set(ore)
    return _top(scores, names, len(enriched)) == enriched and _top(lowered, names, len(depleted)) == depleted


def mcnemar(hits, reference) -> dict:
    """Exact McNemar test of paired hits: ``method_only``, ``reference_only`` (the discordant pairs) and ``p``."""
    from scipy.stats import binomtest

    hits, reference = np.asarray(hits, dtype=bool), np.asarray(reference, dtype=bool)
    b, c = int((hits & ~reference).sum()), int((reference & ~hits).sum())
    p = float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
    return {"method_only": b, "reference_only": c, "p": p}


def family_summary(records: list[dict], methods) -> dict:
    """Per family: scenarios, each method's hits (signed rule) and its McNemar tests against both references."""
    out = {}
    families = list(dict.fromkeys(family(r["spec"]["kind"]) for r in records))
    for fam in families:
        group = [r for r in records if family(r["spec"]["kind"]) == fam]
        hits = {}
        for method in methods:
            values = [named(r, method) for r in group]
            if all(v is not None for v in values):
                hits[method] = values
        entry = {"n": len(group), "seeds": [r["spec"]["seed"] for r in group], "hits": {}, "mcnemar": {}}
        for method, values in hits.items():
            entry["hits"][method] = int(sum(values))
            entry["mcnemar"][method] = {
                name: mcnemar(values, hits[ref]) for name, ref in REFERENCES.items() if ref in hits and ref != method
            }
        out[fam] = entry
    return out


def families_markdown(families: dict) -> list[str]:
    """Table lines: per family and method, hits of n and McNemar p against the data alone and the shuffled model."""
    if not families:
        return []
    lines = [
        "",
        "Per family (signed top-k rule; exact McNemar against the data alone = `composition` "
        "and against the shuffled-weight model = `ig_enrichment_shuffled`):",
        "",
        "| family | method | ore named | vs data alone: method only / data only, p "
        "| vs shuffled: method only / shuffled only, p |",
        "|---|---|---|---|---|",
    ]
    for fam, entry in families.items():
        for method, hits in entry["hits"].items():
            tests = entry["mcnemar"][method]
            cells = [
                f"{tests[k]['method_only']} / {tests[k]['reference_only']}, {tests[k]['p']:.3g}" if k in tests else "-"
                for k in REFERENCES
            ]
            lines.append(f"| {fam} | {method} | {hits} / {entry['n']} | {cells[0]} | {cells[1]} |")
    return lines
