import numpy as np
import pytest

from mstgat_core.graphs.graph import build_graph, node_index_image, receptive_radius, receptive_subgraph, scale_offsets


def brute_force_edges(mask, offsets):
    index = node_index_image(mask)
    edges = set()
    for r, c in zip(*np.nonzero(mask)):
        for dy, dx in offsets:
            rr, cc = r + dy, c + dx
            if 0 <= rr < mask.shape[0] and 0 <= cc < mask.shape[1] and mask[rr, cc]:
                edges.add((index[rr, cc], index[r, c]))
    return edges


@pytest.fixture
def holey_mask():
    mask = np.random.default_rng(4).random((11, 13)) > 0.25
    mask[:, 0] = False
    return mask


@pytest.mark.parametrize("mode", ["window", "ring"])
def test_edges_match_brute_force(holey_mask, mode):
    graph = build_graph(holey_mask, (1, 2, 4), mode)
    for edge_index, offsets in zip(graph.edge_index, graph.offsets):
        assert set(map(tuple, edge_index.T.tolist())) == brute_force_edges(holey_mask, offsets)


def test_offsets():
    assert len(scale_offsets(1)) == 8 and len(scale_offsets(3)) == 48
    ring = scale_offsets(2, "ring")
    assert len(ring) == 8 and set(np.abs(ring).max(axis=1)) == {2}
    with pytest.raises(ValueError):
        scale_offsets(0)


def test_node_of_matches_row_major_order(holey_mask):
    graph = build_graph(holey_mask, (1,))
    rows, cols = graph.rows_cols
    for node in (0, 17, graph.num_nodes - 1):
        assert graph.node_of(rows[node], cols[node]) == node
    with pytest.raises(IndexError):
        graph.node_of(0, 0)  # column 0 is masked


def brute_force_within(graph, start, hops):
    """Nodes within ``hops`` hops of ``start`` over the union of scales (BFS)."""
    neighbours = {}
    for edge_index in graph.edge_index:
        for s, t in edge_index.T.tolist():
            neighbours.setdefault(t, set()).add(s)
    frontier, seen = set(start), set(start)
    for _ in range(hops):
        frontier = {s for t in frontier for s in neighbours.get(t, ())} - seen
        seen |= frontier
    return seen


@pytest.mark.parametrize("hops", [1, 2])
def test_receptive_subgraph_matches_brute_force(holey_mask, hops):
    graph = build_graph(holey_mask, (1, 3))
    nodes = [5, 40]
    subset, edges, mapping = receptive_subgraph(graph, nodes, hops)
    assert set(subset.tolist()) == brute_force_within(graph, nodes, hops)
    assert subset[mapping].tolist() == nodes
    inner = brute_force_within(graph, nodes, hops - 1)
    for full, sub in zip(graph.edge_index, edges):
        expected = {(s, t) for s, t in full.T.tolist() if t in inner}
        assert {(int(subset[s]), int(subset[t])) for s, t in sub.T.tolist()} == expected


def test_receptive_radius():
    assert receptive_radius((1, 2, 3), 2) == 6
    assert receptive_radius((4,), 1) == 4
