"""Issue 29, defects 1-7 found by walking through the dashboard, checked on the session and its Bokeh models
(no browser; what only the page shows is in tests/ui/test_defects.py)."""

import numpy as np
import pandas as pd
import pytest
from bokeh_models import bokeh_root, glyph_renderers, rows


@pytest.fixture
def session():
    from mstgat_core.dashboard.state import Session

    s = Session()
    yield s
    s.cleanup()


def lonlat_samples(n_sites=60, repeats=1, jitter_m=0.0, seed=0) -> pd.DataFrame:
    """A lon/lat survey near Katanning (WA) on a ~1.1 km lattice, each site sampled ``repeats`` times (the
    repeats ``jitter_m`` metres apart at most), with a SAMPLEID column."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_sites)))
    lon, lat = np.meshgrid(117.0 + 0.012 * np.arange(side), -33.3 + 0.01 * np.arange(side))
    lon, lat = np.repeat(lon.ravel()[:n_sites], repeats), np.repeat(lat.ravel()[:n_sites], repeats)
    offset = jitter_m / 111_000.0
    lon, lat = lon + rng.uniform(-offset, offset, len(lon)), lat + rng.uniform(-offset, offset, len(lat))
    table = pd.DataFrame({"SAMPLEID": [f"S-{i:04d}" for i in range(len(lon))], "X": lon, "Y": lat})
    for i, element in enumerate(("Au_ppb", "As_ppm", "Cu_ppm", "Zn_ppm")):
        table[element] = rng.lognormal(i, 0.5, len(table))
    return table


def upload(session, table: pd.DataFrame, name="samples.csv", cell_size=500.0):
    session.data.cell_size = cell_size
    session.load_grid_upload({name: table.to_csv(index=False).encode()})


# ----------------------------------------------------------------------------------------------- defect 1


def test_sites_in_lonlat_land_on_a_projected_grid_whatever_their_format(session, tmp_path):
    """Defect 1: sites given in lon/lat (columns lon/lat, X/Y in degree range, a GeoPackage in EPSG:4326) are
    projected onto the grid's UTM cells as the samples were; sites off the survey are refused in one line."""
    import geopandas as gpd

    from mstgat_core.errors import DataError

    samples = lonlat_samples(n_sites=100)
    upload(session, samples, cell_size=1000.0)
    assert session.data.ds.rio.crs.to_epsg() == 32750  # the samples were projected to UTM 50S
    sites = samples.iloc[[5, 40, 77]]
    as_lonlat = pd.DataFrame({"name": ["a", "b", "c"], "lon": sites["X"].values, "lat": sites["Y"].values})
    frame = gpd.GeoDataFrame(
        as_lonlat[["name"]], geometry=gpd.points_from_xy(as_lonlat["lon"], as_lonlat["lat"]), crs="EPSG:4326"
    )
    frame.to_file(tmp_path / "sites.gpkg")
    files = {
        "sites_lonlat.csv": as_lonlat.to_csv(index=False).encode(),
        "sites_xy.csv": as_lonlat.rename(columns={"lon": "X", "lat": "Y"}).to_csv(index=False).encode(),
        "sites.gpkg": (tmp_path / "sites.gpkg").read_bytes(),
    }
    for name, data in files.items():
        session.load_deposits_upload({name: data})
        assert session.activity.status.startswith("deposits: 3 of 3 deposits in 3 cells"), (
            name,
            session.activity.status,
        )
        assert session.data.deposits.crs.to_epsg() == 4326 and int(session.data.deposit_mask.sum()) == 3
    far = as_lonlat.assign(lon=as_lonlat["lon"] - 10.0)  # 10 degrees west: off the survey
    with pytest.raises(DataError, match="none of the 3 deposits falls on a valid cell"):
        session.load_deposits_upload({"far.csv": far.to_csv(index=False).encode()})


# ----------------------------------------------------------------------------------------------- defect 2


def test_the_log_colour_scale_makes_the_maps_colour_mapper_logarithmic(session, small_scenario):
    """Defect 2: ticking 'Log colour scale' with an element layer swaps the map's colour mapper (and its colour
    bar's) for a log mapper over positive limits; unticking it, or another kind of layer, brings the linear one
    back. Values at or below 0 are clipped to the smallest positive one."""
    from bokeh.models import Image, LinearColorMapper, LogColorMapper

    from mstgat_core.dashboard import plots_map
    from mstgat_core.dashboard.views import Jobs, map_panel

    grid = small_scenario.grid.copy()
    first = grid.data_vars.__iter__().__next__()
    skewed = grid[first].values.copy()
    skewed[0, :5] = [0.0, -1.0, 1e3, 1e4, 1e5]  # a skewed element with values at and below 0
    grid[first] = grid[first].copy(data=skewed)
    session.set_data(grid, None, "skewed")
    session.selection.layer = f"element: {first}"
    root = bokeh_root(map_panel(session, Jobs(session)))

    def mapper():
        images = [r for r in glyph_renderers(root) if isinstance(r.glyph, Image)]
        image = max(images, key=lambda r: np.asarray(r.data_source.data["image"][0]).size).glyph
        bars = [b for b in root.references() if type(b).__name__ == "ColorBar" and b.title.startswith("element")]
        return image.color_mapper, [b.color_mapper for b in bars]

    linear, _ = mapper()
    assert isinstance(linear, LinearColorMapper)
    session.selection.log_elements = True
    log, bars = mapper()
    assert isinstance(log, LogColorMapper) and bars == [log] and 0 < log.low < log.high
    session.selection.layer = "element: " + list(grid.data_vars)[1]  # another element: still log
    assert isinstance(mapper()[0], LogColorMapper)
    session.selection.log_elements = False
    assert isinstance(mapper()[0], LinearColorMapper)
    clipped = plots_map.image(grid[first], kind="value", log=True).dimension_values(2, flat=False)
    assert np.nanmin(clipped) == pytest.approx(float(np.min(skewed[skewed > 0])))


# ------------------------------------------------------------------------------------------- defects 3, 4


def fake_cell(grid, row, col):
    import xarray as xr

    x, y = float(grid.x[col]), float(grid.y[row])
    return xr.Dataset(attrs={"x": x, "y": y, "row": row, "col": col})


def cyan_squares(root):
    return [
        (list(r.data_source.data["x"]), list(r.data_source.data["y"]))
        for r in glyph_renderers(root)
        if getattr(r.glyph, "line_color", None) == "cyan"
        and getattr(r.glyph, "marker", None) == "square"
        and r.visible
        and rows(r)
    ]


def test_the_clicked_cells_square_follows_clicks_after_a_box_selection(session, small_scenario):
    """Defect 3: the picked cells of a box once had no label while empty; the new label made HoloViews draw
    another layer with the box's renderer, and the cyan square stayed where it was."""
    from mstgat_core.dashboard.views import Jobs, map_panel

    grid = small_scenario.grid
    session.set_data(grid, small_scenario.deposits, "small synthetic")
    root = bokeh_root(map_panel(session, Jobs(session)))
    session.explanation.cell = fake_cell(grid, 10, 12)
    assert cyan_squares(root) == [([float(grid.x[12])], [float(grid.y[10])])]
    session.selection.brush_map_box(float(grid.x[5]), float(grid.y[5]), float(grid.x[20]), float(grid.y[20]))
    for row, col in ((30, 40), (50, 8)):
        session.explanation.cell = fake_cell(grid, row, col)
        assert cyan_squares(root) == [([float(grid.x[col])], [float(grid.y[row])])]
    picked = [r for r in glyph_renderers(root) if getattr(r.glyph, "fill_color", None) == "#ff7f0e"]
    assert [rows(r) for r in picked] == [int(session.selection.brushed.sum())]


def test_planted_truth_circles_are_never_dimmed_by_a_click_and_come_back_with_the_scenario(session, small_scenario):
    """Defect 4: the planted circles (and their labels) are drawn at full opacity whatever a click or a box
    selects, in the renderers made for them, after loading and reloading a scenario on a map drawn before."""
    from mstgat_core.dashboard.views import Jobs, map_panel

    session.set_data(small_scenario.grid, None, "no truth yet")  # the map is first drawn without a scenario
    root = bokeh_root(map_panel(session, Jobs(session)))
    session.data.param.update(synth_rows=40, synth_cols=40)
    for seed in (0, 0, 1):  # load, reload, another scenario
        session.data.synth_seed = seed
        session.load_synthetic()
        table = session.data.truth_table()
        for colour, kind in (("#d62728", "ore"), ("#ff7f0e", "decoy")):
            circles = [r for r in glyph_renderers(root) if getattr(r.glyph, "line_color", None) == colour and r.visible]
            circles = [r for r in circles if type(r.glyph).__name__ in ("Patches", "MultiPolygons")]
            assert [rows(r) for r in circles] == [int(table["kind"].str.startswith(kind).sum())]
            assert circles[0].nonselection_glyph.line_alpha == 1 and circles[0].selection_glyph.line_alpha == 1
        (labels,) = [r for r in glyph_renderers(root) if type(r.glyph).__name__ == "Text" and r.visible]
        assert rows(labels) == len(table)


# ----------------------------------------------------------------------------------------------- defect 5


def test_the_basemap_image_covers_the_whole_grid(session):
    """Defect 5: the South China grid (UTM 50N, whose area of use starts at 114 degrees E) reaches 111 degrees
    E; projected onto web tiles its image was cut at about 113.6 degrees E."""
    from bokeh.models import Image
    from pyproj import Transformer

    from mstgat_core.dashboard.views import Jobs, map_panel
    from mstgat_core.paths import DEMO_DEPOSITS, DEMO_GRID
    from mstgat_core.training.demo import load_demo_cached

    ds, deposits = load_demo_cached(str(DEMO_GRID), str(DEMO_DEPOSITS))
    session.set_data(ds, deposits, "demo grid")
    session.selection.basemap = True
    root = bokeh_root(map_panel(session, Jobs(session)))
    image = max(
        (r for r in glyph_renderers(root) if isinstance(r.glyph, Image) and rows(r)),
        key=lambda r: np.asarray(r.data_source.data["image"][0]).size,
    )  # the layer's image, not the veil of unsupported ground nor the samples' raster
    data = image.data_source.data
    values = np.asarray(data["image"][0])
    x0, width = float(data["x"][0]), float(data["dw"][0])
    centres = x0 + (np.arange(values.shape[1]) + 0.5) * width / values.shape[1]
    drawn_west = float(centres[np.isfinite(values).any(axis=0)].min())  # web-Mercator metres
    to_lonlat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    rows_, cols_ = np.nonzero(np.isfinite(ds["Li"].values))
    to_grid_lonlat = Transformer.from_crs(ds.rio.crs, "EPSG:4326", always_xy=True)
    lon, _ = to_grid_lonlat.transform(ds.x.values[cols_], ds.y.values[rows_])
    assert lon.min() < 111.5  # the grid's valid cells reach 111 degrees E ...
    assert to_lonlat.transform(drawn_west, 3e6)[0] <= lon.min() + 0.1  # ... and so does its image


# ----------------------------------------------------------------------------------------------- defect 6


def test_the_sample_spacing_ignores_co_located_samples():
    """Defect 6: with most locations sampled twice or more (exactly, or a few millimetres apart), the typical
    spacing is that of the distinct locations, and so are the masking distance and the 'read with care' rule."""
    from mstgat_core.data.points import default_max_distance
    from mstgat_core.data.support import typical_spacing

    lattice = np.stack(np.meshgrid(np.arange(20) * 800.0, np.arange(20) * 800.0), -1).reshape(-1, 2)
    exact = np.repeat(lattice, 3, axis=0)
    near = exact + np.random.default_rng(0).uniform(-0.003, 0.003, exact.shape)  # 3 mm apart
    for xy in (lattice, exact, near):
        assert typical_spacing(xy) == pytest.approx(800.0, abs=0.01)
        assert default_max_distance(xy, 250.0) == pytest.approx(1600.0, abs=0.02)  # was 2 cells: 500 m
    assert typical_spacing(near, colocated_share=0.0) < 0.01  # the published cross-validation's rule


def test_a_survey_of_repeated_samples_flags_only_cells_far_from_every_sample(session):
    """Defect 6 in the page: every cell of a survey with repeated samples was 'interpolated between samples,
    not measured here' because the median sample spacing was read as 0."""
    table = lonlat_samples(n_sites=100, repeats=3, jitter_m=0.005)
    upload(session, table, cell_size=500.0)
    support = session.data.support
    assert support.attrs["median_spacing"] == pytest.approx(1_000, rel=0.2)
    finite = np.isfinite(support.values)
    far = support.values[finite] > support.attrs["median_spacing"]
    assert far.mean() < 0.5  # every cell, when the spacing was read as 0
    row, col = np.argwhere(finite)[np.argmin(support.values[finite])]
    outputs = session.model.cell_outputs(int(row), int(col))
    assert outputs["nearest_sample"] <= outputs["median_spacing"]


# ----------------------------------------------------------------------------------------------- defect 7


@pytest.fixture
def scored(session, tiny_point_model):
    """A lon/lat survey with SAMPLEID, uploaded and scored by a tiny model (one step)."""
    table = lonlat_samples(n_sites=80)
    upload(session, table, cell_size=1000.0)
    session.score_samples()
    return session, table


def test_scored_samples_are_named_placed_in_lonlat_ranked_and_explained(scored):
    """Defect 7: a sample is named by its SAMPLEID and placed in lon/lat as well as the map's CRS; the ranked
    table lists every sample from the highest score down; a row's sample is explained."""
    from mstgat_core.dashboard.views import sample_markdown

    session, table = scored
    scores = session.model.point_scores
    assert scores["sample"].tolist() == table["SAMPLEID"].tolist()
    np.testing.assert_allclose(scores[["lon", "lat"]].to_numpy(), table[["X", "Y"]].to_numpy(), atol=1e-7)
    ranked = session.model.ranked_samples()
    assert list(ranked.columns) == ["sample", "lon", "lat", "score", "percentile", "leading elements"]
    assert len(ranked) == len(table) and ranked["score"].is_monotonic_decreasing
    top = int(ranked.index[0])
    sample = session.explanation.explain_sample(top)
    assert sample["name"] == table["SAMPLEID"][top] and sample["percentile"] == ranked["percentile"].iloc[0]
    text = sample_markdown(sample)
    assert f"Sample {table['SAMPLEID'][top]} · label-free score" in text
    assert f"lon {table['X'][top]:.5f}, lat {table['Y'][top]:.5f}" in text
    assert "strongest neighbours sample S-" in text  # neighbours by name too
    clicked = session.explanation.explain_sample_at(float(scores["x"][7]) + 1.0, float(scores["y"][7]))
    assert clicked["name"] == "S-0007"


def test_sample_scores_have_a_colour_bar_a_highlighted_click_a_ranking_and_downloads(scored, tmp_path):
    """Defect 7 on the map and in the panel: the samples' colours get a colour bar once scored, the clicked
    sample is ringed, the ranked table is filled, and the scores download as CSV and GeoPackage as
    ``mstgat score`` writes them."""
    import geopandas as gpd
    from bokeh.models import ColorBar

    from mstgat_core.dashboard.exports import export_sample_scores
    from mstgat_core.dashboard.views import Jobs, map_panel, sample_panel

    session, table = scored
    root = bokeh_root(map_panel(session, Jobs(session)))
    bars = [b for b in root.references() if isinstance(b, ColorBar) and b.title == "samples: label-free score"]
    assert len(bars) == 1 and bars[0].visible
    scores = session.model.point_scores
    low, high = bars[0].color_mapper.low, bars[0].color_mapper.high
    assert (low, high) == pytest.approx((scores["anomaly_score"].min(), scores["anomaly_score"].max()))

    def rings():
        return [
            (list(r.data_source.data["x"]), list(r.data_source.data["y"]))
            for r in glyph_renderers(root)
            if getattr(r.glyph, "line_color", None) == "cyan"
            and getattr(r.glyph, "marker", None) == "circle"
            and rows(r)
        ]

    assert rings() == []
    session.explanation.sample = session.explanation.explain_sample(12)
    assert rings() == [([float(scores["x"][12])], [float(scores["y"][12])])]
    panel_root = bokeh_root(sample_panel(session, Jobs(session)))
    tables = [m for m in panel_root.references() if type(m).__name__ == "DataTabulator"]
    ranked = session.model.ranked_samples()
    row = int(np.flatnonzero(ranked.index == 12)[0])  # the clicked sample's row, shown on its page and selected
    assert tables and tables[0].source.data["sample"][0] == ranked["sample"].iloc[row // 10 * 10]
    assert tables[0].source.data["sample"][tables[0].source.selected.indices[0]] == ranked["sample"].iloc[row]
    csv = pd.read_csv(export_sample_scores(session, "csv"))
    assert csv["SAMPLEID"].tolist() == table["SAMPLEID"].tolist()
    assert {"anomaly_score", "anomaly_percentile", "top_elements", "contrib_Au"} <= set(csv.columns)
    (tmp_path / "scores.gpkg").write_bytes(export_sample_scores(session, "gpkg").read())
    gpkg = gpd.read_file(tmp_path / "scores.gpkg")
    assert gpkg.crs.to_epsg() == 4326 and len(gpkg) == len(table)  # the input's own CRS
    np.testing.assert_allclose(gpkg["anomaly_score"], csv["anomaly_score"])
