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
