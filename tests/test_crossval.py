"""Grid-level cross-validation: no method reads a test label; context baselines see the neighbourhood."""

import dataclasses

import numpy as np
import pytest

from mstgat_core.data.io import deposit_cells
from mstgat_core.data.preprocess import Normaliser, valid_mask
from mstgat_core.errors import DataError
from mstgat_core.evaluation.crossval import method_runners
from mstgat_core.graphs.neighbourhood import neighbourhood_features
from mstgat_core.training.folds import FoldSettings, spatial_folds
from mstgat_core.training.pretrain import PretrainConfig
from mstgat_core.training.train import TrainConfig

SMALL_MODEL = {"scales": (1, 2), "d_model": 16, "gat_hidden": 16}
# early stopping on an inner split of the training labels: the selection that must not see test labels
INNER_SELECTION = TrainConfig(epochs=6, min_epochs=2, patience=2, steps_per_epoch=2)
QUICK_PRETRAIN = PretrainConfig(epochs=4, steps_per_epoch=3)


@pytest.fixture(scope="module")
def problem(small_scenario):
    grid = small_scenario.grid
    cells = deposit_cells(grid, small_scenario.deposits)
    normaliser = Normaliser().fit(grid)
    mask = valid_mask(grid, normaliser.elements)
    X = normaliser.transform(grid, mask)
    rows, cols = np.nonzero(mask)
    pos = np.flatnonzero(cells.values[mask])
    settings = FoldSettings.for_model(SMALL_MODEL["scales"], n_folds=3)
    return mask, X, rows, cols, pos, spatial_folds(rows, cols, pos, settings, seed=1)


def poisoned(fold, rng):
    """The same fold with its test labels replaced: other test positives and negatives."""
    region = np.flatnonzero(fold.test_region)
    fake_pos = np.sort(rng.choice(region, size=len(fold.test_pos), replace=False))
    fake_neg = np.setdiff1d(region, fake_pos)
    return dataclasses.replace(
        fold, test_pos=fake_pos, test_neg=fake_neg, test_clusters=np.zeros(len(fake_pos), dtype=np.int64)
    )


@pytest.mark.parametrize(
    "method",
    [
        "mstgat",  # pretraining (all cells, no labels) and fine-tuning with inner-CV selection
        "mstgat_k1",
        "mstgat_scratch",
        "mstgat_label_free",
        "spatial",
        "best_single_element",
        "random_forest_context",
        "gradient_boosting",
        "logistic_context",
        "mlp",
        "isolation_forest",
    ],
)
def test_no_method_reads_test_labels(problem, method):
    """Poisoning the test labels changes nothing a method chose or predicted (inner selection included)."""
    mask, X, rows, cols, pos, folds = problem
    run = method_runners([method], mask, X, SMALL_MODEL, INNER_SELECTION, pretrain_config=QUICK_PRETRAIN)[method]
    fold = folds[0]
    clean = run(X, fold, 1)
    np.testing.assert_array_equal(run(X, poisoned(fold, np.random.default_rng(0)), 1), clean)
    if method not in ("isolation_forest", "mstgat_label_free"):  # not vacuous: the training labels do matter
        fewer = dataclasses.replace(fold, train_pos=fold.train_pos[: max(1, len(fold.train_pos) // 2)])
        assert not np.array_equal(run(X, fewer, 1), clean)


def test_context_baselines_get_neighbourhood_features(problem, monkeypatch):
    mask, X, rows, cols, pos, folds = problem
    seen = {}
    from mstgat_core.evaluation import baselines

    original = baselines.RandomForestBaseline.fit

    def spy(self, features, *args, **kwargs):
        seen[type(self).__name__] = features.shape
        return original(self, features, *args, **kwargs)

    monkeypatch.setattr(baselines.RandomForestBaseline, "fit", spy)
    runners = method_runners(["random_forest", "random_forest_context"], mask, X, SMALL_MODEL)
    for run in runners.values():
        run(X, folds[0], 1)
    assert seen["RandomForestBaseline"] == X.shape
    assert seen["RandomForestContext"] == neighbourhood_features(X, mask, SMALL_MODEL["scales"]).shape
    assert seen["RandomForestContext"][1] == X.shape[1] * (1 + 2 * 2)


def test_unknown_method_is_a_data_error(problem):
    mask, X, *_ = problem
    with pytest.raises(DataError, match="unknown method"):
        method_runners(["mstgat", "svm"], mask, X)


def test_cli_evaluate_refuses_impossible_folds_in_one_line(small_scenario, tmp_path, capsys):
    from mstgat_core import cli
    from mstgat_core.data.io import save_grid

    save_grid(small_scenario.grid, tmp_path / "grid.nc")
    table = small_scenario.deposits.drop(columns="geometry")
    table["crs"] = small_scenario.grid.rio.crs.to_string()
    table.to_csv(tmp_path / "deposits.csv", index=False)
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [
        "evaluate",
        str(tmp_path / "grid.nc"),
        "--deposits",
        str(tmp_path / "deposits.csv"),
        "--out",
        str(tmp_path / "report.json"),
        "--methods",
        "best_single_element",
    ]
    assert cli.main([*args, "--folds", "50"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "cannot fill 50 folds: use --folds" in err and "--folds loco" in err
    assert cli.main([*args, "--folds", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert cli.main([*args, "--seeds", "a,b"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_fold_roles_are_the_folds_the_report_scored(small_scenario):
    """Drawn again from the report's protocol, each fold's held-out deposits, training deposits and test
    region match what the report recorded (cell by cell for the held-out deposits)."""
    import numpy as np

    from mstgat_core.data.io import deposit_cells
    from mstgat_core.evaluation.crossval import cross_validate_grid, fold_roles

    deposit_mask = deposit_cells(small_scenario.grid, small_scenario.deposits)
    report = cross_validate_grid(small_scenario.grid, deposit_mask, ["best_single_element"], folds=3, seeds=(1, 2))
    roles = fold_roles(small_scenario.grid, deposit_mask, report)
    recorded = [
        (int(seed), i + 1, f) for seed, folds in report["protocol"]["folds"].items() for i, f in enumerate(folds)
    ]
    assert [(r["seed"], r["fold"]) for r in roles] == [(s, i) for s, i, _ in recorded]
    deposits = np.asarray(deposit_mask.values, dtype=bool)
    for role, (_, _, fold) in zip(roles, recorded):
        held_out = {(int(r), int(c)) for r, c in zip(*np.nonzero(role["test_deposits"]))}
        assert held_out == {(d["row"], d["col"]) for d in fold["test_deposits"]}
        assert (
            role["train_deposits"].sum() == fold["n_train_pos"] and role["test_region"].sum() == fold["n_test_region"]
        )
        assert not (role["train_deposits"] & role["test_region"]).any()  # nothing trained on inside the test region
        assert (role["test_deposits"] <= (role["test_region"] & deposits)).all()
