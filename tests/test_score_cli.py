"""``mstgat score``: every input column kept, scores added, one-line refusals with nothing written."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from mstgat_core.cli import main


def _survey(path, n=120, seed=0):
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "X": rng.uniform(117.0, 117.4, n),
            "Y": rng.uniform(-33.4, -33.0, n),
            "SAMPLEID": [f"S{i:04d}" for i in range(n)],
            "Au_ppb": rng.lognormal(1, 0.5, n),
            "As_ppm": rng.lognormal(2, 0.5, n),
            "Cu_ppm": rng.lognormal(3, 0.5, n),
            "Zn_ppm": rng.lognormal(3, 0.5, n),
            "Pt_ppb": -9999.0,
        }
    )
    table.loc[::9, "Zn_ppm"] = -9999.0
    table.to_csv(path, index=False)
    return table


def test_score_points_to_csv_keeps_every_column_and_adds_the_scores(tmp_path, capsys):
    source = _survey(tmp_path / "points.csv")
    out = tmp_path / "scores.csv"
    argv = ["score", str(tmp_path / "points.csv"), "--out", str(out), "--neighbours", "4,8", "--epochs", "2"]
    argv += ["--target", "Au"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "projected to EPSG:32750" in err and "scale 2: 8 nearest samples, median reach" in err
    scores = pd.read_csv(out)
    # every input column, values and coordinates as given (the -9999 too), in the same order
    pd.testing.assert_frame_equal(scores[source.columns], source, check_exact=False, rtol=1e-12)
    contributions = scores[[f"contrib_{e}" for e in ("Au", "As", "Cu", "Zn")]]
    np.testing.assert_allclose(np.log(contributions.sum(axis=1) + 1e-6), scores["anomaly_score"], rtol=1e-4, atol=1e-4)
    assert "contrib_Pt" not in scores  # all missing: dropped
    assert scores["anomaly_percentile"].max() == pytest.approx(100.0)
    assert {"scale_weight_4", "scale_weight_8", "top_elements", "target_residual"} <= set(scores.columns)
    np.testing.assert_allclose(scores[["scale_weight_4", "scale_weight_8"]].sum(axis=1), 1.0, atol=1e-5)


def test_a_large_survey_is_scored_in_mini_batches_with_progress(tmp_path, capsys, monkeypatch):
    """Above point_whole_graph samples (lowered here to 100): pretraining on mini-batches of seed samples,
    scoring in batches, a progress bar for each on stderr; the output is as complete as the whole graph's."""
    import functools

    from mstgat_core.training import point_model, pretrain  # point_model first: it keeps the real class

    assert point_model.PretrainConfig is pretrain.PretrainConfig

    monkeypatch.setattr(
        pretrain, "PretrainConfig", functools.partial(pretrain.PretrainConfig, point_whole_graph=100, point_batch=32)
    )
    monkeypatch.setattr("mstgat_core.training.point_model.SCORE_BATCH", 50)
    _survey(tmp_path / "points.csv")
    out = tmp_path / "scores.csv"
    argv = ["score", str(tmp_path / "points.csv"), "--out", str(out), "--neighbours", "4,8", "--epochs", "2"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "120 samples: pretraining on mini-batches of 32 samples" in err and "whole graph below 100" in err
    assert "pretraining on the samples: 100%" in err and "scoring the samples: 100%" in err and "3/3" in err
    scores = pd.read_csv(out)
    contributions = scores[[f"contrib_{e}" for e in ("Au", "As", "Cu", "Zn")]]
    np.testing.assert_allclose(np.log(contributions.sum(axis=1) + 1e-6), scores["anomaly_score"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scores[["scale_weight_4", "scale_weight_8"]].sum(axis=1), 1.0, atol=1e-5)


def test_score_points_to_geopackage_keeps_the_input_crs(tmp_path):
    _survey(tmp_path / "points.csv")
    out = tmp_path / "scores.gpkg"
    assert main(["score", str(tmp_path / "points.csv"), "--out", str(out), "--neighbours", "4", "--epochs", "1"]) == 0
    frame = gpd.read_file(out)
    assert frame.crs.to_epsg() == 4326  # the coordinates as given (lon/lat), not the UTM used inside
    np.testing.assert_allclose(frame.geometry.x, frame["X"], atol=1e-9)
    assert "anomaly_score" in frame and len(frame) == 120


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--neighbours", "200"], "120 samples: a scale of 200 nearest samples needs at least 201"),
        (["--neighbours", "4,x"], "whole numbers"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--target", "Pt"], "target element 'Pt' is not among the elements used"),
    ],
)
def test_score_refusals_are_one_line_and_write_nothing(tmp_path, capsys, extra, message):
    _survey(tmp_path / "points.csv")
    out = tmp_path / "scores.csv"
    assert main(["score", str(tmp_path / "points.csv"), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("error:") and "Traceback" not in "".join(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["points.csv"]


def test_score_refuses_a_grid_output_for_points_and_a_column_clash(tmp_path, capsys):
    table = _survey(tmp_path / "points.csv")
    assert main(["score", str(tmp_path / "points.csv"), "--out", str(tmp_path / "s.nc")]) == 2
    assert "--out for point files must end in .csv or .gpkg" in capsys.readouterr().err
    table["anomaly_score"] = 1.0
    table.to_csv(tmp_path / "clash.csv", index=False)
    argv = [
        "score",
        str(tmp_path / "clash.csv"),
        "--out",
        str(tmp_path / "s.csv"),
        "--neighbours",
        "4",
        "--epochs",
        "1",
    ]
    assert main(argv) == 2
    assert "already has column(s) anomaly_score" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_score_a_grid_writes_score_and_contribution_layers(tmp_path, small_scenario):
    import xarray as xr

    scenario = small_scenario
    grid_path = tmp_path / "grid.nc"
    scenario.grid.to_netcdf(grid_path)
    out = tmp_path / "scores.nc"
    assert main(["score", str(grid_path), "--out", str(out), "--epochs", "1"]) == 0
    layers = xr.open_dataset(out)
    contrib = sum(layers[f"contrib_{e}"] for e in scenario.grid.data_vars)
    np.testing.assert_allclose(np.log(contrib + 1e-6), layers["anomaly_score"], rtol=1e-4, atol=1e-4)
