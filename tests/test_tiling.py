"""Tiled and dask prediction equal whole-grid prediction."""

import threading

import numpy as np
import pytest
import torch
import xarray as xr

from mstgat_core.data.io import save_grid
from mstgat_core.data.preprocess import Normaliser
from mstgat_core.data.synthetic import make_scenario
from mstgat_core.errors import Cancelled
from mstgat_core.graphs.tiling import halo_of, iter_tiles
from mstgat_core.model import MSTGAT, ModelConfig
from mstgat_core.training.distributed import predict_distributed
from mstgat_core.training.pipeline import FittedModel

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def grid():
    ds = make_scenario(shape=(60, 70), n_elements=6, seed=5).grid
    # an irregular mask: the survey boundary plus a hole and a ragged strip
    ds["Li"][20:27, 30:41] = np.nan
    ds["Sn"][::7, 50:53] = np.nan
    return ds


def fitted_model(ds, **config):
    torch.manual_seed(0)
    return FittedModel(MSTGAT(ModelConfig(n_elements=6, **config)), Normaliser().fit(ds))


def assert_same(a: xr.DataArray, b: xr.DataArray):
    assert a.dtype == np.float32 and a.name == "probability"
    assert np.array_equal(np.isnan(a.values), np.isnan(b.values))
    assert np.nanmax(np.abs(a.values - b.values)) < 1e-5
    np.testing.assert_array_equal(a["x"].values, b["x"].values)
    np.testing.assert_array_equal(a["y"].values, b["y"].values)


def test_mask_is_irregular(grid):
    valid = np.isfinite(grid.to_array()).all("variable").values
    assert 0.3 < valid.mean() < 0.95
    assert not valid[:, 0].all() and not valid[0, :].all()


@pytest.mark.parametrize(
    "config",
    [
        {"variant": "mstgat", "scales": (1, 2, 3)},
        {"variant": "mstgat", "scales": (1, 2, 3), "gat_layers": 2},
        {"variant": "spectral"},
        {"variant": "spatial", "scales": (1, 4), "graph_mode": "ring"},
    ],
    ids=["mstgat", "mstgat-2layers", "spectral", "spatial-ring"],
)
@pytest.mark.parametrize("tile", [17, 23])
def test_tiled_equals_whole_grid(grid, config, tile):
    fitted = fitted_model(grid, **config)
    whole = fitted.predict(grid)
    tiled = fitted.predict(grid, tile=tile)
    assert_same(tiled, whole)
    assert tiled.rio.crs == grid.rio.crs
    assert tiled.attrs["variant"] == config["variant"]


def test_halo_sizes(grid):
    assert halo_of(fitted_model(grid, scales=(1, 2, 3))) == 3
    assert halo_of(fitted_model(grid, scales=(1, 2, 3), gat_layers=2)) == 6
    assert halo_of(fitted_model(grid, variant="spectral")) == 0


def test_halo_is_needed(grid):
    """Without the halo, cells near tile edges differ: the test above is not vacuous."""
    fitted = fitted_model(grid, scales=(1, 2, 3), gat_layers=2)
    whole = fitted.predict(grid).values
    image = np.full(whole.shape, np.nan, dtype=np.float32)
    for t in iter_tiles(whole.shape, 17, 0):
        window = grid.isel(t.outer_isel)
        image[t.inner_slices] = fitted.predict_window(window)[t.crop]
    assert np.nanmax(np.abs(image - whole)) > 1e-4


def test_tiles_cover_grid_once():
    seen = np.zeros((60, 70), dtype=int)
    for t in iter_tiles((60, 70), 23, 4):
        seen[t.inner_slices] += 1
        y0, y1, x0, x1 = t.outer
        assert 0 <= y0 and y1 <= 60 and 0 <= x0 and x1 <= 70
    assert (seen == 1).all()


def test_progress_and_cancel(grid):
    fitted = fitted_model(grid)
    calls = []
    fitted.predict(grid, tile=23, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 12) for i in range(1, 13)]
    calls.clear()
    fitted.predict(grid, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 1)]  # a small grid is one tile

    cancel = threading.Event()

    def stop_after_two(done, total):
        if done == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        fitted.predict(grid, tile=23, progress=stop_after_two, cancel=cancel)


def test_dask_equals_single_process(grid, tmp_path):
    """Two dask workers (in-process threads: spawning processes that import torch
    takes tens of seconds on a loaded 2-core machine) give the single-process result.
    The scheduler-address path is the one ``mstgat predict --dask`` uses."""
    from distributed import LocalCluster

    fitted = fitted_model(grid, gat_layers=2)
    whole = fitted.predict(grid)
    save_grid(grid, tmp_path / "grid.nc")
    save_grid(grid, tmp_path / "grid.zarr")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        seen = []
        out = predict_distributed(
            fitted,
            tmp_path / "grid.nc",
            tmp_path / "p.zarr",
            tile=23,
            scheduler=cluster.scheduler_address,
            progress=lambda d, n: seen.append((d, n)),
        )
        assert out == (tmp_path / "p.zarr").resolve()
        assert seen[-1] == (12, 12)
        result = xr.open_zarr(out, decode_coords="all", consolidated=False)["probability"].load()
        assert_same(result, whole)
        assert result.rio.crs == grid.rio.crs

        out = predict_distributed(
            fitted, tmp_path / "grid.zarr", tmp_path / "p.nc", tile=23, scheduler=cluster.scheduler_address
        )
        with xr.open_dataset(out, decode_coords="all") as nc:
            assert_same(nc["probability"].load(), whole)
            assert nc.rio.crs == grid.rio.crs
    # only the outputs remain: no temporary stores
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.nc", "grid.zarr", "p.nc", "p.zarr"]


def test_cli_predict_whole_tiled_and_automatic_tiles(grid, tmp_path, monkeypatch, capsys):
    from mstgat_core import cli
    from mstgat_core.graphs import tiling
    from mstgat_core.training.checkpoint import save_checkpoint

    fitted = fitted_model(grid)
    model, data = tmp_path / "m.safetensors", tmp_path / "g.nc"
    save_checkpoint(fitted, model, data=grid)
    save_grid(grid, data)
    assert cli.main(["predict", str(model), str(data), "--out", str(tmp_path / "whole.nc")]) == 0
    assert cli.main(["predict", str(model), str(data), "--out", str(tmp_path / "tiled.nc"), "--tile", "17"]) == 0
    whole = fitted.predict(grid)
    monkeypatch.setattr(tiling, "AUTO_TILE_CELLS", 1000)  # the 60 x 70 grid is now "large"
    monkeypatch.setattr(tiling, "DEFAULT_TILE", 32)  # ... and needs 4 tiles
    capsys.readouterr()
    assert cli.main(["predict", str(model), str(data), "--out", str(tmp_path / "auto.nc")]) == 0
    assert "predicting in tiles of 32" in capsys.readouterr().err
    assert_same(fitted.predict(grid), whole)  # the library tiles too
    for name in ("whole", "tiled", "auto"):
        with xr.open_dataset(tmp_path / f"{name}.nc", decode_coords="all") as ds:
            assert_same(ds["probability"].load(), whole)
