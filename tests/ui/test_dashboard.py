"""Browser tests of the dashboard (pytest-playwright, system chromium)."""

from __future__ import annotations

import re
import time

import pytest

from mstgat_core.testing import (
    LONG,
    bokeh_plots,
    header_text,
    map_canvas,
    open_app,
    plot_titled,
    status_text,
    text_of,
    wait_text,
)

from .conftest import TIMINGS

# one worker runs every browser test against one server and one chromium (two would compete for 2 cores)
pytestmark = [pytest.mark.ui, pytest.mark.xdist_group("browser")]


def load_synthetic(page, epochs=None):
    page.locator(".mstgat-source select").first.select_option(label="Synthetic scenario")
    page.locator(".mstgat-load button").first.click()
    try:
        wait_text(page, ".mstgat-status", r"loaded synthetic scenario", timeout=30_000)
    except AssertionError:  # once in four CI runs the click right after an explanation was not received
        page.locator(".mstgat-load button").first.click()
        wait_text(page, ".mstgat-status", r"loaded synthetic scenario")
    if epochs is not None:
        box = page.locator(".mstgat-epochs input").first
        box.fill(str(epochs))
        box.press("Enter")
        box.blur()


def train(page, epochs):
    load_synthetic(page, epochs)
    page.locator(".mstgat-train button").first.click()
    wait_text(page, ".mstgat-status", r"(pre)?trained mstgat", timeout=600_000)


def click_map(page, fx, fy):
    canvas = map_canvas(page)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def test_app_loads_demo_and_renders_map(page, app_url):
    t0 = time.perf_counter()
    open_app(page, app_url)
    TIMINGS["page_to_map_s"] = time.perf_counter() - t0
    TIMINGS["serve_to_first_map_s"] = time.perf_counter() - TIMINGS["server_start"]
    print(
        f"\nserver start -> first rendered map: {TIMINGS['serve_to_first_map_s']:.1f} s "
        f"(page load -> map {TIMINGS['page_to_map_s']:.1f} s)"
    )
    assert "South China demo" in status_text(page)
    layer = page.locator(".mstgat-layer select").first.input_value()
    assert layer in ("probability", "element: Li")
    assert map_canvas(page).bounding_box()["width"] > 200
    assert page.locator(".mstgat-map canvas").count() >= 1


def explain_click(page, fx, fy, previous, timeout_s=150):
    """Click the map at a fraction of its frame; return (header text, seconds) or (None, error)."""
    err_loc = page.locator(".mstgat-error").first
    stale_error = text_of(page, ".mstgat-error") if err_loc.is_visible() else ""
    t0 = time.perf_counter()
    click_map(page, fx, fy)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        text = header_text(page)
        if "Cell row" in text and text not in previous:
            return text, time.perf_counter() - t0
        error = text_of(page, ".mstgat-error") if err_loc.is_visible() else ""
        # the previous click's error stays on the page until this click is handled: only a new one answers
        # (the same text again, e.g. two clicks outside the grid, is accepted once the page had time to answer)
        fresh = error != stale_error or time.perf_counter() - t0 > 10
        if fresh and re.search("no data|outside the grid", error):
            return None, error
        page.wait_for_timeout(100)
    raise AssertionError(
        f"no explanation {timeout_s} s after clicking at ({fx}, {fy}); header {text!r}; "
        f"status {status_text(page)!r}; error {text_of(page, '.mstgat-error')!r}"
    )


def test_two_clicks_give_two_explanations(page, app_url):
    open_app(page, app_url)
    if "no model" in status_text(page):
        train(page, epochs=2)
    page.wait_for_timeout(1500)  # let the re-rendered map settle
    before = header_text(page)
    assert "Cell row" not in before
    explained, seconds, answers = [], [], []
    candidates = [(0.35, 0.45), (0.55, 0.6), (0.5, 0.5), (0.45, 0.35), (0.6, 0.4)]
    for fx, fy in candidates:
        text, info = explain_click(page, fx, fy, explained + [before])
        answers.append(((fx, fy), text or info))
        if text is None:  # clicked a cell outside the survey area: try the next spot
            continue
        explained.append(text)
        seconds.append(info)
        if len(explained) == 2:
            break
    TIMINGS["click_to_explanation_s"] = seconds
    print(f"\nclick -> explanation (browser): {[round(t, 2) for t in seconds]} s")
    assert len(explained) == 2, (explained, answers)
    assert explained[0] != explained[1]
    rc = [re.search(r"Cell row (\d+), col (\d+) · probability ([0-9.]+)", t).groups() for t in explained]
    assert rc[0][:2] != rc[1][:2]
    # the explanation panes show something for this cell: attention bars and one heatmap per scale
    assert page.locator(".mstgat-explanation canvas").count() >= 3


def test_training_from_the_page_shows_progress_and_updates_map(page, app_url):
    open_app(page, app_url)
    load_synthetic(page, epochs=4)
    page.locator(".mstgat-train button").first.click()
    seen = wait_text(page, ".mstgat-progress", r"training: (preparing|pretraining epoch \d+/4)", timeout=LONG)
    epoch_text = wait_text(page, ".mstgat-progress", r"epoch [1-4]/4", timeout=600_000)
    wait_text(page, ".mstgat-status", r"pretrained mstgat, 5 member\(s\): [a-z-]+ route, head share", timeout=600_000)
    assert seen and epoch_text
    assert page.locator(".mstgat-layer select").first.input_value() == "probability"
    options = page.locator(".mstgat-layer select option").all_inner_texts()
    assert {"model: uncertainty", "model: percentile", "model: label_free"} <= set(options), options
    assert not page.locator(".mstgat-error").first.is_visible()


def test_invalid_upload_shows_error_and_app_keeps_working(page, app_url, tmp_path):
    open_app(page, app_url)
    bad = tmp_path / "not_a_grid.nc"
    bad.write_text("this is not a NetCDF file\n")
    page.locator(".mstgat-grid-upload input[type=file]").first.set_input_files(str(bad))
    wait_text(page, ".mstgat-error", r"Error", timeout=LONG)
    assert "Traceback" not in text_of(page, ".mstgat-error")
    # still usable: switch layer and reload the demo
    page.locator(".mstgat-layer select").first.select_option(label="element: As")
    page.wait_for_timeout(1000)
    assert page.locator(".mstgat-layer select").first.input_value() == "element: As"
    page.locator(".mstgat-load button").first.click()
    wait_text(page, ".mstgat-status", r"loaded South China demo")


def test_sessions_are_isolated(browser, app_url):
    a = browser.new_context().new_page()
    b = browser.new_context().new_page()
    try:
        open_app(a, app_url)
        open_app(b, app_url)
        layer_b = b.locator(".mstgat-layer select").first.input_value()
        a.locator(".mstgat-layer select").first.select_option(label="element: Cu")
        load_synthetic(a)
        assert "synthetic" in status_text(a)
        b.wait_for_timeout(1500)
        assert "South China demo" in status_text(b)
        assert "synthetic" not in status_text(b)
        assert b.locator(".mstgat-layer select").first.input_value() == layer_b
        assert (
            b.locator(".mstgat-source select").first.input_value()
            != a.locator(".mstgat-source select").first.input_value()
        )
    finally:
        a.context.close()
        b.context.close()


def test_point_survey_scored_on_its_samples_and_a_clicked_sample_explained(page, app_url, tmp_path):
    """A lon/lat point CSV: uploaded, gridded and projected; 'Score the samples' runs MSTGAT on the samples
    (no deposits); a click on the map explains the nearest sample."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    lon, lat = np.meshgrid(np.linspace(117.0, 117.3, 12), np.linspace(-33.3, -33.0, 12))
    table = pd.DataFrame({"X": lon.ravel(), "Y": lat.ravel()})
    for e in ("Au_ppb", "As_ppm", "Cu_ppm", "Zn_ppm"):
        table[e] = rng.lognormal(1, 0.5, len(table))
    path = tmp_path / "points.csv"
    table.to_csv(path, index=False)
    open_app(page, app_url)
    box = page.locator(".mstgat-epochs input").first
    box.fill("2")
    box.press("Enter")
    box.blur()
    page.locator(".mstgat-grid-upload input[type=file]").first.set_input_files(str(path))
    wait_text(page, ".mstgat-status", r"gridded from 144 samples by IDW.*UTM zone 50S", timeout=LONG)
    page.locator(".mstgat-score-samples button").first.click()
    wait_text(page, ".mstgat-status", r"scored 144 samples without deposits.*8 nearest samples", timeout=600_000)
    page.wait_for_timeout(1500)
    click_map(page, 0.5, 0.5)
    text = wait_text(page, ".mstgat-sample-explanation", r"Sample .+ · label-free score", timeout=LONG)
    assert "Scale 3 (median reach" in text and "+" in text
    assert not page.locator(".mstgat-error").first.is_visible()


def test_map_is_honest_keeps_deposits_on_click_draws_the_box_and_follows_new_data(page, app_url):
    open_app(page, app_url)
    page.wait_for_timeout(1000)
    plot = plot_titled(page, "probability")
    # the score on a fixed 0-1 colour scale, its colour bar named
    assert plot["colorbars"] == [{"title": "probability", "low": 0, "high": 1}]
    # the outline is a share of the measured ground (the demo has a sample support), with the deposits it captures
    five = wait_text(page, ".mstgat-zone-readout", r"top 5 % of the measured ground .* holds (\d+) of 21 deposit cells")
    page.locator(".mstgat-top-share select").first.select_option(label="top 20 %")
    twenty = wait_text(
        page, ".mstgat-zone-readout", r"top 20 % of the measured ground .* holds (\d+) of 21 deposit cells"
    )
    captured = [int(re.search(r"holds (\d+) of", t).group(1)) for t in (five, twenty)]
    assert captured[0] <= captured[1]
    # a click selects nothing that hides deposits: every deposit stays drawn at full opacity
    click_map(page, 0.45, 0.5)
    wait_text(page, ".mstgat-explain-header", r"Cell row", timeout=LONG)
    deposits = [r for r in plot_titled(page, "probability")["renderers"] if r["name"] == "deposits"]
    assert deposits and deposits[0]["rows"] == 23 and deposits[0]["nonselection_alpha"] == 1
    # new data: the map's extent follows them (the synthetic grid is 64 km wide, South China 600 km)
    load_synthetic(page)
    page.wait_for_timeout(2000)
    maps = [p for p in bokeh_plots(page) if p["title"].startswith("element:") or p["title"] == "probability"]
    x = maps[0]["x"]
    assert x["end"] - x["start"] < 100_000, x
    # the colour bar names the new layer and its units; the planted truth is drawn (6 ore + 4 decoy centres)
    assert maps[0]["colorbars"][0]["title"].startswith("element: Li (ppm) · colours stretched"), maps[0]["colorbars"]
    labels = [r for r in maps[0]["renderers"] if r["glyph"] == "Text"]
    assert labels and labels[0]["rows"] == 10, maps[0]["renderers"]
    # a box drawn with the box-select tool stays outlined on the map
    page.locator(".mstgat-map .bk-tool-icon-box-select").first.click()
    box = map_canvas(page).bounding_box()
    page.mouse.move(box["x"] + 0.35 * box["width"], box["y"] + 0.35 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.55 * box["width"], box["y"] + 0.55 * box["height"], steps=8)
    page.mouse.up()
    deadline, quads = time.time() + 60, []
    while time.time() < deadline:
        quads = [r for r in maps_now(page)[0]["renderers"] if r["glyph"] == "Quad"]
        if quads and quads[0]["rows"] == 1:
            break
        page.wait_for_timeout(300)
    assert quads and quads[0]["rows"] == 1, quads


def maps_now(page):
    return [p for p in bokeh_plots(page) if p["title"].startswith("element:") or p["title"] == "probability"]


def test_explanation_plots_are_readable(page, app_url):
    open_app(page, app_url)
    if "no model" in status_text(page):
        train(page, epochs=2)
    page.wait_for_timeout(1000)
    click_map(page, 0.45, 0.5)
    wait_text(page, ".mstgat-explain-header", r"Cell row", timeout=LONG)
    deadline, scales, plots = time.time() + 120, [], []
    while time.time() < deadline:  # the plots are re-rendered after the header: wait for all of them
        plots = bokeh_plots(page)
        scales = [p for p in plots if re.fullmatch(r"scale \d \(cells\)", p["title"])]
        drawn = [p["title"] for p in plots]
        if len(scales) == 3 and any(t.startswith("IG") for t in drawn) and any(t.startswith("[CLS]") for t in drawn):
            break
        page.wait_for_timeout(300)
    attention = next(p for p in plots if p["title"].startswith("[CLS] attention"))
    ig = next(p for p in plots if p["title"].startswith("IG"))
    # separate category axes: every element for attention, the top 15 for IG (no shared, empty slots)
    assert attention["y"] == {"factors": 39} and ig["y"] == {"factors": 15}
    assert attention["height"] >= 39 * 10 and ig["height"] >= 15 * 10 and min(attention["width"], ig["width"]) > 150
    assert len(scales) == 3 and all(p["width"] >= 100 and p["height"] >= 100 for p in scales), scales
    assert [len(p["colorbars"]) for p in scales] == [0, 0, 1]  # one shared colour bar


def test_data_tab_element_map_is_not_squashed(page, app_url):
    open_app(page, app_url)
    page.locator(".bk-tab", has_text="Data").first.click()  # the tab is built when first opened
    deadline = time.time() + 120
    while time.time() < deadline and not any(p["title"] == "Li" for p in bokeh_plots(page)):
        page.wait_for_timeout(300)
    page.wait_for_timeout(1000)
    li = plot_titled(page, "Li")
    assert li["y"]["start"] > 2_000_000 and li["y"]["end"] - li["y"]["start"] > 500_000, li["y"]
    assert li["height"] > 300


def test_basemap_projects_the_map_onto_local_tiles_and_clicks_come_back_in_the_grids_crs(page, app_url, tile_server):
    open_app(page, app_url)
    page.wait_for_timeout(1000)
    utm = plot_titled(page, "probability")["x"]
    assert 0 < utm["end"] - utm["start"] < 1_000_000  # metres of UTM zone 50N (600 km)
    tile_server.requests.clear()
    page.locator(".mstgat-basemap input").first.check()
    deadline = time.time() + 120
    while time.time() < deadline:
        x = plot_titled(page, "probability")["x"] if any(p["title"] == "probability" for p in bokeh_plots(page)) else {}
        if x.get("start", 0) > 1.2e7 and tile_server.requests:
            break
        page.wait_for_timeout(300)
    assert 1.2e7 < x["start"] < x["end"] < 1.35e7, x  # web Mercator metres around 113-121 degrees east
    assert all(re.fullmatch(r"/\d+/\d+/\d+\.png", path) for path in tile_server.requests), tile_server.requests[:3]
    page.wait_for_timeout(1000)
    click_map(page, 0.5, 0.5)
    header = wait_text(page, ".mstgat-explain-header", r"(?s)Cell row .*x = -?\d+, y = \d+", timeout=LONG)
    cx, cy = (float(v) for v in re.search(r"x = (-?\d+), y = (\d+)", header).groups())
    assert utm["start"] <= cx <= utm["end"] and 2_000_000 < cy < 3_000_000, header  # back in the grid's CRS
    # switching it off again redraws the map in UTM: checked on the session's Bokeh models
    # (test_session.py::test_the_basemap_map_is_projected_onto_the_configured_tiles), not here (30 s of CI)
