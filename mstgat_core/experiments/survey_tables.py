"""Tables of the survey suite (:mod:`.surveys`): one section per survey, then the pooled comparison.

**Pooled** over the surveys whose report says ``pooled`` (the real ones), on their main protocol,
the cross-validation, and over the methods that every one of them ran:

* **mean rank**: in each survey the methods are ranked by mean ROC-AUC over its (seed, fold) rows
  (1 = highest; means equal to 6 decimals share the mean of their ranks), then the ranks are averaged over the surveys;
* **pooled cluster-level comparison** of ``mstgat`` with each method: the fold rows of every survey
  are put in one report whose folds and clusters are named ``<survey>/<id>`` (so that no two surveys
  share one), and :func:`~mstgat_core.evaluation.stats.compare_methods` runs on it unchanged: each
  site cluster's ROC-AUC difference averaged over seeds, exact Wilcoxon and sign tests over the
  clusters of all surveys, a bootstrap interval over them, Holm over the table's comparisons;
* **wins / losses per survey**: each survey's own cluster record against ``mstgat``, and in how many
  surveys ``mstgat``'s mean ROC-AUC is above / below the method's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from ..evaluation.stats import compare_methods, comparison_notes, min_attainable_p, reading

BEGIN, END = "<!-- surveys:begin -->", "<!-- surveys:end -->"
REFERENCE = "mstgat"
TIE_DECIMALS = 6  # mean ROC-AUCs equal to 6 decimals share their rank
LABEL_FREE = {"mstgat_label_free", "mahalanobis", "isolation_forest", "target_element"}


def _p(p) -> str:
    if p is None:
        return "–"
    return np.format_float_positional(p, precision=2, unique=False, fractional=False, trim="-")


# ------------------------------------------------------------------------------------------ pooling


def pooled_surveys(reports: dict) -> list[str]:
    """Names of the reports pooled (``survey.pooled``), in the reports' order."""
    return [name for name, r in reports.items() if r["survey"].get("pooled", True)]


def pooled_methods(reports: dict) -> list[str]:
    """The methods every pooled survey's cross-validation ran, in the first one's order."""
    names = pooled_surveys(reports)
    if not names:
        return []
    first = list(reports[names[0]]["crossval"]["results"])
    return [m for m in first if all(m in reports[n]["crossval"]["results"] for n in names)]


def mean_ranks(reports: dict) -> dict:
    """method -> ``mean_rank``, ``ranks`` (survey -> rank), ``mean_auc`` (mean of the surveys' mean ROC-AUC),
    over the pooled surveys and methods (module docstring)."""
    names, methods = pooled_surveys(reports), pooled_methods(reports)
    ranks = {m: {} for m in methods}
    aucs = {m: {} for m in methods}
    for name in names:
        results = reports[name]["crossval"]["results"]
        values = np.array([results[m]["roc_auc_mean"] for m in methods], dtype=float)
        for m, rank, value in zip(methods, rankdata(-np.round(values, TIE_DECIMALS), method="average"), values):
            ranks[m][name] = float(rank)
            aucs[m][name] = float(value)
    return {
        m: {
            "mean_rank": float(np.mean(list(ranks[m].values()))),
            "ranks": ranks[m],
            "mean_auc": float(np.mean(list(aucs[m].values()))),
        }
        for m in methods
    }


def pooled_report(reports: dict) -> dict:
    """One cross-validation report holding the fold rows of every pooled survey (folds and clusters
    renamed ``<survey>/<id>``), for :func:`~mstgat_core.evaluation.stats.compare_methods`."""
    methods = pooled_methods(reports)
    results = {m: {"folds": []} for m in methods}
    for name in pooled_surveys(reports):
        for m in methods:
            for row in reports[name]["crossval"]["results"][m]["folds"]:
                results[m]["folds"].append(
                    {
                        "seed": row["seed"],
                        "fold": f"{name}/{row['fold']}",
                        "roc_auc": row["roc_auc"],
                        "pr_auc": row["pr_auc"],
                        "clusters": {f"{name}/{c}": v for c, v in row["clusters"].items()},
                    }
                )
    return {"results": results}


def pooled_comparison(reports: dict) -> dict:
    """:func:`~mstgat_core.evaluation.stats.compare_methods` of ``mstgat`` on :func:`pooled_report`."""
    pooled = pooled_report(reports)
    if REFERENCE not in pooled["results"] or len(pooled["results"]) < 2:
        return {}
    return compare_methods(pooled, reference=REFERENCE)


def survey_records(reports: dict, method: str) -> dict:
    """survey -> (wins, losses, ties) of ``mstgat`` against ``method`` over that survey's clusters."""
    out = {}
    for name, report in reports.items():
        entry = (report["crossval"].get("comparison") or {}).get(method)
        if entry is not None:
            c = entry["clusters"]
            out[name] = (c["wins"], c["losses"], c["ties"])
    return out


# ------------------------------------------------------------------------------------------ markdown


def _folds_text(protocol: dict) -> str:
    return "leave one cluster out" if protocol["method"] == "loco" else f"{protocol['n_folds']} folds of whole clusters"


def _grid_line(report: dict) -> str:
    p = report["crossval"]["protocol"]
    support = p.get("support") or {}
    ground = f"{p['n_nodes']:,} cells" + (" of measured ground" if support.get("method") else " with data")
    return (
        f"{p['n_deposit_cells']} deposit cells in {p['n_clusters']} clusters (link distance "
        f"{p['link_distance']:g} cells), {ground}; {_folds_text(p)}, buffer {p['buffer']:g} cells"
    )


def _point_line(report: dict) -> str:
    p = report["crossval"]["protocol"]
    d, sites = p["distances"], report["sites"]
    chosen = "; ".join(f"{e['filter']} kept {e['kept']}" for e in sites.get("selection", []))
    outside = f", {sites['n_sites_outside']} farther than R from every sample" if sites["n_sites_outside"] else ""
    return (
        f"{p['n_nodes']:,} samples after merging duplicates; {sites['n_sites']} sites"
        + (f" ({chosen})" if chosen else "")
        + f"{outside} -> {p['n_deposit_cells']} site samples in {p['n_clusters']} clusters; spacing s "
        f"{d['spacing_km']:.2f} km, reach R {d['reach_km']:.1f} km, link distance = buffer = R + s = "
        f"{d['buffer_km']:.1f} km, negatives >= {d['min_neg_km']:.1f} km from a site; {_folds_text(p)}"
    )


def label_free_table(report: dict) -> list[str]:
    """Protocol v2 of a point survey: MSTGAT's readouts (mean over seeds), the label-free baselines, the best
    non-chemical references."""
    lf = report["label_free"]
    methods = lf["methods"]
    groups: dict[str, list] = {}
    for name in methods:
        base = name.split(" (seed ")[0]
        groups.setdefault(base, []).append(name)
    best = lf["best_reference"]
    lines = [
        f"Label-free, protocol v2 ({lf['n_merged']:,} merged samples, {lf['positives']['n_distinct']} distinct site "
        f"samples of {lf['positives']['n_sites']} sites, negatives stratified by {lf['batch']['stratified_by']}; "
        "MSTGAT: mean over seeds, each seed in brackets):",
        "",
        "| score | v2 ROC-AUC [95 % over positives] | published ROC-AUC | SR@5% v2 |",
        "|---|---|---|---|",
    ]
    rows = []
    for base, names in groups.items():
        if methods[names[0]]["kind"] == "reference" and base not in (best["v2"], best["published"]):
            continue
        figures = [methods[n] for n in names]
        v2 = float(np.mean([f["v2"]["auc"] for f in figures]))
        if len(names) > 1:
            each = " / ".join(f"{f['v2']['auc']:.3f}" for f in figures)
            text = f"{v2:.3f} ({each})"
        else:
            ci = figures[0]["v2"]["ci95"]
            text = f"{v2:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]"
        published = float(np.mean([f["auc_mean"] for f in figures]))
        sr5 = float(np.mean([f["v2"]["sr5"] for f in figures]))
        on = [column for column, name in (("v2", best["v2"]), ("published", best["published"])) if name == base]
        label = base + (f" (best non-chemical reference, {' and '.join(on)})" if on else "")
        rows.append((v2, f"| {label} | {text} | {published:.3f} | {sr5:.2f} |"))
    lines += [row for _, row in sorted(rows, key=lambda r: -r[0])]
    return lines


def crossval_table(report: dict) -> list[str]:
    """The cross-validation: every method with its kind, figures and cluster record against mstgat."""
    cv = report["crossval"]
    comparison = cv.get("comparison") or {}
    lines = [
        "| method | kind | ROC-AUC ± sd | PR-AUC (chance) | sites in top 5 % | clusters w/l/t (mstgat vs it) "
        "| mean ΔROC-AUC (clusters) | Holm p | reading |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(cv["results"].items(), key=lambda kv: -kv[1]["roc_auc_mean"]):
        prevalence = float(np.mean([row["prevalence"] for row in r["folds"]]))
        kind = "label-free" if name in LABEL_FREE else "supervised"
        entry = comparison.get(name)
        if entry is None:
            record = delta = holm = verdict = "–"
        else:
            c = entry["clusters"]
            record = f"{c['wins']}/{c['losses']}/{c['ties']}"
            delta = "–" if c["mean_difference"] is None else f"{c['mean_difference']:+.3f}"
            holm, verdict = _p(c.get("holm_p")), reading(REFERENCE, name, entry["verdict"])
        lines.append(
            f"| {name} | {kind} | {r['roc_auc_mean']:.3f} ± {r['roc_auc_std']:.3f} | {r['pr_auc_mean']:.3f} "
            f"({prevalence:.4f}) | {r.get('capture_5_mean', float('nan')):.2f} | {record} | {delta} | {holm} | "
            f"{verdict} |"
        )
    return lines


def survey_markdown(report: dict, json_path: str) -> str:
    """One survey's section."""
    s, cv = report["survey"], report["crossval"]
    line = _grid_line(report) if s["kind"] == "grid" else _point_line(report)
    seeds = ", ".join(map(str, cv["protocol"]["seeds"]))
    lines = [
        f"#### {s['title']}",
        "",
        f"{report['description']}. Source: {s['source']}. {line}; seeds {seeds}; "
        f"{report['wall_seconds'] / 60:.1f} min. Every figure: [{Path(json_path).name}]({json_path})."
        + ("" if s.get("pooled", True) else " Not pooled (planted truth)."),
        "",
    ]
    if report.get("label_free"):
        lines += label_free_table(report) + [""]
        lines.append("Cross-validation on the samples (sites held out by cluster, the buffer in km):")
    else:
        lines.append("Cross-validation (its label-free rows are the grid's label-free protocol):")
    lines += [""] + crossval_table(report) + route_lines(report)
    return "\n".join(lines) + "\n"


def route_lines(report: dict) -> list[str]:
    """What ``mstgat``'s inner CV chose per fold (route, share) and whether its members' spread marks misses."""
    from ..evaluation.evaluate import inner_summary
    from ..evaluation.uncertainty import uncertainty_markdown, uncertainty_summary

    rows = report["crossval"]["results"].get(REFERENCE, {}).get("folds", [])
    inner = inner_summary(rows)
    if not inner:
        return []
    rule = "paired rule on the partial ROC-AUC" if inner["paired"] else "unpaired rule on the ROC-AUC"
    routes = ", ".join(f"{route} {n}" for route, n in inner["routes"].items()) or "not recorded"
    shares = ", ".join(f"{share:g}: {n}" for share, n in inner["share"].items())
    defaults = inner["folds"] - inner["by_inner_cv"]
    without = f" ({defaults} without inner CV: one training cluster, the default)" if defaults else ""
    lines = [
        "",
        f"`{REFERENCE}`'s inner CV ({rule}) over {inner['folds']} fold rows{without}: routes {routes}; share {shares}.",
    ]
    return lines + uncertainty_markdown({REFERENCE: uncertainty_summary(rows)})


def pooled_markdown(reports: dict) -> str:
    """The pooled section: mean ranks, the pooled cluster-level comparison, wins/losses per survey."""
    names = pooled_surveys(reports)
    if not names:
        return "No survey to pool.\n"
    ranks, comparison = mean_ranks(reports), pooled_comparison(reports)
    titles = [reports[n]["survey"]["title"] for n in names]
    left_out = [r["survey"]["title"] for n, r in reports.items() if n not in names]
    lines = [
        "#### Pooled over the surveys",
        "",
        f"{len(names)} surveys pooled: {', '.join(titles)}"
        + (f" (not pooled: {', '.join(left_out)})" if left_out else "")
        + f". Methods in every pooled survey's cross-validation: {len(ranks)}. Rank 1 = the highest mean "
        "ROC-AUC of the survey's cross-validation; the comparison pools the site clusters of every survey "
        "(exact tests over clusters, Holm over the table).",
        "",
        "| method | mean rank | rank per survey | mean ROC-AUC | surveys mstgat above / below | pooled clusters w/l/t "
        "| mean ΔROC-AUC (clusters) | 95 % CI | exact Wilcoxon p | Holm p | reading |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, r in sorted(ranks.items(), key=lambda kv: kv[1]["mean_rank"]):
        per_survey = " / ".join(f"{r['ranks'][n]:g}" for n in names)
        above = sum(ranks[REFERENCE]["ranks"][n] < r["ranks"][n] for n in names) if REFERENCE in ranks else 0
        below = sum(ranks[REFERENCE]["ranks"][n] > r["ranks"][n] for n in names) if REFERENCE in ranks else 0
        entry = comparison.get(method)
        if entry is None:
            cells = "– | – | – | – | – | –"
        else:
            c = entry["clusters"]
            ci = c["ci95"]
            cells = (
                f"{c['wins']}/{c['losses']}/{c['ties']} | {c['mean_difference']:+.3f} | "
                f"[{ci[0]:+.3f}, {ci[1]:+.3f}] | {_p(c['wilcoxon_p'])} | {_p(c.get('holm_p'))} | "
                f"{reading(REFERENCE, method, entry['verdict'])}"
            )
        versus = "–" if method == REFERENCE else f"{above} / {below}"
        lines.append(f"| {method} | {r['mean_rank']:.2f} | {per_survey} | {r['mean_auc']:.3f} | {versus} | {cells} |")
    if comparison:
        n = max(e["clusters"]["n"] for e in comparison.values())
        lines += [
            "",
            f"Unit: the site cluster, {n} clusters over the {len(names)} surveys (the smallest exact two-sided p "
            f"is {_p(min_attainable_p(n))})." + _shared_samples(reports, names),
        ]
        lines += [line for note in comparison_notes(comparison)[1:] for line in ("", note)]
    lines += [
        "",
        "Clusters won / lost / tied by mstgat in each survey (its own cross-validation):",
        "",
        "| method | " + " | ".join(titles) + " |",
        "|---|" + "---|" * len(names),
    ]
    for method in ranks:
        if method == REFERENCE:
            continue
        records = survey_records({n: reports[n] for n in names}, method)
        cells = [("/".join(map(str, records[n])) if n in records else "–") for n in names]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _shared_samples(reports: dict, names) -> str:
    groups: dict[str, list] = {}
    for n in names:
        if reports[n].get("samples"):
            groups.setdefault(reports[n]["samples"], []).append(reports[n]["survey"]["title"])
    shared = [" and ".join(titles) for titles in groups.values() if len(titles) > 1]
    if not shared:
        return ""
    return (
        f" {'; '.join(shared)} share their samples and pretrained models but not their sites: their clusters "
        "count separately."
    )


def surveys_markdown(reports: dict, out_dir, link_base=".") -> str:
    """The text between the surveys markers: every survey's section, then the pooled one."""
    out_dir = Path(out_dir)
    total = sum(r["wall_seconds"] for r in reports.values())
    suite = next(iter(reports.values()))["suite"]
    parts = [
        f"Generated by `mstgat benchmark --suite {suite}` ({total / 60:.0f} min of computation on this 2-core "
        "machine); do not edit by hand.",
        "",
    ]
    for name, report in reports.items():
        parts.append(survey_markdown(report, os.path.relpath(out_dir / f"{name}.json", link_base)))
    parts.append(pooled_markdown(reports))
    return "\n".join(parts)
