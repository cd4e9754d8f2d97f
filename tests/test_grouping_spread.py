"""The label-free route's members: the score under other element groupings, so its spread measures something
while the map stays the fixed grouping's score (mstgat_core.model.grouping)."""

import numpy as np
import pytest
import torch

from mstgat_core.evaluation.uncertainty import SPREAD_ZERO
from mstgat_core.model import MSTGAT, ModelConfig
from mstgat_core.model.grouping import element_groups
from mstgat_core.training.pipeline import FittedModel, pretrain_backbone
from mstgat_core.training.pretrain import PretrainConfig
from mstgat_core.training.procedure import Backbone

SMALL = {"scales": (1, 2), "d_model": 16, "gat_hidden": 16}
TINY = PretrainConfig(epochs=2, steps_per_epoch=2, window=24, seed=0)


@pytest.fixture(scope="module")
def label_free(small_scenario):
    """A pretrained backbone under 5 fine-tuned-looking heads with no share: the label-free route."""
    backbone = pretrain_backbone(small_scenario.grid, SMALL, TINY)
    model = MSTGAT(ModelConfig.from_dict(backbone.config.to_dict(), members=5))
    model.load_backbone(backbone.model.state_dict())
    with torch.no_grad():
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=torch.Generator().manual_seed(1)))
    return FittedModel(model.eval(), backbone.normaliser)


def test_groupings_keep_the_fixed_one_first_and_draw_other_partitions():
    assert element_groups(6, 3, 0).tolist() == [0, 1, 2, 0, 1, 2]
    for draw in range(1, 6):
        group = element_groups(6, 3, draw)
        assert np.bincount(group).tolist() == [2, 2, 2]  # the same group sizes
        pairs = {frozenset(np.flatnonzero(group == g).tolist()) for g in range(3)}
        assert pairs != {frozenset({0, 3}), frozenset({1, 4}), frozenset({2, 5})}  # not the fixed partition
        assert np.array_equal(group, element_groups(6, 3, draw))  # seeded
    assert element_groups(3, 5, 2).tolist() == [0, 1, 2]  # every element alone: the only partition


def test_a_label_free_model_spreads_where_the_map_is_unchanged(label_free, small_scenario, monkeypatch):
    grid = small_scenario.grid
    layers = label_free.predict_layers(grid)
    valid = np.isfinite(layers["probability"].values)
    spread = layers["uncertainty"].values[valid]
    assert np.mean(spread > SPREAD_ZERO) >= 0.95
    again = label_free.predict_layers(grid)
    np.testing.assert_array_equal(again["uncertainty"].values, layers["uncertainty"].values)  # seeded draws
    # the cross-validation's spread (from the frozen backbone) is the layer's
    prepared = label_free.prepare(grid)
    backbone = Backbone.of(label_free.model, prepared.x, prepared.graph.mask)
    np.testing.assert_allclose(
        backbone.grouping_spread(5), layers["uncertainty"].values[prepared.graph.mask], atol=1e-6
    )
    # before the groupings: the same model whose members all read the fixed grouping
    monkeypatch.setattr(MSTGAT, "grouping_draws", lambda self: 1)
    before = label_free.predict_layers(grid)
    assert float(np.nanmax(before["uncertainty"].values)) == 0.0
    for name in ("probability", "percentile", "label_free", "novelty"):
        np.testing.assert_array_equal(layers[name].values, before[name].values, err_msg=name)


def test_the_fused_route_keeps_the_heads_spread(label_free, small_scenario):
    model = label_free.model
    assert model.grouping_draws() == 5
    share = model.head.share.clone()
    try:
        model.head.share.fill_(0.5)
        assert model.grouping_draws() == 1
        prepared = label_free.prepare(small_scenario.grid)
        prediction = label_free.predict_prepared(prepared)
        logits = model.head(*model.grid_features(prepared.x, prepared.graph.stencil, residual=True))
        torch.testing.assert_close(prediction.members, torch.sigmoid(logits))
    finally:
        model.head.share.copy_(share)


def test_a_member_hides_one_group_in_one_pass_and_reads_the_map_elsewhere(label_free, small_scenario, monkeypatch):
    """Member k re-hides one group of grouping k and keeps grouping 0's errors for the other elements: hiding a
    group the map already hides gives back the map's score exactly, and a prediction makes 1 + groups +
    (members - 1) passes (each member scoring a whole grouping made 1 + groups x members: 16 instead of 8)."""
    model = label_free.model
    prepared = label_free.prepare(small_scenario.grid)
    x, stencil = prepared.x, prepared.graph.stencil
    passes = []

    def embed(hidden):
        passes.append(hidden)
        return model._embed_grid(x, stencil, hidden)[0]

    with torch.no_grad():
        predicted = model.masked_predictions(embed, x)
        assert len(passes) == 3  # mask_groups: one pass per group
        scores = model.grouping_scores(embed, x, predicted, 5)
        assert len(passes) == 3 + 4  # one pass per further member
        assert all(bool((hidden == model.draw_mask(len(x), k)).all()) for k, hidden in enumerate(passes[3:], 1))
        torch.testing.assert_close(scores[:, 0], model.score_of(predicted, x))
        assert float((scores[:, 1:] - scores[:, :1]).abs().max()) > 0  # other partners, other scores
        monkeypatch.setattr(MSTGAT, "draw_mask", lambda self, n, k: self.mask_groups(n, 0)[0])
        same = model.grouping_scores(embed, x, predicted, 5)
    torch.testing.assert_close(same, scores[:, :1].expand(-1, 5), rtol=0, atol=1e-6)
