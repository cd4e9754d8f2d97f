"""Sample support: estimated, exact and supplied masks, and that nothing off the support reaches the model."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from shapely.geometry import box

from mstgat_core.data import io
from mstgat_core.data.points import PointSamples, points_to_grid
from mstgat_core.data.preprocess import Normaliser, valid_mask
from mstgat_core.data.support import (
    MIN_SEPARATION,
    SUPPORT,
    apply_support,
    estimate_support,
    read_support,
    support_from_samples,
    support_mask,
    support_summary,
    typical_spacing,
    with_support,
    without_support,
)
from mstgat_core.errors import DataError

CRS = "EPSG:32650"


def survey_points(rng, n=120, spacing=0.7, band=25.0, sparse=25, n_elements=6, cell=1000.0):
    """Sample sites: a dense jittered lattice in a diagonal band (|x - y| < band cells) and a few sparse sites
    elsewhere; values are lognormal around smooth regional fields (in map units of ``cell`` metres)."""
    from scipy import ndimage

    lattice = np.arange(0, n, spacing)
    gx, gy = np.meshgrid(lattice, lattice)
    inside = np.abs(gx - gy) < band
    dense = np.c_[gx[inside], gy[inside]] + rng.normal(0, spacing * 0.25, (int(inside.sum()), 2))
    xy = np.vstack([dense, rng.uniform(0, n, (sparse, 2))]) if sparse else dense
    xy = np.clip(xy, 0, n - 1e-6)
    fields = [ndimage.gaussian_filter(rng.normal(size=(n, n)), 8) for _ in range(n_elements)]
    cells = xy.astype(int)
    table = {
        f"E{i}": np.exp(f[cells[:, 1], cells[:, 0]] / f.std() + rng.normal(0, 0.7, len(xy)))
        for i, f in enumerate(fields)
    }
    frame = gpd.GeoDataFrame(
        pd.DataFrame(table), geometry=gpd.points_from_xy(xy[:, 0] * cell, xy[:, 1] * cell), crs=CRS
    )
    samples = PointSamples(frame, list(table), CRS, censored={}, censor_rule="none")
    return samples, xy * cell


def delivered_grid(samples, cell=1000.0):
    """An IDW grid as a survey delivers it: values everywhere, no samples, no support."""
    return without_support(points_to_grid(samples, cell, max_distance=1e12))


def distance_to_samples(grid, xy):
    from scipy.spatial import cKDTree

    gx, gy = np.meshgrid(grid.x.values, grid.y.values)
    return cKDTree(xy).query(np.c_[gx.ravel(), gy.ravel()])[0].reshape(gx.shape)


@pytest.mark.parametrize("seed, spacing", [(0, 0.7), (1, 0.5), (2, 0.8)])
def test_texture_estimate_finds_the_sampled_ground_of_an_idw_grid(seed, spacing):
    """Planted truth: the cells within 1.5 sample spacings of a sample; precision and recall >= 0.9."""
    samples, xy = survey_points(np.random.default_rng(seed), spacing=spacing)
    grid = delivered_grid(samples)
    truth = distance_to_samples(grid, xy) <= 1.5 * max(spacing, 0.5) * 1000.0
    estimate = estimate_support(grid)
    found = estimate.values
    precision = (found & truth).sum() / found.sum()
    recall = (found & truth).sum() / truth.sum()
    assert estimate.attrs["ramps_found"] and estimate.attrs["separation"] >= MIN_SEPARATION
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    assert 0.3 < truth.mean() < 0.5  # the ramps are most of the grid, as in South China


def test_a_uniformly_sampled_grid_has_no_ramps():
    """Samples everywhere: the texture is one population, so every cell with data is kept."""
    samples, _ = survey_points(np.random.default_rng(5), n=60, spacing=0.8, band=1e9, sparse=0)
    grid = delivered_grid(samples)
    estimate = estimate_support(grid)
    assert not estimate.attrs["ramps_found"] and estimate.attrs["separation"] < MIN_SEPARATION
    np.testing.assert_array_equal(estimate.values, valid_mask(grid))


def test_support_from_samples_is_the_distance_rule():
    """Brute force: supported where a sample lies within max(half-diagonal, typical spacing); duplicates count
    once in the spacing."""
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 20_000, (30, 2))
    xy = np.vstack([xy, xy[:10]])  # co-located duplicates would make a naive median spacing 0
    grid = xr.Dataset(coords={"y": np.arange(19_750, 0, -500.0), "x": np.arange(250, 20_000, 500.0)})
    support = support_from_samples(grid, xy)
    distinct = np.unique(xy, axis=0)
    pairwise = np.hypot(*(distinct[:, None, :] - distinct[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(pairwise, np.inf)
    spacing = np.median(pairwise.min(axis=1))
    assert typical_spacing(xy) == pytest.approx(spacing) and spacing > 0
    limit = max(500 * np.sqrt(2) / 2, spacing)
    np.testing.assert_array_equal(support.values, distance_to_samples(grid, distinct) <= limit)
    assert support.attrs["max_distance"] == pytest.approx(limit)


def test_points_to_grid_carries_its_exact_support(tmp_path):
    samples, xy = survey_points(np.random.default_rng(3), n=40, spacing=0.7, band=8, sparse=5)
    grid = points_to_grid(samples, 1000.0)
    expected = support_from_samples(grid, xy).values
    np.testing.assert_array_equal(support_mask(grid), expected)
    np.testing.assert_array_equal(valid_mask(grid), expected & valid_mask(without_support(grid)))
    assert support_summary(grid)["method"] == "samples"


# ------------------------------------------------------------------ nothing off the support reaches the model


@pytest.fixture(scope="module")
def poisoned():
    """A scenario with a support mask; ``poisoned`` holds absurd values off the support, ``clean`` NaN there."""
    from mstgat_core.data.synthetic import make_scenario

    scenario = make_scenario(shape=(48, 48), n_elements=5, seed=11)
    grid = scenario.grid
    rows, cols = np.indices((48, 48))
    support = np.abs(rows - cols) < 14
    poisoned = with_support(grid.copy(deep=True), support, method="file")
    for name in poisoned.data_vars:
        poisoned[name].values[~support] = 1e6
    clean = grid.copy(deep=True)
    for name in clean.data_vars:
        clean[name].values[~support] = np.nan
    deposits = io.deposit_cells(poisoned, scenario.deposits)
    return poisoned, clean, deposits, support


def test_normaliser_and_features_ignore_unsupported_cells(poisoned):
    ds, clean, _, support = poisoned
    np.testing.assert_array_equal(valid_mask(ds), support & valid_mask(without_support(ds)))
    assert Normaliser().fit(ds) == Normaliser().fit(clean)


def test_pretraining_and_predictions_ignore_unsupported_cells(poisoned):
    """Same seed on the poisoned grid and on the grid with NaN off the support: identical losses, identical
    scores on supported cells, NaN elsewhere, and a support layer saying which is which."""
    from mstgat_core.training.pipeline import pretrain_backbone
    from mstgat_core.training.pretrain import PretrainConfig

    ds, clean, _, support = poisoned
    config = PretrainConfig(epochs=2, steps_per_epoch=2, window=12, seed=4)
    model_config = {"scales": (1, 2), "d_model": 16, "gat_hidden": 16}
    a = pretrain_backbone(ds, model_config, config)
    b = pretrain_backbone(clean, model_config, config)
    assert a.metadata["pretrain"]["result"]["final_loss"] == b.metadata["pretrain"]["result"]["final_loss"]
    layers = a.predict_layers(ds)
    reference = b.predict_layers(clean)
    np.testing.assert_allclose(layers["probability"].values, reference["probability"].values, rtol=1e-5, equal_nan=True)
    assert np.isnan(layers["probability"].values[~support]).all()
    data = valid_mask(without_support(ds))
    np.testing.assert_array_equal(layers[SUPPORT].values == 1, support & data)
    np.testing.assert_array_equal(layers[SUPPORT].values == 0, ~support & data)
    assert np.isnan(layers[SUPPORT].values[~data]).all()
    assert layers["percentile"].max() == pytest.approx(100.0)


def test_negatives_and_test_cells_lie_on_the_support(poisoned):
    from mstgat_core.training.folds import FoldSettings, spatial_folds

    ds, _, deposits, support = poisoned
    mask = valid_mask(ds)
    rows, cols = np.nonzero(mask)
    positives = np.flatnonzero(deposits.values[mask])
    for fold in spatial_folds(rows, cols, positives, FoldSettings(method="loco", link_distance=3, buffer=2)):
        for nodes in (fold.train_neg_pool, fold.test_neg, fold.test_pos, fold.train_pos):
            assert support[rows[nodes], cols[nodes]].all()


def test_deposits_off_the_support_are_named(poisoned):
    ds, _, deposits, support = poisoned
    rows, cols = np.nonzero(~support)
    off = gpd.GeoDataFrame(geometry=gpd.points_from_xy(ds.x.values[cols[:3]], ds.y.values[rows[:3]]), crs=ds.rio.crs)
    with pytest.raises(DataError, match="3 lie on interpolated ground outside the sample support"):
        io.deposit_cells(ds, off)


# ------------------------------------------------------------------ files


@pytest.mark.parametrize("suffix", [".nc", ".tif", ".zarr"])
def test_support_survives_a_round_trip(poisoned, tmp_path, suffix):
    ds = poisoned[0]
    io.save_grid(ds, tmp_path / f"grid{suffix}")
    back = io.load_grid(tmp_path / f"grid{suffix}")
    np.testing.assert_array_equal(support_mask(back), support_mask(ds))
    assert SUPPORT not in back.data_vars and sorted(back.data_vars) == sorted(ds.data_vars)  # zarr sorts them


def _write_mask(path, values, transform, crs):
    profile = dict(driver="GTiff", width=values.shape[1], height=values.shape[0], count=1, dtype="uint8")
    with rasterio.open(path, "w", crs=crs, transform=transform, **profile) as dst:
        dst.write(values.astype("uint8"), 1)


def test_a_raster_mask_in_another_crs_is_reprojected(poisoned, tmp_path):
    """The grid's support written as a raster in web Mercator lands back on the grid (nearest neighbour;
    cells on the reprojected mask's edge may differ)."""
    ds, _, _, support = poisoned
    source = xr.DataArray(support.astype("uint8"), coords={"y": ds.y, "x": ds.x}, dims=("y", "x"))
    source = source.rio.write_crs(ds.rio.crs).rio.reproject("EPSG:3857", resolution=500.0)
    source.rio.to_raster(tmp_path / "mask.tif")
    placed = read_support(tmp_path / "mask.tif", ds).values
    assert (placed == support).mean() > 0.95


def test_polygon_mask_and_refusals(poisoned, tmp_path):
    ds, _, _, _ = poisoned
    x0, x1 = float(ds.x[5]), float(ds.x[15])
    y0, y1 = float(ds.y[20]), float(ds.y[10])
    gpd.GeoDataFrame(geometry=[box(x0, y0, x1, y1)], crs=ds.rio.crs).to_crs("EPSG:4326").to_file(tmp_path / "p.gpkg")
    placed = read_support(tmp_path / "p.gpkg", ds).values
    assert placed[15, 10] and not placed[0, 0] and placed.sum() == pytest.approx(11 * 11, abs=22)
    supported = apply_support(ds, tmp_path / "p.gpkg")
    assert support_summary(supported)["method"] == "file"

    gpd.GeoDataFrame(geometry=[box(x0, y0, x1, y1)]).to_file(tmp_path / "no_crs.gpkg")
    with pytest.raises(DataError, match="has no CRS"):
        read_support(tmp_path / "no_crs.gpkg", ds)
    far = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs="EPSG:4326")
    far.to_file(tmp_path / "far.gpkg")
    with pytest.raises(DataError, match="covers no cell of the grid"):
        read_support(tmp_path / "far.gpkg", ds)
    gpd.GeoDataFrame(geometry=gpd.points_from_xy([x0], [y0]), crs=ds.rio.crs).to_file(tmp_path / "pts.gpkg")
    with pytest.raises(DataError, match="holds no polygons"):
        read_support(tmp_path / "pts.gpkg", ds)
    (tmp_path / "mask.txt").write_text("1")
    with pytest.raises(DataError, match="unknown support mask format"):
        read_support(tmp_path / "mask.txt", ds)


def test_apply_support_choices(poisoned):
    ds = poisoned[0]
    assert apply_support(ds, "auto") is ds
    assert support_mask(apply_support(ds, "none")) is None
    assert support_summary(apply_support(ds, "estimate"))["method"] == "texture"


# ------------------------------------------------------------------ the demo and the real grid


def test_bundled_demo_ships_its_estimated_support(shared_data):
    """The demo grid is the source grid plus its texture estimate: about 37 % of South China, every deposit."""
    from mstgat_core.paths import DEMO_DEPOSITS, DEMO_GRID

    demo = io.load_grid(DEMO_GRID)
    source = io.load_grid(shared_data / "south-china-li")
    np.testing.assert_array_equal(support_mask(demo), estimate_support(source).values)
    summary = support_summary(demo)
    assert summary["method"] == "texture" and 0.3 < summary["supported_share"] < 0.45
    cells = io.deposit_cells(demo, io.load_deposits(DEMO_DEPOSITS))
    assert cells.attrs["n_cells"] == 21 and cells.attrs["n_unsupported"] == 0


def test_cli_reports_and_writes_the_support(poisoned, tmp_path, capsys):
    from mstgat_core.cli import main

    ds = without_support(poisoned[0])
    io.save_grid(ds, tmp_path / "g.nc")
    assert main(["info", str(tmp_path / "g.nc"), "--support", "none"]) == 0
    assert "sample support: unknown" in capsys.readouterr().out
    assert (
        main(
            [
                "pretrain",
                str(tmp_path / "g.nc"),
                "--out",
                str(tmp_path / "m.safetensors"),
                "--epochs",
                "1",
                "--scales",
                "1",
                "--support",
                "estimate",
            ]
        )
        == 0
    )
    assert "estimated from the texture" in capsys.readouterr().err
    assert (
        main(
            [
                "predict",
                str(tmp_path / "m.safetensors"),
                str(tmp_path / "g.nc"),
                "--out",
                str(tmp_path / "p.nc"),
                "--support",
                "estimate",
            ]
        )
        == 0
    )
    layers = xr.open_dataset(tmp_path / "p.nc")
    on = layers[SUPPORT].values == 1
    assert np.isfinite(layers["probability"].values[on]).all() and np.isnan(layers["probability"].values[~on]).all()
    assert (
        main(
            [
                "predict",
                str(tmp_path / "m.safetensors"),
                str(tmp_path / "g.nc"),
                "--out",
                str(tmp_path / "q.nc"),
                "--support",
                str(tmp_path / "missing.tif"),
            ]
        )
        == 2
    )
    assert "support mask not found" in capsys.readouterr().err
    args = ["score", str(tmp_path / "g.nc"), "--out", str(tmp_path / "s.nc"), "--epochs", "1", "--support", "estimate"]
    assert main(args) == 0
    scores = xr.open_dataset(tmp_path / "s.nc")
    on = scores[SUPPORT].values == 1
    assert np.isfinite(scores["anomaly_score"].values[on]).all() and np.isnan(scores["anomaly_score"].values[~on]).all()
