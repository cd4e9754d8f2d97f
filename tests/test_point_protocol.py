"""The OpenGADBench protocol against a hand computation, and the label-free baselines on points."""

import numpy as np
import pytest

from mstgat_core.errors import DataError
from mstgat_core.evaluation import point_protocol as pp


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
    references = {
        f"{sign}{name} (no chemistry)"
        for name in ("sample spacing", "duplicate count", "latitude", "longitude")
        for sign in ("", "-")
    }
    chemistry = {
        "Au alone",
        "robust Mahalanobis",
        "Isolation Forest",
        "local outlier factor",
        "MSTGAT label-free score",
        "MSTGAT Au residual",
    }
    assert set(report["methods"]) == chemistry | references
    assert set(report["references"]) == references
    assert {n for n, m in report["methods"].items() if m["kind"] == "chemistry"} == chemistry
    assert report["methods"]["Au alone"]["auc_mean"] == 1.0  # the planted Au halo, published protocol
    assert report["methods"]["Au alone"]["v2"]["auc"] > 0.9  # and v2
    assert "Au alone" in report["beats_references"]["v2"]
    assert report["protocol"]["version"] == 2
    assert report["filled"]["Zn"] == len(range(0, n, 7)) and report["dropped"] == {"Pt": "100% missing"}
    assert report["duplicates"]["n_groups"] == 0 and report["n_merged"] == n  # no duplicates here
    assert "| Au alone | chemistry | 1.000 ± 0.000 |" in captured.out
    assert "no batch column: negatives stratified by spacing only" in captured.out


def test_samples_all_at_one_point_have_no_neighbourhood(tmp_path):
    import pandas as pd

    from mstgat_core.data.points import load_points

    path = tmp_path / "same.csv"
    pd.DataFrame({"lon": [117.0] * 5, "lat": [-33.0] * 5, "Au_ppb": np.arange(1.0, 6.0)}).to_csv(path, index=False)
    from mstgat_core.graphs.point_graph import build_point_graph

    samples = load_points(path)
    with pytest.raises(DataError, match="all 5 samples lie at one point"):
        build_point_graph(np.c_[samples.table.geometry.x, samples.table.geometry.y], [2])


# ------------------------------------------------------------------------------ protocol v2

METRES_PER_DEGREE_LON_33S = 2 * np.pi * 6371008.8 / 360 * np.cos(np.radians(33.0))


def _hand_table():
    """6 rows: a group of two at one place (identical chemistry where both have a value), a single row,
    and a group of three (differing chemistry)."""
    import pandas as pd

    nan = np.nan
    return pd.DataFrame(
        {
            "lon": [117.0, 117.1, 117.0 + 0.5 / METRES_PER_DEGREE_LON_33S, 117.2, 117.2, 117.2],  # row 2: 0.5 m east
            "lat": [-33.0, -33.0, -33.0, -33.0, -33.0, -33.0],
            "Au": [1.0, 5.0, 1.0, 2.0, 4.0, 9.0],
            "Cu": [10.0, 20.0, nan, 30.0, 30.0, nan],
            "report": ["r1", "r1", "r2", "r2", "r1", "r2"],
        }
    )


def test_duplicates_merged_on_a_hand_example():
    from mstgat_core.evaluation.point_duplicates import merge_duplicates

    merged = merge_duplicates(_hand_table(), ["Au", "Cu"], batch="report")
    np.testing.assert_array_equal(merged.group, [0, 1, 0, 2, 2, 2])
    np.testing.assert_array_equal(merged.first, [0, 1, 3])
    np.testing.assert_array_equal(merged.table["duplicates"], [2, 1, 3])
    np.testing.assert_array_equal(merged.table["Au"], [1.0, 5.0, 4.0])  # median of 2, 4, 9
    np.testing.assert_array_equal(merged.table["Cu"], [10.0, 20.0, 30.0])  # missing values skipped
    np.testing.assert_array_equal(merged.table["lon"], [117.0, 117.1, 117.2])  # the first row's position
    # batch: group 0 is r1, r2 (a tie: the first row's), group 2 is r2, r1, r2 (the most common)
    assert list(merged.table["batch"]) == ["r1", "r1", "r2"]
    assert merged.summary() == {
        "merged": True,
        "tolerance_m": 1.0,
        "n_rows": 6,
        "n_locations": 3,
        "n_groups": 2,
        "n_rows_in_groups": 5,
        "n_identical_groups": 1,  # rows 0 and 2: Au equal, Cu missing in one
        "n_differing_groups": 1,  # rows 3-5: Au 2, 4, 9
        "n_groups_spanning_batches": 2,
    }
    counted = merge_duplicates(_hand_table(), ["Au", "Cu"], merge=False)  # counts only, every row kept
    assert len(counted.table) == 6 and counted.n_groups == 2 and counted.n_locations == 3
    np.testing.assert_array_equal(counted.table["duplicates"], [2, 1, 2, 3, 3, 3])
    np.testing.assert_array_equal(counted.group, np.arange(6))


def test_duplicate_tolerance_is_in_metres_and_exact_lonlat_always_merges():
    from mstgat_core.evaluation.point_duplicates import colocated_groups

    two_metres = 2.0 / METRES_PER_DEGREE_LON_33S
    lonlat = np.array([[117.0, -33.0], [117.0 + two_metres, -33.0], [117.5, -33.0], [117.5, -33.0]])
    np.testing.assert_array_equal(colocated_groups(lonlat, 1.0), [0, 1, 2, 2])
    np.testing.assert_array_equal(colocated_groups(lonlat, 3.0), [0, 0, 1, 1])
    np.testing.assert_array_equal(colocated_groups(lonlat, 0.0), [0, 1, 2, 2])  # identical lon/lat still one


def test_batch_column_detected_by_name_named_or_disabled(tmp_path):
    import pandas as pd

    from mstgat_core.evaluation.point_duplicates import NO_BATCH, read_batch

    path = tmp_path / "points.csv"
    table = pd.DataFrame(
        {
            "X": [1.0, 2, 3, 4],
            "Y": [1.0, 2, 3, 4],
            "SAMPLE_ID": ["a", "b", "c", "d"],
            "LABnegNR_N": [1, 2, 1, 2],  # not a lab column: 'lab' is not a whole word of it
            "Survey_ID": ["s1", "s2", "s3", "s4"],  # one value per row: an identifier, skipped when detecting
            "WAMEX_A_NO": [7, 7, 9, None],
            "Cu_ppm": [1.0, 2, 3, 4],
        }
    )
    table.to_csv(path, index=False)
    detected = read_batch(path)
    assert detected.column == "WAMEX_A_NO" and list(detected.labels) == ["7.0", "7.0", "9.0", "(missing)"]
    assert "skipped Survey_ID (one value per row)" in detected.rule
    assert read_batch(path, "survey_id").column == "Survey_ID"  # named: used as it is, case folded
    disabled = read_batch(path, "none")
    assert disabled.column is None and disabled.labels is None and NO_BATCH in disabled.rule
    with pytest.raises(DataError, match="batch column 'lab' not found in points.csv"):
        read_batch(path, "lab")
    table.drop(columns=["WAMEX_A_NO"]).to_csv(path, index=False)
    assert read_batch(path).rule.startswith(NO_BATCH)


def _batch_survey(seed=0):
    """Random samples; a third of them (interleaved, not a region) in batch A; sites next to batch-A samples."""
    rng = np.random.default_rng(seed)
    lonlat = np.c_[rng.uniform(0, 2, 1500), rng.uniform(0, 2, 1500)]
    batch = np.where(rng.random(1500) < 1 / 3, "A", "B").astype(object)
    in_a = np.flatnonzero(batch == "A")
    sites = lonlat[rng.choice(in_a, 15, replace=False)] + 1e-4
    return lonlat, batch, sites, rng


def test_a_batch_effect_scores_high_on_the_published_protocol_and_half_under_v2():
    """Planted: every site in batch A, and batch A reads higher on a non-chemical column."""
    lonlat, batch, sites, rng = _batch_survey()
    effect = (batch == "A").astype(float) + rng.normal(0, 0.2, len(batch))  # expected published AUC 0.83
    v1 = pp.opengadbench(effect, lonlat, sites, draws=20, seed=0)
    assert v1["auc_mean"] > 0.7 and v1["matched_auc_mean"] > 0.7
    design = pp.stratified_design(lonlat, sites, batch=batch)
    assert design.batched and not design.fell_back.any() and len(design.positives) == 15
    assert all((batch[c] == "A").all() for c in design.candidates)
    v2 = pp.opengadbench_v2(effect, design, draws=20, seed=0)
    assert 0.3 < v2["auc"] < 0.7 and 0.3 < v2["auc_mean"] < 0.7
    exact = pp.opengadbench_v2((batch == "A").astype(float), design)  # the pure indicator: all ties
    assert exact["auc"] == 0.5 and exact["ci95"] == [0.5, 0.5]
    spacing_only = pp.opengadbench_v2(effect, pp.stratified_design(lonlat, sites))  # without the batch column
    assert spacing_only["auc"] > 0.7
    near = pp.distance_to_sites_km(lonlat, sites) < 5.0
    halo = rng.normal(size=len(lonlat)) + 4.0 * near  # chemistry around the sites still scores high
    assert pp.opengadbench_v2(halo, design)["auc"] > 0.95


def test_positives_without_a_pool_sample_in_their_batch_fall_back_and_are_counted():
    lonlat = np.c_[np.arange(8) * 0.1, np.zeros(8)]  # 11 km apart on the equator
    batch = np.array(["X", "A", "A", "A", "A", "A", "B", "B"], dtype=object)
    sites = np.array([[0.0, 0.0], [0.001, 0.0], [0.5, 0.0]])  # two sites share sample 0
    design = pp.stratified_design(lonlat, sites, batch=batch, match=2)
    np.testing.assert_array_equal(design.site_sample, [0, 0, 5])
    np.testing.assert_array_equal(design.positives, [0, 5])  # distinct positives, each once
    np.testing.assert_array_equal(design.fell_back, [True, False])  # no pool sample of batch X
    np.testing.assert_array_equal(design.pool, [1, 2, 3, 4, 6, 7])  # >= 5 km from every site
    assert set(design.candidates[1]) <= {1, 2, 3, 4} and len(design.candidates[1]) == 2  # batch A, match 2
    with pytest.raises(DataError, match="no sample is at least 5 km"):
        pp.stratified_design(lonlat[:2] / 10, sites[:1])  # two samples 1.1 km apart: no negatives
    with pytest.raises(DataError, match="no sites"):
        pp.stratified_design(lonlat, sites[:0])


def test_v2_auc_is_the_exact_expectation_over_the_draws_and_the_bootstrap_is_over_positives():
    from itertools import product

    from sklearn.metrics import roc_auc_score

    scores = np.array([3.0, 1.0, 2.0, 0.5, 1.0, 2.5])
    design = pp.StratifiedDesign(
        positives=np.array([0, 1, 2]),
        site_sample=np.array([0, 1, 2]),
        pool=np.array([3, 4, 5]),
        candidates=[np.array([3, 4]), np.array([4, 5]), np.array([3, 5])],
        fell_back=np.zeros(3, bool),
        batched=False,
    )
    by_hand = [
        roc_auc_score([1, 1, 1, 0, 0, 0], np.r_[scores[:3], scores[list(pick)]]) for pick in product(*design.candidates)
    ]  # every draw is equally likely
    out = pp.opengadbench_v2(scores, design, draws=5, seed=0, bootstrap=500)
    assert out["auc"] == pytest.approx(np.mean(by_hand))
    assert np.mean(out["contributions"]) == pytest.approx(out["auc"])
    assert out["ci95"][0] <= out["auc"] <= out["ci95"][1] and out["ci95"][1] - out["ci95"][0] > 0
    assert pp.opengadbench_v2(scores, design, seed=0, bootstrap=500)["ci95"] == out["ci95"]  # seeded
    # identical positives (same score, negatives of one distribution): nothing to resample, zero width
    same = np.array([2.0, 2.0, 2.0, 0.5, 1.0, 3.0])
    flat = pp.StratifiedDesign(
        design.positives, design.site_sample, design.pool, [np.array([3, 4, 5])] * 3, design.fell_back, False
    )
    identical = pp.opengadbench_v2(same, flat, seed=4)
    assert identical["ci95"] == [pytest.approx(2 / 3)] * 2 and identical["auc"] == pytest.approx(2 / 3)


def test_paired_comparison_over_positives_by_hand():
    scores_a = np.array([3.0, 1.0, 2.0, 0.5, 1.0, 2.5])
    scores_b = np.array([0.0, 1.0, 3.0, 0.5, 1.0, 2.5])
    design = pp.StratifiedDesign(
        np.array([0, 1, 2]), np.array([0, 1, 2]), np.array([3, 4, 5]), [np.array([3, 4, 5])] * 3, np.zeros(3, bool), 0
    )
    # contributions (share of {0.5, 1.0, 2.5} outranked): A 1, 1/2, 2/3; B 0, 1/2, 1
    out = pp.paired_over_positives(scores_a, scores_b, design)
    assert (out["wins"], out["losses"], out["ties"]) == (1, 1, 1)
    assert out["mean_difference"] == pytest.approx((1 - 1 / 3) / 3)
    assert out["sign_test_p"] == pytest.approx(1.0)
    many = pp.StratifiedDesign(
        np.arange(5), np.arange(5), np.arange(5, 10), [np.arange(5, 10)] * 5, np.zeros(5, bool), False
    )
    high, low = np.r_[np.ones(5), np.zeros(5)], np.zeros(10)
    five = pp.paired_over_positives(high, low, many)
    assert (five["wins"], five["losses"]) == (5, 0) and five["sign_test_p"] == pytest.approx(2 / 32)


def _duplicated_survey(tmp_path, seed=0):
    """A lon/lat survey where every second sample was compiled twice; sites among the samples."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = 400
    table = pd.DataFrame({"X": rng.uniform(117.0, 117.6, n), "Y": rng.uniform(-33.6, -33.0, n)})
    for e in ("Au_ppb", "As_ppm", "Cu_ppm"):
        table[e] = rng.lognormal(1, 0.5, n)
    table["REPORT"] = rng.choice(["a", "b", "c"], n)
    table = pd.concat([table, table.iloc[::2]], ignore_index=True)  # 200 exact duplicates
    sites = table.iloc[rng.choice(n, 12, replace=False)][["X", "Y"]] + 1e-5
    table.to_csv(tmp_path / "points.csv", index=False)
    sites.to_csv(tmp_path / "sites.csv", index=False)
    return table, sites


def test_a_chemistry_score_equal_to_a_reference_does_not_beat_the_references(tmp_path):
    from mstgat_core.data.io import load_deposits
    from mstgat_core.data.points import load_points
    from mstgat_core.evaluation.point_duplicates import merge_point_samples, read_batch

    _duplicated_survey(tmp_path)
    samples = load_points(tmp_path / "points.csv")
    sites = load_deposits(tmp_path / "sites.csv")
    batch = read_batch(tmp_path / "points.csv")
    assert batch.column == "REPORT"
    merged, duplicates = merge_point_samples(samples, batch.labels)
    assert len(merged.table) == 400 and duplicates.n_groups == 200 and duplicates.n_identical == 200
    fake = {
        "duplicates as chemistry": duplicates.table["duplicates"].to_numpy(float),
        "latitude as chemistry": duplicates.table["lat"].to_numpy(),
        "Au per merged sample": merged.table["Au"].to_numpy(),
        "Au per row": samples.table["Au"].to_numpy(),  # enters v2 as the median of each merged sample's rows
    }
    report = pp.evaluate_points(
        samples, sites, target="Au", scores=fake, batch=batch.labels, batch_rule=batch.rule, draws=5
    )
    methods, best = report["methods"], report["best_reference"]
    assert {f"{s}batch size (no chemistry)" for s in ("", "-")} <= set(report["references"])
    assert report["batch"]["used"] and report["protocol"]["version"] == 2
    for name in ("duplicates as chemistry", "latitude as chemistry"):
        assert methods[name]["kind"] == "chemistry"
        assert name not in report["beats_references"]["v2"] and name not in report["beats_references"]["published"]
    assert methods["latitude as chemistry"]["v2"]["auc"] == methods["latitude (no chemistry)"]["v2"]["auc"]
    assert methods[best["v2"]]["v2"]["auc"] >= max(methods[r]["v2"]["auc"] for r in report["references"])
    per_sample, per_row = methods["Au per merged sample"], methods["Au per row"]
    assert per_sample["v2"]["auc"] == per_row["v2"]["auc"]  # exact duplicates: the median is the value
    assert per_sample["auc_mean"] == per_row["auc_mean"]  # a merged sample's score is given to each of its rows
    assert set(report["paired"]["Au per row"]) == {best["v2"], "Au alone"}
    assert report["positives"]["n_distinct"] == 12
    text = pp.protocol_markdown(report)
    assert "200 groups chemically identical" in text and "batch column REPORT (detected by name)" in text
    assert "Paired over the" in text


def test_evaluate_command_with_batches_and_without_merging(tmp_path, capsys):
    import json

    from mstgat_core.cli import main

    _duplicated_survey(tmp_path)
    base = ["evaluate", str(tmp_path / "points.csv"), "--deposits", str(tmp_path / "sites.csv")]
    base += ["--protocol", "opengadbench", "--target", "Au", "--pretrain-epochs", "1"]
    assert main([*base, "--batch", "nope", "--out", str(tmp_path / "r.json")]) == 2
    assert "error: batch column 'nope' not found in points.csv" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "merged.json")]) == 0
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["n_merged"] == 400 and merged["n_samples"] == 600 and merged["batch"]["column"] == "REPORT"
    out = capsys.readouterr().out
    assert "merged into 400 samples" in out and "negatives stratified by batch and spacing" in out
    assert main([*base, "--no-merge-duplicates", "--batch", "none", "--out", str(tmp_path / "rows.json")]) == 0
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert rows["n_merged"] == 600 and not rows["batch"]["used"] and not rows["duplicates"]["merged"]
    assert "no batch column: negatives stratified by spacing only" in capsys.readouterr().out
    # the published figures of the baselines are on the rows as read either way
    assert rows["methods"]["Au alone"]["auc_mean"] == merged["methods"]["Au alone"]["auc_mean"]


SED1 = __import__("mstgat_core.paths", fromlist=["SHARED_DATA"]).SHARED_DATA / "opengadbench-sed1"


@pytest.mark.skipif(not (SED1 / "area1_sediment_au.csv").exists(), reason="shared data not present")
def test_sed1_duplicates_batches_and_distinct_positives():
    from mstgat_core.data.io import load_deposits
    from mstgat_core.data.points import load_points
    from mstgat_core.evaluation.point_duplicates import merge_point_samples, read_batch

    samples = load_points(SED1 / "area1_sediment_au.csv")
    batch = read_batch(SED1 / "area1_sediment_au.csv")
    assert batch.column == "WAMEX_A_NO" and len(set(batch.labels)) == 15
    merged, duplicates = merge_point_samples(samples, batch.labels)
    assert (duplicates.n_rows, duplicates.n_locations) == (1392, 820)
    assert (duplicates.n_groups, duplicates.n_rows_in_groups) == (523, 1095)
    assert (duplicates.n_identical, duplicates.n_differing) == (477, 46)
    sites = load_deposits(SED1 / "area1_sediment_au_site.csv")
    lonlat = duplicates.table[["lon", "lat"]].to_numpy()
    design = pp.stratified_design(lonlat, pp._lonlat(sites), batch=duplicates.table["batch"].to_numpy())
    assert design.n_sites == 32 and len(design.positives) == 16
