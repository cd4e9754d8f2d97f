"""The benchmark across surveys: distance folds on points, no test label read, pooled figures by hand,
the quick suite end to end."""

import dataclasses
import json

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist
from scipy.stats import wilcoxon

from mstgat_core import cli
from mstgat_core.errors import DataError
from mstgat_core.evaluation.point_crossval import (
    LATTICE_KM,
    POINT_METHODS,
    PointBackbones,
    PointDistances,
    lattice,
    point_context,
    point_distances,
    point_runners,
    site_positives,
)
from mstgat_core.experiments import survey_tables, surveys
from mstgat_core.training.folds import make_fold, spatial_folds

TOLERANCE = 2 * LATTICE_KM  # two points rounded to the lattice move apart by at most 0.1 * sqrt(2) km


@pytest.fixture(scope="module")
def hand_points():
    """Samples on a jittered 1 km lattice over 40 x 40 km; four site clusters far apart, each compact."""
    rng = np.random.default_rng(7)
    gy, gx = np.mgrid[0:41, 0:41].astype(float)
    xy = np.c_[gx.ravel(), gy.ravel()] + rng.uniform(-0.3, 0.3, (gx.size, 2))
    sites = np.array([[5.0, 5.0], [5.6, 5.9], [4.2, 5.3], [20.0, 5.0], [21.1, 5.2], [35.0, 35.0], [5.0, 35.0]])
    positives, _ = site_positives(xy, sites, max_km=1.0)
    distances = PointDistances(1.0, 5.0, 6.0, 6.0, 3.0, 5.0, 48, 1)
    return xy, positives, distances


def brute_clusters(xy, positives, link):
    close = cdist(xy[positives], xy[positives]) < link
    return connected_components(close, directed=False)[1]


def test_distance_folds_keep_site_clusters_whole_and_drop_labels_in_the_buffer(hand_points):
    xy, positives, d = hand_points
    rows, cols = lattice(xy)
    folds = spatial_folds(rows, cols, positives, d.fold_settings("loco"), seed=0)
    clusters = brute_clusters(xy, positives, d.link_km)
    assert len(folds) == clusters.max() + 1 == 4
    pos_to_cluster = dict(zip(positives, clusters))
    held_out = []
    for fold in folds:
        # whole clusters: the test sites are exactly one brute-force cluster
        ids = {pos_to_cluster[p] for p in fold.test_pos}
        assert len(ids) == 1
        assert set(fold.test_pos) == {p for p in positives if pos_to_cluster[p] in ids}
        held_out += list(fold.test_pos)
        region = np.flatnonzero(fold.test_region)
        to_region = cdist(xy, xy[region]).min(axis=1)  # km, true coordinates
        training = np.concatenate([fold.train_pos, fold.train_neg_pool])
        # the buffer: no training label within buffer_km of the test region ...
        assert to_region[training].min() > d.buffer_km - TOLERANCE
        # ... and every site sample beyond it (and outside the region) trains
        outside = [p for p in positives if not fold.test_region[p] and to_region[p] > d.buffer_km + TOLERANCE]
        assert set(outside) <= set(fold.train_pos)
        assert not set(fold.train_pos) & set(fold.test_pos)
        # negatives: far from every training site sample; test negatives far from every site sample
        assert cdist(xy[fold.train_neg_pool], xy[fold.train_pos]).min() >= d.min_neg_km - TOLERANCE
        assert cdist(xy[fold.test_neg], xy[positives]).min() >= d.min_neg_km - TOLERANCE
        # the region: every sample nearer to a site sample of the held-out cluster than to any other
        members = np.isin(positives, fold.test_pos)
        d_in = cdist(xy, xy[positives[members]]).min(axis=1)
        d_out = cdist(xy, xy[positives[~members]]).min(axis=1)
        clear = np.abs(d_in - d_out) > TOLERANCE
        np.testing.assert_array_equal(fold.test_region[clear], (d_in < d_out)[clear])
    assert sorted(held_out) == sorted(positives)


def test_a_training_site_just_inside_the_buffer_is_dropped_and_one_outside_kept(hand_points):
    xy, positives, d = hand_points
    rows, cols = lattice(xy)
    fold = next(f for f in spatial_folds(rows, cols, positives, d.fold_settings("loco")) if 0 < len(f.test_pos) < 3)
    region = np.flatnonzero(fold.test_region)
    to_region = cdist(xy, xy[region]).min(axis=1)
    # a new site sample at 5 km from the region (inside the 6 km buffer) and one at 8 km (outside)
    inside = np.flatnonzero(np.abs(to_region - 5.0) < 0.3)[0]
    outside = np.flatnonzero(np.abs(to_region - 8.0) < 0.3)
    outside = outside[cdist(xy[outside], xy[positives]).min(axis=1) > d.link_km + 1][0]
    more = np.unique(np.r_[positives, inside, outside])
    settings = d.fold_settings("loco")
    again = make_fold(rows, cols, more, fold.test_region, settings.buffer, settings.min_neg_distance)
    assert inside not in again.train_pos and outside in again.train_pos
    assert inside not in again.train_neg_pool and inside not in again.test_pos


def test_the_lattice_is_the_km_coordinates_within_its_step():
    rng = np.random.default_rng(1)
    xy = rng.uniform([300.0, 6000.0], [420.0, 6190.0], (500, 2))
    rows, cols = lattice(xy)
    back = np.c_[cols * LATTICE_KM + xy[:, 0].min(), rows * LATTICE_KM + xy[:, 1].min()]
    assert np.abs(back - xy).max() <= LATTICE_KM / 2 + 1e-9
    exact, on_lattice = cdist(xy, xy), cdist(np.c_[cols, rows], np.c_[cols, rows]) * LATTICE_KM
    assert np.abs(exact - on_lattice).max() <= LATTICE_KM * np.sqrt(2) + 1e-9


def test_distance_rule_and_sites_outside_the_reach():
    gy, gx = np.mgrid[0:30, 0:30].astype(float)
    xy = np.c_[gx.ravel(), gy.ravel()] * 2.0  # a 2 km lattice
    d = point_distances(xy, neighbours=(8, 24, 48))
    assert d.spacing_km == pytest.approx(2.0)
    expected = np.sort(cdist(xy, xy), axis=1)[:, 48]
    assert d.reach_km == pytest.approx(np.median(expected))
    assert d.buffer_km == d.link_km == pytest.approx(d.reach_km + 2.0) and d.min_neg_km == pytest.approx(6.0)
    positives, info = site_positives(xy, np.array([[0.4, 0.1], [0.2, 0.3], [500.0, 500.0]]), d.site_km)
    assert positives.tolist() == [0] and info["n_sites_outside"] == 1 and info["n_positive_samples"] == 1
    with pytest.raises(DataError, match="no site lies within"):
        site_positives(xy, np.array([[500.0, 500.0]]), d.site_km)


def test_point_context_is_the_mean_and_max_over_the_nearest_samples():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [7.0, 0.0]])
    X = np.array([[1.0], [2.0], [4.0], [8.0]])
    context = point_context(X, xy, neighbours=(1, 2))
    np.testing.assert_allclose(context[0], [1.0, 1.5, 2.0, 7 / 3, 4.0])
    np.testing.assert_allclose(context[3], [8.0, 6.0, 8.0, 14 / 3, 8.0])


# ------------------------------------------------------------------------ no test label


@pytest.fixture(scope="module")
def point_problem():
    from mstgat_core.data.points import complete_features
    from mstgat_core.evaluation.point_protocol import normalised_points
    from mstgat_core.training.point_model import pretrain_points
    from mstgat_core.training.pretrain import PretrainConfig

    data = surveys._synthetic_points(n_samples=300)()
    samples = data.samples
    xy = surveys._xy_km(samples.table)
    X = normalised_points(complete_features(samples)[0], samples.elements)
    d = point_distances(xy)
    positives, _ = site_positives(xy, surveys._xy_km(data.sites.to_crs(samples.table.crs)), d.site_km)
    rows, cols = lattice(xy)

    def pretrain(seed):
        config = PretrainConfig(epochs=2, steps_per_epoch=2, seed=seed)
        return pretrain_points(samples, model_config={"d_model": 16, "gat_hidden": 16}, pretrain_config=config)

    backbones = PointBackbones(pretrain, rows, cols)
    settings = d.fold_settings("loco")
    folds = spatial_folds(rows, cols, positives, settings)
    target = samples.elements.index(data.target)
    return X, xy, backbones, settings, target, folds


def poisoned(fold, rng):
    """The same fold with its test labels replaced by random test-region samples."""
    region = np.flatnonzero(fold.test_region)
    fake_pos = np.sort(rng.choice(region, size=len(fold.test_pos), replace=False))
    return dataclasses.replace(
        fold,
        test_pos=fake_pos,
        test_neg=np.setdiff1d(region, fake_pos),
        test_clusters=np.zeros(len(fake_pos), dtype=np.int64),
    )


@pytest.mark.parametrize("method", POINT_METHODS)
def test_point_crossval_never_reads_test_labels(point_problem, method):
    X, xy, backbones, settings, target, folds = point_problem
    run = point_runners([method], X, xy, backbones, settings, target)[method]
    fold = max(folds, key=lambda f: len(f.train_pos))
    clean = run(X, fold, 1)
    np.testing.assert_array_equal(run(X, poisoned(fold, np.random.default_rng(0)), 1), clean)
    if method in ("mstgat", "best_single_element", "random_forest_context", "logistic_context"):
        # not vacuous: training labels matter (other training positives, drawn from the negatives, change the scores)
        other = np.sort(np.random.default_rng(1).choice(fold.train_neg_pool, len(fold.train_pos), replace=False))
        moved = dataclasses.replace(fold, train_pos=other, train_neg_pool=np.setdiff1d(fold.train_neg_pool, other))
        changed = run(X, moved, 1)
        if method == "mstgat":  # the route may be label-free (scores unchanged): the inner CV read the labels
            assert changed.extras["inner"]["inner_scores"] != clean.extras["inner"]["inner_scores"]
        else:
            assert not np.array_equal(changed, clean)


def test_fine_tuning_gets_the_distance_folds(point_problem):
    X, xy, backbones, settings, target, folds = point_problem
    run = point_runners(["mstgat"], X, xy, backbones, settings, target)["mstgat"]
    inner = run(X, max(folds, key=lambda f: len(f.train_pos)), 1).extras["inner"]
    assert inner["inner_settings"] == settings.inner()


# ------------------------------------------------------------------------ pooled, by hand


def _rows(clusters_by_seed):
    """Fold rows: {seed: {cluster: auc}} -> one fold per cluster (leave one out)."""
    rows = []
    for seed, clusters in clusters_by_seed.items():
        for fold, (cluster, auc) in enumerate(clusters.items()):
            rows.append({"seed": seed, "fold": fold, "roc_auc": auc, "pr_auc": auc / 2, "clusters": {cluster: auc}})
    return rows


def _report(title, per_method, pooled=True):
    results = {}
    for method, by_seed in per_method.items():
        rows = _rows(by_seed)
        results[method] = {"roc_auc_mean": float(np.mean([r["roc_auc"] for r in rows])), "folds": rows}
    return {"survey": {"title": title, "pooled": pooled, "kind": "grid"}, "crossval": {"results": results}}


@pytest.fixture
def two_reports():
    one = _report(
        "One",
        {
            "mstgat": {2: {"0": 0.9, "1": 0.7}, 3: {"0": 0.8, "1": 0.8}},  # mean 0.8
            "a": {2: {"0": 0.6, "1": 0.8}, 3: {"0": 0.7, "1": 0.7}},  # 0.7
            "b": {2: {"0": 0.9, "1": 0.7}, 3: {"0": 0.7, "1": 0.9}},  # 0.8: tied with mstgat
        },
    )
    two = _report(
        "Two",
        {
            "mstgat": {2: {"0": 0.5, "1": 0.6, "2": 0.7}},  # 0.6
            "a": {2: {"0": 0.95, "1": 0.85, "2": 0.9}},  # 0.9
            "b": {2: {"0": 0.4, "1": 0.55, "2": 0.55}},  # 0.5
            "c": {2: {"0": 0.1, "1": 0.1, "2": 0.1}},  # only in survey two: not pooled
        },
    )
    synthetic = _report("Planted", {"mstgat": {2: {"0": 0.1}}, "a": {2: {"0": 0.9}}}, pooled=False)
    return {"one": one, "two": two, "planted": synthetic}


def test_pooled_mean_rank_by_hand(two_reports):
    assert survey_tables.pooled_methods(two_reports) == ["mstgat", "a", "b"]
    ranks = survey_tables.mean_ranks(two_reports)
    # survey one: mstgat 0.8 and b 0.8 share ranks 1-2 (1.5), a 3; survey two: a 1, mstgat 2, b 3
    assert ranks["mstgat"]["ranks"] == {"one": 1.5, "two": 2.0} and ranks["mstgat"]["mean_rank"] == 1.75
    assert ranks["a"]["mean_rank"] == 2.0 and ranks["b"]["mean_rank"] == 2.25
    assert ranks["a"]["mean_auc"] == pytest.approx((0.7 + 0.9) / 2)


def test_pooled_comparison_by_hand(two_reports):
    comparison = survey_tables.pooled_comparison(two_reports)
    assert set(comparison) == {"a", "b"}
    # mstgat - a per cluster, averaged over seeds
    hand_a = {"one/0": ((0.9 - 0.6) + (0.8 - 0.7)) / 2, "one/1": ((0.7 - 0.8) + (0.8 - 0.7)) / 2}
    hand_a.update({"two/0": 0.5 - 0.95, "two/1": 0.6 - 0.85, "two/2": 0.7 - 0.9})
    hand_b = {"one/0": (0.0 + 0.1) / 2, "one/1": (0.0 - 0.1) / 2, "two/0": 0.1, "two/1": 0.05, "two/2": 0.15}
    for method, hand in (("a", hand_a), ("b", hand_b)):
        c = comparison[method]["clusters"]
        assert c["differences"].keys() == hand.keys()
        np.testing.assert_allclose(list(c["differences"].values()), list(hand.values()), atol=1e-12)
        assert c["mean_difference"] == pytest.approx(np.mean(list(hand.values())))
        untied = np.array([v for v in hand.values() if abs(v) > 1e-6])
        assert (c["wins"], c["losses"], c["ties"]) == ((untied > 0).sum(), (untied < 0).sum(), len(hand) - len(untied))
        assert c["wilcoxon_p"] == pytest.approx(wilcoxon(untied, method="exact").pvalue)
    p = sorted((comparison[m]["clusters"]["wilcoxon_p"], m) for m in ("a", "b"))
    holm = {p[0][1]: min(1, 2 * p[0][0])}
    holm[p[1][1]] = max(holm[p[0][1]], min(1, p[1][0]))
    for m in ("a", "b"):
        assert comparison[m]["clusters"]["holm_p"] == pytest.approx(holm[m])
    text = survey_tables.pooled_markdown(two_reports)
    assert "2 surveys pooled: One, Two (not pooled: Planted)" in text
    assert "| a | 2.00 | 3 / 1 | 0.800 | 1 / 1 | 1/3/1 |" in text


# ------------------------------------------------------------------------ the quick suite


def test_quick_suite_runs_and_writes_its_tables(tmp_path):
    page = tmp_path / "results.md"
    page.write_text("# Results\n\n<!-- surveys:begin -->\nstale\n<!-- surveys:end -->\n\nafter\n")
    out = tmp_path / "out"
    assert cli.main(["benchmark", "--suite", "surveys-quick", "--out", str(out), "--markdown", str(page)]) == 0
    grid = json.loads((out / "synthetic_quick.json").read_text())
    points = json.loads((out / "synthetic_points_quick.json").read_text())
    assert grid["survey"]["kind"] == "grid" and grid["label_free"] is None
    assert set(grid["crossval"]["results"]) == set(surveys.GRID_METHODS)
    assert points["survey"]["kind"] == "points" and set(points["crossval"]["results"]) == set(POINT_METHODS)
    protocol = points["crossval"]["protocol"]
    assert protocol["method"] == "loco" and protocol["distances"]["buffer_km"] == protocol["buffer"] * LATTICE_KM
    assert any(name.startswith("MSTGAT label-free score (seed 1)") for name in points["label_free"]["methods"])
    text = page.read_text()
    assert "stale" not in text and text.rstrip().endswith("after") and text.count(survey_tables.BEGIN) == 1
    for title in ("#### Synthetic grid (quick)", "#### Synthetic points (quick)", "#### Pooled over the surveys"):
        assert title in text
    assert "Label-free, protocol v2" in text and "| mstgat | " in text
    # the tables again from the reports alone
    page.write_text("# Results\n")
    assert cli.main(["benchmark", "--suite", "surveys-quick", "--out", str(out), "--markdown", str(page),
                     "--tables-only"]) == 0  # fmt: skip
    assert "#### Pooled over the surveys" in page.read_text()


def test_unknown_survey_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["benchmark", "--suite", "surveys", "--datasets", "mars", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: suite 'surveys' has no survey mars; choose from south_china_li") and "\n" not in err


def test_a_survey_with_missing_files_is_skipped_in_one_line(tmp_path, monkeypatch):
    missing = surveys.Survey("gone", "Gone", "points", "-", lambda: None, needs=(tmp_path / "nowhere.csv",))
    monkeypatch.setattr(surveys, "surveys", lambda suite="surveys": [missing])
    lines = []
    assert surveys.run_surveys("surveys", tmp_path / "out", datasets=["gone"], log=lines.append) == {}
    assert lines[0] == f"Gone: skipped ({tmp_path / 'nowhere.csv'} not found)"


def test_the_full_suite_names_every_survey_and_a_site_rule():
    names = [s.name for s in surveys.surveys("surveys")]
    assert names == ["south_china_li", "synthetic", "lapland_points", "sed1", "gm46c_au", "gm46c_cu", "alaska_au",
                     "alaska_cu"]  # fmt: skip
    assert [s.name for s in surveys.surveys("surveys") if not s.pooled] == ["synthetic"]
    assert all(s.source for s in surveys.surveys("surveys"))
