import numpy as np
import pytest
import xarray as xr

from mstgat_core import cross_validate
from mstgat_core.data.io import deposit_cells
from mstgat_core.data.synthetic import make_scenario
from mstgat_core.training.pipeline import fit
from mstgat_core.training.pretrain import PretrainConfig
from mstgat_core.training.train import TrainConfig, grow_positives, negative_pool, validation_split

QUICK = TrainConfig(epochs=60, min_epochs=20, patience=15)


def test_negative_pool_respects_distance():
    rows, cols = np.divmod(np.arange(100), 10)
    pool = negative_pool(rows, cols, np.array([55]), 3.0)
    distance = np.hypot(rows[pool] - 5, cols[pool] - 5)
    assert distance.min() >= 3 and 55 not in pool
    assert len(pool) == int((np.hypot(rows - 5, cols - 5) >= 3).sum())


def test_grow_positives_adds_the_chebyshev_neighbourhood():
    rows, cols = np.divmod(np.arange(100), 10)
    grown = grow_positives(rows, cols, np.array([55]), 1)
    assert sorted(grown) == sorted(r * 10 + c for r in (4, 5, 6) for c in (4, 5, 6))


def test_validation_split_is_disjoint():
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, 50, 500), rng.integers(0, 50, 500)
    pos, neg = np.arange(20), np.arange(20, 500)
    tp, tn, vp, vn = validation_split(rows, cols, pos, neg, 0.2, seed=1)
    assert set(tp).isdisjoint(vp) and set(tn).isdisjoint(vn)
    assert sorted(np.r_[tp, vp]) == list(pos) and sorted(np.r_[tn, vn]) == list(neg)
    assert len(vp) >= 1


def test_training_is_deterministic_for_a_seed(small_scenario):
    grid = small_scenario.grid
    deposits = deposit_cells(grid, small_scenario.deposits)
    config = TrainConfig(epochs=5, min_epochs=1, patience=5)
    a = fit(grid, deposits, {"scales": (1, 2)}, config, members=1, pretrained=False).predict(grid)
    b = fit(grid, deposits, {"scales": (1, 2)}, config, members=1, pretrained=False).predict(grid)
    np.testing.assert_array_equal(a.values, b.values)
    quick = PretrainConfig(epochs=2, steps_per_epoch=2, seed=3)
    a = fit(grid, deposits, {"scales": (1, 2)}, pretrain_config=quick).predict_layers(grid)
    b = fit(grid, deposits, {"scales": (1, 2)}, pretrain_config=quick).predict_layers(grid)
    xr.testing.assert_identical(a, b)


@pytest.mark.slow
def test_planted_anomalies_are_recovered_on_held_out_folds():
    scenario = make_scenario(shape=(72, 72), n_elements=8, seed=11)
    deposits = deposit_cells(scenario.grid, scenario.deposits)
    report = cross_validate(
        scenario.grid, deposits, ["mstgat", "best_single_element"], folds=3, seeds=(0,), train_config=QUICK
    )
    result = report["results"]["mstgat"]
    assert result["roc_auc_mean"] >= 0.9, result
    assert report["protocol"]["n_deposit_cells"] == int(deposits.values.sum())
    assert report["comparison"]["best_single_element"]["roc_auc"]["n"] == len(result["folds"])


def test_refit_without_validation_runs_every_epoch(small_scenario):
    grid = small_scenario.grid
    deposits = deposit_cells(grid, small_scenario.deposits)
    config = TrainConfig(epochs=3, validation_fraction=0, steps_per_epoch=2)
    fitted = fit(grid, deposits, {"scales": (1,)}, config, members=1, pretrained=False)
    result = fitted.train_result
    assert len(result.history) == 3 and result.best_epoch == 3 and result.stopped == "max_epochs"
    assert np.isnan(result.history[-1].val_auc)
