"""The OpenGADBench protocol for label-free anomaly scores on point samples, and protocol v2.

``mstgat evaluate POINTS --sites SITES --protocol opengadbench`` scores every
sample with methods that never see the sites, then, with great-circle
distances in km (scikit-learn's haversine ``BallTree``):

**The published protocol** (:func:`opengadbench`, on the rows as read; its
figures keep their names ``auc_mean``, ``auc_sd``, ``sr5`` so that published
results such as 0.929 can still be quoted beside ours):

* **positives**: for each site, the score of the sample nearest to it;
* **negatives**: as many scores as there are sites, drawn at random with
  replacement from the samples at least ``buffer_km`` (5 km) from every site;
* ROC-AUC of positives against negatives, repeated for ``draws`` (20) draws
  from one seeded generator: mean and standard deviation;
* **SR@5%**: the share of sites whose nearest sample is in the top 5 % of
  all samples' scores (ties count as in the top when the score reaches the
  95th-percentile threshold);
* a spacing-matched variant (``matched_auc_mean``): each positive paired with
  a negative from the ``match`` pool samples of closest spacing.

This follows ``../shared/data/opengadbench-sed1/README.md``.

**Protocol v2** (:func:`opengadbench_v2`, the default reading). Point surveys
carry compilation artefacts that a score can read without any chemistry:
known sites lie where the survey is sparse, prospects were resampled
(co-located duplicates), one company report holds most sites. On sed1,
spacing alone scores 0.91 on the published protocol; after spacing matching
the duplicate count still scores 0.72. So v2:

1. **merges co-located duplicates** (:mod:`~mstgat_core.point_duplicates`:
   rows within 1 m are one sample, element-wise median); scores are computed
   on the merged samples;
2. takes as **positives** the merged sample nearest to each site, each
   *distinct* sample once (several sites sharing one nearest sample count
   once; the report gives both numbers);
3. **stratifies the negatives by batch and spacing**: each distinct positive
   gets as candidates the ``match`` (20) pool samples (merged samples at
   least ``buffer_km`` from every site) *of its own batch* whose log spacing
   (mean distance to the 16 nearest merged samples) is closest to its own.
   When its batch has no pool sample it falls back to the closest spacing
   over the whole pool, and the report counts these fallbacks. Without a
   batch column the report says "no batch column: negatives stratified by
   spacing only";
4. figures per score: ``auc``, the ROC-AUC expected over the negative draws,
   computed exactly (the mean over pairs of distinct positives p, q of the
   share of q's candidates that p outranks, ties counting half);
   ``auc_mean`` ± ``auc_sd`` over ``draws`` actual draws (one candidate per
   positive, for comparability with the published figures); ``ci95``, a 95 %
   percentile bootstrap interval over the **distinct positives** (2,000
   seeded replicates resampling the positives with replacement; each
   replicate's figure is the exact expected AUC of the resampled positives
   against their own stratified candidates, so the negatives are integrated
   out, not drawn, and the interval measures the uncertainty that the few
   positives leave); ``sr5`` and ``capture`` over the distinct positives;
5. **non-chemical references** (:func:`reference_scores`), label-free, on the
   same samples: sample spacing, duplicate count (rows merged into the
   sample, or rows at its location when not merged), batch size (samples in
   the sample's batch), latitude and longitude. Their direction is arbitrary
   (sparse or dense ground, north or south), so each is also scored negated
   (``-latitude (no chemistry)`` ...): the best reference is then the
   max(AUC, 1 - AUC) of each, which is the conservative side for a claim. A
   chemistry score **beats the references** on a protocol column only when
   its figure there is above the best reference's on that same column;
6. **paired comparison over the positives** (:func:`paired_over_positives`):
   each distinct positive's contribution is the share of the stratified
   negatives (every positive's candidates, each positive's stratum weighted
   equally) that it outranks; their mean is ``auc``. Two scores are compared
   by wins / losses / ties of the contributions and an exact two-sided sign
   test over the positives (ties left out of the test, reported).

Label-free baselines (:func:`label_free_scores`), each on the same complete
feature matrix: the target element alone (e.g. Au for gold sites), robust
Mahalanobis distance, Isolation Forest and the local outlier factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError
from .point_duplicates import NO_BATCH, frame_lonlat, merge_point_samples

EARTH_RADIUS_KM = 6371.0088
SHARES = (0.01, 0.05, 0.10, 0.20)
SPACING_REFERENCE = "sample spacing (no chemistry)"
DUPLICATE_REFERENCE = "duplicate count (no chemistry)"
BATCH_REFERENCE = "batch size (no chemistry)"
PROTOCOL_VERSION = 2
BOOTSTRAP = 2000


def _haversine_tree(lonlat: np.ndarray):
    from sklearn.neighbors import BallTree

    return BallTree(np.radians(np.asarray(lonlat, dtype=float)[:, ::-1]), metric="haversine")


def nearest_samples(samples_lonlat: np.ndarray, sites_lonlat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest sample to each site, its distance in km)."""
    distance, index = _haversine_tree(samples_lonlat).query(np.radians(np.asarray(sites_lonlat)[:, ::-1]), k=1)
    return index[:, 0], distance[:, 0] * EARTH_RADIUS_KM


def distance_to_sites_km(samples_lonlat: np.ndarray, sites_lonlat: np.ndarray) -> np.ndarray:
    """Great-circle distance in km from each sample to its nearest site."""
    distance, _ = _haversine_tree(sites_lonlat).query(np.radians(np.asarray(samples_lonlat)[:, ::-1]), k=1)
    return distance[:, 0] * EARTH_RADIUS_KM


def sample_spacing_km(samples_lonlat: np.ndarray, k: int = 16) -> np.ndarray:
    """Mean great-circle distance (km) from each sample to its ``k`` nearest other samples.

    Large where the survey is sparse. Samples at one place count as distance 0.
    """
    lonlat = np.asarray(samples_lonlat, dtype=float)
    k = min(int(k), len(lonlat) - 1)
    if k < 1:
        raise DataError("sample spacing needs at least two samples")
    distance, _ = _haversine_tree(lonlat).query(np.radians(lonlat[:, ::-1]), k=k + 1)
    return distance[:, 1:].mean(axis=1) * EARTH_RADIUS_KM


def matched_negatives(positives: np.ndarray, pool: np.ndarray, spacing: np.ndarray, match: int, rng) -> np.ndarray:
    """One pool sample per positive, drawn from the ``match`` pool samples of closest log spacing."""
    log_spacing = np.log(spacing + 1e-9)
    match = min(int(match), len(pool))
    chosen = []
    for sample in positives:
        closest = np.argsort(np.abs(log_spacing[pool] - log_spacing[sample]), kind="stable")[:match]
        chosen.append(pool[rng.choice(closest)])
    return np.asarray(chosen)


def opengadbench(
    scores: np.ndarray,
    samples_lonlat: np.ndarray,
    sites_lonlat: np.ndarray,
    draws: int = 20,
    seed: int = 0,
    buffer_km: float = 5.0,
    match: int = 20,
    spacing: np.ndarray | None = None,
) -> dict:
    """The protocol's figures for one score vector (see the module docstring).

    Returns
    -------
    dict
        ``auc_mean``, ``auc_sd`` (population sd over the draws), ``aucs``,
        ``sr5`` and ``capture`` (share -> share of sites whose nearest sample
        is in that top share), ``n_sites``, ``n_negative_pool``, and the
        spacing-matched ``matched_auc_mean``, ``matched_auc_sd``,
        ``matched_aucs`` (negatives from their own generator, so the
        published draws are unchanged).

    Raises
    ------
    DataError
        If the scores do not match the samples, hold NaN, or no sample lies
        ``buffer_km`` from every site.
    """
    from sklearn.metrics import roc_auc_score

    scores = np.asarray(scores, dtype=float)
    if scores.shape != (len(samples_lonlat),):
        raise DataError(f"{len(scores)} scores for {len(samples_lonlat)} samples")
    if not np.isfinite(scores).all():
        raise DataError("scores hold NaN or infinite values")
    nearest, _ = nearest_samples(samples_lonlat, sites_lonlat)
    positives = scores[nearest]
    pool = np.flatnonzero(distance_to_sites_km(samples_lonlat, sites_lonlat) >= buffer_km)
    if len(pool) == 0:
        raise DataError(f"no sample is at least {buffer_km:g} km from every site")
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(len(positives)), np.zeros(len(positives))]
    aucs = [
        float(roc_auc_score(labels, np.r_[positives, scores[rng.choice(pool, size=len(positives), replace=True)]]))
        for _ in range(draws)
    ]
    spacing = sample_spacing_km(samples_lonlat) if spacing is None else spacing  # pass it to reuse it
    matched_rng = np.random.default_rng([seed, 1])
    matched = []
    for _ in range(draws):
        negatives = scores[matched_negatives(nearest, pool, spacing, match, matched_rng)]
        matched.append(float(roc_auc_score(labels, np.r_[positives, negatives])))
    capture = {}
    for share in SHARES:
        threshold = np.quantile(scores, 1 - share)
        capture[share] = float(np.mean(positives >= threshold))
    return {
        "auc_mean": float(np.mean(aucs)),
        "auc_sd": float(np.std(aucs)),
        "aucs": aucs,
        "sr5": capture[0.05],
        "capture": {f"{share:.0%}": value for share, value in capture.items()},
        "n_sites": int(len(positives)),
        "n_negative_pool": int(len(pool)),
        "matched_auc_mean": float(np.mean(matched)),
        "matched_auc_sd": float(np.std(matched)),
        "matched_aucs": matched,
    }


# ---------------------------------------------------------------------------- protocol v2


@dataclass
class StratifiedDesign:
    """Positives, pool and stratified negative candidates of protocol v2 (module docstring).

    Attributes
    ----------
    positives : np.ndarray
        Distinct sample indices nearest to a site, in order of first site.
    site_sample : np.ndarray
        (sites,) the sample nearest to each site.
    pool : np.ndarray
        Samples at least ``buffer_km`` from every site.
    candidates : list of np.ndarray
        Per distinct positive, its stratified negative candidates (pool sample indices).
    fell_back : np.ndarray
        Per distinct positive, True when its batch had no pool sample.
    batched : bool
        Whether batches were used.
    """

    positives: np.ndarray
    site_sample: np.ndarray
    pool: np.ndarray
    candidates: list
    fell_back: np.ndarray
    batched: bool

    @property
    def n_sites(self) -> int:
        """Number of known sites (``len(site_sample)``; several may share a nearest sample)."""
        return int(len(self.site_sample))


def stratified_design(
    samples_lonlat: np.ndarray,
    sites_lonlat: np.ndarray,
    spacing: np.ndarray | None = None,
    batch: np.ndarray | None = None,
    buffer_km: float = 5.0,
    match: int = 20,
) -> StratifiedDesign:
    """Distinct positives and their negatives stratified by batch and log spacing.

    Raises
    ------
    DataError
        If there is no site, ``batch`` does not match the samples, or no sample
        lies ``buffer_km`` from every site.
    """
    samples_lonlat = np.asarray(samples_lonlat, dtype=float)
    if len(sites_lonlat) == 0:
        raise DataError("no sites to score against")
    spacing = sample_spacing_km(samples_lonlat) if spacing is None else np.asarray(spacing, dtype=float)
    site_sample, _ = nearest_samples(samples_lonlat, sites_lonlat)
    _, first = np.unique(site_sample, return_index=True)
    positives = site_sample[np.sort(first)]
    pool = np.flatnonzero(distance_to_sites_km(samples_lonlat, sites_lonlat) >= buffer_km)
    if len(pool) == 0:
        raise DataError(f"no sample is at least {buffer_km:g} km from every site: no negatives to draw")
    if batch is not None:
        batch = np.asarray(batch, dtype=object)
        if len(batch) != len(samples_lonlat):
            raise DataError(f"{len(batch)} batch labels for {len(samples_lonlat)} samples")
    log_spacing = np.log(spacing + 1e-9)
    candidates, fell_back = [], []
    for sample in positives:
        stratum = pool[batch[pool] == batch[sample]] if batch is not None else pool
        fell_back.append(len(stratum) == 0)
        stratum = pool if len(stratum) == 0 else stratum
        closest = np.argsort(np.abs(log_spacing[stratum] - log_spacing[sample]), kind="stable")[: int(match)]
        candidates.append(stratum[closest])
    return StratifiedDesign(positives, site_sample, pool, candidates, np.asarray(fell_back, bool), batch is not None)


def outrank_matrix(scores: np.ndarray, design: StratifiedDesign) -> np.ndarray:
    """K[p, q]: the share of positive q's candidates that positive p outranks (ties count half)."""
    scores = np.asarray(scores, dtype=float)
    positive = scores[design.positives][:, None]
    columns = []
    for candidates in design.candidates:
        negative = scores[candidates][None, :]
        columns.append(((positive > negative) + 0.5 * (positive == negative)).mean(axis=1))
    return np.stack(columns, axis=1)


def contributions(scores: np.ndarray, design: StratifiedDesign) -> np.ndarray:
    """Per distinct positive, the share of the stratified negatives it outranks; their mean is v2's ``auc``."""
    return outrank_matrix(scores, design).mean(axis=1)


def bootstrap_auc(K: np.ndarray, replicates: int = BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """Exact expected AUC of ``replicates`` resamples (with replacement) of the distinct positives."""
    n = len(K)
    rng = np.random.default_rng([seed, 3])
    weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(int(replicates))]).astype(float)
    return np.einsum("bi,ij,bj->b", weights, K, weights) / n**2


def opengadbench_v2(
    scores: np.ndarray, design: StratifiedDesign, draws: int = 20, seed: int = 0, bootstrap: int = BOOTSTRAP
) -> dict:
    """Protocol v2's figures for one score vector over the (merged) samples of ``design``.

    Returns
    -------
    dict
        ``auc`` (exact expectation over the stratified draws), ``auc_mean``,
        ``auc_sd`` (population sd), ``aucs`` (``draws`` draws), ``ci95``
        (bootstrap over distinct positives), ``sr5`` and ``capture`` (over the
        distinct positives), ``contributions`` (per distinct positive).
    """
    from sklearn.metrics import roc_auc_score

    scores = np.asarray(scores, dtype=float)
    if not np.isfinite(scores).all():
        raise DataError("scores hold NaN or infinite values")
    K = outrank_matrix(scores, design)
    n = len(design.positives)
    positive = scores[design.positives]
    rng = np.random.default_rng([seed, 2])
    labels = np.r_[np.ones(n), np.zeros(n)]
    aucs = []
    for _ in range(draws):
        negative = scores[[rng.choice(c) for c in design.candidates]]
        aucs.append(float(roc_auc_score(labels, np.r_[positive, negative])))
    replicates = bootstrap_auc(K, bootstrap, seed)
    capture = {share: float(np.mean(positive >= np.quantile(scores, 1 - share))) for share in SHARES}
    return {
        "auc": float(K.mean()),
        "auc_mean": float(np.mean(aucs)),
        "auc_sd": float(np.std(aucs)),
        "aucs": aucs,
        "ci95": [float(np.percentile(replicates, 2.5)), float(np.percentile(replicates, 97.5))],
        "sr5": capture[0.05],
        "capture": {f"{share:.0%}": value for share, value in capture.items()},
        "contributions": K.mean(axis=1).tolist(),
    }


def paired_over_positives(scores_a: np.ndarray, scores_b: np.ndarray, design: StratifiedDesign) -> dict:
    """Score A against score B over the distinct positives: wins, losses, ties of the contributions
    (:func:`contributions`), the mean difference (= the difference of v2 ``auc``) and the exact two-sided
    sign test p over the positives that differ."""
    from scipy.stats import binomtest

    difference = contributions(scores_a, design) - contributions(scores_b, design)
    tie = np.isclose(difference, 0.0, atol=1e-12)
    wins, losses = int(((difference > 0) & ~tie).sum()), int(((difference < 0) & ~tie).sum())
    p = float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
    return {
        "wins": wins,
        "losses": losses,
        "ties": int(tie.sum()),
        "mean_difference": float(difference.mean()),
        "sign_test_p": p,
    }


def reference_scores(
    samples_lonlat: np.ndarray,
    duplicates: np.ndarray,
    batch: np.ndarray | None = None,
    spacing: np.ndarray | None = None,
) -> dict:
    """The label-free non-chemical references (module docstring), name -> score per sample; each also
    negated (``-<name>``), since a direction chosen after looking at the sites would be the one that fits."""
    lonlat = np.asarray(samples_lonlat, dtype=float)
    plain = {
        SPACING_REFERENCE: sample_spacing_km(lonlat) if spacing is None else np.asarray(spacing, dtype=float),
        DUPLICATE_REFERENCE: np.asarray(duplicates, dtype=float),
    }
    if batch is not None:
        _, inverse, counts = np.unique(np.asarray(batch, dtype=str), return_inverse=True, return_counts=True)
        plain[BATCH_REFERENCE] = counts[np.asarray(inverse).ravel()].astype(float)
    plain["latitude (no chemistry)"] = lonlat[:, 1]
    plain["longitude (no chemistry)"] = lonlat[:, 0]
    out = {}
    for name, score in plain.items():
        out[name], out["-" + name] = score, -score
    return out


def label_free_scores(X: np.ndarray, elements: list, target: str | None = None, seed: int = 0) -> dict:
    """Scores of the label-free baselines on a complete (samples, E) normalised feature matrix."""
    from sklearn.neighbors import LocalOutlierFactor

    from .baselines import IsolationForestBaseline, RobustMahalanobis

    X = np.asarray(X, dtype=float)
    if not np.isfinite(X).all():
        raise DataError("the feature matrix holds missing values; impute them first")
    out = {}
    if target is not None:
        if target not in elements:
            raise DataError(f"target element {target!r} is not among the elements used")
        out[f"{target} alone"] = X[:, elements.index(target)]
    out["robust Mahalanobis"] = RobustMahalanobis().fit(X, None, None, seed).score(X)
    out["Isolation Forest"] = IsolationForestBaseline().fit(X, None, None, seed).score(X)
    lof = LocalOutlierFactor(n_neighbors=min(20, len(X) - 1)).fit(X)
    out["local outlier factor"] = -lof.negative_outlier_factor_
    return out


def normalised_points(values, elements, transform: str = "clr") -> np.ndarray:
    """(samples, E) CLR (or log/none) + robust-scaled features of complete point values (a Normaliser fit)."""
    from ..data.preprocess import fit_table

    return fit_table(values, elements, transform)[1].astype(float)


def evaluate_points(
    samples,
    sites,
    target: str | None = None,
    scores: dict | None = None,
    draws: int = 20,
    seed: int = 0,
    batch=None,
    batch_rule: str | None = None,
    merge: bool = True,
    tolerance_m: float = 1.0,
    bootstrap: int = BOOTSTRAP,
    buffer_km: float = 5.0,
    match: int = 20,
) -> dict:
    """The published protocol and protocol v2 for every label-free baseline, the non-chemical
    references and any extra ``scores`` on point samples (module docstring).

    Parameters
    ----------
    samples : PointSamples
        From :func:`~mstgat_core.points.load_points` (any CRS; distances are
        taken on the sphere after conversion to lon/lat), one row per sample as read.
    sites : geopandas.GeoDataFrame
        Site points (:func:`~mstgat_core.io.load_deposits`), used only to score.
    target : str, optional
        The commodity's element for the single-element baseline (e.g. ``Au``).
    scores : dict, optional
        Name -> extra chemistry scores (e.g. MSTGAT's), either one per merged
        sample (as scored on :func:`~mstgat_core.point_duplicates.merge_point_samples`'s
        samples; each row then takes its merged sample's score in the published
        protocol) or one per row (the merged sample then takes its rows' median).
    draws, seed : int
        Negative draws and their seed (the bootstrap uses the same seed).
    batch : array-like, optional
        One batch label per row (:func:`~mstgat_core.point_duplicates.read_batch`); None: no batch.
    batch_rule : str, optional
        The line saying how the batch column was chosen, for the report.
    merge : bool
        Merge co-located duplicates (False: v2 runs on the rows as read).
    tolerance_m, bootstrap, buffer_km, match
        Duplicate tolerance, bootstrap replicates, pool buffer, candidates per positive.

    Returns
    -------
    dict
        ``methods`` (name -> the published figures of :func:`opengadbench` on
        the rows, plus ``v2`` -> :func:`opengadbench_v2` and ``kind``
        "chemistry" or "reference"), ``references``, ``best_reference`` and
        ``beats_references`` per column, ``paired`` (chemistry score ->
        reference or target -> :func:`paired_over_positives`), ``duplicates``,
        ``batch``, ``positives``, ``filled`` and ``filled_merged``,
        ``n_samples``, ``n_merged``, ``elements``, ``protocol`` (``version`` 2).

    Raises
    ------
    DataError
        If there is no site, a score has the wrong length, or no sample lies
        ``buffer_km`` from every site.
    """
    from ..data.points import complete_features

    if len(sites) == 0:
        raise DataError("no sites to score against")
    rows_lonlat = _lonlat(samples.table)
    sites_lonlat = _lonlat(sites)
    merged_samples, merged = merge_point_samples(samples, batch, tolerance_m, merge=merge)
    merged_lonlat = merged.table[["lon", "lat"]].to_numpy()
    merged_batch = merged.table["batch"].to_numpy() if batch is not None else None
    n_rows, n_merged = len(rows_lonlat), len(merged_lonlat)

    values, filled = complete_features(samples)
    raw = label_free_scores(normalised_points(values, samples.elements), samples.elements, target, seed)
    merged_values, filled_merged = complete_features(merged_samples)
    v2 = label_free_scores(normalised_points(merged_values, samples.elements), samples.elements, target, seed)
    for name, score in (scores or {}).items():
        score = np.asarray(score, dtype=float)
        if len(score) == n_merged:
            v2[name], raw[name] = score, score[merged.group]
        elif len(score) == n_rows:
            raw[name] = score
            v2[name] = pd.Series(score).groupby(merged.group).median().to_numpy()
        else:
            raise DataError(f"{name}: {len(score)} scores for {n_merged} merged samples ({n_rows} rows)")
    chemistry = list(v2)
    raw_spacing, merged_spacing = sample_spacing_km(rows_lonlat), sample_spacing_km(merged_lonlat)
    raw.update(reference_scores(rows_lonlat, merged.colocated, batch, raw_spacing))
    references = reference_scores(merged_lonlat, merged.table["duplicates"].to_numpy(), merged_batch, merged_spacing)
    v2.update(references)
    design = stratified_design(merged_lonlat, sites_lonlat, merged_spacing, merged_batch, buffer_km, match)

    methods = {}
    for name in v2:
        figures = opengadbench(raw[name], rows_lonlat, sites_lonlat, draws, seed, buffer_km, match, raw_spacing)
        figures["v2"] = opengadbench_v2(v2[name], design, draws, seed, bootstrap)
        figures["kind"] = "reference" if name in references else "chemistry"
        methods[name] = figures
    best = {
        "published": max(references, key=lambda n: methods[n]["auc_mean"]),
        "v2": max(references, key=lambda n: methods[n]["v2"]["auc"]),
    }
    beats = {
        "published": [n for n in chemistry if methods[n]["auc_mean"] > methods[best["published"]]["auc_mean"]],
        "v2": [n for n in chemistry if methods[n]["v2"]["auc"] > methods[best["v2"]]["v2"]["auc"]],
    }
    target_name = f"{target} alone" if target is not None else None
    paired = {}
    for name in chemistry:
        against = [best["v2"]] + ([target_name] if target_name and name != target_name else [])
        paired[name] = {other: paired_over_positives(v2[name], v2[other], design) for other in against}
    n_positives, n_fell_back = len(design.positives), int(design.fell_back.sum())
    batch_line = batch_rule or ("batch labels given" if batch is not None else NO_BATCH)
    return {
        "methods": methods,
        "references": list(references),
        "best_reference": best,
        "beats_references": beats,
        "paired": paired,
        "duplicates": merged.summary(),
        "duplicates_line": merged.describe(),
        "batch": {
            "rule": batch_line,
            "used": batch is not None,
            "n_batches": int(len(set(merged_batch))) if batch is not None else 0,
            "stratified_by": "batch and spacing" if batch is not None else "spacing only",
        },
        "positives": {
            "n_sites": design.n_sites,
            "n_distinct": int(n_positives),
            "n_fell_back": n_fell_back,
            "pool": int(len(design.pool)),
        },
        "filled": filled,
        "filled_merged": filled_merged,
        "n_samples": int(n_rows),
        "n_merged": int(n_merged),
        "elements": list(samples.elements),
        "protocol": {
            "version": PROTOCOL_VERSION,
            "draws": draws,
            "seed": seed,
            "buffer_km": buffer_km,
            "distances": "great circle (haversine)",
            "published": "OpenGADBench on the rows as read: nearest row per site vs rows >= buffer_km from every "
            "site, drawn at random; scores of merged samples are given to each of their rows",
            "matched": f"published, with each positive paired with a negative from the {match} pool rows of "
            "closest spacing (mean distance to the 16 nearest rows, log scale)",
            "v2": f"co-located duplicates {'merged' if merge else 'NOT merged'} (within {tolerance_m:g} m); distinct "
            f"nearest samples as positives; negatives from the {match} pool samples of the positive's batch "
            "with closest log spacing (all batches when its batch has none); auc = exact expectation over "
            f"the draws; ci95 = percentile bootstrap over distinct positives ({bootstrap} replicates, "
            "negatives integrated out)",
            "references": "spacing, duplicate count, batch size, latitude, longitude, each also negated "
            "(direction is arbitrary; the best reference is max(AUC, 1 - AUC))",
            "paired": "per distinct positive, the share of stratified negatives it outranks; exact two-sided "
            "sign test, ties excluded",
        },
    }


def _lonlat(frame) -> np.ndarray:
    return frame_lonlat(frame)


def _fmt_ci(ci) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def protocol_markdown(report: dict) -> str:
    """The summary lines, the table (published and v2 ROC-AUC, SR@5%), which chemistry scores beat the
    references, and the paired comparisons over positives."""
    methods, protocol = report["methods"], report["protocol"]
    positives, best = report["positives"], report["best_reference"]
    lines = [
        f"Protocol v{protocol['version']}. {report['duplicates_line']}.",
        f"Batch: {report['batch']['rule']}"
        + ("; negatives stratified by batch and spacing." if report["batch"]["used"] else "."),
        f"Positives: {positives['n_sites']} sites -> {positives['n_distinct']} distinct nearest samples; "
        f"{positives['n_fell_back']} of {positives['n_distinct']} fell back to spacing over all batches "
        f"(no pool sample in their batch); negative pool {positives['pool']} samples >= "
        f"{protocol['buffer_km']:g} km from every site.",
        "",
        f"| method | kind | published ROC-AUC (rows as read, mean ± sd, {protocol['draws']} draws) "
        f"| v2 ROC-AUC (merged, stratified) [95 % bootstrap over positives] | v2 mean ± sd over draws "
        "| SR@5% published / v2 | above every reference (v2, point estimate) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in sorted(methods.items(), key=lambda kv: -kv[1]["v2"]["auc"]):
        v2 = m["v2"]
        is_reference = m["kind"] == "reference"
        verdict = "—" if is_reference else ("**yes**" if name in report["beats_references"]["v2"] else "no")
        lines.append(
            f"| {name} | {'non-chemical reference' if is_reference else 'chemistry'} "
            f"| {m['auc_mean']:.3f} ± {m['auc_sd']:.3f} | {v2['auc']:.3f} {_fmt_ci(v2['ci95'])} "
            f"| {v2['auc_mean']:.3f} ± {v2['auc_sd']:.3f} | {m['sr5']:.2f} / {v2['sr5']:.2f} | {verdict} |"
        )
    lines.append("")
    for column, label, figure in (
        ("published", "published protocol", lambda n: methods[n]["auc_mean"]),
        ("v2", "v2 protocol", lambda n: methods[n]["v2"]["auc"]),
    ):
        winners = report["beats_references"][column]
        lines.append(
            f"Chemistry scores above the best non-chemical reference on the {label} "
            f"({best[column]}, {figure(best[column]):.3f}): {', '.join(winners) if winners else 'none'}"
            + (" (point estimates: the paired test below says whether it is more than noise)." if winners else ".")
        )
    lines += [
        "",
        f"Paired over the {positives['n_distinct']} distinct positives (share of stratified negatives each "
        "outranks; exact two-sided sign test, ties left out):",
        "",
        "| chemistry score | against | wins / losses / ties | mean difference | sign-test p |",
        "|---|---|---|---|---|",
    ]
    for name, against in report["paired"].items():
        for other, c in against.items():
            lines.append(
                f"| {name} | {other} | {c['wins']} / {c['losses']} / {c['ties']} | {c['mean_difference']:+.3f} "
                f"| {c['sign_test_p']:.3g} |"
            )
    return "\n".join(lines) + "\n"
