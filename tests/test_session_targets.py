"""Issue 29 in the dashboard: the Thresholds card of the current layer with its target-zones download, and the
P-A plot and success-rate curve of the current model (Bokeh models built in Python, no browser)."""

import io

import numpy as np
import pytest


@pytest.fixture
def session(dashboard_session):
    return dashboard_session


def _install_a_score(session):
    """A stand-in for a trained model's score (no training: seconds matter): high on the deposit cells' rows."""
    first = session.data.grid_elements[0]
    da = session.data.ds[first]
    rng = np.random.default_rng(0)
    score = rng.random(da.shape) * 0.5 + 0.5 * np.asarray(session.data.deposit_mask.values, dtype=float)
    score[~np.isfinite(da.values)] = np.nan
    session.model.probability = da.copy(data=score).rename("probability")
    session.refresh_layers(prefer="probability")


def test_the_thresholds_card_lists_the_current_layers_thresholds_only_when_open(session):
    from bokeh.document import Document

    from mstgat_core.dashboard.targets_view import thresholds_card
    from mstgat_core.evaluation.thresholds import ca_thresholds, cumulative_thresholds

    element = session.data.grid_elements[0]
    session.selection.layer = f"element: {element}"
    card = thresholds_card(session)
    card.get_root(Document())
    text = card[0]
    assert text.object == ""  # closed: nothing computed
    card.collapsed = False
    values = session.data.ds[element].values
    values = values[np.isfinite(values)]
    shown = text.object
    assert f"Thresholds of element: {element}" in shown
    assert "C-A fractal breakpoints" in shown and "population break" in shown
    for threshold in ca_thresholds(values).thresholds:
        assert f"{threshold:.4g}" in shown
    assert f"95 % {cumulative_thresholds(values)['95 %']:.4g}" in shown
    _install_a_score(session)  # a new layer shown: the card follows
    assert "Thresholds of probability" in text.object


def test_the_target_zones_download_is_a_geopackage_of_the_outlined_share(session):
    import geopandas as gpd

    from mstgat_core.dashboard.targets import export_target_zones
    from mstgat_core.errors import DataError

    session.selection.layer = None
    with pytest.raises(DataError, match="no map layer"):
        export_target_zones(session)
    _install_a_score(session)
    session.selection.top_share = "top 5 %"
    zones = gpd.read_file(io.BytesIO(export_target_zones(session).getvalue()))
    assert zones.crs == session.data.ds.rio.crs and len(zones) > 0
    assert set(zones.geom_type) <= {"Polygon", "MultiPolygon"} and zones.is_valid.all()
    cut = session.selection.zone_cut()  # the map's outline: the same cut
    assert zones["score_cut"].iloc[0] == pytest.approx(cut)
    score = session.model.probability.values
    assert zones["n_cells"].sum() == int((score >= cut).sum())
    assert zones["leading_elements"].str.len().gt(0).all() and zones["n_deposits"].sum() >= 1


def test_the_evaluation_tab_shows_the_models_prediction_area_plot_and_success_rate(session):
    from bokeh.document import Document

    from mstgat_core.dashboard import views  # noqa: F401  (loads the Bokeh extension, as the app does)
    from mstgat_core.dashboard.components import EvaluationTab
    from mstgat_core.dashboard.jobs import Jobs
    from mstgat_core.dashboard.plots_thresholds import prediction_area_plot, success_rate_plot
    from mstgat_core.dashboard.targets import model_curves
    from mstgat_core.dashboard.targets_view import model_curves_panel
    from mstgat_core.evaluation.prediction_area import prediction_area

    assert model_curves(session) is None
    model_curves_panel(session).get_root(Document())  # a message in place of the plots
    _install_a_score(session)
    pa, (area, captured, auc) = model_curves(session)
    expected = prediction_area(session.model.probability, session.data.deposit_mask)
    assert pa.crossing == pytest.approx(expected.crossing) and pa.prediction_rate > 0.5 and auc > 0.7
    assert "Nd" in prediction_area_plot(pa).opts.get().kwargs["title"]
    assert f"{auc:.3f}" in success_rate_plot((area, captured, auc)).opts.get().kwargs["title"]
    EvaluationTab(session, Jobs(session)).__panel__().get_root(Document())
