import numpy as np
import pytest
import torch

from mstgat_core.errors import DataError
from mstgat_core.graphs.graph import build_graph, receptive_radius, receptive_subgraph
from mstgat_core.model import MSTGAT, VARIANTS, ModelConfig


@pytest.fixture
def grid_inputs():
    rng = np.random.default_rng(0)
    mask = rng.random((14, 12)) > 0.2
    x = torch.from_numpy(rng.normal(size=(int(mask.sum()), 6)).astype("float32"))
    return mask, x


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("gat_layers", [1, 2])
def test_subgraph_prediction_equals_full_graph(grid_inputs, variant, gat_layers):
    mask, x = grid_inputs
    torch.manual_seed(0)
    model = MSTGAT(ModelConfig(n_elements=6, variant=variant, scales=(1, 2), gat_layers=gat_layers)).eval()
    graph = build_graph(mask, model.config.scales)
    with torch.no_grad():
        full = model(x, graph.edge_index)
        nodes = [0, 33, graph.num_nodes - 1]
        subset, edges, mapping = receptive_subgraph(graph, nodes, model.hops)
        sub = model(x[subset], edges, mapping)
    assert torch.allclose(full[nodes], sub, atol=1e-6)


def test_attention_weights_are_distributions(grid_inputs):
    mask, x = grid_inputs
    model = MSTGAT(ModelConfig(n_elements=6, scales=(1, 2))).eval()
    graph = build_graph(mask, (1, 2))
    with torch.no_grad():
        _, details = model(x, graph.edge_index, return_details=True)
    cells, layers, heads, tokens, _ = details.element_attention.shape
    assert (cells, layers, heads, tokens) == (len(x), 2, 4, 7)
    row_sums = details.element_attention.sum(-1)
    assert torch.allclose(row_sums, torch.ones_like(row_sums), atol=1e-5)
    assert torch.allclose(details.scale_weights.sum(-1), torch.ones(cells), atol=1e-5)
    for per_layer in details.neighbour_attention:
        for edge_index, alpha in per_layer:
            sums = torch.zeros(len(x), alpha.shape[1]).index_add_(0, edge_index[1], alpha)
            assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)


def test_spatial_single_keeps_first_scale():
    assert ModelConfig(n_elements=3, variant="spatial-single", scales=(2, 3)).scales == (2,)
    with pytest.raises(ValueError):
        ModelConfig(n_elements=3, variant="bogus")


def test_config_from_a_stored_dict_with_overrides():
    stored = ModelConfig(n_elements=6, scales=(1, 3), d_model=16, readout="fused", members=3).to_dict()
    assert ModelConfig.from_dict(stored) == ModelConfig(**{**stored, "scales": (1, 3)})  # a round trip
    one = ModelConfig.from_dict(stored, members=1, variant="spectral")
    assert (one.members, one.variant, one.scales, one.d_model) == (1, "spectral", (1, 3), 16)
    assert ModelConfig.from_dict(None, n_elements=2) == ModelConfig(n_elements=2)


def test_config_from_a_dict_names_every_unknown_key():
    with pytest.raises(DataError, match="unknown model setting.*: dmodel, hidden;") as err:
        ModelConfig.from_dict({"n_elements": 6, "dmodel": 16}, hidden=8)
    assert err.value.settings == ("dmodel", "hidden")
    with pytest.raises(DataError, match="n_elements"):
        ModelConfig.from_dict({"scales": [1]})
    with pytest.raises(DataError, match="1 to 64 members") as err:
        ModelConfig.from_dict({"n_elements": 6, "readout": "fused"}, members=0)
    assert err.value.setting == "members"


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_config_owns_its_stencil_graph_and_radius(grid_inputs, variant):
    mask, _ = grid_inputs
    config = ModelConfig(n_elements=6, variant=variant, scales=(1, 3), gat_layers=2, graph_mode="ring")
    graph = config.graph(mask)
    assert graph.scales == config.scales and graph.mode == "ring" and (graph.mask == mask).all()
    stencil = config.stencil(mask)
    if variant == "spectral":
        assert stencil is None and config.receptive_radius == 0 and config.hops == 0
        return
    assert config.receptive_radius == receptive_radius(config.scales, 2) == 2 * max(config.scales)
    assert MSTGAT(config).hops == config.hops == 2
    expected = graph.stencil
    assert (stencil.mask == expected.mask).all() and len(stencil.offsets) == len(expected.offsets)
    for mine, theirs in zip(stencil.offsets, expected.offsets):
        np.testing.assert_array_equal(mine, theirs)
