"""Issue 29, items 8-14 ("misleading or missing"), checked on the session and its Bokeh models (no browser;
the web-font request and the sticky status bar are checked in the page, tests/ui/test_defects.py)."""

import asyncio

import numpy as np
import pandas as pd
import pytest
from bokeh_models import bokeh_root, glyph_renderers, rows

from mstgat_core.testing import run_in_a_fresh_loop


@pytest.fixture
def session(dashboard_session):
    return dashboard_session


def markdown_text(panel_obj, css_class: str) -> str:
    import panel as pn

    panes = [p for p in panel_obj.select(pn.pane.Markdown) if css_class in p.css_classes]
    assert panes, css_class
    return str(panes[0].object)


def fake_model_outputs(session):
    """A probability layer without training (the outline needs no more)."""
    grid = session.data.ds
    first = grid[next(iter(grid.data_vars))]
    ranks = np.argsort(np.argsort(first.values.ravel())).reshape(first.shape) / first.size
    session.model.probability = first.copy(data=np.where(np.isfinite(first.values), ranks, np.nan)).rename(
        "probability"
    )
    session.selection.refresh("probability")


# ----------------------------------------------------------------------------------------------- item 8


def test_brushed_cells_are_see_through_under_the_deposits_and_can_be_cleared(session):
    """Item 8: the picked cells are drawn see-through, under the outline, truth and deposits; a button clears the
    pick; a box on the scatter plot is reported as such after a box on the map."""
    import panel as pn
    from bokeh.models import Plot

    from mstgat_core.dashboard import plots_charts
    from mstgat_core.dashboard.views import Jobs, brush_panel, map_panel

    grid = session.data.ds
    the_map = bokeh_root(map_panel(session, Jobs(session)))
    panel = brush_panel(session)
    bokeh_root(panel)
    session.selection.brush_map_box(grid.x.values[0], grid.y.values[0], grid.x.values[-1], grid.y.values[-1])
    drawn = [r for r in glyph_renderers(the_map) if getattr(r.glyph, "fill_color", None) == plots_charts.BRUSH_COLOUR]
    assert len(drawn) == 1 and rows(drawn[0]) > 0
    assert drawn[0].glyph.fill_alpha <= 0.35  # see-through: the layer beneath stays readable
    plot = next(m for m in the_map.references() if isinstance(m, Plot) and drawn[0] in m.renderers)
    order = list(plot.renderers)  # the drawing order
    deposits = next(r for r in order if getattr(r.glyph, "marker", None) == "triangle")
    assert order.index(drawn[0]) < order.index(deposits)
    assert "a box on the map" in markdown_text(panel, "mstgat-brush-readout")
    # a box on the scatter plot right after: the readout says so (it said "a box on the map")
    session.selection.brush_scatter_box(-10, -10, 10, 10)
    assert "a box on the scatter plot" in markdown_text(panel, "mstgat-brush-readout")
    clear = [b for b in panel.select(pn.widgets.Button) if "clear" in b.name.lower()]
    assert len(clear) == 1
    clear[0].clicks += 1
    assert session.selection.brushed is None and rows(drawn[0]) == 0
    assert "Draw a box" in markdown_text(panel, "mstgat-brush-readout")


def test_the_histograms_deposit_marks_are_not_bars_and_the_scatter_never_plots_an_element_against_itself(
    session, small_scenario
):
    """Item 8: the deposit cells are marked at the histogram's base (a 190-cell spike read as a bar); after new
    data the scatter plot has two different elements even when the menus were reset to the first element."""
    import holoviews as hv

    from mstgat_core.dashboard import plots_charts
    from mstgat_core.dashboard.views import brush_panel

    layer = session.selection.layer_data(session.selection.layer)
    chart = plots_charts.brush_histogram(layer, None, np.asarray(session.data.deposit_mask.values))
    assert not any(isinstance(e, hv.Spikes) for e in chart)
    marks = [e for e in chart if isinstance(e, (hv.Scatter, hv.Points)) and len(e)]
    assert marks and all((e.dimension_values(1) == 0).all() for e in marks)
    bokeh_root(brush_panel(session))  # the menus exist: new options reset them to their first element
    renamed = small_scenario.grid.rename({name: f"{name}_b" for name in small_scenario.grid.data_vars})
    session.set_data(renamed, None, "renamed")
    assert session.selection.brush_x != session.selection.brush_y
    session.set_data(small_scenario.grid, None, "back")
    assert session.selection.brush_x != session.selection.brush_y


# ----------------------------------------------------------------------------------------------- item 9


def test_colour_bars_say_the_range_and_bounded_layers_keep_their_meaningful_range():
    """Item 9: a layer stretched over its percentiles says the range in its colour bar title; entropy and
    scale weights are drawn on 0-1, attention from 0 (0.93-1.0 was drawn as full contrast, silently)."""
    import xarray as xr

    from mstgat_core.dashboard import plots_explain, plots_map
    from mstgat_core.dashboard.state_selection import MapLayer

    values = np.linspace(0.93, 1.0, 400).reshape(20, 20)
    da = xr.DataArray(values, coords={"y": np.arange(20.0), "x": np.arange(20.0)}, dims=("y", "x"), name="v")
    for key, clim in (
        (MapLayer("neighbour entropy", "3"), (0.0, 1.0)),
        (MapLayer("scale weight", "3"), (0.0, 1.0)),
        (MapLayer("CLS attention", "Li"), (0.0, pytest.approx(np.percentile(values, 99)))),
    ):
        image = plots_map.image(da, title=key.label, kind=key.colours)
        assert image.opts.get().kwargs["clim"] == clim, key
    stretched = plots_map.image(da, title="element: Li", kind="value")
    label = stretched.opts.get().kwargs["clabel"]
    assert "0.931" in label and "0.999" in label and "stretched" in label, label
    region = {"attention_matrix": [[0.023, 0.0265], [0.025, 0.024]], "matrix_elements": ["Li", "Be"]}
    heat = plots_explain.matrix_heatmap(region)
    assert heat.opts.get().kwargs["clim"][0] == 0


# ----------------------------------------------------------------------------------------------- item 10


def test_new_data_says_why_the_model_was_dropped_without_an_error_and_clears_its_outline(session, small_scenario):
    """Item 10: a model that does not fit new data is dropped with a neutral notice, not a red error; the old
    outline is emptied in place (same glyph, no rows) and the old box leaves the map."""
    from bokeh.models import MultiLine, Quad

    from mstgat_core.dashboard.views import Jobs, map_view
    from mstgat_core.errors import DataError

    fake_model_outputs(session)
    pane = map_view(session, Jobs(session))
    root = bokeh_root(pane)
    grid = session.data.ds
    boxes = [r for r in glyph_renderers(root) if isinstance(r.glyph, Quad)]
    outline = [r for r in glyph_renderers(root) if isinstance(r.glyph, MultiLine) and "value" in r.data_source.data]
    assert len(outline) == 1 and rows(outline[0]) > 0
    glyph = outline[0].glyph
    box = pane.box_stream
    box.event(bounds=(grid.x.values[2], grid.y.values[2], grid.x.values[9], grid.y.values[9]))
    assert max(rows(r) for r in boxes) == 1
    session.model.fitted = object()  # a model whose elements the new data lack

    def refuse(fitted, label):
        raise DataError("the model needs elements A, B")

    session.apply_model = refuse
    renamed = small_scenario.grid.rename({name: f"{name}_b" for name in small_scenario.grid.data_vars})
    session.set_data(renamed, None, "renamed")
    assert session.activity.error == "" and "does not fit these data" in session.activity.notice
    assert session.model.fitted is None
    assert outline[0].glyph is glyph and rows(outline[0]) == 0 and "value" in outline[0].data_source.data
    assert max(rows(r) for r in boxes) == 0 and box.bounds is None


def test_load_data_asks_before_discarding_a_trained_model_and_its_cross_validation(session):
    """Item 10: the first 'Load data' with a trained model and a cross-validation only says what would be lost;
    the second one loads."""
    from mstgat_core.dashboard.components import DataCard
    from mstgat_core.dashboard.jobs import Jobs

    session.model.fitted, session.model.label = object(), "pretrained mstgat, 1 member(s)"
    session.evaluation.report = {"results": {}}
    session.data.source = "Synthetic scenario"
    session.data.synth_rows = session.data.synth_cols = 32
    card = DataCard(session, Jobs(session))
    run_in_a_fresh_loop(card.load_data())
    assert session.data.label == "small synthetic" and session.model.fitted is not None
    assert "pretrained mstgat" in session.activity.notice and "cross-validation" in session.activity.notice
    run_in_a_fresh_loop(card.load_data())
    assert session.data.label.startswith("synthetic scenario 32x32") and session.model.fitted is None
    run_in_a_fresh_loop(card.load_data())  # nothing left to lose: loads at once
    assert not session.activity.busy and session.activity.error == ""


# ----------------------------------------------------------------------------------------------- item 11


def test_the_data_tab_shows_how_missing_codes_and_below_detection_values_were_read(tmp_path):
    """Item 11: after a point upload the Data tab shows the import report: -9999 read as missing, below-detection
    values replaced, columns dropped (the sidebar said "60 elements" and nothing else)."""
    from mstgat_core.dashboard.components import DataTab
    from mstgat_core.dashboard.state import Session

    rng = np.random.default_rng(0)
    lon, lat = np.meshgrid(117.0 + 0.01 * np.arange(8), -33.3 + 0.01 * np.arange(8))
    table = pd.DataFrame({"lon": lon.ravel(), "lat": lat.ravel()})
    table["Cu_ppm"] = rng.lognormal(2, 0.5, len(table))
    table.loc[:4, "Cu_ppm"] = -9999
    table["Zn_ppm"] = rng.lognormal(3, 0.5, len(table)).round(1).astype(str)
    table.loc[:2, "Zn_ppm"] = "<5"
    table["Ni_ppm"] = -9999
    session = Session()
    try:
        session.data.cell_size = 1000.0
        session.load_grid_upload({"survey.csv": table.to_csv(index=False).encode()})
        text = markdown_text(DataTab(session).__panel__(), "mstgat-data-import-report")
        assert "-9999" in text and "below detection" in text and "Zn 3" in text and "Cu 5" in text
        assert "Ni" in text and "dropped" in text
    finally:
        session.cleanup()


# ----------------------------------------------------------------------------------------------- item 13


def test_progress_is_reset_after_a_job_says_cancelled_and_counts_from_the_click(session, monkeypatch):
    """Item 13: the bar is empty once a job ends; a cancelled job says so (it said "finished"); the time is
    counted from the click, queue included (a 9.9 s wait was reported as 0.9 s)."""
    from mstgat_core.dashboard.jobs import Jobs
    from mstgat_core.errors import Cancelled

    jobs, activity = Jobs(session), session.activity

    async def slow_queue(name):
        await asyncio.sleep(0.6)
        return True

    monkeypatch.setattr(jobs, "_wait_for_slot", slow_queue)
    monkeypatch.setattr("mstgat_core.dashboard.jobs.JOB_SLOTS.finish", lambda: None)
    assert run_in_a_fresh_loop(jobs.run("quick", lambda: 42, heavy=True)) == 42
    assert activity.progress == 0 and activity.progress_text.startswith("quick: finished in")
    assert float(activity.progress_text.split("in ")[1].split(" s")[0]) >= 0.6

    def cancelled():
        raise Cancelled("cancelled")

    run_in_a_fresh_loop(jobs.run("training", cancelled))
    assert activity.progress == 0 and "cancelled" in activity.progress_text and "finished" not in activity.progress_text


# ----------------------------------------------------------------------------------------------- item 14


def test_the_png_is_the_map_shown(session):
    """Item 14: the exported figure draws the map's layer with the map's colour limits, the outline and the
    deposits, axes in km naming the CRS (no 1e6 offset), the legend outside the map."""
    from mstgat_core.dashboard import plots_map
    from mstgat_core.dashboard.exports import export_png, map_figure

    session.data.ds = session.data.ds.rio.write_crs("EPSG:32650")
    fake_model_outputs(session)
    session.selection.layer = session.selection.layer_options()[-1]  # an element layer: a stretched range
    key = session.selection.layer_key(session.selection.layer)
    shown = plots_map.image(session.selection.layer_data(session.selection.layer), kind=key.colours)
    fig = map_figure(session)
    ax = fig.axes[0]
    image = ax.images[0]
    assert image.get_clim() == pytest.approx(shown.opts.get().kwargs["clim"])
    assert "km" in ax.get_xlabel() and "EPSG:32650" in ax.get_xlabel() and "km" in ax.get_ylabel()
    fig.canvas.draw()
    assert ax.xaxis.get_offset_text().get_text() == "" and ax.yaxis.get_offset_text().get_text() == ""
    assert len(ax.collections) >= 2  # the outline and the deposits
    legend = fig.legends[0] if fig.legends else ax.get_legend()
    renderer = fig.canvas.get_renderer()
    box, frame = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert not box.overlaps(frame)
    assert export_png(session).read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_fold_on_the_map_has_a_key_and_says_which_fold_it_is(session):
    """Item 14: the fold drawn on the map has legend entries and a line naming it."""
    from bokeh.models import Legend

    from mstgat_core.dashboard.components import MapTab
    from mstgat_core.dashboard.jobs import Jobs
    from mstgat_core.dashboard.views import map_panel

    session.evaluation.methods, session.evaluation.folds = ["best_single_element"], 3
    root = bokeh_root(map_panel(session, Jobs(session)))
    session.evaluation.cross_validate()
    session.evaluation.fold = session.evaluation.param.fold.objects[2]
    legend = next(m for m in root.references() if isinstance(m, Legend))
    labels = {getattr(item.label, "value", item.label) for item in legend.items if item.visible}
    assert {"held out", "trained on"} <= labels, labels
    text = markdown_text(MapTab(session, Jobs(session)).__panel__(), "mstgat-fold-readout")
    assert session.evaluation.fold in text
