"""The readout seam: every registered readout fits, saves, loads and predicts alike; the residual readout's
weights are non-negative and name the element the deposits are planted in."""

import numpy as np
import pytest
import xarray as xr
from sklearn.linear_model import LogisticRegression

from mstgat_core import DataError
from mstgat_core.data.io import deposit_cells
from mstgat_core.data.synthetic import make_scenario
from mstgat_core.interpret import residual_weights
from mstgat_core.model import HEADS, ModelConfig
from mstgat_core.training.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from mstgat_core.training.finetune import FineTuneConfig
from mstgat_core.training.pipeline import fit, pretrain_backbone
from mstgat_core.training.pretrain import PretrainConfig
from mstgat_core.training.readouts import READOUTS, NonNegativeLogistic

TINY_MODEL = {"scales": (1,), "d_model": 16, "gat_hidden": 16}
TINY_PRETRAIN = PretrainConfig(epochs=2, steps_per_epoch=2)


@pytest.fixture(scope="module")
def backbone_and_grid(small_scenario):
    grid = small_scenario.grid
    return pretrain_backbone(grid, TINY_MODEL, TINY_PRETRAIN), grid, deposit_cells(grid, small_scenario.deposits)


def test_every_head_is_a_registered_readout():
    assert set(READOUTS) == set(HEADS) and all(READOUTS[name].head is HEADS[name] for name in READOUTS)


@pytest.mark.parametrize("readout", sorted(READOUTS))
def test_every_readout_fits_saves_loads_and_predicts_the_same(backbone_and_grid, readout, tmp_path):
    backbone, grid, cells = backbone_and_grid
    # share 1: the supervised head alone, so the prediction reads the readout's weights
    config = FineTuneConfig(readout=readout, shares=(1.0,), strengths=(0.1,))
    fitted = fit(grid, cells, backbone=backbone, members=2, finetune_config=config)
    assert fitted.config.head == readout and fitted.train_result.readout == readout
    assert float(fitted.model.head.share) == 1.0 and fitted.model.head.weight.abs().sum() > 0
    path = save_checkpoint(fitted, tmp_path / f"{readout}.safetensors", data=grid)
    assert read_metadata(path)["model_config"]["head"] == readout
    assert read_metadata(path)["finetune"]["config"]["readout"] == readout
    loaded = load_checkpoint(path)
    assert loaded.config == fitted.config and type(loaded.model.head) is HEADS[readout]
    xr.testing.assert_identical(fitted.predict_layers(grid), loaded.predict_layers(grid))


def test_a_checkpoint_without_a_head_setting_loads_as_the_embedding_readout():
    from mstgat_core.paths import DEMO_CHECKPOINT

    assert "head" not in read_metadata(DEMO_CHECKPOINT)["model_config"]  # written before readouts had names
    assert load_checkpoint(DEMO_CHECKPOINT).config.head == "embedding"


def test_the_residual_readout_weighs_the_planted_element_most():
    """Deposits in anomalies of Nb alone (3.7x at the centre), decoys of W alone: the largest residual weight
    is Nb's, and no weight is negative."""
    scenario = make_scenario(
        shape=(56, 56),
        n_elements=6,
        seed=0,
        anomalies=[
            {"name": "ore", "elements": ["Nb"], "scale": 1.5, "n": 6},
            {"name": "decoy", "elements": ["W"], "scale": 1.5, "n": 4, "hosts_deposits": False},
        ],
    )
    config = FineTuneConfig(readout="residual", shares=(0.0, 1.0), strengths=(0.1,))
    fitted = fit(
        scenario.grid,
        deposit_cells(scenario.grid, scenario.deposits),
        TINY_MODEL,
        members=2,
        pretrain_config=TINY_PRETRAIN,
        finetune_config=config,
    )
    weights = residual_weights(fitted)
    elements = {name: w for name, w in weights.items() if name in fitted.elements}
    assert max(elements, key=elements.get) == "Nb"
    assert min(weights.values()) >= 0 and (fitted.model.head.weight >= 0).all()


def test_non_negative_logistic_is_scikit_learns_objective_under_bounds():
    """Where the unconstrained optimum has positive weights the bounds are idle: the same fit as scikit-learn's
    balanced L2 logistic regression (so C means the same); a column that hurts gets weight 0."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X @ [1.5, 0.5, 0.0] + rng.normal(size=400) > 1.5).astype(float)
    ours = NonNegativeLogistic(C=0.5).fit(X[:, :2], y)
    theirs = LogisticRegression(C=0.5, class_weight="balanced", tol=1e-10, max_iter=10_000).fit(X[:, :2], y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-4)
    np.testing.assert_allclose(ours.decision_function(X[:, :2]), theirs.decision_function(X[:, :2]), atol=1e-3)
    hurting = NonNegativeLogistic(C=0.5).fit(np.c_[X[:, :2], -X[:, 0]], y)
    assert hurting.coef_[0, 2] == 0.0 and hurting.coef_[0, 0] > 0


def test_readout_settings_are_checked_in_one_line():
    with pytest.raises(DataError, match="unknown readout 'ridge'"):
        FineTuneConfig(readout="ridge")
    with pytest.raises(DataError, match="unknown head 'ridge'"):
        ModelConfig(n_elements=4, readout="fused", head="ridge")
    with pytest.raises(DataError, match="needs the pretrained"):
        ModelConfig(n_elements=4, readout="supervised", head="residual")


def test_fine_tuning_refuses_a_model_whose_head_is_another_readout(backbone_and_grid):
    from mstgat_core.model import MSTGAT
    from mstgat_core.training.finetune import finetune

    backbone, grid, cells = backbone_and_grid
    prepared = backbone.prepare(grid)
    model = MSTGAT(ModelConfig.from_dict(backbone.config.to_dict(), head="residual"))
    rows, cols = prepared.graph.rows_cols
    positives = np.flatnonzero(cells.values[prepared.graph.mask])
    with pytest.raises(DataError, match="fine-tuning was set for the 'embedding' readout"):
        finetune(model, prepared.x, prepared.graph.stencil, rows, cols, positives, config=FineTuneConfig())


def test_cli_fit_takes_the_readout_and_prints_the_weights(small_scenario, tmp_path, capsys):
    from mstgat_core import cli
    from mstgat_core.data.io import save_grid

    save_grid(small_scenario.grid, tmp_path / "grid.nc")
    table = small_scenario.deposits.drop(columns="geometry")
    table["crs"] = small_scenario.grid.rio.crs.to_string()
    table.to_csv(tmp_path / "deposits.csv", index=False)
    args = ["train", str(tmp_path / "grid.nc"), "--deposits", str(tmp_path / "deposits.csv")]
    out = tmp_path / "model.safetensors"
    assert cli.main([*args, "--out", str(out), "--scales", "1", "--epochs", "1", "--readout", "residual"]) == 0
    assert read_metadata(out)["model_config"]["head"] == "residual"
    printed = capsys.readouterr()
    assert "largest residual weights" in printed.out or "label-free" in printed.err
    assert cli.main([*args, "--out", str(out), "--scratch", "--members", "1", "--readout", "residual"]) == 2
    assert "--readout" in capsys.readouterr().err
