"""The dashboard's Panel-free Session: state transitions without a browser."""

import pytest

from mstgat_core.errors import DataError


@pytest.fixture
def session(small_scenario):
    from mstgat_core.dashboard.state import Session

    s = Session()
    s.model.param.update(epochs=1, members=1)
    s.set_data(small_scenario.grid, small_scenario.deposits, "small synthetic")
    yield s
    s.cleanup()


def test_label_free_training_when_the_deposits_are_switched_off(session):
    assert session.data.deposit_mask is not None
    session.model.use_deposits = False
    fitted = session.train()
    assert fitted.model.head.share.item() == 0.0  # the map is the label-free score
    assert session.model.label.startswith("label-free") and "deposits switched off" in session.activity.status
    assert session.model.probability is not None and session.selection.layer == "probability"
    assert "model: label_free" in session.selection.layer_options()


def test_label_free_training_without_deposits_and_its_refusal_without_pretraining(session, small_scenario):
    session.set_data(small_scenario.grid, None, "no deposits")
    session.model.pretraining = False
    with pytest.raises(DataError, match="tick the pretraining box"):
        session.train()
    assert session.model.fitted is None
    session.model.pretraining = True
    session.train()
    assert "no deposits loaded" in session.activity.status


def test_zone_outline_is_a_share_of_the_area_and_counts_the_deposits(session):
    import numpy as np

    assert "No model yet" in session.selection.zone_readout()
    session.train()
    score = session.model.probability.values
    valid = np.isfinite(score)
    deposits = np.asarray(session.data.deposit_mask.values, dtype=bool) & valid
    counts = []
    for share, label in ((0.05, "top 5 %"), (0.20, "top 20 %")):
        session.selection.top_share = label
        cut = session.selection.zone_cut()
        assert np.mean(score[valid] >= cut) == pytest.approx(share, abs=0.005)  # a share of the valid cells
        counts.append(int((score[deposits] >= cut).sum()))
        assert f"holds {counts[-1]} of {int(deposits.sum())} deposit cells" in session.selection.zone_readout()
    assert counts[0] <= counts[1]


def test_the_demo_model_is_predicted_once_per_process_and_each_session_has_its_own_network():
    from mstgat_core.dashboard.state import Session
    from mstgat_core.training.demo import _DEMO_MODEL_CACHE

    sessions = [Session(), Session()]
    try:
        for s in sessions:
            s.load_demo()
        assert len(_DEMO_MODEL_CACHE) == 1
        a, b = sessions
        assert a.model.layers is b.model.layers  # one prediction shared (read-only)
        assert (
            a.model.fitted is not b.model.fitted and a.model.fitted.model is not b.model.fitted.model
        )  # networks copied
        assert a.selection.layer == "probability" and a.model.label == "bundled South China checkpoint"
    finally:
        for s in sessions:
            s.cleanup()


def test_layers_are_grouped_and_a_click_reports_rank_uncertainty_and_novelty():
    from mstgat_core.dashboard.state import Session

    s = Session()
    try:
        s.load_demo()
        groups = s.selection.layer_groups()
        assert list(groups) == ["Model outputs", "Uncertainty", "Elements"]
        assert "model: uncertainty" in groups["Uncertainty"] and "element: Li" in groups["Elements"]
        assert sorted(sum(groups.values(), [])) == sorted(s.selection.layer_options())
        rows, cols = s.model.prepared.graph.rows_cols
        row, col = int(rows[500]), int(cols[500])
        x, y = float(s.data.ds["x"][col]), float(s.data.ds["y"][row])
        exp = s.explanation.explain_at(x, y)
        for name in ("percentile", "uncertainty", "top_agreement", "novelty"):
            assert exp.attrs[name] == pytest.approx(float(s.model.layers[name].values[row, col]))
    finally:
        s.cleanup()


def test_synthetic_truth_is_shown_where_it_was_planted():
    import numpy as np

    from mstgat_core.dashboard.state import Session

    s = Session()
    s.data.param.update(synth_rows=64, synth_cols=64, synth_seed=0)
    try:
        s.load_synthetic()
        table = s.data.truth_table()
        assert len(table) == sum(len(a["centres"]) for a in s.data.truth["anomalies"])
        ore = table[table["kind"].str.startswith("ore")]
        # every deposit lies inside a planted ore circle (deposits are drawn within 0.4 x scale of a centre)
        dx = s.data.deposits.geometry.x.values[:, None] - ore["x"].values[None]
        dy = s.data.deposits.geometry.y.values[:, None] - ore["y"].values[None]
        assert (np.hypot(dx, dy) <= ore["radius"].values[None]).any(axis=1).all()
        s.load_demo()
        assert s.data.truth is None and s.data.truth_table() is None
    finally:
        s.cleanup()


def test_the_bundled_model_says_what_it_was_trained_on_and_its_cross_validated_score():
    import json

    from mstgat_core.dashboard.state import Session
    from mstgat_core.dashboard.state_model import DEMO_REPORT

    s = Session()
    try:
        assert s.model.provenance() == ""
        s.load_demo()
        text = s.model.provenance()
        expected = json.loads(DEMO_REPORT.read_text())["results"]["mstgat"]["roc_auc_mean"]
        assert f"ROC-AUC {expected:.3f}" in text
        assert "Pretrained without labels: 30 epochs" in text and "5 member(s)" in text
    finally:
        s.cleanup()


def test_a_click_updates_the_explanation_plots_in_place(session):
    """The explanation's Bokeh figures are built once per model; a click changes their data, never the figures
    (rebuilding eight figures per click took seconds in the browser)."""
    from bokeh.document import Document
    from bokeh.models import ColumnDataSource, Plot

    from mstgat_core.dashboard.views import explanation_plots

    session.train()
    root = explanation_plots(session, session.model.fitted).get_root(Document())

    def figures():
        return {m.id: m.title.text for m in root.references() if isinstance(m, Plot)}

    def axes():  # Bokeh cannot turn a numeric axis into a categorical one in place: categorical from the start
        return {
            m.id: (type(m.x_range).__name__, type(m.y_range).__name__) for m in root.references() if isinstance(m, Plot)
        }

    def rows():
        return sum(len(next(iter(m.data.values()), [])) for m in root.references() if isinstance(m, ColumnDataSource))

    before, rows_before, axes_before = figures(), rows(), axes()
    assert sum(kinds.count("FactorRange") for kinds in axes_before.values()) >= 6  # bars x 3, heatmap x 2, scales
    assert sum(title == "click a cell of the map" for title in before.values()) == 4
    grid = session.data.ds
    session.explanation.cell = session.explanation.explain_at(float(grid.x[20]), float(grid.y[30]))
    after = figures()
    assert after.keys() == before.keys() and axes() == axes_before  # the same figures and axes ...
    assert any(title.startswith("[CLS] attention") for title in after.values())  # ... retitled
    assert any(title.startswith("IG") for title in after.values())
    assert any(title.startswith("composition") for title in after.values())
    assert rows() > rows_before  # ... and filled
    session.explanation.cell = session.explanation.explain_at(float(grid.x[40]), float(grid.y[10]))
    assert figures().keys() == before.keys()


def test_a_click_reads_the_cells_composition_beside_the_model(session):
    import numpy as np
    from scipy.stats import percentileofscore

    session.train()
    grid = session.data.ds
    exp = session.explanation.explain_at(float(grid.x[20]), float(grid.y[30]))
    table = exp.attrs["composition"].set_index("element")
    assert list(table.index) == session.model.fitted.elements
    row, col = exp.attrs["row"], exp.attrs["col"]
    for element in table.index:
        values = grid[element].values
        assert table.loc[element, "value"] == values[row, col]
        expected = percentileofscore(values[np.isfinite(values)], values[row, col], kind="mean")
        assert table.loc[element, "percentile"] == pytest.approx(expected)


def test_a_grid_made_from_samples_shows_how_far_each_cell_is_from_a_sample(tmp_path):
    import numpy as np
    import pandas as pd

    from mstgat_core.dashboard.state import Session
    from mstgat_core.dashboard.state_selection import SUPPORT_LAYER

    rng = np.random.default_rng(5)
    lonlat = rng.uniform(0, 0.3, size=(300, 2)) + [25.0, 67.0]  # lon/lat: projected to UTM on upload
    table = pd.DataFrame({"lon": lonlat[:, 0], "lat": lonlat[:, 1]})
    for element in ("Au_ppb", "As_ppm", "Cu_ppm", "Pb_ppm"):
        table[element] = rng.lognormal(size=len(table))
    session = Session()
    session.data.cell_size = 1000.0
    session.model.param.update(epochs=1, members=1)
    try:
        session.load_grid_upload({"samples.csv": table.to_csv(index=False).encode()})
        assert session.selection.layer_groups()["Interpolation"] == [SUPPORT_LAYER]
        support = session.selection.layer_data(SUPPORT_LAYER)
        row, col = np.unravel_index(np.nanargmax(support.values), support.shape)
        assert session.model.cell_outputs(row, col)["nearest_sample"] == support.values[row, col]
        assert support.values[row, col] > support.attrs["median_spacing"]  # a cell to read with care
        session.set_data(session.data.ds, None, "the same grid, no longer from samples")
        assert SUPPORT_LAYER not in session.selection.layer_options()
    finally:
        session.cleanup()


def test_a_basemap_needs_a_crs_and_says_so(session, small_scenario):
    session.selection.basemap = True
    assert session.selection.basemap and not session.activity.error  # the synthetic grid has EPSG:32650
    no_crs = small_scenario.grid.drop_vars("spatial_ref", errors="ignore")
    no_crs.attrs.pop("crs", None)
    for name in no_crs.data_vars:
        no_crs[name].attrs.pop("grid_mapping", None)
    assert no_crs.rio.crs is None
    session.set_data(no_crs, None, "no CRS")
    assert not session.selection.basemap and "a basemap needs one" in session.activity.error


def test_the_basemap_map_is_projected_onto_the_configured_tiles(session, monkeypatch):
    from bokeh.document import Document
    from bokeh.models import Plot, WMTSTileSource

    from mstgat_core.dashboard.views import Jobs, map_panel

    monkeypatch.setenv("MSTGAT_TILE_URL", "http://127.0.0.1:9/{Z}/{X}/{Y}.png")
    session.selection.basemap = True
    root = map_panel(session, Jobs(session)).get_root(Document())
    models = list(root.references())
    assert [m.url for m in models if isinstance(m, WMTSTileSource)] == ["http://127.0.0.1:9/{Z}/{X}/{Y}.png"]
    (figure,) = [m for m in models if isinstance(m, Plot) and m.title and m.title.text.startswith("element")]
    # the grid's cell-edge corners (400-456 km E, 2,600-2,664 km N of UTM 50N) in web-Mercator metres
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:32650", "EPSG:3857", always_xy=True).transform(
        [400_000, 456_000, 400_000, 456_000], [2_600_000, 2_600_000, 2_664_000, 2_664_000]
    )
    shown = (figure.x_range.start, figure.x_range.end, figure.y_range.start, figure.y_range.end)
    assert shown == pytest.approx((min(x), max(x), min(y), max(y)), abs=500)
    # switched off, the same pane draws the map in the grid's own CRS again, without tiles
    session.selection.basemap = False
    models = list(root.references())
    assert not [m for m in models if isinstance(m, WMTSTileSource)]
    (figure,) = [m for m in models if isinstance(m, Plot) and m.title and m.title.text.startswith("element")]
    assert (figure.x_range.start, figure.x_range.end) == pytest.approx((400_000, 456_000), abs=1_000)


def test_linked_brushing_picks_cells_on_the_map_or_the_scatter_and_shows_them_in_the_other(session):
    import numpy as np
    from bokeh.document import Document
    from bokeh.models import GlyphRenderer

    from mstgat_core.dashboard.views import Jobs, brush_panel, map_panel

    grid = session.data.ds
    x, y = grid.x.values, grid.y.values
    valid = session.data.valid_cells()
    # a box on the map: exactly the valid cells whose centres lie inside it
    picked = session.selection.brush_map_box(x[10], y[5], x[30], y[25])
    expected = np.zeros_like(valid)
    expected[5:26, 10:31] = True
    np.testing.assert_array_equal(picked, expected & valid)
    deposits = np.asarray(session.data.deposit_mask.values, dtype=bool)
    assert session.selection.brush_readout() == (
        f"{int(picked.sum()):,} cells picked by a box on the map, "
        f"{int((picked & session.selection.measured_cells()).sum()):,} on measured ground; "
        f"{int((deposits & picked).sum())} of {int(deposits.sum())} deposit cells among them."
    )
    # a box on the scatter plot: the cells whose log10 values of the two elements lie inside it
    session.selection.brush_x, session.selection.brush_y = session.data.grid_elements[:2]
    lx, ly = (np.log10(grid[e].values) for e in session.data.grid_elements[:2])
    x0, x1 = np.nanpercentile(lx, [20, 60])
    y0, y1 = np.nanpercentile(ly, [30, 90])
    picked = session.selection.brush_scatter_box(x1, y1, x0, y0)  # corners in any order
    np.testing.assert_array_equal(picked, (lx >= x0) & (lx <= x1) & (ly >= y0) & (ly <= y1))
    assert "a box on the scatter plot" in session.selection.brush_readout()

    # the dashboard draws them: orange cells on the map, orange points on the scatter, an orange share of the bars
    def rows(root, colour, column=None):
        """Rows of each renderer filled with ``colour``, or the sum of its ``column``."""
        return [
            (int(sum(r.data_source.data[column])) if column else len(next(iter(r.data_source.data.values()))))
            for r in root.references()
            if isinstance(r, GlyphRenderer)
            and getattr(r.glyph, "fill_color", None) == colour
            and (column is None or column in r.data_source.data)
        ]

    the_map = map_panel(session, Jobs(session)).get_root(Document())
    brushing = brush_panel(session).get_root(Document())
    assert rows(the_map, "#ff7f0e") == [int(picked.sum())]
    finite = np.isfinite(lx) & np.isfinite(ly)
    assert int((picked & finite).sum()) in rows(brushing, "#ff7f0e")  # the scatter's picked points
    layer = np.asarray(session.selection.layer_data(session.selection.layer).values)
    assert int((picked & np.isfinite(layer)).sum()) in rows(brushing, "#ff7f0e", "top")  # the histogram's bars
    session.selection.brush_map_box(x[20], y[20], x[23], y[23])  # updated in place, in both
    n = int(valid[20:24, 20:24].sum())
    assert n > 0 and rows(the_map, "#ff7f0e") == [int(session.selection.brushed.sum())] == [n]
    assert n in rows(brushing, "#ff7f0e") and n in rows(brushing, "#ff7f0e", "top")


def test_a_cross_validation_fold_is_drawn_on_the_map(session):
    import numpy as np
    from bokeh.document import Document
    from bokeh.models import GlyphRenderer

    from mstgat_core.dashboard.state_evaluation import NO_FOLD
    from mstgat_core.dashboard.views import Jobs, map_panel

    session.evaluation.methods, session.evaluation.folds = ["best_single_element"], 3
    root = map_panel(session, Jobs(session)).get_root(Document())

    from mstgat_core.dashboard.plots_map import HELD_OUT_COLOUR, TRAINED_COLOUR

    glyphs = {  # the fold's three layers, told apart by their style
        "held out": lambda g: g.line_color == HELD_OUT_COLOUR and g.marker == "square",
        "trained on": lambda g: g.fill_color == TRAINED_COLOUR,
        "dropped by the buffer": lambda g: g.marker == "x",
    }

    def drawn(label):
        renderers = [r for r in root.references() if isinstance(r, GlyphRenderer) and hasattr(r.glyph, "marker")]
        return sum(len(r.data_source.data["x"]) for r in renderers if glyphs[label](r.glyph))

    assert session.evaluation.param.fold.objects == [NO_FOLD] and drawn("held out") == 0
    session.evaluation.cross_validate()
    assert session.evaluation.param.fold.objects == [NO_FOLD, "seed 1, fold 1", "seed 1, fold 2", "seed 1, fold 3"]
    for label in session.evaluation.param.fold.objects[1:]:
        session.evaluation.fold = label
        role = session.evaluation.fold_shown()
        assert drawn("held out") == role["test_deposits"].sum() > 0
        assert drawn("trained on") == role["train_deposits"].sum() > 0
        deposits = np.asarray(session.data.deposit_mask.values, dtype=bool)
        assert drawn("dropped by the buffer") == (deposits & ~role["test_deposits"] & ~role["train_deposits"]).sum()
    session.evaluation.fold = NO_FOLD
    assert drawn("held out") == 0


def test_a_clicked_cells_neighbours_are_drawn_on_the_map_by_weight(session):
    import holoviews as hv
    import numpy as np

    from mstgat_core.dashboard import plots_explain, plots_map

    hv.extension("bokeh")

    session.train()
    grid = session.data.ds
    exp = session.explanation.explain_at(float(grid.x[25]), float(grid.y[30]))
    segments = plots_map.neighbour_segments(exp, "mean", grid.x.values, grid.y.values).dframe()
    scale = int(exp["scale_weights"]["scale"].values[np.argmax(exp["scale_weights"].values)])
    weights = (
        plots_explain.neighbour_weights(exp, "mean")
        .sel(scale=scale)
        .sel(dy=slice(-scale, scale), dx=slice(-scale, scale))
    )
    edges = np.isfinite(weights.values)
    edges[scale, scale] = False  # not the cell itself
    assert len(segments) == edges.sum() > 0
    assert (segments[["x0", "y0"]].values == [grid.x.values[25], grid.y.values[30]]).all()
    assert np.allclose(np.sort(segments["weight"]), np.sort(weights.values[edges]))
    assert (np.diff(segments.sort_values("weight")["width"]) >= 0).all()  # wider for a heavier neighbour
    assert len(plots_map.neighbour_segments(None, "mean", grid.x.values, grid.y.values).dframe()) == 0


def test_new_data_with_other_elements_redraw_the_linked_views_without_error(session, small_scenario):
    from bokeh.document import Document

    from mstgat_core.dashboard.views import brush_panel

    brush_panel(session).get_root(Document())
    assert (
        session.selection.brush_x in session.data.grid_elements
        and session.selection.brush_y in session.data.grid_elements
    )
    renamed = small_scenario.grid.rename({name: f"{name}_other" for name in small_scenario.grid.data_vars})
    session.set_data(renamed, None, "other elements")  # raised KeyError when one scatter axis was updated first
    assert session.selection.brush_x in renamed and session.selection.brush_y in renamed and not session.activity.error


def assert_same_layers_across_machines(kept, fresh):
    """The cached layers were computed on another CPU: float32 sums differ in the last bits there (and with the
    thread count), so each layer is compared with a tolerance that fits its meaning, not bit for bit.

    * values (score, label-free score, calibrated probability, spread): relative 1e-3;
    * novelty is divided by a 99.5th percentile of the grid, which moves with those bits: relative 1e-2;
    * ranks (percentile; top agreement is a share of members ranking a cell in their top 5 %): near-ties
      swap, so a cell's percentile may move by a few ranks (0.1 percentage point = 7 of 7,533 cells) and
      at most 1 % of the cells may change their top-5 % agreement;
    * the support is exact (no arithmetic).
    """
    import numpy as np

    for name in kept.data_vars:
        a, b = kept[name].values, fresh[name].values
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if name == "percentile":
            assert np.abs(a - b).max() <= 0.1, name
        elif name == "top_agreement":
            assert np.mean(a != b) <= 0.01, name
        elif name == "support":
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-2 if name == "novelty" else 1e-3, atol=1e-4, err_msg=name)


def test_the_kept_demo_layers_are_the_bundled_checkpoints_prediction(tmp_path):
    import shutil

    from mstgat_core.paths import DEMO_CHECKPOINT, DEMO_DEPOSITS, DEMO_GRID
    from mstgat_core.training.checkpoint import load_checkpoint
    from mstgat_core.training.demo import load_demo_cached, read_demo_layers

    kept = read_demo_layers(DEMO_CHECKPOINT, DEMO_GRID)
    assert kept is not None, "assets/mstgat_south_china_layers.nc is missing or stale: run scripts/build_checkpoint.py"
    ds, _ = load_demo_cached(str(DEMO_GRID), str(DEMO_DEPOSITS))
    fresh = load_checkpoint(DEMO_CHECKPOINT).predict_layers(ds)
    assert set(kept.data_vars) == set(fresh.data_vars) and kept.rio.crs == ds.rio.crs
    assert_same_layers_across_machines(kept, fresh)
    other = tmp_path / "other.safetensors"  # another checkpoint: the kept layers are not its prediction
    shutil.copy(DEMO_CHECKPOINT, other)
    other.write_bytes(other.read_bytes() + b" ")
    assert read_demo_layers(other, DEMO_GRID) is None


def test_map_layers_are_typed_keys_found_by_their_label(session):
    import numpy as np

    from mstgat_core.dashboard.state_selection import MapLayer

    session.train()
    session.compute_maps()
    keys = session.selection.layer_keys()
    kinds = {key.kind for key in keys}
    assert {"probability", "model", "CLS attention", "scale weight", "neighbour entropy", "element"} <= kinds
    assert session.selection.layer_options() == [key.label for key in keys]
    shape = (session.data.ds.sizes["y"], session.data.ds.sizes["x"])
    for key in keys:
        assert session.selection.layer_key(key.label) == key
        values = session.selection.layer_data(key.label)
        assert values is not None and values.shape == shape, key
    element = session.data.grid_elements[0]
    np.testing.assert_array_equal(
        session.selection.layer_data(f"element: {element}").values, session.data.ds[element].values
    )
    np.testing.assert_array_equal(
        session.selection.layer_data("scale weight: 2").values,
        session.explanation.maps["scale_weights"].sel(scale=2).values,
    )
    assert (
        session.selection.layer_key("element: Unobtainium") is None
        and session.selection.layer_data("element: Unobtainium") is None
    )
    assert [
        MapLayer("probability").colours,
        MapLayer("attribution", "Li").colours,
        MapLayer("element", "Li").colours,
    ] == [
        "probability",
        "signed",
        "value",
    ]
    groups = session.selection.layer_groups()
    assert groups["Elements"] == [f"element: {e}" for e in session.data.grid_elements]
    assert "model: novelty" in groups["Uncertainty"] and "CLS attention: " + element in groups["Explanations"]


def test_every_component_is_built_on_one_base():
    """The Viewer components share one scaffold: session and jobs as params, ``__panel__`` written once."""
    import inspect

    from panel.viewable import Viewer

    from mstgat_core.dashboard import components

    viewers = [
        c
        for _, c in inspect.getmembers(components, inspect.isclass)
        if issubclass(c, Viewer) and c.__module__ == components.__name__
    ]
    assert len(viewers) == 10 and all(issubclass(c, components.Component) for c in viewers)
    assert [c.__name__ for c in viewers if "__panel__" in vars(c)] == ["Component"]


def test_errors_name_the_control_in_the_page_not_the_cli_flag():
    """A library error that names its setting reads, in the page, with the control's label (never '--folds')."""
    from mstgat_core.dashboard.activity import Activity
    from mstgat_core.errors import DataError

    activity = Activity()
    message = activity.fail(DataError("fold 2 leaves no training positives: use fewer folds", setting="n_folds"))
    assert message.endswith("(in the page: Folds)") and "--" not in message and activity.error == message
    assert activity.fail(DataError("buffer too wide", setting="buffer")) == "buffer too wide"  # no control for it


def test_a_click_on_a_survey_of_30000_samples_is_answered_on_the_samples_subgraph(tiny_point_model):
    """Issue 26: a large point survey scored in the session (a tiny model, one step); the click finds the
    nearest sample and explains it on its receptive subgraph (a few samples, not 30,000) with the values of
    the whole graph; the map rasterises the samples and draws dots with hover once few are in view."""
    import geopandas as gpd
    import holoviews as hv
    import numpy as np
    import torch

    from mstgat_core.dashboard import plots_map
    from mstgat_core.dashboard.state import Session
    from mstgat_core.data.points import PointSamples

    rng = np.random.default_rng(0)
    n = 30_000
    xy = rng.uniform(0, 100_000, (n, 2))
    table = gpd.GeoDataFrame(
        {e: rng.lognormal(i, 0.5, n) for i, e in enumerate("ABCD")},
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
        crs="EPSG:32633",
    )
    session = Session()
    try:
        session.data.samples = PointSamples(table, list("ABCD"), table.crs, {}, "")
        scores = session.score_samples()
        assert len(scores) == n and "scored 30000 samples" in session.activity.status
        fitted = session.model.point_model
        x, y = xy[1234] + 3.0
        sample = session.explanation.explain_sample_at(x, y)
        assert sample["sample"] == int(np.argmin(np.hypot(*(xy - (x, y)).T))) == 1234
        assert sample["subgraph_nodes"] <= 1 + 8  # the sample and its 8 nearest (one GAT layer), of 30,000
        with torch.no_grad():  # the whole graph's explanation of that sample
            _, whole = fitted.model(fitted.x, list(fitted.graph.edge_index), nodes=[1234], return_details=True)
        np.testing.assert_allclose(sample["scale_weights"], whole.scale_weights[0].numpy(), atol=1e-6)
        for scale, layers in zip(sample["neighbours"], whole.neighbour_attention):
            edges, alpha = layers[-1]
            into = edges[1] == 1234
            weights = dict(zip(edges[0][into].tolist(), alpha[into].mean(dim=1).tolist()))
            np.testing.assert_allclose(scale["weight"], [weights[s] for s in scale["sample"]], atol=1e-6)
        assert sample["anomaly_score"] == scores["anomaly_score"][1234]
    finally:
        session.cleanup()
    # the map: 30,000 samples rasterised (no dots); zoomed in to a few hundred, dots with hover
    hv.extension("bokeh")
    raster = plots_map.sample_raster(None, scores, width=200, height=200)
    assert np.isfinite(raster.dimension_values(2)).sum() > 1000 and len(plots_map.sample_points(None, scores)) == 0
    view = {"x_range": (0, 10_000), "y_range": (0, 10_000)}
    dots = plots_map.sample_points(None, scores, **view)
    assert 0 < len(dots) < plots_map.SAMPLE_GLYPHS and len(dots) == ((xy < 10_000).all(axis=1)).sum()
    assert not np.isfinite(plots_map.sample_raster(None, scores, **view).dimension_values(2)).any()


def test_a_large_box_is_summarised_from_a_seeded_sample_of_its_cells_and_says_so(session, monkeypatch):
    """The region summary's IG rests on at most REGION_SAMPLE cells (a 2,000-cell box took 50-140 s in full);
    the text says how many of the box's cells the attributions come from."""
    from mstgat_core.dashboard import map_view, state_explain, views  # noqa: F401  (views loads the Bokeh backend)

    monkeypatch.setattr(state_explain, "REGION_SAMPLE", 30)
    session.train()
    grid = session.data.ds
    xs, ys = grid.x.values, grid.y.values
    session.compute_maps()
    summary = session.explanation.summarise_region(xs[5], ys[5], xs[30], ys[30])
    assert summary["n_cells"] > 30 and summary["attributed_cells"] == 30
    session.explanation.region = summary
    text = map_view.region_panel(session)[0].object
    assert f"a random 30 of the {summary['n_cells']:,} cells" in text
    small = session.explanation.summarise_region(xs[20], ys[20], xs[23], ys[23])
    assert small["attributed_cells"] == small["n_cells"] <= 16  # a small box is attributed whole
