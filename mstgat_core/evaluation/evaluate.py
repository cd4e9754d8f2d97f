"""Metrics, the cross-validation loop and its report.

Folds come from :mod:`mstgat_core.folds` (whole deposit clusters, a buffer,
leave-one-cluster-out); paired statistics from :mod:`mstgat_core.stats`.
Nodes are the valid cells in row-major order: ``rows, cols = np.nonzero(mask)``.

Per fold and method the report keeps ROC-AUC and PR-AUC of the test positives
against the test negatives (with the prevalence, PR-AUC's chance level), the
success-rate AUC and the share of test deposit cells captured in the top 1, 5,
10 and 20 % of the test region, and each test deposit cluster's own ROC-AUC
(the unit of the paired comparison). A method may return, with its scores,
what it chose (:class:`MethodScores`): fine-tuned MSTGAT stores its inner
cross-validation (``row["inner"]``) and the Brier score and reliability of its
``calibrated`` layer on the fold's test cells (``row["calibration"]``).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from ..errors import Cancelled, DataError
from ..training.folds import FoldSettings, deposit_clusters, fold_report, spatial_folds
from .baselines import BASELINES
from .calibration import calibration_figures, calibration_markdown, pool_calibration
from .stats import capture_rates, compare_methods, comparison_markdown
from .uncertainty import uncertainty_figures, uncertainty_markdown, uncertainty_summary

CURVE_POINTS = 101
METRICS = ("roc_auc", "pr_auc", "success_rate_auc")
# seed 0 was looked at when the default settings were chosen and seed 1 when the pretraining window was:
# reports use seeds that chose nothing
REPORT_SEEDS = (2, 3, 4)


# ---------------------------------------------------------------- metrics


def _scores_of(scores, pos, neg):
    scores = np.asarray(scores, dtype=np.float64)
    pos_scores, neg_scores = scores[np.asarray(pos, dtype=np.int64)], scores[np.asarray(neg, dtype=np.int64)]
    targets = np.concatenate([np.ones(len(pos_scores)), np.zeros(len(neg_scores))])
    return targets, np.concatenate([pos_scores, neg_scores])


def roc_auc(scores, pos, neg):
    """ROC-AUC of the nodes ``pos`` against the nodes ``neg`` (ties count 1/2)."""
    return float(roc_auc_score(*_scores_of(scores, pos, neg)))


def pr_auc(scores, pos, neg):
    """Average precision of ``pos`` against ``neg`` (random = share of positives)."""
    return float(average_precision_score(*_scores_of(scores, pos, neg)))


def success_rate_curve(scores, pos_nodes, region_nodes=None):
    """Share of deposit cells captured against share of area, ranking cells by descending score.

    Cells of ``region_nodes`` (default: all nodes) are ranked by score; the
    curve has one vertex per group of tied scores, so ties are counted as if
    broken at random (linear within the group). Returns ``(area_share,
    captured_share)``, both starting at 0 and ending at 1.
    """
    scores = np.asarray(scores, dtype=np.float64)
    region = np.arange(len(scores)) if region_nodes is None else np.asarray(region_nodes, dtype=np.int64)
    is_pos = np.isin(region, np.asarray(pos_nodes, dtype=np.int64))
    if not is_pos.any():
        raise DataError("the success-rate curve needs at least one deposit in the region")
    order = np.argsort(-scores[region], kind="stable")
    ranked_scores, ranked_pos = scores[region][order], is_pos[order]
    group_ends = np.flatnonzero(np.append(np.diff(ranked_scores) != 0, True))
    cells = group_ends + 1
    captured = np.cumsum(ranked_pos)[group_ends]
    area_share = np.concatenate([[0.0], cells / len(region)])
    captured_share = np.concatenate([[0.0], captured / is_pos.sum()])
    return area_share, captured_share


def success_rate_auc(scores, pos_nodes, region_nodes=None):
    """Area under the success-rate curve: 0.5 for random scores, 1 - 0.5/N at best with one deposit.

    Equals ``1 - (mean rank of the deposits - 0.5) / N`` with average ranks of
    the N region cells (rank 1 = highest score).
    """
    area_share, captured_share = success_rate_curve(scores, pos_nodes, region_nodes)
    return float(np.sum(np.diff(area_share) * (captured_share[1:] + captured_share[:-1]) / 2))


def _thin(x, y, max_points=CURVE_POINTS):
    """At most ``max_points`` vertices of a curve, first and last kept, as plain floats."""
    keep = np.unique(np.linspace(0, len(x) - 1, min(len(x), max_points)).round().astype(int))
    return [float(v) for v in np.asarray(x)[keep]], [float(v) for v in np.asarray(y)[keep]]


def training_negatives(fold, seed, max_negatives=None):
    """The fold's training negatives, a seeded random subsample if ``max_negatives`` is set."""
    pool = fold.train_neg_pool
    if max_negatives is None or len(pool) <= max_negatives:
        return pool
    return np.sort(np.random.default_rng(seed).choice(pool, size=max_negatives, replace=False))


def baseline_method(name, max_negatives=5000, **options):
    """A ``fit_predict(X, fold, seed)`` callable for the baseline registered as ``name``.

    Training negatives are a seeded subsample of the fold's pool (at most
    ``max_negatives``). A baseline that ignores labels is fitted once per
    (features, seed) and its scores reused by every fold: same result, k times
    less work.
    """
    if name not in BASELINES:
        raise DataError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}", setting="methods")
    baseline = BASELINES[name]
    unsupervised_scores = {}

    def fit_predict(X, fold, seed):
        if baseline.uses_labels:
            negatives = training_negatives(fold, seed, max_negatives)
            return baseline(**options).fit(X, fold.train_pos, negatives, seed).score(X)
        key = (hashlib.sha1(np.ascontiguousarray(X).tobytes()).hexdigest(), seed)
        if key not in unsupervised_scores:
            unsupervised_scores[key] = baseline(**options).fit(X, seed=seed).score(X)
        return unsupervised_scores[key]

    fit_predict.__name__ = name
    return fit_predict


# ---------------------------------------------------------------- cross-validation


class MethodScores(np.ndarray):
    """A method's score per node (an ordinary array) carrying what it chose: ``extras``.

    Returned by a ``fit_predict`` that has more to report than scores; code
    that only wants scores uses it as the array it is. Known extras:
    ``inner`` (a JSON-able dict, stored as ``row["inner"]``) and
    ``calibrated`` (a probability per node, or None: turned into
    ``row["calibration"]`` by :func:`~mstgat_core.evaluation.calibration.calibration_figures`
    on the fold's test cells); any other extra is stored in the row as it is.
    """

    def __new__(cls, scores, **extras):
        obj = np.asarray(scores).view(cls)
        obj.extras = extras
        return obj

    def __array_finalize__(self, obj):
        self.extras = {}  # slices and results of arithmetic carry no extras


def method_output(output) -> tuple[np.ndarray, dict]:
    """``(scores as float64, extras)`` of what a ``fit_predict`` returned.

    Accepts an array (no extras), a :class:`MethodScores`, or a tuple
    ``(scores, extras dict)``.
    """
    if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], dict):
        scores, extras = output
    else:
        scores, extras = output, getattr(output, "extras", {})
    return np.asarray(scores, dtype=np.float64), dict(extras or {})


def _extra_fields(extras: dict, fold, scores) -> dict:
    """Fold-row fields from a method's extras (probabilities become calibration figures on the test cells, the
    members' spread :func:`~mstgat_core.evaluation.uncertainty.uncertainty_figures` against ``scores``)."""
    fields = {}
    for key, value in extras.items():
        if key == "calibrated":
            fields["calibration"] = (
                None if value is None else calibration_figures(np.asarray(value), fold.test_pos, fold.test_neg)
            )
        elif key == "spread":
            fields["uncertainty"] = uncertainty_figures(value, scores, fold)
        else:
            fields[key] = value
    return fields


def fold_metrics(scores, fold) -> dict:
    """Every per-fold figure of one method's scores (plain JSON types)."""
    region_nodes = np.flatnonzero(fold.test_region)
    n_pos, n_neg = len(fold.test_pos), len(fold.test_neg)
    clusters = {}
    for cluster in np.unique(fold.test_clusters):
        clusters[str(int(cluster))] = roc_auc(scores, fold.test_pos[fold.test_clusters == cluster], fold.test_neg)
    return {
        "roc_auc": roc_auc(scores, fold.test_pos, fold.test_neg),
        "pr_auc": pr_auc(scores, fold.test_pos, fold.test_neg),
        "prevalence": n_pos / (n_pos + n_neg),
        "success_rate_auc": success_rate_auc(scores, fold.test_pos, region_nodes),
        "capture": capture_rates(scores, fold.test_pos, region_nodes),
        "clusters": clusters,
        "n_test_pos": int(n_pos),
        "n_test_neg": int(n_neg),
    }


class _PooledHeldOut:
    """Held-out scores of one method collected over folds and seeds, for curves."""

    def __init__(self):
        self.pos, self.neg, self.region, self.region_is_pos = [], [], [], []

    def add(self, scores, fold):
        region_nodes = np.flatnonzero(fold.test_region)
        self.pos.append(scores[fold.test_pos])
        self.neg.append(scores[fold.test_neg])
        self.region.append(scores[region_nodes])
        self.region_is_pos.append(np.isin(region_nodes, fold.test_pos))

    def curves(self):
        pos, neg = np.concatenate(self.pos), np.concatenate(self.neg)
        targets = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
        fpr, tpr, _ = roc_curve(targets, np.concatenate([pos, neg]))
        region_scores = np.concatenate(self.region)
        area, captured = success_rate_curve(region_scores, np.flatnonzero(np.concatenate(self.region_is_pos)))
        fpr, tpr = _thin(fpr, tpr)
        area, captured = _thin(area, captured)
        return {"roc_curve": {"fpr": fpr, "tpr": tpr}, "success_curve": {"area": area, "captured": captured}}


def fold_summary(fold_rows) -> dict:
    """Mean and standard deviation (ddof 0) over fold rows of each metric, and of each capture share."""
    summary = {}
    for metric in METRICS:
        values = np.array([row[metric] for row in fold_rows])
        summary[f"{metric}_mean"] = float(values.mean())
        summary[f"{metric}_std"] = float(values.std())
    for share in fold_rows[0].get("capture", {}):
        summary[f"capture_{share}_mean"] = float(np.mean([row["capture"][share] for row in fold_rows]))
    return summary


def cross_validate_arrays(
    methods,
    X,
    rows,
    cols,
    pos_nodes,
    settings: FoldSettings | None = None,
    seeds=REPORT_SEEDS,
    reference: str | None = "mstgat",
    progress=None,
    cancel=None,
) -> dict:
    """Spatially cross-validate ``methods`` on a feature matrix (the array-level loop).

    Parameters
    ----------
    methods : dict
        name -> ``fit_predict(X, fold, seed)`` returning a score per node
        (higher = more prospective), possibly with extras
        (:class:`MethodScores` or ``(scores, extras)``: see
        :func:`method_output`). A method must read labels only from
        ``fold.train_pos`` and ``fold.train_neg_pool``.
    X : ndarray
        (nodes, features), passed to every method.
    rows, cols : ndarray of int
        Grid position of every node.
    pos_nodes : ndarray of int
        Deposit nodes.
    settings : FoldSettings, optional
        How folds are drawn (default :class:`~mstgat_core.folds.FoldSettings`).
    seeds : sequence of int
        One fold assignment and one set of fits per seed.
    reference : str, optional
        Method the others are compared with (paired statistics in
        ``report["comparison"]``) when it is among ``methods``.
    progress : callable, optional
        ``progress(done, total, message)`` after each (seed, fold, method).
    cancel : threading.Event, optional
        When set, stops with :class:`~mstgat_core.errors.Cancelled`.

    Returns
    -------
    dict
        ``protocol`` (settings, seeds, clusters, per-fold sizes, buffer
        losses and the distance of every test deposit cell to the nearest
        training deposit cell), ``results`` (per method: means, per-fold rows
        with the method's extras such as ``inner`` and ``calibration``,
        pooled held-out curves and, when rows have calibration figures,
        ``calibration``: :func:`~mstgat_core.evaluation.calibration.pool_calibration`) and
        ``comparison`` (paired statistics over deposit clusters against
        ``reference``: :func:`~mstgat_core.stats.compare_methods`); plain
        JSON types.
    """
    settings = settings or FoldSettings()
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    pos_nodes = np.unique(np.asarray(pos_nodes, dtype=np.int64))
    folds_by_seed = {seed: spatial_folds(rows, cols, pos_nodes, settings, seed) for seed in seeds}
    total = sum(len(folds) for folds in folds_by_seed.values()) * len(methods)
    if total == 0:
        raise DataError("no usable spatial fold: every fold lacked test positives or negatives")
    fold_rows = {name: [] for name in methods}
    pooled = {name: _PooledHeldOut() for name in methods}
    done = 0
    for seed, folds in folds_by_seed.items():
        for fold_index, fold in enumerate(folds):
            for name, fit_predict in methods.items():
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"cross-validation cancelled after {done} of {total} fits")
                started = time.perf_counter()
                scores, extras = method_output(fit_predict(X, fold, seed))
                row = {
                    "seed": int(seed),
                    "fold": fold_index,
                    **fold_metrics(scores, fold),
                    **_extra_fields(extras, fold, scores),
                }
                row["seconds"] = float(time.perf_counter() - started)
                fold_rows[name].append(row)
                pooled[name].add(scores, fold)
                done += 1
                if progress is not None:
                    progress(done, total, f"seed {seed} fold {fold_index}: {name} ROC-AUC {row['roc_auc']:.3f}")
    clusters = deposit_clusters(rows, cols, pos_nodes, settings.link_distance)
    protocol = {
        **settings.to_dict(),
        "seeds": [int(seed) for seed in seeds],
        "n_nodes": int(len(rows)),
        "n_deposit_cells": int(len(pos_nodes)),
        "n_clusters": int(clusters.max() + 1),
        "folds_used": {str(seed): len(folds) for seed, folds in folds_by_seed.items()},
        "folds": {str(seed): [fold_report(f, rows, cols) for f in folds] for seed, folds in folds_by_seed.items()},
    }
    results = {
        name: {**fold_summary(fold_rows[name]), "folds": fold_rows[name], **pooled[name].curves()} for name in methods
    }
    for result in results.values():
        if any("calibration" in row for row in result["folds"]):
            result["calibration"] = pool_calibration(result["folds"])
    report = {"protocol": protocol, "results": results}
    if reference in methods and len(methods) > 1:
        report["comparison"] = compare_methods(report, reference=reference)
        report["reference"] = reference
    return report


def seed_means(fold_rows, metric: str = "roc_auc") -> dict:
    """Seed -> mean of ``metric`` over that seed's folds: how much the whole result moves with the seed."""
    seeds = sorted({row["seed"] for row in fold_rows})
    return {s: float(np.mean([row[metric] for row in fold_rows if row["seed"] == s])) for s in seeds}


def inner_summary(fold_rows) -> dict | None:
    """What the inner cross-validation chose over a method's fold rows (``row["inner"]``); None if not recorded.

    Returns ``folds`` (rows with a record), ``by_inner_cv`` (chosen by inner
    CV, not the single-cluster default), ``share`` and ``C`` (value -> folds
    that chose it), ``inner_folds`` (median inner folds) and ``calibrated``
    (folds whose head got a Platt calibration), ``routes`` (route -> folds; empty in reports before the
    paired rule) and ``paired`` (every record chosen by the paired rule on the inner partial ROC-AUC).
    """
    records = [row["inner"] for row in fold_rows if row.get("inner")]
    if not records:
        return None
    return {
        "folds": len(records),
        "by_inner_cv": sum(1 for r in records if r.get("chosen_by") == "inner-cv"),
        "share": dict(sorted(Counter(float(r["share"]) for r in records if r.get("share") is not None).items())),
        "C": dict(sorted(Counter(float(r["C"]) for r in records if r.get("C") is not None).items())),
        "inner_folds": float(np.median([r.get("inner_folds", 0) for r in records])),
        "calibrated": sum(1 for r in records if r.get("calibrated")),
        "routes": dict(sorted(Counter(r["route"] for r in records if r.get("route")).items())),
        "paired": all("route" in r for r in records),  # chosen by the paired rule on the partial ROC-AUC
    }


def _routes(counter: dict) -> str:
    return ", ".join(f"{route} {n}" for route, n in counter.items())


def _counts(counter: dict) -> str:
    return ", ".join(f"{value:g}: {n}" for value, n in counter.items())


def _comparison_of(report) -> dict | None:
    """The report's comparison, recomputed from its fold rows when it predates the cluster-level statistics."""
    comparison = report.get("comparison")
    if not comparison:
        return None
    if all("clusters" in entry for entry in comparison.values()):
        return comparison
    return compare_methods(report, reference=report.get("reference", "mstgat"))


def _inner_and_calibration_markdown(report) -> list[str]:
    results = report["results"]
    reference = report.get("reference", "mstgat")
    inner = {name: inner_summary(r["folds"]) for name, r in results.items()}
    inner = {name: s for name, s in inner.items() if s}
    calibration = {
        name: r.get("calibration") or pool_calibration(r["folds"])
        for name, r in results.items()
        if any("calibration" in row for row in r["folds"])
    }
    if not inner and not calibration and "mstgat" not in results:
        return []
    paired = bool(inner) and all(s["paired"] for s in inner.values())
    rule = (
        "paired one-standard-error rule on the partial ROC-AUC to 5 % false positives"
        if paired
        else "one-standard-error rule, unpaired, on the inner ROC-AUC (reports before the paired rule)"
    )
    lines = ["", f"Inner-CV choices per fold (on each fold's training deposits only; {rule}):", ""]
    if inner:
        lines += [
            "| method | chosen by inner CV | share of the supervised head (folds) | C (folds) | inner folds (median) "
            "| calibrated |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name, s in inner.items():
            lines.append(
                f"| {name} | {s['by_inner_cv']}/{s['folds']} | {_counts(s['share'])} | {_counts(s['C'])} "
                f"| {s['inner_folds']:g} | {s['calibrated']}/{s['folds']} |"
            )
        routes = {name: s["routes"] for name, s in inner.items() if s["routes"]}
        if routes:
            lines += ["", "Routes chosen (folds): " + "; ".join(f"{n}: {_routes(r)}" for n, r in routes.items()) + "."]
    else:
        lines.append("— (not recorded in this report)")
    lines += ["", "Calibration of the `calibrated` layer on test folds:", ""]
    if calibration:
        lines.append(calibration_markdown(calibration, reliability_of=reference).rstrip("\n"))
        shown = calibration.get(reference) or next((s for s in calibration.values() if s), None)
        if shown:
            lines += [
                "",
                f"Brier score over each fold's test deposit cells and test negatives, averaged over folds. Deposit "
                f"cells are {100 * shown['prevalence']:.2f} % of these cells, so a constant predictor at each fold's "
                f"prevalence already scores prevalence x (1 - prevalence), {shown['mean_brier_prevalence']:.5f} on "
                "average: a small Brier score alone says little; the skill (1 - Brier / constant; > 0 beats the "
                "constant) and the reliability table say whether the probabilities are worth more than the prevalence.",
            ]
    else:
        lines.append("— (not recorded in this report)")
    lines += uncertainty_markdown({name: uncertainty_summary(r["folds"]) for name, r in results.items()})
    return lines


def report_markdown(report) -> str:
    """The report as markdown: a table of methods, the paired comparison, and the protocol.

    Parameters
    ----------
    report : dict
        From :func:`~mstgat_core.crossval.cross_validate_grid` or
        :func:`cross_validate_arrays`.

    Returns
    -------
    str
        One row per method (best mean ROC-AUC first): mean ± standard
        deviation over (fold, seed) rows of ROC-AUC, its mean per seed (and
        their range: the seed-to-seed spread), PR-AUC (with the mean
        prevalence, PR-AUC's chance level), the mean share of test deposit
        cells captured in the top 1/5/10/20 % of the test area, and the
        folds used per seed; then the paired comparison over deposit
        clusters with the reference method when there is one (recomputed
        from the fold rows for reports that predate it); then the inner
        CV's choices and the calibration of the ``calibrated`` layer ("—"
        when the report did not record them); then the protocol.
    """
    lines = [
        "| method | ROC-AUC | mean by seed (range) | PR-AUC (chance) | deposit cells in top 1 / 5 / 10 / 20 % of area "
        "| folds x seeds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    ranked = sorted(report["results"].items(), key=lambda item: -item[1]["roc_auc_mean"])
    for name, result in ranked:
        folds = result["folds"]
        prevalence = float(np.mean([row["prevalence"] for row in folds]))
        capture = " / ".join(f"{result[f'capture_{share}_mean']:.2f}" for share in folds[0]["capture"])
        per_seed = sorted({sum(1 for row in folds if row["seed"] == s) for s in {row["seed"] for row in folds}})
        n_seeds = len({row["seed"] for row in folds})
        by_seed = seed_means(folds)
        seeds = " / ".join(f"{v:.3f}" for v in by_seed.values())
        if len(by_seed) > 1:
            seeds += f" ({max(by_seed.values()) - min(by_seed.values()):.3f})"
        lines.append(
            f"| {name} | {result['roc_auc_mean']:.3f} ± {result['roc_auc_std']:.3f} | {seeds} | "
            f"{result['pr_auc_mean']:.3f} ({prevalence:.4f}) | {capture} | "
            f"{'/'.join(map(str, per_seed))} x {n_seeds} |"
        )
    comparison = _comparison_of(report)
    if comparison:
        reference = report.get("reference", "mstgat")
        lines += [
            "",
            f"Paired against {reference} over deposit clusters, seed-averaged (exact tests; CI: bootstrap over "
            "clusters of the same mean difference):",
            "",
        ]
        lines.append(comparison_markdown(comparison, reference=reference).rstrip("\n"))
    lines += _inner_and_calibration_markdown(report)
    protocol = report["protocol"]
    lines += ["", "Protocol:", ""]
    for key, value in protocol.items():
        if key != "folds":
            lines.append(f"- {key}: {value}")
    return "\n".join(lines) + "\n"
