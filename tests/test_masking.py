"""The two masking rules measured on one model (issue 27): the score's rule is the label-free score's own
reconstruction, and the neighbours matter only through the spatial branch."""

import numpy as np
import pytest
import torch

from mstgat_core.data.preprocess import Normaliser
from mstgat_core.data.synthetic import make_scenario
from mstgat_core.experiments.masking import group_predictions, masking_gap, masking_gap_of
from mstgat_core.model import MSTGAT, ModelConfig
from mstgat_core.training.pipeline import FittedModel


@pytest.fixture(scope="module")
def grid():
    return make_scenario(shape=(48, 48), n_elements=6, seed=3).grid


def _model(grid, variant):
    torch.manual_seed(0)
    normaliser = Normaliser().fit(grid)
    config = ModelConfig(
        n_elements=len(normaliser.elements), readout="fused", variant=variant, scales=(1, 2), d_model=16, gat_hidden=16
    )
    fitted = FittedModel(MSTGAT(config).eval(), normaliser)
    return fitted, fitted.prepare(grid)


def test_the_score_rule_is_the_label_free_scores_own_reconstruction(grid):
    fitted, prepared = _model(grid, "mstgat")
    model, graph = fitted.model, prepared.graph
    everywhere, checkerboard = group_predictions(model, prepared.x, graph.stencil, *graph.rows_cols)
    with torch.no_grad():
        embedding, score = model.grid_features(prepared.x, graph.stencil)
    torch.testing.assert_close(model.score_of(everywhere, prepared.x), score, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(checkerboard, everywhere)  # the GAT sees the hidden elements in the neighbours


def test_without_a_spatial_branch_the_neighbours_do_not_matter(grid):
    fitted, prepared = _model(grid, "spectral")
    rows, cols = prepared.graph.rows_cols
    everywhere, checkerboard = group_predictions(fitted.model, prepared.x, None, rows, cols)
    torch.testing.assert_close(checkerboard, everywhere)
    gap = masking_gap(fitted.model, prepared.x, None, rows, cols, draws=2)
    assert gap["groups_checkerboard"] == pytest.approx(gap["groups_everywhere"], rel=1e-6)
    n, e = prepared.x.shape
    assert gap["entries"] == 2 * n * int(np.clip(round(0.3 * e), 1, e - 1)) and gap["groups"] == min(3, e)


def test_the_measure_runs_on_a_grid_through_the_fitted_model(grid):
    fitted, _ = _model(grid, "mstgat")
    gap = masking_gap_of(fitted, grid, draws=1)
    assert set(gap) >= {"pretraining", "groups_checkerboard", "groups_everywhere", "entries"}
    assert all(np.isfinite(gap[k]) and gap[k] > 0 for k in ("pretraining", "groups_checkerboard", "groups_everywhere"))
