"""Issue 29, ioGAS-style brushing and the point survey end to end: a lasso on the map or the scatter plot, kept
(named) selections in their own colours, the ranked sample table linked both ways with the map, and the picked
cells counted the same way by the brushing readout and the region summary (session-level, no browser)."""

from collections import Counter

import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh_models import bokeh_root, glyph_renderers, rows
from test_dashboard_defects import lonlat_samples, upload

from mstgat_core.errors import DataError

pytestmark = pytest.mark.usefixtures("synchronous_callbacks")  # stream callbacks run before the event returns


def inside_polygon(px: float, py: float, polygon) -> bool:
    """Brute-force reference: even-odd ray casting for one point."""
    inside = False
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0)):
        if (y0 > py) != (y1 > py) and px < x0 + (py - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def concave_polygon(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """A concave lasso (an arrow head) on the grid, its vertices between cell centres (no centre on an edge)."""
    corners = [(3.3, 4.4), (40.6, 6.2), (22.2, 20.7), (45.1, 50.3), (5.8, 44.9)]  # (column, row), fractional
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    return np.array([(xs[0] + c * dx, ys[0] + r * dy) for c, r in corners])


def reference_pick(xs, ys, polygon, valid) -> np.ndarray:
    expected = np.array([[inside_polygon(x, y, polygon) for x in xs] for y in ys])
    return expected & valid


def renderers_of(root, colour):
    return [r for r in glyph_renderers(root) if getattr(r.glyph, "fill_color", None) == colour]


def kept_renderers(root):
    """The kept selections' renderers (the only ones naming a 'selection' for their hover)."""
    return [r for r in glyph_renderers(root) if "selection" in r.data_source.data]


def colours_drawn(root) -> Counter:
    """Points drawn per colour by the kept selections' renderers (a colour per point, or one for all)."""
    drawn = Counter()
    for r in kept_renderers(root):
        data = r.data_source.data
        drawn.update(data["color"] if "color" in data else [r.glyph.fill_color] * rows(r))
    return drawn


def markdown_text(panel_obj, css_class: str) -> str:
    panes = [p for p in panel_obj.select(pn.pane.Markdown) if css_class in p.css_classes]
    assert panes, css_class
    return str(panes[0].object)


@pytest.fixture
def scored(tiny_point_model):
    """A lon/lat survey with SAMPLEID, uploaded and scored by a tiny model (one step), as in
    tests/test_dashboard_defects.py."""
    from mstgat_core.dashboard.state import Session

    session = Session()
    table = lonlat_samples(n_sites=80)
    upload(session, table, cell_size=1000.0)
    session.score_samples()
    yield session, table
    session.cleanup()


# ----------------------------------------------------------------------------------------------- the lasso


def test_a_lasso_on_the_map_picks_exactly_the_cells_whose_centres_are_inside(dashboard_session):
    from mstgat_core.dashboard import plots_charts
    from mstgat_core.dashboard.views import Jobs, map_view

    session = dashboard_session
    grid = session.data.ds
    xs, ys = grid.x.values, grid.y.values
    valid = session.data.valid_cells()
    polygon = concave_polygon(xs, ys)
    expected = reference_pick(xs, ys, polygon, valid)
    box = np.zeros_like(valid)
    box[5:51, 4:46] = True
    assert expected.sum() > 100 and (expected != (box & valid)).any()  # the concave part is left out

    pane = map_view(session, Jobs(session))
    root = bokeh_root(pane)
    pane.lasso_stream.event(geometry=polygon)  # as the browser's lasso-select tool sends it
    np.testing.assert_array_equal(session.selection.brushed, expected)
    assert session.selection.brush_origin == "a lasso on the map"
    # drawn as a box's pick is: see-through orange cells on the map, counted in the readout
    (picked,) = renderers_of(root, plots_charts.BRUSH_COLOUR)
    assert rows(picked) == int(expected.sum()) and picked.glyph.fill_alpha <= 0.35
    assert session.selection.brush_readout().startswith(f"{int(expected.sum()):,} cells picked by a lasso on the map")
    # a lasso drawn backwards (clockwise) or closed picks the same cells; fewer than three points is refused
    np.testing.assert_array_equal(session.selection.brush_map_lasso(np.vstack([polygon[::-1], polygon[-1]])), expected)
    with pytest.raises(DataError, match="at least three points"):
        session.selection.brush_map_lasso(polygon[:2])
    pane.lasso_stream.event(geometry=polygon[:2])  # from the page: a one-line error, the pick unchanged
    assert "at least three points" in session.activity.error
    np.testing.assert_array_equal(session.selection.brushed, expected)


def test_a_lasso_on_the_scatter_plot_picks_the_cells_whose_values_are_inside(dashboard_session):
    from mstgat_core.dashboard import plots_charts
    from mstgat_core.dashboard.views import brush_panel

    session = dashboard_session
    grid = session.data.ds
    session.selection.brush_x, session.selection.brush_y = session.data.grid_elements[:2]
    lx, ly = (np.log10(grid[e].values) for e in session.data.grid_elements[:2])
    (x0, x1), (y0, y1) = np.nanpercentile(lx, [10, 90]), np.nanpercentile(ly, [10, 90])
    triangle = np.array([(x0, y0), (x1, y0 + 0.3 * (y1 - y0)), (x0 + 0.2 * (x1 - x0), y1)])
    expected = np.array([[inside_polygon(a, b, triangle) for a, b in zip(ra, rb)] for ra, rb in zip(lx, ly)])
    expected &= np.isfinite(lx) & np.isfinite(ly)
    assert 0 < expected.sum() < np.isfinite(lx).sum()

    panel = brush_panel(session)
    root = bokeh_root(panel)
    (scatter,) = [p for p in panel.select(pn.pane.HoloViews) if "mstgat-brush-scatter" in p.css_classes]
    scatter.lasso_stream.event(geometry=triangle)
    np.testing.assert_array_equal(session.selection.brushed, expected)
    assert "a lasso on the scatter plot" in markdown_text(panel, "mstgat-brush-readout")
    assert int(expected.sum()) in [rows(r) for r in renderers_of(root, plots_charts.BRUSH_COLOUR)]


# ----------------------------------------------------------------------------------------------- kept selections


def test_a_kept_selection_keeps_its_cells_and_colour_through_a_new_pick_and_clear(dashboard_session):
    from mstgat_core.dashboard.exports import export_kept_selections
    from mstgat_core.dashboard.state_selection import KEPT_COLOURS
    from mstgat_core.dashboard.views import Jobs, brush_panel, map_view

    session = dashboard_session
    grid = session.data.ds
    xs, ys = grid.x.values, grid.y.values
    lx, ly = (np.log10(grid[e].values) for e in (session.selection.brush_x, session.selection.brush_y))
    finite = np.isfinite(lx) & np.isfinite(ly)
    the_map = bokeh_root(map_view(session, Jobs(session)))
    panel = brush_panel(session)
    brushing = bokeh_root(panel)
    name = next(w for w in panel.select(pn.widgets.TextInput) if "mstgat-keep-name" in w.css_classes)
    keep = next(b for b in panel.select(pn.widgets.Button) if "mstgat-keep" in b.css_classes)
    (clear,) = [b for b in panel.select(pn.widgets.Button) if "clear" in b.name.lower()]

    with pytest.raises(DataError, match="nothing picked"):
        session.selection.keep_selection("empty")
    first = session.selection.brush_map_box(xs[2], ys[3], xs[20], ys[30]).copy()
    name.value = "north-west"
    keep.clicks += 1
    (kept,) = session.selection.kept
    assert (kept.name, kept.colour, kept.count) == ("north-west", KEPT_COLOURS[0], int(first.sum()))
    assert name.value == ""  # ready for the next name
    second = session.selection.brush_map_lasso(concave_polygon(xs, ys)).copy()  # a new pick
    assert kept.count == int(first.sum())  # the kept cells are a copy, not the pick
    with pytest.raises(DataError, match="kept already"):
        session.selection.keep_selection("north-west")
    with pytest.raises(DataError, match="name the selection"):
        session.selection.keep_selection("  ")
    name.value = "arrow"
    keep.clicks += 1
    clear.clicks += 1  # the current pick only
    assert session.selection.brushed is None
    assert [(k.name, k.colour) for k in session.selection.kept] == [
        ("north-west", KEPT_COLOURS[0]),
        ("arrow", KEPT_COLOURS[1]),
    ]
    np.testing.assert_array_equal(session.selection.kept[0].cells, first)
    np.testing.assert_array_equal(session.selection.kept[1].cells, second)
    # both drawn in their colours, see-through: on the map every cell, on the scatter the cells with both values
    assert colours_drawn(the_map) == {KEPT_COLOURS[0]: int(first.sum()), KEPT_COLOURS[1]: int(second.sum())}
    assert all(r.glyph.fill_alpha <= 0.35 for r in kept_renderers(the_map))
    assert colours_drawn(brushing) == {
        KEPT_COLOURS[0]: int((first & finite).sum()),
        KEPT_COLOURS[1]: int((second & finite).sum()),
    }
    # listed with their counts; the CSV holds every kept cell under its selection's name
    listed = [str(p.object) for p in panel.select(pn.pane.HTML) if "mstgat-kept-selection" in p.css_classes]
    assert [text.split("</span> ")[1] for text in listed] == [
        f"north-west: {int(first.sum()):,} cells",
        f"arrow: {int(second.sum()):,} cells",
    ]
    assert all(colour in text for colour, text in zip(KEPT_COLOURS, listed))
    table = session.selection.kept_table()
    assert Counter(table["selection"]) == {"north-west": int(first.sum()), "arrow": int(second.sum())}
    arrow = table[table["selection"] == "arrow"]
    np.testing.assert_array_equal(arrow[["x", "y"]].to_numpy(), np.column_stack([xs[arrow["col"]], ys[arrow["row"]]]))
    assert second[arrow["row"], arrow["col"]].all()
    csv = pd.read_csv(export_kept_selections(session))
    assert list(csv.columns) == ["row", "col", "x", "y", "selection", "colour"] and len(csv) == len(table)
    assert csv["selection"].tolist() == table["selection"].tolist()

    # removed: its overlay goes from the map and the scatter; its colour is free for the next one
    remove = [b for b in panel.select(pn.widgets.Button) if "mstgat-kept-remove" in b.css_classes]
    assert len(remove) == 2
    remove[0].clicks += 1
    assert [k.name for k in session.selection.kept] == ["arrow"]
    assert colours_drawn(the_map) == {KEPT_COLOURS[1]: int(second.sum())}
    assert set(colours_drawn(brushing)) == {KEPT_COLOURS[1]}
    session.selection.brush_map_box(xs[30], ys[30], xs[40], ys[40])
    assert session.selection.keep_selection("south").colour == KEPT_COLOURS[0]
    # new data: the kept selections meant cells of the old grid
    session.set_data(grid, None, "again")
    assert session.selection.kept == [] and colours_drawn(the_map) == {}
    with pytest.raises(DataError, match="no kept selection to export"):
        export_kept_selections(session)


# ----------------------------------------------------------------------------------------------- table <-> map


def test_a_row_selected_in_the_ranked_table_explains_its_sample_and_rings_it_on_the_map(scored):
    from mstgat_core.dashboard.views import Jobs, map_view, sample_panel

    session, table = scored
    the_map = bokeh_root(map_view(session, Jobs(session)))
    panel = sample_panel(session, Jobs(session))
    bokeh_root(panel)
    (ranked,) = panel.select(pn.widgets.Tabulator)
    order = session.model.ranked_samples()
    ranked.selection = [3]  # the fourth-highest score: a click on its row
    sample = session.explanation.sample
    assert sample is not None and sample["sample"] == int(order.index[3]) and sample["name"] == order["sample"].iloc[3]
    assert f"Sample {order['sample'].iloc[3]} · label-free score" in markdown_text(panel, "mstgat-sample-explanation")
    rings = [
        (list(r.data_source.data["x"]), list(r.data_source.data["y"]))
        for r in glyph_renderers(the_map)
        if getattr(r.glyph, "line_color", None) == "cyan" and getattr(r.glyph, "marker", None) == "circle" and rows(r)
    ]
    scores = session.model.point_scores
    assert rings == [([float(scores["x"][sample["sample"]])], [float(scores["y"][sample["sample"]])])]
    assert ranked.selection == [3]


def test_a_sample_clicked_on_the_map_is_selected_in_the_table_on_its_page_without_a_second_explanation(
    scored,
    monkeypatch,
):
    from mstgat_core.dashboard.views import Jobs, map_view, sample_panel

    session, table = scored
    pane = map_view(session, Jobs(session))
    bokeh_root(pane)
    panel = sample_panel(session, Jobs(session))
    (model,) = [m for m in bokeh_root(panel).references() if type(m).__name__ == "DataTabulator"]
    (ranked,) = panel.select(pn.widgets.Tabulator)
    explained = []
    explain_sample = session.explanation.explain_sample
    monkeypatch.setattr(session.explanation, "explain_sample", lambda i: explained.append(i) or explain_sample(i))
    order = session.model.ranked_samples()
    target = int(order.index[27])  # on the table's third page (10 rows a page)
    scores = session.model.point_scores
    pane.tap_stream.event(x=float(scores["x"][target]) + 1.0, y=float(scores["y"][target]))
    assert session.explanation.sample["sample"] == target
    assert ranked.selection == [27] and ranked.page == 3
    assert [model.source.data["sample"][i] for i in model.source.selected.indices] == [order["sample"].iloc[27]]
    assert explained == [target]  # the table's selection, set from the map, explained nothing again
    session.explanation.sample = None  # no sample: no row
    assert ranked.selection == []


# ----------------------------------------------------------------------------------------------- one count


def test_the_readout_and_the_region_summary_count_the_picked_cells_the_same_way(dashboard_session, monkeypatch):
    """The readout said '2,756 cells picked' and the region '2282 cells': the pick holds every cell with a value,
    the region only those on measured ground (every element, near a sample). Both now say both numbers."""
    from types import SimpleNamespace

    import xarray as xr

    from mstgat_core import interpret
    from mstgat_core.dashboard.views import Jobs, map_view, region_panel
    from mstgat_core.data.preprocess import valid_mask
    from mstgat_core.data.support import with_support

    session = dashboard_session
    grid = session.data.ds
    support = np.ones((grid.sizes["y"], grid.sizes["x"]), dtype=bool)
    support[:, :20] = False  # interpolated far from any sample on the west
    first = next(iter(grid.data_vars))
    partial = grid.assign({first: grid[first].where(np.arange(grid.sizes["y"])[:, None] % 7 != 0)})
    session.set_data(with_support(partial, support), None, "from samples")
    ds = session.data.ds
    xs, ys = ds.x.values, ds.y.values
    box = (xs[5], ys[5], xs[40], ys[50])
    inside = np.zeros_like(support)
    inside[5:51, 5:41] = True
    picked, measured = int((inside & session.data.valid_cells()).sum()), int((inside & valid_mask(ds)).sum())
    assert 0 < measured < picked  # some cells picked lack an element or a nearby sample
    session.selection.brush_map_box(*box)
    assert (
        session.selection.brush_readout()
        == f"{picked:,} cells picked by a box on the map, {measured:,} on measured ground."
    )

    # with a model, the map's box is summarised over the same measured cells (the library's summary stubbed)
    mask = valid_mask(ds)
    session.model.param.update(fitted=object(), prepared=SimpleNamespace(graph=SimpleNamespace(mask=mask), template=ds))
    session.model.probability = xr.DataArray(np.where(mask, 0.5, np.nan), coords=ds[first].coords, dims=("y", "x"))
    session.explanation.maps = xr.Dataset()
    summarised, meanwhile = [], []

    def summarise(fitted, prepared, region, **kw):  # what the region pane says while the summary is computed
        summarised.append(region)
        meanwhile.append(markdown_text(panel, "mstgat-region"))
        return {}

    monkeypatch.setattr(interpret, "summarise", summarise)
    pane = map_view(session, Jobs(session))
    bokeh_root(pane)
    panel = region_panel(session)
    bokeh_root(panel)
    pane.box_stream.event(bounds=box)
    np.testing.assert_array_equal(summarised[0], inside & mask)
    assert meanwhile == [
        f"**Summarising the {picked:,} picked cells...** (progress in the status bar; "
        "the previous region's summary is gone)"
    ]
    assert (
        session.selection.brush_readout()
        == f"{picked:,} cells picked by a box on the map, {measured:,} on measured ground."
    )
    assert markdown_text(panel, "mstgat-region").startswith(
        f"**Region:** {measured:,} cells on measured ground (of {picked:,} picked), mean probability 0.500"
    )


def test_the_kept_selections_take_no_legend_entry():
    """The scatter plot's legend showed an empty 'kept selections' entry before anything was kept; the colours
    are keyed by the list of kept selections beside the plots."""
    import holoviews as hv

    from mstgat_core.dashboard import plots_charts, views  # noqa: F401  (views loads the Bokeh backend)

    cells = hv.Points([(0.0, 0.0), (1.0, 1.0)], label="cells")
    overlay = cells * plots_charts.kept_points([], lambda index: (np.zeros(0), np.zeros(0)), ["x", "y"])
    figure = hv.render(overlay)
    labels = [item.label["value"] for legend in figure.legend for item in legend.items]
    assert "cells" in labels and "kept selections" not in labels
