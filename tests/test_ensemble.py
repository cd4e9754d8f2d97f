"""Pretrained MSTGAT with an ensemble of heads: the map, its spread, checkpoints, fine-tuning, the CLI."""

import json

import numpy as np
import pytest
import torch
import xarray as xr

from mstgat_core.data.io import deposit_cells
from mstgat_core.data.preprocess import Normaliser
from mstgat_core.errors import DataError
from mstgat_core.graphs.graph import receptive_subgraph
from mstgat_core.model import MSTGAT, FusedHead, ModelConfig
from mstgat_core.training.checkpoint import load_checkpoint, save_checkpoint
from mstgat_core.training.finetune import FineTuneConfig
from mstgat_core.training.pipeline import FittedModel, fit, pretrain_backbone
from mstgat_core.training.pretrain import PretrainConfig, fit_statistics

SMALL = {"scales": (1, 2), "d_model": 16, "gat_hidden": 16}
QUICK = PretrainConfig(epochs=4, steps_per_epoch=3, window=24, seed=0)


def ensemble(grid, k=3, identical=False):
    """A fused model with random weights, its statistics fitted on ``grid``, and ``k`` random heads."""
    normaliser = Normaliser().fit(grid)
    torch.manual_seed(0)
    model = MSTGAT(ModelConfig(n_elements=len(normaliser.elements), readout="fused", members=k, **SMALL)).eval()
    fitted = FittedModel(model, normaliser)
    prepared = fitted.prepare(grid)
    fit_statistics(model, prepared.x, prepared.graph.mask)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        weight = torch.randn(1 if identical else k, model.head.weight.shape[1], generator=generator)
        model.head.weight.copy_(weight.expand(k, -1))
        model.head.share.fill_(0.5)
    return fitted


def test_identical_members_have_no_uncertainty(small_scenario):
    grid = small_scenario.grid
    fitted = ensemble(grid, identical=True)
    layers = fitted.predict_layers(grid)
    valid = np.isfinite(layers["probability"].values)
    assert np.nanmax(layers["uncertainty"].values) == 0.0
    assert set(np.unique(layers["top_agreement"].values[valid])) <= {0.0, 1.0}


def test_percentile_ranks_the_map(small_scenario):
    layers = ensemble(small_scenario.grid, k=1).predict_layers(small_scenario.grid)
    assert "uncertainty" not in layers  # no spread for a single member
    p, q = layers["probability"].values, layers["percentile"].values
    valid = np.isfinite(p)
    assert np.array_equal(valid, np.isfinite(q)) and q[valid].max() == 100.0
    order = np.argsort(p[valid])
    assert (np.diff(q[valid][order]) >= 0).all()  # monotone in the score
    assert abs((q[valid] > 95).mean() - 0.05) < 0.01  # the top 5 % of the area


def test_ensemble_map_is_the_members_mean_logit_and_their_spread(small_scenario):
    grid = small_scenario.grid
    fitted = ensemble(grid)
    prepared = fitted.prepare(grid)
    prediction = fitted.predict_prepared(prepared)
    members = prediction.members.double()
    assert members.shape == (len(prepared.x), 3)
    expected = torch.sigmoid(torch.logit(members).mean(dim=1))
    torch.testing.assert_close(prediction.probability.double(), expected, atol=1e-5, rtol=0)
    layers = fitted.predict_layers(grid)
    np.testing.assert_allclose(
        layers["uncertainty"].values[prepared.graph.mask], members.std(dim=1, unbiased=False).numpy(), atol=1e-6
    )
    assert np.nanmax(layers["uncertainty"].values) > 0
    tiled = fitted.predict_layers(grid, tile=17)
    for name in ("probability", "uncertainty", "label_free", "novelty"):
        np.testing.assert_allclose(tiled[name].values, layers[name].values, atol=1e-5)


def test_ensemble_checkpoint_round_trips_to_identical_maps(small_scenario, tmp_path):
    grid = small_scenario.grid
    fitted = ensemble(grid, k=3)
    loaded = load_checkpoint(save_checkpoint(fitted, tmp_path / "ensemble.safetensors", data=grid))
    assert loaded.n_members == 3
    a, b = fitted.predict_layers(grid), loaded.predict_layers(grid)
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values)


@pytest.mark.parametrize("count", [0, 65, "2", 2])
def test_a_checkpoint_with_a_wrong_member_count_is_refused(small_scenario, tmp_path, count):
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = save_checkpoint(ensemble(small_scenario.grid, k=3), tmp_path / "e.safetensors")
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(f.metadata()["mstgat"])
    meta["model_config"]["members"] = count
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"mstgat": json.dumps(meta)})
    with pytest.raises(DataError):
        load_checkpoint(tmp_path / "bad.safetensors")


def test_fused_logits_on_the_grid_path_equal_the_subgraph_path(small_scenario):
    """predict_grid (shifted views) and forward on each cell's receptive subgraph give the same logits."""
    grid = small_scenario.grid
    fitted = ensemble(grid)
    prepared = fitted.prepare(grid)
    graph = prepared.graph
    grid_logits = torch.logit(fitted.predict_prepared(prepared).probability.double())
    nodes = np.random.default_rng(0).choice(graph.num_nodes, 25, replace=False)
    with torch.no_grad():
        for node in nodes:
            subset, edges, position = receptive_subgraph(graph, [int(node)], fitted.model.hops)
            logit = fitted.model(prepared.x[subset], edges, position)
            assert abs(float(logit[0]) - float(grid_logits[node])) < 1e-4  # float32 logit of a float32 sigmoid
        whole = fitted.model(prepared.x, graph.edge_index)
    torch.testing.assert_close(torch.sigmoid(whole), fitted.predict_prepared(prepared).probability, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def trained(small_scenario):
    grid = small_scenario.grid
    cells = deposit_cells(grid, small_scenario.deposits)
    return grid, cells, fit(grid, cells, SMALL, members=3, pretrain_config=QUICK)


def test_fit_pretrains_and_fine_tunes_distinct_members(trained):
    grid, cells, fitted = trained
    head = fitted.model.head
    assert fitted.n_members == 3 and fitted.model.fused
    assert not torch.equal(head.weight[0], head.weight[1])  # each member: its own bootstrap of deposits
    result = fitted.train_result
    assert result.chosen_by == "inner-cv" and result.inner_folds >= 2
    assert result.share in FineTuneConfig().shares and result.C in FineTuneConfig().strengths
    assert fitted.metadata["pretrain"]["result"]["epochs_run"] == QUICK.epochs
    layers = fitted.predict_layers(grid)
    assert {"calibrated", "uncertainty", "label_free", "novelty"} <= set(layers.data_vars)
    calibrated = layers["calibrated"].values[np.isfinite(layers["calibrated"].values)]
    assert ((calibrated >= 0) & (calibrated <= 1)).all()
    # Platt scaling on the real share of deposit cells: the mean is of the order of that share, not 0.5
    share = float(cells.values.sum()) / calibrated.size
    assert calibrated.mean() < 10 * share + 0.02
    positives = cells.values & np.isfinite(layers["probability"].values)
    assert layers["percentile"].values[positives].mean() > 80  # the deposits it was fitted on rank high


def test_fit_refuses_bad_ensembles(trained):
    grid, cells, _ = trained
    with pytest.raises(DataError, match="at least one member"):
        fit(grid, cells, SMALL, members=0, pretrain_config=QUICK)
    with pytest.raises(DataError, match="pretraining"):
        fit(grid, cells, SMALL, members=3, pretrained=False)


def test_fine_tuning_a_saved_backbone_keeps_its_weights(trained, tmp_path):
    grid, cells, _ = trained
    backbone = pretrain_backbone(grid, SMALL, QUICK)
    path = save_checkpoint(backbone, tmp_path / "backbone.safetensors", data=grid)
    loaded = load_checkpoint(path)
    label_free = loaded.predict_layers(grid)
    assert "calibrated" not in label_free and "uncertainty" not in label_free
    tuned = fit(grid, cells, members=2, backbone=loaded)
    before, after = loaded.model.state_dict(), tuned.model.state_dict()
    for key in before:
        if key.startswith("head.") and key.split(".")[1] not in FusedHead.STATISTICS:
            continue
        assert torch.equal(before[key], after[key]), key  # only the heads were fitted
    np.testing.assert_allclose(tuned.predict_layers(grid)["label_free"].values, label_free["label_free"].values)


def test_the_scale_readout_is_a_head_over_the_default_backbone(trained):
    """Pretraining does not depend on ``scale_readout`` (the reconstruction reads the branch embeddings only):
    a backbone pretrained with it has the default's weights and label-free map, and fine-tuning the default's
    backbone with ``{"scale_readout": True}`` gives the model that pretraining with it from the start gives."""
    grid, cells, _ = trained
    default = pretrain_backbone(grid, SMALL, QUICK)
    wide = pretrain_backbone(grid, {**SMALL, "scale_readout": True}, QUICK)
    assert wide.model.width == default.model.width + len(SMALL["scales"]) * SMALL["gat_hidden"]
    narrow_state, wide_state = default.model.state_dict(), wide.model.state_dict()
    for key, value in narrow_state.items():
        if not key.startswith("head."):
            assert torch.equal(value, wide_state[key]), key
    np.testing.assert_array_equal(
        default.predict_layers(grid)["label_free"].values, wide.predict_layers(grid)["label_free"].values
    )
    from_default = fit(grid, cells, {"scale_readout": True}, members=2, backbone=default)
    from_start = fit(grid, cells, members=2, backbone=wide)
    assert from_default.config.scale_readout and from_default.model.width == wide.model.width
    for key, value in from_start.model.state_dict().items():
        torch.testing.assert_close(from_default.model.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
    # and back: a scale-readout backbone fine-tuned without it is the default's fit
    narrowed = fit(grid, cells, {"scale_readout": False}, members=2, backbone=wide)
    plain = fit(grid, cells, members=2, backbone=default)
    np.testing.assert_allclose(
        narrowed.predict(grid).values, plain.predict(grid).values, rtol=1e-5, atol=1e-6, equal_nan=True
    )


def test_cli_pretrains_fine_tunes_and_predicts_the_spread(small_scenario, tmp_path, capsys):
    from mstgat_core import cli
    from mstgat_core.data.io import save_grid

    grid = small_scenario.grid
    save_grid(grid, tmp_path / "grid.nc")
    table = small_scenario.deposits.drop(columns="geometry")
    table["crs"] = grid.rio.crs.to_string()
    table.to_csv(tmp_path / "deposits.csv", index=False)
    backbone, model = tmp_path / "backbone.safetensors", tmp_path / "m.safetensors"
    common = ["--scales", "1", "--epochs", "2"]
    assert cli.main(["pretrain", str(tmp_path / "grid.nc"), "--out", str(backbone), *common]) == 0
    train = ["train", str(tmp_path / "grid.nc"), "--deposits", str(tmp_path / "deposits.csv"), "--out", str(model)]
    assert cli.main([*train, "--pretrained", str(backbone), "--members", "2"]) == 0
    assert load_checkpoint(model).n_members == 2
    assert cli.main(["predict", str(model), str(tmp_path / "grid.nc"), "--out", str(tmp_path / "p.nc")]) == 0
    with xr.open_dataset(tmp_path / "p.nc") as out:
        assert set(out.data_vars) >= {"probability", "percentile", "uncertainty", "top_agreement", "novelty"}
        assert float(out["uncertainty"].max()) > 0
    report = tmp_path / "cv.json"
    evaluate = [
        "evaluate",
        str(tmp_path / "grid.nc"),
        "--deposits",
        str(tmp_path / "deposits.csv"),
        "--out",
        str(report),
    ]
    assert (
        cli.main([*evaluate, "--pretrained", str(backbone), "--methods", "mstgat,mstgat_label_free", "--seeds", "1"])
        == 0
    )
    protocol = json.loads(report.read_text())["protocol"]
    assert protocol["backbone"] == "fixed (--pretrained)" and protocol["model_config"]["scales"] == [1]
    capsys.readouterr()
    assert cli.main([*evaluate, "--pretrained", str(backbone), "--methods", "spectral"]) == 2
    assert "is a mstgat model" in capsys.readouterr().err
    assert cli.main([*train, *common, "--members", "0"]) == 2
    assert cli.main([*train, *common, "--scratch", "--members", "3"]) == 2
    assert "--scratch" in capsys.readouterr().err


def test_novelty_warns_on_a_grid_unlike_the_training_grid(trained):
    grid, _, fitted = trained
    own = fitted.predict_layers(grid)
    assert fitted.novel_share(own) < 0.02 and fitted.applicability_warning(own) is None
    names = list(grid.data_vars)
    swapped = grid.rename({names[0]: "tmp"}).rename({names[1]: names[0]}).rename({"tmp": names[1]})
    other = fitted.predict_layers(swapped[names])  # the same layers with two elements' values exchanged
    assert fitted.novel_share(other) > 0.1
    warning = fitted.applicability_warning(other)
    assert warning.startswith("warning: ") and "\n" not in warning


def test_explain_gives_every_members_attribution_and_their_spread(trained):
    from mstgat_core.interpret import explain_cell, explain_report

    grid, cells, fitted = trained
    prepared = fitted.prepare(grid)
    row, col = (int(v[0]) for v in np.nonzero(cells.values & prepared.graph.mask))
    ds = explain_cell(fitted, prepared, row=row, col=col, ig_steps=8)
    members = ds["member_attribution"].values
    assert members.shape == (3, len(fitted.elements))
    np.testing.assert_allclose(ds["attribution_spread"].values, members.std(axis=0))
    assert ds["attribution_spread"].values.max() > 0  # the heads differ
    # the mean logit is the mean of the members' logits, and IG is linear in the function
    np.testing.assert_allclose(ds["attribution"].values, members.mean(axis=0), atol=0.02)
    report, text = explain_report(fitted, grid, row=row, col=col)
    assert set(report["attribution_spread"]) == set(fitted.elements) and "± spread over 3 members" in text


def test_deposits_of_one_cluster_give_the_label_free_route(small_scenario):
    """No inner fold to judge a gain by: the default is the label-free route (share 0), recorded as such, and
    the map is the label-free score, whatever heads were fitted."""
    from mstgat_core.training.finetune import finetune

    grid = small_scenario.grid
    fitted = ensemble(grid, k=3)
    prepared = fitted.prepare(grid)
    rows, cols = prepared.graph.rows_cols
    one_cluster = np.flatnonzero((np.abs(rows - 24) <= 1) & (np.abs(cols - 24) <= 1))[:3]
    result = finetune(fitted.model, prepared.x, prepared.graph.stencil, rows, cols, one_cluster)
    assert (result.chosen_by, result.share, result.route, result.inner_folds) == ("default", 0.0, "label-free", 0)
    embedding, score = fitted.model.grid_features(prepared.x, prepared.graph.stencil)
    with torch.no_grad():
        logits = fitted.model.head(embedding, score)
    z = fitted.model.head.standardise(embedding, score)[:, -1]
    torch.testing.assert_close(logits, z.unsqueeze(1).expand_as(logits))  # every member reads the label-free score
