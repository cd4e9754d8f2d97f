"""Masked-element pretraining: it learns, it never peeks at hidden values, it is deterministic."""

import numpy as np
import pytest
import torch

from mstgat_core.data.preprocess import Normaliser, valid_mask
from mstgat_core.data.synthetic import make_scenario
from mstgat_core.graphs.graph import build_graph
from mstgat_core.model import MSTGAT, ModelConfig
from mstgat_core.training.pretrain import PretrainConfig, hidden_mask, pretrain, reconstruct

SMALL = {"scales": (1, 2), "d_model": 16, "gat_hidden": 16, "readout": "fused"}


@pytest.fixture(scope="module")
def scenario():
    return make_scenario(shape=(56, 56), n_elements=6, seed=4)


@pytest.fixture(scope="module")
def inputs(scenario):
    grid = scenario.grid
    normaliser = Normaliser().fit(grid)
    mask = valid_mask(grid, normaliser.elements)
    return torch.from_numpy(normaliser.transform(grid, mask)), mask, normaliser.elements


@pytest.fixture(scope="module")
def pretrained(inputs):
    x, mask, _ = inputs
    torch.manual_seed(0)
    model = MSTGAT(ModelConfig(n_elements=x.shape[1], **SMALL))
    result = pretrain(model, x, mask, PretrainConfig(epochs=25, steps_per_epoch=6, window=40, seed=1))
    return model, result


def test_pretraining_learns_to_reconstruct(inputs, pretrained, scenario):
    x, mask, elements = inputs
    model, result = pretrained
    losses = [log.loss for log in result.history]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:3])
    hidden = hidden_mask(len(x), x.shape[1], 0.3, torch.Generator().manual_seed(123))
    error = (reconstruct(model, x, mask, hidden) - x).square()
    median_error = x.square()  # the column median is 0 after robust scaling
    assert error[hidden].mean() < 0.7 * median_error[hidden].mean()
    # a planted ore element, on the cells of its anomalies, is reconstructed better than by its median
    ore = next(a for a in scenario.truth["anomalies"] if a["hosts_deposits"])["elements"][0]
    e = elements.index(ore)
    inside = torch.from_numpy(scenario.anomaly_mask[mask]) & hidden[:, e]
    assert inside.sum() > 5
    assert error[inside, e].mean() < median_error[inside, e].mean()


def test_hidden_values_never_reach_the_output(inputs):
    x, mask, _ = inputs
    torch.manual_seed(0)
    task = MSTGAT(ModelConfig(n_elements=x.shape[1], **SMALL))
    hidden = hidden_mask(len(x), x.shape[1], 0.3, torch.Generator().manual_seed(7))
    changed = x.clone()
    changed[hidden] += 100.0
    np.testing.assert_array_equal(reconstruct(task, x, mask, hidden), reconstruct(task, changed, mask, hidden))
    visible = ~hidden
    changed = x.clone()
    changed[visible] += 1.0
    assert not torch.equal(reconstruct(task, x, mask, hidden), reconstruct(task, changed, mask, hidden))


def test_hidden_mask_hides_a_share_of_every_cell():
    hidden = hidden_mask(500, 10, 0.3, torch.Generator().manual_seed(0))
    assert (hidden.sum(dim=1) >= 1).all() and (hidden.sum(dim=1) < 10).all()
    assert abs(hidden.float().mean().item() - 0.3) < 0.02


def test_pretraining_is_deterministic_and_keeps_the_grid_path_exact(inputs, pretrained):
    x, mask, _ = inputs
    model, _ = pretrained
    short = PretrainConfig(epochs=3, steps_per_epoch=3, window=40, seed=1)  # determinism needs no long run
    twins = []
    for _ in range(2):
        torch.manual_seed(0)
        twins.append(MSTGAT(ModelConfig(n_elements=x.shape[1], **SMALL)))
        pretrain(twins[-1], x, mask, short)
    for (name, a), b in zip(twins[0].state_dict().items(), twins[1].state_dict().values()):
        assert torch.equal(a, b) or (a.isnan().all() and b.isnan().all()), name
    graph = build_graph(mask, model.config.scales)
    with torch.no_grad():
        expected = torch.sigmoid(model.eval()(x, graph.edge_index))
    got = model.predict_grid(x, graph.stencil).probability
    assert torch.allclose(got, expected, atol=1e-5)


def test_label_free_score_flags_planted_outliers(inputs, pretrained):
    """The label-free score: cells given a composition their elements and neighbours cannot explain score top."""
    from sklearn.metrics import roc_auc_score

    x, mask, _ = inputs
    model, _ = pretrained
    stencil = build_graph(mask, model.config.scales).stencil
    _, score = model.grid_features(x, stencil)
    assert score.shape == (len(x),) and torch.isfinite(score).all()
    planted = np.random.default_rng(0).choice(len(x), 20, replace=False)
    odd = x.clone()
    odd[planted, :2] += 4.0  # two elements far out of line with the cell's others and its neighbours
    odd[planted, 2:4] -= 4.0
    is_planted = np.isin(np.arange(len(x)), planted)
    assert roc_auc_score(is_planted, model.grid_features(odd, stencil)[1].numpy()) > 0.9


def test_a_pretrained_model_maps_its_label_free_score(inputs, pretrained):
    """Before fine-tuning the fused head reads the standardised label-free score alone, on both paths."""
    x, mask, _ = inputs
    model, _ = pretrained
    graph = build_graph(mask, model.config.scales)
    prediction = model.predict_grid(x, graph.stencil)
    standard = (prediction.label_free - prediction.label_free.mean()) / prediction.label_free.std()
    torch.testing.assert_close(torch.logit(prediction.probability.double()), standard.double(), atol=1e-4, rtol=1e-4)
    assert prediction.calibrated is None  # calibration comes with fine-tuning
    # novelty: 1 is the 99.5th percentile of each of its two parts on the training grid
    assert 0.004 <= float((prediction.novelty > 1).float().mean()) <= 0.011
    with torch.no_grad():
        logits = model(x, graph.edge_index)
    torch.testing.assert_close(torch.sigmoid(logits), prediction.probability, atol=1e-5, rtol=0)


def test_pretraining_needs_the_fused_readout(inputs):
    from mstgat_core.errors import DataError

    x, mask, _ = inputs
    with pytest.raises(DataError, match="fused readout"):
        pretrain(MSTGAT(ModelConfig(n_elements=x.shape[1], scales=(1,))), x, mask, PretrainConfig(epochs=1))
