"""Point graphs: brute-force edges, agreement with the grid path where samples lie on a grid, planted truth."""

import geopandas as gpd
import numpy as np
import pytest
import torch

from mstgat_core.errors import DataError
from mstgat_core.graphs.graph import GridStencil, grid_edges, scale_offsets
from mstgat_core.graphs.point_graph import build_point_graph, parse_point_scales
from mstgat_core.model import MSTGAT, ModelConfig


def _holey_grid(ny=9, nx=11, spacing=250.0, seed=0):
    mask = np.random.default_rng(seed).random((ny, nx)) > 0.2
    rows, cols = np.nonzero(mask)  # row-major: the grid's node order
    xy = np.c_[1000.0 + cols * spacing, 5000.0 - rows * spacing]
    return mask, xy, spacing


def _edge_set(edge_index):
    return set(map(tuple, edge_index.T.tolist()))


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_chebyshev_radius_on_a_grid_gives_the_grid_window_edges(radius):
    mask, xy, spacing = _holey_grid()
    graph = build_point_graph(xy, [radius * spacing * (1 + 1e-9)], kind="radius", metric="chebyshev")
    expected = grid_edges(mask, scale_offsets(radius, "window"))
    assert _edge_set(graph.edge_index[0]) == _edge_set(expected)
    targets = graph.edge_index[0][1]
    assert torch.all(targets[1:] >= targets[:-1])  # grouped by target


def test_knn_edges_match_brute_force():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 10_000, (60, 2))
    graph = build_point_graph(xy, [3, 7])
    for k, edges in zip((3, 7), graph.edge_index):
        distance = np.hypot(*(xy[:, None, :] - xy[None]).transpose(2, 0, 1))
        np.fill_diagonal(distance, np.inf)
        expected = {(int(j), i) for i in range(60) for j in np.argsort(distance[i])[:k]}
        assert _edge_set(edges) == expected
    reach = [np.median(np.sort(distance, axis=1)[:, k - 1]) for k in (3, 7)]
    assert graph.reach == pytest.approx(reach)
    assert "scale 2: 7 nearest samples, median reach" in graph.describe()


def test_model_on_the_point_graph_equals_the_grid_path():
    """Samples exactly on a grid: every output of the point path equals the grid path (float rounding)."""
    mask, xy, spacing = _holey_grid()
    config = ModelConfig(n_elements=5, scales=(1, 2), readout="fused", members=2)
    torch.manual_seed(0)
    model = MSTGAT(config).eval()
    x = torch.randn(int(mask.sum()), 5)
    graph = build_point_graph(xy, [r * spacing * (1 + 1e-9) for r in (1, 2)], kind="radius", metric="chebyshev")
    on_grid = model.predict_grid(x, GridStencil.of(mask, (1, 2)), details=True)
    on_points = model.predict_grid(x, graph, details=True)
    for name in ("probability", "label_free", "scale_weights", "neighbour_entropy", "members", "cls_attention"):
        torch.testing.assert_close(getattr(on_points, name), getattr(on_grid, name), atol=1e-5, rtol=1e-4)


def test_point_scales_and_bad_graphs_are_one_line_errors():
    assert parse_point_scales("8, 24,48", "knn") == (8, 24, 48)
    assert parse_point_scales("2000,5000", "radius") == (2000.0, 5000.0)
    with pytest.raises(DataError, match="whole numbers"):
        parse_point_scales("8,2.5", "knn")
    with pytest.raises(DataError, match="positive"):
        parse_point_scales("0,5", "radius")
    xy = np.random.default_rng(0).uniform(0, 1000, (20, 2))
    with pytest.raises(DataError, match="20 samples: a scale of 24 nearest samples needs at least 25"):
        build_point_graph(xy, [8, 24])
    with pytest.raises(DataError, match="missing or infinite"):
        build_point_graph(np.r_[xy, [[np.nan, 1.0]]], [3])


def _point_survey(n=400, seed=0):
    """Samples at random places; two elements follow a smooth field, a third is their mix; one sample
    breaks the association (its third element far from what its own chemistry and neighbours say)."""
    from mstgat_core.data.points import PointSamples

    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 20_000, (n, 2))
    field = np.sin(xy[:, 0] / 4000) + np.cos(xy[:, 1] / 5000)
    a = np.exp(2 + field + 0.05 * rng.normal(size=n))
    b = np.exp(3 - field + 0.05 * rng.normal(size=n))
    c = np.sqrt(a * b) * np.exp(0.05 * rng.normal(size=n))
    odd = int(np.argmin(np.hypot(*(xy - 10_000).T)))
    c[odd] *= 20
    table = gpd.GeoDataFrame(
        {"A": a, "B": b, "C": c, "D": np.exp(1 + 0.05 * rng.normal(size=n))},
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
        crs="EPSG:32750",
    )
    samples = PointSamples(table, ["A", "B", "C", "D"], table.crs, {}, "")
    return samples, odd


def test_label_free_point_score_finds_a_planted_sample_and_names_its_element():
    from mstgat_core.training.point_model import pretrain_points
    from mstgat_core.training.pretrain import PretrainConfig

    samples, odd = _point_survey()
    fitted = pretrain_points(samples, scales=(4, 8), pretrain_config=PretrainConfig(epochs=15, seed=0))
    scores = fitted.scores()
    assert np.argmax(scores.anomaly_score) == odd
    # contributions add up to the score, and the planted element leads with a positive residual
    np.testing.assert_allclose(
        np.log(scores.contributions.sum(axis=1) + 1e-6), scores.anomaly_score, rtol=1e-4, atol=1e-4
    )
    assert scores.top_elements(1)[odd] == "C+"
    explanation = fitted.explain(odd)
    assert set(explanation["element_attention"]) == {"A", "B", "C", "D"}
    for scale, k in zip(explanation["neighbours"], (4, 8)):
        assert scale["sample"][0] == odd and len(scale["sample"]) == k + 1  # self-loop first, then k neighbours
        assert sum(scale["weight"]) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(DataError, match="not among the 400 samples"):
        fitted.explain(400)


# ------------------------------------------------------------------ mini-batches of receptive subgraphs (issue 26)


def _hand_graph():
    """Seven samples and two scales of hand-written edges (neighbour -> sample), a chain and a star."""
    from mstgat_core.graphs.point_graph import PointGraph

    chain = [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4), (0, 6), (6, 5)]
    star = [(0, 3), (1, 3), (2, 3), (4, 3), (3, 5), (6, 5), (5, 0)]
    edges = tuple(torch.tensor(sorted(e, key=lambda st: (st[1], st[0]))).T for e in (chain, star))
    xy = np.c_[np.arange(7.0), np.zeros(7)]
    return PointGraph(xy=xy, kind="knn", scales=(1, 2), metric="euclidean", edge_index=edges, reach=(1.0, 1.0))


def _receptive_by_brute_force(edges, seeds, hops):
    """Per scale: the nodes within ``hops`` in-hops of a seed, and the edges into nodes within ``hops - 1``."""
    within = [set(seeds)]
    for _ in range(hops):
        within.append(within[-1] | {s for s, t in edges if t in within[-1]})
    inner = within[hops - 1] if hops else set()
    return within[hops], {(s, t) for s, t in edges if t in inner}


@pytest.mark.parametrize("hops", [0, 1, 2, 3])
@pytest.mark.parametrize("seeds", [[0], [3], [5, 1], [6, 2, 4]])
def test_a_subgraph_holds_its_seeds_receptive_neighbourhood_at_every_scale(seeds, hops):
    graph = _hand_graph()
    sub = graph.subgraph(seeds, hops)
    assert sub.nodes[: len(seeds)].tolist() == seeds and sub.n_seeds == len(seeds)  # seeds first, in order
    assert len(set(sub.nodes.tolist())) == sub.num_nodes  # no node twice
    nodes, expected_edges = set(seeds), []
    for edges in graph.edge_index:
        reached, kept = _receptive_by_brute_force(_edge_set(edges), seeds, hops)
        nodes |= reached
        expected_edges.append(kept)
    assert set(sub.nodes.tolist()) == nodes
    for local, expected in zip(sub.edge_index, expected_edges):
        assert {(int(sub.nodes[s]), int(sub.nodes[t])) for s, t in local.T.tolist()} == expected


def test_a_subgraph_refuses_repeated_or_unknown_seeds_and_the_spatial_order_is_a_permutation():
    from mstgat_core.graphs.point_graph import spatial_order

    graph = _hand_graph()
    with pytest.raises(DataError, match="distinct"):
        graph.subgraph([1, 1], 1)
    with pytest.raises(DataError, match="0..6"):
        graph.subgraph([7], 1)
    xy = np.random.default_rng(0).uniform(0, 1000, (500, 2))
    order = spatial_order(xy)
    assert sorted(order.tolist()) == list(range(500))
    runs = [xy[order[i : i + 50]] for i in range(0, 500, 50)]  # consecutive runs are compact
    assert np.mean([np.ptp(r, axis=0).prod() for r in runs]) < 0.25 * np.ptp(xy, axis=0).prod()


def _tiny_points_model(gat_layers, seed=0):
    from mstgat_core.training.point_model import pretrain_points
    from mstgat_core.training.pretrain import PretrainConfig

    samples, odd = _point_survey()
    config = PretrainConfig(epochs=2, steps_per_epoch=2, seed=seed)
    model_config = {"gat_layers": gat_layers, "d_model": 16, "gat_hidden": 16}
    return pretrain_points(samples, scales=(4, 8), model_config=model_config, pretrain_config=config), odd


@pytest.mark.parametrize("gat_layers", [1, 2])
def test_scores_in_batches_of_subgraphs_equal_the_whole_graph(gat_layers):
    from mstgat_core.training.pretrain import fit_statistics

    fitted, _ = _tiny_points_model(gat_layers)
    whole = fitted.scores()  # 400 samples: the whole graph
    calls = []
    batched = fitted.scores(batch=37, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (11, 11)  # 400 samples in batches of 37
    np.testing.assert_allclose(batched.anomaly_score, whole.anomaly_score, atol=1e-5, rtol=0)
    for name in ("contributions", "residuals"):
        np.testing.assert_allclose(getattr(batched, name).to_numpy(), getattr(whole, name).to_numpy(), atol=1e-5)
    for name in ("scale_weights", "neighbour_entropy"):
        np.testing.assert_allclose(getattr(batched, name), getattr(whole, name), atol=1e-5)
    # the head's statistics over all samples, in batches, equal those of the whole graph
    head = fitted.model.head
    names = ("center", "scale", "precision", "novelty_limit", "score_limit")
    before = {name: getattr(head, name).clone() for name in names}
    fit_statistics(fitted.model, fitted.x, fitted.graph, batch=50)
    for name in names:
        torch.testing.assert_close(getattr(head, name), before[name], atol=1e-5, rtol=1e-4)


def test_a_mini_batch_step_is_the_whole_graph_step_restricted_to_its_seeds():
    """With the same hidden entries, the seeds' loss and its gradient on their subgraph equal those of the
    whole-graph reconstruction restricted to the seeds (two GAT layers: the frontier matters)."""
    from mstgat_core.training.pretrain import hidden_mask, masked_reconstruction, seed_loss

    fitted, _ = _tiny_points_model(gat_layers=2)
    model, x, graph = fitted.model.eval(), fitted.x, fitted.graph  # eval: no dropout, the same function twice
    hidden = hidden_mask(len(x), x.shape[1], 0.3, torch.Generator().manual_seed(1))
    seeds = np.random.default_rng(2).choice(len(x), 40, replace=False)
    error = (masked_reconstruction(model, x, hidden, graph) - x)[seeds].square()
    weights = hidden[seeds]
    whole = (error * weights).sum() / weights.sum()
    whole_grad = torch.autograd.grad(whole, [p for p in model.parameters() if p.requires_grad], allow_unused=True)
    sub = graph.subgraph(seeds, model.config.hops)
    assert sub.num_nodes < len(x)
    rows = torch.from_numpy(sub.nodes)
    batch = seed_loss(model, x[rows], hidden[rows], sub)
    batch_grad = torch.autograd.grad(batch, [p for p in model.parameters() if p.requires_grad], allow_unused=True)
    torch.testing.assert_close(batch, whole, atol=1e-6, rtol=1e-5)
    for a, b in zip(batch_grad, whole_grad):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_a_large_survey_pretrains_on_mini_batches_and_a_small_one_on_the_whole_graph(monkeypatch):
    from mstgat_core.graphs.point_graph import PointGraph
    from mstgat_core.training.point_model import pretrain_points
    from mstgat_core.training.pretrain import PretrainConfig

    samples, _ = _point_survey()
    seen = []
    subgraph = PointGraph.subgraph
    monkeypatch.setattr(
        PointGraph, "subgraph", lambda self, seeds, hops: seen.append(len(seeds)) or subgraph(self, seeds, hops)
    )
    small = PretrainConfig(epochs=1, steps_per_epoch=3)  # 400 samples < point_whole_graph: as before
    pretrain_points(samples, scales=(4, 8), pretrain_config=small)
    assert seen == []
    large = PretrainConfig(epochs=1, steps_per_epoch=3, point_whole_graph=300, point_batch=64)
    fitted = pretrain_points(samples, scales=(4, 8), pretrain_config=large)
    # three training steps of 64 seeds, then the statistics over all 400 samples in batches of 64
    assert seen == [64, 64, 64] + [64] * 6 + [16]
    assert np.isfinite(fitted.metadata["pretrain"]["result"]["final_loss"])
    seen.clear()
    scores = fitted.scores()  # 400 samples >= its point_whole_graph: scored in batches too
    assert seen and np.isfinite(scores.anomaly_score).all()


@pytest.mark.parametrize("gat_layers", [1, 2])
def test_one_sample_is_explained_on_its_subgraph_as_on_the_whole_graph(gat_layers):
    fitted, odd = _tiny_points_model(gat_layers)
    explanation = fitted.explain(odd)
    # the nodes touched: the sample and its neighbours within gat_layers hops at the largest scale (8), of 400
    assert explanation["subgraph_nodes"] <= sum(8**h for h in range(gat_layers + 1))
    with torch.no_grad():
        _, details = fitted.model(fitted.x, list(fitted.graph.edge_index), nodes=[odd], return_details=True)
    attention = details.element_attention[0, -1, :, 0, 1:].mean(dim=0).numpy()
    np.testing.assert_allclose(list(explanation["element_attention"].values()), attention, atol=1e-6)
    np.testing.assert_allclose(explanation["scale_weights"], details.scale_weights[0].numpy(), atol=1e-6)
    for scale, layers in zip(explanation["neighbours"], details.neighbour_attention):
        edges, alpha = layers[-1]
        into = edges[1] == odd
        whole = dict(zip(edges[0][into].tolist(), alpha[into].mean(dim=1).tolist()))
        assert scale["sample"][0] == odd and set(scale["sample"]) == set(whole)
        np.testing.assert_allclose(scale["weight"], [whole[s] for s in scale["sample"]], atol=1e-6)
