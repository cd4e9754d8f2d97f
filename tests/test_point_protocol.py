"""The OpenGADBench protocol against a hand computation, and the label-free baselines on points."""

import numpy as np
import pytest

from mstgat_core import point_protocol as pp
from mstgat_core.errors import DataError


def test_protocol_equals_a_hand_computation():
    # samples along the equator, 0.1 degree (11.1 km) apart; two sites next to samples 0 and 5
    lon = np.arange(10) * 0.1
    samples = np.c_[lon, np.zeros(10)]
    sites = np.array([[0.001, 0.0], [0.501, 0.0]])
    scores = np.array([9.0, 1, 2, 3, 4, 8, 5, 6, 7, 0])
    out = pp.opengadbench(scores, samples, sites, draws=3, seed=0, buffer_km=5.0)
    # positives: samples 0 and 5 (scores 9, 8); negatives drawn from the 8 samples >= 5 km from both sites
    assert out["n_sites"] == 2 and out["n_negative_pool"] == 8
    rng = np.random.default_rng(0)
    pool = np.array([1, 2, 3, 4, 6, 7, 8, 9])
    expected = []
    for _ in range(3):
        negatives = scores[rng.choice(pool, size=2, replace=True)]
        # every positive (9, 8) beats every negative (at most 7): AUC 1
        expected.append(np.mean([[p > n for n in negatives] for p in (9.0, 8.0)]))
    assert out["aucs"] == pytest.approx(expected) and out["auc_mean"] == pytest.approx(1.0)
    # SR@5%: threshold = 95th percentile of the scores = 8.55 -> only site 0 (score 9) is in the top 5 %
    assert out["sr5"] == pytest.approx(0.5)
    assert out["capture"]["20%"] == pytest.approx(1.0)  # 80th percentile 7.2: both


def test_protocol_auc_by_hand_with_ties_and_losses():
    samples = np.c_[np.arange(6) * 0.1, np.zeros(6)]
    sites = np.array([[0.0, 0.0]])
    scores = np.array([2.0, 1.0, 2.0, 3.0, 0.0, 2.0])
    out = pp.opengadbench(scores, samples, sites, draws=50, seed=1)
    rng = np.random.default_rng(1)
    pool = np.arange(1, 6)
    by_hand = []
    for _ in range(50):
        n = scores[rng.choice(pool, size=1)][0]
        by_hand.append(1.0 if 2.0 > n else 0.5 if n == 2.0 else 0.0)
    assert out["auc_mean"] == pytest.approx(np.mean(by_hand))
    assert out["auc_sd"] == pytest.approx(np.std(by_hand))


def test_nearest_sample_distances_are_great_circle_km():
    samples = np.array([[0.0, 0.0], [1.0, 0.0]])
    index, km = pp.nearest_samples(samples, np.array([[0.0, 1.0]]))
    assert index[0] == 0
    assert km[0] == pytest.approx(2 * np.pi * pp.EARTH_RADIUS_KM / 360, rel=1e-6)  # one degree of latitude


def test_protocol_refuses_bad_input():
    samples = np.c_[np.arange(3) * 0.01, np.zeros(3)]
    with pytest.raises(DataError, match="3 samples"):
        pp.opengadbench(np.zeros(2), samples, samples[:1])
    with pytest.raises(DataError, match="NaN"):
        pp.opengadbench(np.array([0, np.nan, 1]), samples, samples[:1])
    with pytest.raises(DataError, match="at least 5 km"):
        pp.opengadbench(np.zeros(3), samples, samples[:1])  # all within 2.3 km


def test_sample_spacing_is_the_mean_great_circle_distance_to_the_nearest_samples():
    samples = np.c_[[0.0, 0.1, 0.3, 0.7], np.zeros(4)]  # on the equator
    km_per_degree = 2 * np.pi * pp.EARTH_RADIUS_KM / 360
    expected = np.array([(0.1 + 0.3) / 2, (0.1 + 0.2) / 2, (0.2 + 0.3) / 2, (0.4 + 0.6) / 2]) * km_per_degree
    np.testing.assert_allclose(pp.sample_spacing_km(samples, k=2), expected, rtol=1e-9)


def _sparse_site_survey(seed=0):
    """A dense survey with sparse patches; every site sits in a sparse patch; chemistry is noise but for a halo."""
    rng = np.random.default_rng(seed)
    dense = np.c_[rng.uniform(0, 2, 3000), rng.uniform(0, 2, 3000)]
    centres = rng.uniform(0.2, 1.8, (12, 2))
    far = np.min(np.hypot(*(dense[:, None, :] - centres[None]).transpose(2, 0, 1)), axis=1) > 0.12
    patches = np.concatenate([c + rng.uniform(-0.03, 0.03, (6, 2)) for c in centres])  # within 5 km
    samples = np.r_[dense[far], patches]
    sites = centres + 0.002
    return samples, sites, rng


def test_spacing_alone_ranks_sites_in_sparse_ground_and_matching_removes_it():
    """Planted truth: sites in sparsely sampled patches. Spacing scores high on the published negatives
    and about 0.5 on spacing-matched ones; a real chemical halo scores high on both."""
    samples, sites, rng = _sparse_site_survey()
    spacing = pp.sample_spacing_km(samples)
    out = pp.opengadbench(spacing, samples, sites, draws=20, seed=0)
    assert out["auc_mean"] > 0.9
    assert 0.3 < out["matched_auc_mean"] < 0.7
    near = pp.distance_to_sites_km(samples, sites) < 5.0
    halo = rng.normal(size=len(samples)) + 4.0 * near
    both = pp.opengadbench(halo, samples, sites, draws=20, seed=0)
    assert both["auc_mean"] > 0.95 and both["matched_auc_mean"] > 0.95


def test_matched_negatives_come_from_the_closest_spacing():
    spacing = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 2.1])
    pool = np.array([1, 2, 3, 4, 5])
    picks = pp.matched_negatives(np.array([0, 0, 0]), pool, spacing, match=2, rng=np.random.default_rng(0))
    assert set(picks) <= {1, 5}  # spacing 2.0 and 2.1 are the two closest to 1.0 on a log scale


def test_label_free_baselines_flag_a_planted_outlier():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    X[17] = [0.5, 8.0, -8.0, 0.5]  # off the joint distribution, though no single value is extreme for element 0
    scores = pp.label_free_scores(X, ["Au", "As", "Cu", "Zn"], target="Au")
    assert set(scores) == {"Au alone", "robust Mahalanobis", "Isolation Forest", "local outlier factor"}
    np.testing.assert_array_equal(scores["Au alone"], X[:, 0])
    for name in ("robust Mahalanobis", "Isolation Forest", "local outlier factor"):
        assert np.argmax(scores[name]) == 17, name
    with pytest.raises(DataError, match="target element"):
        pp.label_free_scores(X, ["Au", "As", "Cu", "Zn"], target="Ag")


def test_evaluate_command_on_a_small_lonlat_survey(tmp_path, capsys):
    """Points in lon/lat with -9999 gaps, sites in lon/lat: one table, every method, nothing else written."""
    import json

    import pandas as pd

    from mstgat_core.cli import main

    rng = np.random.default_rng(0)
    lon, lat = np.meshgrid(np.linspace(117.0, 117.5, 20), np.linspace(-33.5, -33.0, 20))
    n = lon.size
    table = pd.DataFrame({"X": lon.ravel(), "Y": lat.ravel()})
    for e in ("Au_ppb", "As_ppm", "Cu_ppm", "Zn_ppm"):
        table[e] = rng.lognormal(1, 0.5, n)
    table.loc[::7, "Zn_ppm"] = -9999.0
    table["Pt_ppb"] = -9999.0  # all missing: dropped
    sites = pd.DataFrame({"X": [117.13, 117.39], "Y": [-33.24, -33.11]})
    for _, (x, y) in sites.iterrows():  # enrich Au near the sites
        near = np.hypot(table["X"] - x, table["Y"] - y) < 0.04
        table.loc[near, "Au_ppb"] *= 20
    table.to_csv(tmp_path / "points.csv", index=False)
    sites.to_csv(tmp_path / "sites.csv", index=False)
    out = tmp_path / "report.json"
    argv = [
        "evaluate",
        str(tmp_path / "points.csv"),
        "--deposits",
        str(tmp_path / "sites.csv"),
        "--protocol",
        "opengadbench",
        "--target",
        "Au",
        "--pretrain-epochs",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "projected to EPSG:32750" in captured.err and "1 dropped" in captured.err
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {
        "Au alone",
        "robust Mahalanobis",
        "Isolation Forest",
        "local outlier factor",
        "sample spacing (no chemistry)",
        "MSTGAT label-free score",
        "MSTGAT Au residual",
    }
    assert report["methods"]["Au alone"]["auc_mean"] == 1.0  # the planted Au halo
    assert report["filled"]["Zn"] == len(range(0, n, 7)) and report["dropped"] == {"Pt": "100% missing"}
    assert "| Au alone | 1.000" in captured.out


def test_samples_all_at_one_point_have_no_neighbourhood(tmp_path):
    import pandas as pd

    from mstgat_core.points import load_points

    path = tmp_path / "same.csv"
    pd.DataFrame({"lon": [117.0] * 5, "lat": [-33.0] * 5, "Au_ppb": np.arange(1.0, 6.0)}).to_csv(path, index=False)
    from mstgat_core.point_graph import build_point_graph

    samples = load_points(path)
    with pytest.raises(DataError, match="all 5 samples lie at one point"):
        build_point_graph(np.c_[samples.table.geometry.x, samples.table.geometry.y], [2])
