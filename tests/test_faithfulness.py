"""Deletion and insertion curves: their ends against direct forward passes, occlusion by brute force,
the random reference, a planted one-element model, and the Learn tab's sentence from the JSON."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mstgat_core.data import io
from mstgat_core.data.preprocess import Normaliser
from mstgat_core.errors import DataError
from mstgat_core.experiments import faithfulness as fa
from mstgat_core.model import MSTGAT, ModelConfig
from mstgat_core.training.pipeline import FittedModel, fit
from mstgat_core.training.pretrain import PretrainConfig

torch.set_num_threads(1)
TINY = {"d_model": 8, "heads": 2, "layers": 1, "gat_hidden": 8}


@pytest.fixture(scope="module")
def scenario():
    from mstgat_core.data.synthetic import make_scenario

    return make_scenario(shape=(48, 48), seed=1)


@pytest.fixture(scope="module")
def fused(scenario):
    """The default pipeline (pretrained backbone, 5 fused heads) at tiny widths: one pretraining step."""
    deposits = io.deposit_cells(scenario.grid, scenario.deposits)
    fitted = fit(scenario.grid, deposits, TINY, pretrain_config=PretrainConfig(epochs=1, steps_per_epoch=1))
    return fitted, fitted.prepare(scenario.grid), deposits, scenario.grid


def untrained(scenario, **config):
    torch.manual_seed(0)
    normaliser = Normaliser().fit(scenario.grid)
    model = MSTGAT(ModelConfig(n_elements=len(normaliser.elements), **TINY, **config))
    model.eval()
    fitted = FittedModel(model, normaliser)
    return fitted, fitted.prepare(scenario.grid)


def full_logits(fitted, prepared, x):
    with torch.no_grad():
        return fitted.model(x, prepared.graph.edge_index)


def all_orders(fitted, prepared, cells):
    scores = fa.element_scores(fitted, prepared, cells, ig_steps=8)
    n_el = prepared.x.shape[1]
    return np.stack([fa.orders_of(v) for v in scores.values()] + list(fa.random_orders(len(cells), n_el, 2, 0)))


@pytest.mark.parametrize("model", ["fused", "two_gat_layers"])
def test_curve_ends_are_direct_forward_passes(model, fused, scenario):
    # k = 0: the unperturbed logit; k = E: every element of the cell at the baseline, whatever the order.
    # Both checked against a full-graph pass (one cell zeroed at a time, neighbours untouched);
    # two GAT layers go through the private receptive subgraphs, one through the one-hop batch.
    fitted, prepared = fused[:2] if model == "fused" else untrained(scenario, gat_layers=2)
    cells = np.array([0, 17, 400, 1500])
    n_el = prepared.x.shape[1]
    deletion, insertion = fa.perturbation_curves(fitted, prepared, cells, all_orders(fitted, prepared, cells))
    full = full_logits(fitted, prepared, prepared.x)[torch.from_numpy(cells)].numpy()
    np.testing.assert_allclose(deletion[:, :, 0], np.broadcast_to(full, deletion[:, :, 0].shape), atol=1e-5)
    for i, cell in enumerate(cells):
        x = prepared.x.clone()
        x[cell] = 0.0
        at_baseline = float(full_logits(fitted, prepared, x)[cell])
        np.testing.assert_allclose(deletion[:, i, n_el], at_baseline, atol=1e-5)
    np.testing.assert_allclose(insertion[..., 0], deletion[..., n_el], atol=1e-5)
    np.testing.assert_allclose(insertion[..., n_el], deletion[..., 0], atol=1e-5)


def test_occlusion_first_deletion_is_the_largest_single_drop(fused):
    # occlusion ranks by exactly the drop of deleting one element, so its k = 1 point is the brute-force
    # maximum over single deletions, and no other ranking drops further at k = 1
    fitted, prepared = fused[:2]
    cells = np.array([3, 250, 900])
    n_el = prepared.x.shape[1]
    scores = fa.element_scores(fitted, prepared, cells, ig_steps=8)
    methods = list(scores)
    orders = np.stack([fa.orders_of(scores[k]) for k in methods])
    deletion, _ = fa.perturbation_curves(fitted, prepared, cells, orders)
    full = full_logits(fitted, prepared, prepared.x)
    for i, cell in enumerate(cells):
        drops = []
        for j in range(n_el):
            x = prepared.x.clone()
            x[cell, j] = 0.0
            drops.append(float(full[cell] - full_logits(fitted, prepared, x)[cell]))
        occ = methods.index("occlusion")
        assert deletion[occ, i, 0] - deletion[occ, i, 1] == pytest.approx(max(drops), abs=1e-5)
        assert (deletion[:, i, 0] - deletion[:, i, 1]).max() == pytest.approx(max(drops), abs=1e-5)


class OneElement(torch.nn.Module):
    """A planted model whose logit is ``weight x`` element ``j`` of the cell: no neighbours, no attention."""

    config = SimpleNamespace(uses_spectral=False, uses_spatial=False)
    hops = 0

    def __init__(self, j: int, weights):
        super().__init__()
        self.j = j
        self.weights = torch.as_tensor(weights, dtype=torch.float32)

    def forward(self, x, edge_indices=None, nodes=None):
        return (x * self.weights).sum(dim=1)[nodes] if self.j < 0 else x[nodes, self.j] * 2.0


def planted(prepared, j: int, weights=None):
    model = OneElement(j, weights if weights is not None else np.zeros(prepared.x.shape[1]))
    return SimpleNamespace(model=model, config=model.config)


def test_planted_single_element_drops_fully_at_the_first_deletion(scenario):
    _, prepared = untrained(scenario)
    j = 4
    cells = np.nonzero(prepared.x[:, j].numpy() > 0.5)[0][:30]  # the planted element above the baseline
    assert len(cells) == 30
    fitted = planted(prepared, j)
    result = fa.faithfulness(fitted, prepared, cells, ig_steps=8, draws=4)
    assert set(result["methods"]) == {"integrated_gradients", "occlusion", "random"}  # no attention to read
    full_drop = 2.0 * prepared.x[torch.from_numpy(cells), j].mean().item()
    for method in ("integrated_gradients", "occlusion"):
        entry = result["methods"][method]
        assert entry["deletion_drop"][1] == pytest.approx(full_drop, rel=1e-5)
        assert entry["deletion_drop"][-1] == pytest.approx(full_drop, rel=1e-5)
        assert entry["insertion"][1] == pytest.approx(result["unperturbed_logit"], rel=1e-5)
        assert entry["deletion_aopc"] == pytest.approx(full_drop, rel=1e-5)
        assert entry["faithful"] and entry["p_vs_random"] < 1e-6 and entry["share_beating_random"] == 1.0
    # random finds element j at a uniform position: expected AOPC = full drop x (E + 1) / (2 E), up to the draws
    rand = result["methods"]["random"]["deletion_aopc"]
    assert rand < 0.9 * full_drop


def test_random_reference_is_seeded_and_linear_in_expectation_for_an_additive_model(scenario):
    _, prepared = untrained(scenario)
    n_el = prepared.x.shape[1]
    weights = np.linspace(-1, 2, n_el)
    fitted = planted(prepared, -1, weights)
    cells = np.arange(0, 1800, 90)
    orders = fa.random_orders(len(cells), n_el, 400, seed=3)
    assert (np.sort(orders, axis=2) == np.arange(n_el)).all()  # permutations
    np.testing.assert_array_equal(orders, fa.random_orders(len(cells), n_el, 400, seed=3))
    assert not np.array_equal(orders, fa.random_orders(len(cells), n_el, 400, seed=4))
    deletion, _ = fa.perturbation_curves(fitted, prepared, cells, orders)
    # an additive logit loses each element's term with probability k / E after k random deletions
    expected_drop = np.arange(n_el + 1) / n_el * (prepared.x[torch.from_numpy(cells)].numpy() @ weights).mean()
    drop = (deletion[:, :, :1] - deletion).mean(axis=(0, 1))
    total = np.abs(prepared.x[torch.from_numpy(cells)].numpy() * weights).sum(axis=1).mean()
    np.testing.assert_allclose(drop, expected_drop, atol=0.05 * total)
    a = fa.faithfulness(fitted, prepared, cells[:5], ig_steps=4, draws=3, seed=1)
    b = fa.faithfulness(fitted, prepared, cells[:5], ig_steps=4, draws=3, seed=1)
    assert a["methods"]["random"] == b["methods"]["random"]


def test_dataset_run_on_the_fitted_pipeline(fused):
    fitted, prepared, deposits, grid = fused
    result = fa.run_dataset(fitted, grid, deposits, ig_steps=8, log=lambda _: None)
    assert result["n_deposit_cells"] == int(deposits.values.sum())
    assert result["n_cells"] >= max(result["n_deposit_cells"], result["n_top_cells"])
    assert set(result["methods"]) == set(fa.METHODS)
    for entry in result["methods"].values():
        assert len(entry["deletion"]) == len(entry["insertion"]) == prepared.x.shape[1] + 1
        assert entry["deletion_drop"][0] == 0.0
    # the deletion end (all at baseline) is the insertion start for every method
    for entry in result["methods"].values():
        assert entry["deletion"][-1] == pytest.approx(result["baseline_logit"], abs=1e-5)
        assert entry["insertion"][0] == pytest.approx(result["baseline_logit"], abs=1e-5)
    pooled = fa.pool([result, result])
    for method, entry in pooled["methods"].items():
        assert entry["deletion_aopc"] == pytest.approx(result["methods"][method]["deletion_aopc"], rel=1e-6)
    assert pooled["n_cells"] == 2 * result["n_cells"]


def test_bad_cells_raise_one_line_data_errors(fused):
    fitted, prepared = fused[:2]
    n = prepared.graph.num_nodes
    with pytest.raises(DataError, match=f"cell {n} is outside the grid's {n} cells"):
        fa.faithfulness(fitted, prepared, [0, n])
    with pytest.raises(DataError, match="outside"):
        fa.perturbation_curves(fitted, prepared, [-1], np.arange(prepared.x.shape[1])[None])
    with pytest.raises(DataError, match="no cells"):
        fa.faithfulness(fitted, prepared, [])
    with pytest.raises(DataError, match="do not match"):
        fa.perturbation_curves(fitted, prepared, [0, 1], np.arange(prepared.x.shape[1])[None])


def _report(attention_aopc, p, faithful):
    def entry(drop3, aopc_value, p_value=None, is_faithful=None):
        drops = [0.0, 0.1, 0.2, drop3, 0.5]
        out = {"deletion_drop": drops, "deletion": [2.0 - d for d in drops], "deletion_aopc": aopc_value}
        if p_value is not None:
            out.update(p_vs_random=p_value, faithful=is_faithful)
        return out

    methods = {
        "attention": entry(0.25, attention_aopc, p, faithful),
        "integrated_gradients": entry(1.5, 2.0, 1e-9, True),
        "occlusion": entry(1.25, 1.8, 1e-9, True),
        "random": entry(0.5, 0.75),
    }
    return {"alpha": 0.01, "deleted": 3, "datasets": {"south_china": {"n_cells": 86, "methods": methods}}}


def test_learn_tab_states_what_the_json_says(tmp_path):
    import json

    from mstgat_core.dashboard.learn import faithfulness_section

    assert "Not computed yet" in faithfulness_section(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    assert "Not computed yet" in faithfulness_section(tmp_path / "bad.json")

    path = tmp_path / "faithfulness.json"
    path.write_text(json.dumps(_report(0.5, 0.97, False)))
    text = faithfulness_section(path)
    assert (
        "deleting the 3 elements with the highest attention lowers the score by 0.25 on average, "
        "against 0.50 for 3 random elements (area over the curve 0.50 against 0.75, p = 0.97)"
    ) in text
    assert "Attention is **not faithful** here" in text and "integrated gradients 1.50" in text
    assert "it does not point at the elements the score depends on" in text  # 0.25 < 0.50 at k = 3
    assert "synthetic benchmark scenarios" not in text  # only the dataset the JSON holds

    report = _report(0.5, 0.97, False)
    report["datasets"]["south_china"]["methods"]["attention"]["deletion_drop"][3] = 0.75  # above random at k = 3
    path.write_text(json.dumps(report))
    assert "its top 3 lower the score more than random ones, but over the whole ranking" in faithfulness_section(path)

    path.write_text(json.dumps(_report(1.25, 1e-4, True)))
    text = faithfulness_section(path)
    assert "Attention is **faithful** here" in text and "not faithful" not in text


def test_learn_tab_draws_the_deletion_curves_of_the_json(tmp_path):
    import json

    import holoviews as hv

    from mstgat_core.dashboard.learn import faithfulness_report
    from mstgat_core.dashboard.plots_charts import faithfulness_curves

    hv.extension("bokeh")  # as the dashboard loads it

    assert faithfulness_report(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{")
    assert faithfulness_report(tmp_path / "bad.json") is None
    assert faithfulness_curves(None) is None and faithfulness_curves({"datasets": {}}) is None

    report = _report(0.5, 0.97, False)
    path = tmp_path / "faithfulness.json"
    path.write_text(json.dumps(report))
    layout = faithfulness_curves(faithfulness_report(path))
    (panel,) = layout  # one dataset, one panel
    methods = report["datasets"]["south_china"]["methods"]
    drawn = {curve.label: curve.dimension_values("mean logit") for curve in panel}
    assert set(drawn) == {m.replace("_", " ") for m in methods if methods[m].get("deletion")}
    for method, figures in methods.items():
        if figures.get("deletion"):
            np.testing.assert_array_equal(drawn[method.replace("_", " ")], figures["deletion"])
