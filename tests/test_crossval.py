"""Grid-level cross-validation: no method reads a test label; context baselines see the neighbourhood."""

import dataclasses
import re

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
        "mstgat_residual",  # the residual readout: the same inner-CV selection over another design
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
    assert err.startswith("error: ") and "cannot fill 50 folds: use at most" in err
    assert re.search(r"leave one cluster out \(--folds \d+ or --folds loco\)$", err)  # the library's values, as flags
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


@pytest.mark.parametrize("readout", ["embedding", "residual"])
def test_a_fold_is_fitted_as_fit_fits_the_whole_grid(small_scenario, readout):
    """One fit procedure: cross-validation's fine-tuning on a fold that trains on every deposit gives the
    scores and inner record of ``fit`` on the whole grid (same backbone, same seed), for every readout."""
    from mstgat_core.training.finetune import FineTuneConfig
    from mstgat_core.training.pipeline import fit, pretrain_backbone

    grid = small_scenario.grid
    cells = deposit_cells(grid, small_scenario.deposits)
    backbone = pretrain_backbone(grid, SMALL_MODEL, QUICK_PRETRAIN)
    config = FineTuneConfig(seed=1, readout=readout)
    fitted = fit(grid, cells, backbone=backbone, members=5, finetune_config=config)
    mask = valid_mask(grid, backbone.elements)
    X = backbone.normaliser.transform(grid, mask)
    rows, cols = np.nonzero(mask)
    pos = np.flatnonzero(cells.values[mask])
    fold = spatial_folds(rows, cols, pos, FoldSettings.for_config(fitted.config, n_folds=3), seed=1)[0]
    everything = dataclasses.replace(fold, train_pos=pos, train_neg_pool=np.arange(len(rows)))
    method = "mstgat" if readout == "embedding" else "mstgat_residual"
    scores = method_runners([method], mask, X, backbone=backbone)[method](X, everything, 1)
    np.testing.assert_array_equal(np.asarray(scores), fitted.predict(grid).values[mask])
    inner = {k: v for k, v in scores.extras["inner"].items() if k != "seconds"}
    assert inner == {k: v for k, v in fitted.train_result.to_dict().items() if k != "seconds"}
    assert inner["inner_settings"] == FoldSettings.for_config(fitted.config).inner()  # the model's defaults


@pytest.fixture
def inner_fold_settings(monkeypatch):
    """Every FoldSettings fine-tuning's inner cross-validation draws its folds with."""
    from mstgat_core.training import finetune

    seen = []
    original = finetune.spatial_folds

    def spy(rows, cols, positives, settings, seed=0):
        seen.append(settings)
        return original(rows, cols, positives, settings, seed=seed)

    monkeypatch.setattr(finetune, "spatial_folds", spy)
    return seen


def test_the_outer_fold_settings_reach_the_inner_cv(small_scenario, inner_fold_settings):
    """``buffer=8`` and a non-default link distance and negative distance change the outer folds and the
    inner cross-validation of every fold's fine-tuning (recorded in the fold row as ``inner_settings``)."""
    from mstgat_core.evaluation.crossval import cross_validate_grid

    cells = deposit_cells(small_scenario.grid, small_scenario.deposits)
    report = cross_validate_grid(
        small_scenario.grid,
        cells,
        ["mstgat"],
        folds=3,
        seeds=(2,),
        model_config={"scales": (1,), "d_model": 16, "gat_hidden": 16},
        pretrain_config=PretrainConfig(epochs=1, steps_per_epoch=1),
        train_config=TrainConfig(min_negative_distance=4.0),
        buffer=8,
        link_distance=5,
    )
    outer = {"link_distance": 5.0, "buffer": 8.0, "min_neg_distance": 4.0}
    assert {k: report["protocol"][k] for k in outer} == outer
    default = FoldSettings.for_model((1,)).inner()
    assert default["buffer"] != 8.0 and default["link_distance"] != 5.0  # not what the inner CV would pick itself
    rows = report["results"]["mstgat"]["folds"]
    assert len(rows) == 3 and all(row["inner"]["inner_settings"] == outer for row in rows)
    assert inner_fold_settings and all(s.inner() == outer for s in inner_fold_settings)  # the folds drawn, too


def _write_survey(scenario, folder):
    from mstgat_core.data.io import save_grid

    save_grid(scenario.grid, folder / "grid.nc")
    table = scenario.deposits.drop(columns="geometry")
    table["crs"] = scenario.grid.rio.crs.to_string()
    table.to_csv(folder / "deposits.csv", index=False)
    return ["evaluate", str(folder / "grid.nc"), "--deposits", str(folder / "deposits.csv")]


def test_cli_evaluate_buffer_reaches_the_inner_cv(small_scenario, tmp_path, inner_fold_settings):
    """``mstgat evaluate --buffer 8 --link-distance 5`` (a fixed backbone, so nothing is pretrained per seed)."""
    import json

    from mstgat_core import cli
    from mstgat_core.training.checkpoint import save_checkpoint
    from mstgat_core.training.pipeline import pretrain_backbone

    model = {"scales": (1,), "d_model": 16, "gat_hidden": 16}
    backbone = pretrain_backbone(small_scenario.grid, model, PretrainConfig(epochs=1, steps_per_epoch=1))
    save_checkpoint(backbone, tmp_path / "backbone.safetensors")
    args = _write_survey(small_scenario, tmp_path)
    options = ["--methods", "mstgat", "--folds", "3", "--seeds", "2", "--buffer", "8", "--link-distance", "5"]
    out = tmp_path / "report.json"
    assert cli.main([*args, *options, "--pretrained", str(tmp_path / "backbone.safetensors"), "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]["mstgat"]["folds"]
    outer = {"link_distance": 5.0, "buffer": 8.0, "min_neg_distance": 3.0}
    assert rows and all(row["inner"]["inner_settings"] == outer for row in rows)
    assert inner_fold_settings and all(s.inner() == outer for s in inner_fold_settings)


def test_fold_errors_name_the_setting_and_the_cli_names_its_flag(small_scenario, tmp_path, capsys):
    """The library says "use a smaller buffer" (no flag) and names the setting; ``mstgat`` prints the flag."""
    from mstgat_core import cli
    from mstgat_core.evaluation.crossval import cross_validate_grid

    cells = deposit_cells(small_scenario.grid, small_scenario.deposits)
    with pytest.raises(DataError, match="use a smaller buffer") as err:
        cross_validate_grid(small_scenario.grid, cells, ["best_single_element"], folds=3, seeds=(1,), buffer=60)
    assert "--" not in str(err.value) and err.value.setting == "buffer"
    args = _write_survey(small_scenario, tmp_path)
    options = ["--methods", "best_single_element", "--folds", "3", "--seeds", "1", "--buffer", "60"]
    assert cli.main([*args, *options, "--out", str(tmp_path / "report.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "use a smaller buffer" in err and "(--buffer; --folds)" in err
    assert not (tmp_path / "report.json").exists()
