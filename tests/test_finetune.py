"""Fine-tuning's choice of settings: the paired one-standard-error rule (no test label: see test_crossval)."""

import numpy as np
import pytest

from mstgat_core.training.finetune import inner_figure, paired_gaps, paired_one_standard_error, route_of

BEST = [0.80, 1.00, 0.97]  # mean 0.923; unpaired SE std / sqrt(3) = 0.051


def test_a_steady_small_loss_on_every_fold_excludes_the_simpler_candidate():
    """0.02 below the best on every inner fold: the unpaired rule (0.903 >= 0.923 - 0.051) took the simpler
    candidate; paired, the loss has no spread, so it is a real loss and the best is kept."""
    steady = [v - 0.02 for v in BEST]
    scores = {(0.0, 0.1): steady, (1.0, 0.1): BEST}
    assert np.mean(steady) >= np.mean(BEST) - np.std(BEST) / np.sqrt(3)  # inside the old, unpaired bar
    assert paired_gaps(scores)[(0.0, 0.1)] == pytest.approx((0.02, 0.0), abs=1e-12)
    assert paired_one_standard_error(scores) == (1.0, 0.1)


def test_a_noisy_loss_keeps_the_simplest_candidate():
    noisy = [0.90, 0.85, 0.93]  # per-fold gaps -0.10, 0.15, 0.04: mean 0.03, paired SE 0.072
    scores = {(0.0, 0.1): noisy, (0.5, 0.1): [0.85, 0.95, 0.90], (1.0, 0.1): BEST}
    gap, se = paired_gaps(scores)[(0.0, 0.1)]
    assert gap == pytest.approx(0.03) and se == pytest.approx(np.std([-0.10, 0.15, 0.04], ddof=1) / np.sqrt(3))
    assert paired_one_standard_error(scores) == (0.0, 0.1)


def test_ties_go_to_the_simplest_and_one_fold_to_the_label_free_route():
    tie = {(0.25, 1.0): [0.9, 0.9], (0.25, 0.01): [0.9, 0.9], (0.5, 0.01): [0.9, 0.9]}
    assert paired_one_standard_error(tie) == (0.25, 0.01)  # smallest share, then the strongest regularisation
    one_fold = {(0.0, 0.1): [0.5], (1.0, 0.1): [1.0]}  # no spread to judge a gain by: the safest guess
    assert paired_one_standard_error(one_fold) == (0.0, 0.1)
    assert [route_of(s) for s in (0.0, 0.25, 1.0)] == ["label-free", "fused", "supervised"]


def test_the_rule_matches_a_brute_force_over_random_inner_figures():
    rng = np.random.default_rng(0)
    for _ in range(200):
        folds = int(rng.integers(2, 6))
        keys = [(s, C) for s in (0.0, 0.5, 1.0) for C in (0.01, 1.0)]
        scores = {k: list(rng.uniform(0.5, 1.0, folds).round(2)) for k in keys}
        means = [np.mean(scores[k]) for k in keys]
        best = np.array(scores[keys[int(np.argmax(means))]])
        within = []
        for k in keys:
            d = best - np.array(scores[k])
            if d.mean() <= np.sqrt(np.sum((d - d.mean()) ** 2) / (folds - 1)) / np.sqrt(folds):
                within.append(k)
        assert paired_one_standard_error(scores) == sorted(within)[0]


def test_the_inner_figure_reads_the_top_of_the_ranking():
    """Two rankings with the same ROC-AUC (0.5): a deposit at the top of the map and one at the bottom, or
    both in the middle. The partial ROC-AUC to 5 % false positives (McClish) tells them apart, by hand."""
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.ones(2), np.zeros(98)]
    negatives = np.arange(98, dtype=float)
    first_and_last = np.r_[1000.0, -1000.0, negatives]
    both_middle = np.r_[48.5, 48.6, negatives]  # each above 49 of the 98 negatives
    assert roc_auc_score(labels, first_and_last) == roc_auc_score(labels, both_middle) == 0.5
    # first and last: TPR 0.5 on FPR [0, 0.05], area 0.025; chance area 0.05**2 / 2; most 0.05
    chance, most = 0.05**2 / 2, 0.05
    assert inner_figure(labels, first_and_last) == pytest.approx(0.5 * (1 + (0.025 - chance) / (most - chance)))
    assert inner_figure(labels, both_middle) == pytest.approx(0.5 * (1 + (0.0 - chance) / (most - chance)))
    assert inner_figure(labels, np.r_[1000.0, 999.0, negatives]) == 1.0


def _planted(signal_in_embedding: bool, seed=0):
    """A 60 x 60 grid of cells with 8 deposit clusters of 2 cells; standardised features: 4 embedding columns
    and the label-free score last. The deposits are planted in one embedding column, or in the score."""
    from mstgat_core.training.folds import FoldSettings
    from mstgat_core.training.train import negative_pool

    rng = np.random.default_rng(seed)
    rows, cols = (a.ravel() for a in np.mgrid[0:60, 0:60])
    centres = [(8, 8), (8, 30), (8, 52), (30, 8), (30, 52), (52, 8), (52, 30), (52, 52)]
    positives = np.array(sorted(r * 60 + c + d for r, c in centres for d in (0, 1)))
    features = rng.normal(size=(len(rows), 5))
    column = 0 if signal_in_embedding else 4
    features[positives, column] += 3.0
    settings = FoldSettings(link_distance=7.0, buffer=4.0, min_neg_distance=3.0)
    pool = negative_pool(rows, cols, positives, settings.min_neg_distance)
    return features, rows, cols, positives, pool, settings


@pytest.mark.parametrize("signal_in_embedding, routes", [(True, {"fused", "supervised"}), (False, {"label-free"})])
def test_the_inner_cv_takes_the_route_where_the_planted_signal_is(signal_in_embedding, routes):
    """Deposits planted in the embedding and a blind label-free score: the heads get a share. Deposits planted
    in the label-free score and nothing in the embedding: the label-free route."""
    from mstgat_core.training.finetune import FineTuneConfig, _inner_cv

    features, rows, cols, positives, pool, settings = _planted(signal_in_embedding)
    (aucs, figures), (share, C), folds, _, _ = _inner_cv(
        features, features[:, -1], rows, cols, positives, pool, FineTuneConfig(), settings
    )
    assert folds >= 2 and route_of(share) in routes
    label_free = np.mean(figures[(0.0, 0.01)])
    best = max(np.mean(v) for v in figures.values())
    if signal_in_embedding:
        assert best - label_free > 0.2  # the planted column is visible to the heads only
