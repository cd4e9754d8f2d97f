"""The grid fast path (shifted views) against PyG's GATv2Conv and nn.MultiheadAttention."""

import numpy as np
import pytest
import torch
from torch_geometric.nn import GATv2Conv

from mstgat_core.graphs.graph import build_graph
from mstgat_core.graphs.grid_attention import grid_gatv2
from mstgat_core.model import MSTGAT, VARIANTS, AttentionEncoderLayer, ModelConfig


@pytest.fixture
def masked_grid():
    rng = np.random.default_rng(3)
    mask = rng.random((45, 23)) > 0.25  # taller than a row block, ragged mask
    mask[:, 0] = False  # an empty column at the edge
    x = torch.from_numpy(rng.normal(size=(int(mask.sum()), 16)).astype("float32"))
    return mask, x


def _random_conv(seed: int) -> GATv2Conv:
    torch.manual_seed(seed)
    conv = GATv2Conv(16, 4, heads=4, add_self_loops=True).eval()
    torch.nn.init.normal_(conv.att)  # default init is small: make the softmax far from uniform
    torch.nn.init.normal_(conv.bias)
    return conv


@pytest.mark.parametrize("mode", ["window", "ring"])
@pytest.mark.parametrize("radius", [1, 3])
def test_grid_gatv2_equals_pyg(masked_grid, mode, radius):
    mask, x = masked_grid
    conv = _random_conv(radius)
    graph = build_graph(mask, (radius,), mode)
    stencil = graph.stencil
    with torch.no_grad():
        expected, (edges, alpha) = conv(x, graph.edge_index[0], return_attention_weights=True)
        image, entropy = grid_gatv2(conv, stencil.to_image(x), torch.from_numpy(mask), stencil.offsets[0], entropy=True)
    assert torch.allclose(stencil.to_nodes(image), expected, atol=1e-5)
    # entropy of the head-mean weights over incoming edges (self-loop included), / log(count)
    p = alpha.mean(dim=1)
    n = len(x)
    brute = torch.zeros(n).index_add_(0, edges[1], -torch.special.xlogy(p, p))
    count = torch.bincount(edges[1], minlength=n).float()
    brute = brute / torch.log(count)
    got = stencil.to_nodes(entropy)
    isolated = count == 1
    assert torch.isnan(got[isolated]).all() and torch.isnan(brute[isolated]).all()
    assert torch.allclose(got[~isolated], brute[~isolated], atol=1e-5)


def test_grid_gatv2_gradients_match_pyg(masked_grid):
    mask, x = masked_grid
    conv = _random_conv(7)
    graph = build_graph(mask, (2,))
    stencil = graph.stencil
    x1 = x.clone().requires_grad_(True)
    conv(x1, graph.edge_index[0]).square().sum().backward()
    x2 = x.clone().requires_grad_(True)
    image = grid_gatv2(conv, stencil.to_image(x2), torch.from_numpy(mask), stencil.offsets[0])
    stencil.to_nodes(image).square().sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("gat_layers", [1, 2])
def test_predict_grid_equals_edge_lists(masked_grid, variant, gat_layers):
    """The one prediction path (grid, stencil) equals the training path (edge lists), details included."""
    mask, x = masked_grid
    torch.manual_seed(0)
    model = MSTGAT(ModelConfig(n_elements=16, variant=variant, scales=(1, 3), gat_layers=gat_layers)).eval()
    graph = build_graph(mask, model.config.scales)
    with torch.no_grad():
        logits, details = model(x, graph.edge_index, return_details=True)
    got = model.predict_grid(x, graph.stencil if model.config.uses_spatial else None, details=True)
    assert torch.allclose(got.probability, torch.sigmoid(logits), atol=1e-5)
    if model.config.uses_spectral:
        cls = details.element_attention[:, -1, :, 0, 1:].mean(dim=1)
        assert torch.allclose(got.cls_attention, cls, atol=1e-6)
        assert torch.allclose(got.rollout.sum(dim=1), torch.ones(len(x)), atol=1e-5)
    else:
        assert got.cls_attention is None and got.rollout is None
    if model.config.uses_spatial:
        assert torch.allclose(got.scale_weights, details.scale_weights, atol=1e-5)
        assert got.neighbour_entropy.shape == (len(x), len(model.config.scales))
    else:
        assert got.scale_weights is None and got.neighbour_entropy is None
    plain = model.predict_grid(x, graph.stencil if model.config.uses_spatial else None)
    assert torch.allclose(plain.probability, got.probability, atol=1e-6) and plain.cls_attention is None
    with pytest.raises(TypeError, match="predict_grid"):
        model(x, graph.stencil)


@pytest.mark.parametrize("cls_only", [False, True])
def test_attention_layer_equals_multihead_attention(cls_only):
    torch.manual_seed(1)
    layer = AttentionEncoderLayer(16, 4, 2, 0.0, 0.0).eval()
    h = torch.randn(50, 9, 16)
    x = layer.norm1(h)
    with torch.no_grad():
        expected, expected_weights = layer.attn(x, x, x, need_weights=True, average_attn_weights=False)
        out, weights = layer.attention(x, cls_only)
    queries = slice(0, 1) if cls_only else slice(None)
    assert torch.allclose(out, expected[:, queries], atol=1e-5)
    assert torch.allclose(weights, expected_weights[:, :, queries], atol=1e-6)


def test_whole_grid_prediction_builds_no_edge_lists(small_scenario):
    from mstgat_core.data.preprocess import Normaliser
    from mstgat_core.training.pipeline import FittedModel

    grid = small_scenario.grid
    torch.manual_seed(0)
    fitted = FittedModel(MSTGAT(ModelConfig(n_elements=6)), Normaliser().fit(grid))
    prepared = fitted.prepare(grid)
    probability = fitted.predict_prepared(prepared).probability.numpy()
    assert prepared.graph._edges is None  # the stencil sufficed
    fitted.model.eval()
    with torch.no_grad():
        expected = torch.sigmoid(fitted.model(prepared.x, prepared.graph.edge_index)).numpy()
    np.testing.assert_allclose(probability, expected, atol=1e-6)
    np.testing.assert_allclose(fitted.predict(grid).values[prepared.graph.mask], expected, atol=1e-6)
