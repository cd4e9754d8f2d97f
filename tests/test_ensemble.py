"""Deep ensembles: the map is the members' mean, their spread is the uncertainty, checkpoints keep them all."""

import copy
import json

import numpy as np
import pytest
import torch

from mstgat_core.checkpoint import load_checkpoint, save_checkpoint
from mstgat_core.errors import DataError
from mstgat_core.io import deposit_cells
from mstgat_core.model import MSTGAT, ModelConfig
from mstgat_core.pipeline import FittedModel, fit
from mstgat_core.preprocess import Normaliser
from mstgat_core.train import TrainConfig

SMALL = {"scales": (1, 2), "d_model": 16, "gat_hidden": 16}


def ensemble(grid, k=3, identical=False):
    normaliser = Normaliser().fit(grid)
    models = []
    for seed in range(k):
        torch.manual_seed(0 if identical else seed)
        models.append(MSTGAT(ModelConfig(n_elements=len(normaliser.elements), **SMALL)).eval())
    return FittedModel(models[0], normaliser, members=models)


def test_identical_members_have_no_uncertainty(small_scenario):
    grid = small_scenario.grid
    fitted = ensemble(grid, identical=True)
    layers = fitted.predict_layers(grid)
    valid = np.isfinite(layers["probability"].values)
    assert np.nanmax(layers["uncertainty"].values) == 0.0
    assert set(np.unique(layers["top_agreement"].values[valid])) <= {0.0, 1.0}
    single = FittedModel(fitted.model, fitted.normaliser).predict(grid)
    np.testing.assert_allclose(layers["probability"].values, single.values, atol=1e-7)


def test_percentile_ranks_the_map(small_scenario):
    grid = small_scenario.grid
    single = FittedModel(ensemble(grid, k=1).model, Normaliser().fit(grid))
    layers = single.predict_layers(grid)
    assert set(layers.data_vars) == {"probability", "percentile"}  # no spread for a single model
    p, q = layers["probability"].values, layers["percentile"].values
    valid = np.isfinite(p)
    assert np.array_equal(valid, np.isfinite(q)) and q[valid].max() == 100.0
    order = np.argsort(p[valid])
    assert (np.diff(q[valid][order]) >= 0).all()  # monotone in the probability
    assert abs((q[valid] > 95).mean() - 0.05) < 0.01  # the top 5 % of the area


def test_ensemble_map_is_the_members_mean(small_scenario):
    grid = small_scenario.grid
    fitted = ensemble(grid)
    singles = np.stack([FittedModel(m, fitted.normaliser).predict(grid).values for m in fitted.ensemble])
    np.testing.assert_allclose(fitted.predict(grid).values, singles.mean(axis=0), atol=1e-6)
    layers = fitted.predict_layers(grid)
    np.testing.assert_allclose(layers["uncertainty"].values, singles.std(axis=0), atol=1e-6)
    assert np.nanmax(layers["uncertainty"].values) > 0
    np.testing.assert_allclose(fitted.predict(grid, tile=17).values, fitted.predict(grid).values, atol=1e-5)


def test_ensemble_checkpoint_round_trip(small_scenario, tmp_path):
    grid = small_scenario.grid
    fitted = ensemble(grid, k=3)
    path = save_checkpoint(fitted, tmp_path / "ensemble.safetensors", data=grid)
    loaded = load_checkpoint(path)
    assert len(loaded.ensemble) == 3 and loaded.metadata["n_members"] == 3
    a, b = fitted.predict_layers(grid), loaded.predict_layers(grid)
    for name in ("probability", "uncertainty", "top_agreement"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    single = FittedModel(fitted.model, fitted.normaliser)
    assert len(load_checkpoint(save_checkpoint(single, tmp_path / "single.safetensors")).ensemble) == 1


def test_a_checkpoint_with_a_wrong_member_count_is_refused(small_scenario, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = save_checkpoint(ensemble(small_scenario.grid, k=2), tmp_path / "e.safetensors")
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = dict(f.metadata())
    for count in (3, 0, "2"):
        meta = json.loads(metadata["mstgat"])
        meta["n_members"] = count
        save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"mstgat": json.dumps(meta)})
        with pytest.raises(DataError):
            load_checkpoint(tmp_path / "bad.safetensors")


def test_fit_trains_distinct_members(small_scenario):
    grid = small_scenario.grid
    cells = deposit_cells(grid, small_scenario.deposits)
    config = TrainConfig(epochs=3, min_epochs=1, patience=2, steps_per_epoch=2)
    fitted = fit(grid, cells, SMALL, config, members=3)
    assert len(fitted.ensemble) == 3 and fitted.ensemble[0] is fitted.model
    assert len(fitted.metadata["member_results"]) == 3
    first, second = (m.state_dict() for m in fitted.ensemble[:2])
    assert not all(torch.equal(first[k], second[k]) for k in first)
    alone = fit(grid, cells, SMALL, config)  # member 0 is the single model of the same seed
    for k, v in alone.model.state_dict().items():
        assert torch.equal(v, fitted.model.state_dict()[k]), k
    assert copy.deepcopy(fitted).predict(grid).shape == grid[fitted.elements[0]].shape
    with pytest.raises(DataError):
        fit(grid, cells, SMALL, config, members=0)


def test_cli_trains_a_pretrained_ensemble_and_predicts_its_spread(small_scenario, tmp_path):
    import xarray as xr

    from mstgat_core import cli
    from mstgat_core.io import save_grid

    grid = small_scenario.grid
    save_grid(grid, tmp_path / "grid.nc")
    table = small_scenario.deposits.drop(columns="geometry")
    table["crs"] = grid.rio.crs.to_string()
    table.to_csv(tmp_path / "deposits.csv", index=False)
    model = tmp_path / "m.safetensors"
    args = [
        "train",
        str(tmp_path / "grid.nc"),
        "--deposits",
        str(tmp_path / "deposits.csv"),
        "--out",
        str(model),
        "--epochs",
        "2",
        "--scales",
        "1",
        "--members",
        "2",
        "--pretrain",
    ]
    assert cli.main(args) == 0
    assert len(load_checkpoint(model).ensemble) == 2
    assert cli.main(["predict", str(model), str(tmp_path / "grid.nc"), "--out", str(tmp_path / "p.nc")]) == 0
    with xr.open_dataset(tmp_path / "p.nc") as out:
        assert set(out.data_vars) >= {"probability", "uncertainty", "top_agreement"}
        assert float(out["uncertainty"].max()) > 0
    assert cli.main([*args[:-3], "--members", "0"]) == 2
