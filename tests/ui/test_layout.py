"""Issue 29, "Layout that fits 1366 px and 1600 px", in the page: an error shows without moving the map, the
neighbour heatmaps' tick labels have room, and every plot title fits its figure."""

from __future__ import annotations

import re
import time

import pytest

from mstgat_core.testing import LONG, bokeh_plots, map_canvas, open_app, wait_text

from .test_dashboard import explain_click

pytestmark = [pytest.mark.ui, pytest.mark.xdist_group("browser")]

MIN_TICK_PX = 18  # a tick label such as "-3" is about 12 px wide at Bokeh's default axis font

# each title line's width as the figure draws it: measured on the figure's own canvas context, where an "em"
# font size resolves as Bokeh resolves it (1.15em = 13.8 px there; a detached canvas gave 11.5 px and passed
# titles that were cut)
JS_TITLES = """() => {
  const name = m => m.constructor.__name__ || m.constructor.name;
  const out = [];
  for (const d of Bokeh.documents) for (const m of d.all_models) {
    if (name(m) !== 'Figure' && name(m) !== 'Plot') continue;
    const view = Bokeh.index.find_one(m);
    if (view == null || !m.title || !m.title.text || !m.outer_width) continue;  // drawn
    const t = m.title, ctx = view.canvas_view.primary.ctx;
    ctx.save();
    ctx.font = `${t.text_font_style} ${t.text_font_size} ${t.text_font}`;
    const widths = t.text.split('\\n').map(line => ctx.measureText(line).width);
    ctx.restore();
    out.push({title: t.text, text_width: Math.max(...widths), inner_width: m.inner_width});
  }
  return out;
}"""

# the x axis of each neighbour heatmap: its fixed ticks, range and frame width
JS_NEIGHBOUR_TICKS = """() => {
  const name = m => m.constructor.__name__ || m.constructor.name;
  const out = [];
  for (const d of Bokeh.documents) for (const m of d.all_models) {
    if (name(m) !== 'Figure' && name(m) !== 'Plot') continue;
    if (Bokeh.index.find_one(m) == null || !m.title || !/^scale \\d \\(cells\\)$/.test(m.title.text)) continue;
    const axis = m.below.find(a => name(a).includes('Axis'));
    out.push({title: m.title.text, ticker: name(axis.ticker), ticks: Array.from(axis.ticker.ticks || []),
              start: m.x_range.start, end: m.x_range.end, inner_width: m.inner_width});
  }
  return out;
}"""


def wait_for_plots(page, test, timeout_s=120):
    """Wait until the page's Bokeh plots pass ``test`` (the explanation's plots are deferred)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        plots = bokeh_plots(page)
        if test(plots):
            return plots
        page.wait_for_timeout(300)
    raise AssertionError(f"plots never ready: {[p['title'] for p in bokeh_plots(page)]}")


def three_scales(plots):
    return sum(bool(re.fullmatch(r"scale \d \(cells\)", p["title"])) and p["width"] > 0 for p in plots) == 3


def test_an_error_shows_without_moving_the_map(page, app_url, tmp_path):
    """The error alert pushed the map (and the spot the user was about to click) down by about 74 px."""
    open_app(page, app_url)
    page.wait_for_timeout(1000)
    before = map_canvas(page).bounding_box()
    bad = tmp_path / "not_a_grid.nc"
    bad.write_text("this is not a NetCDF file\n")
    page.locator(".mstgat-grid-upload input[type=file]").first.set_input_files(str(bad))
    wait_text(page, ".mstgat-error", r"Error", timeout=LONG)
    alert = page.locator(".mstgat-error").first
    alert.wait_for(state="visible")
    page.wait_for_timeout(500)
    after = map_canvas(page).bounding_box()
    assert after["y"] == before["y"], (before, after)
    box, viewport = alert.bounding_box(), page.viewport_size
    assert 0 <= box["y"] and box["y"] + box["height"] <= viewport["height"], box  # in view, on top of the bar
    assert box["height"] >= 30 and box["width"] >= 300, box  # readable
    # and dismissable
    page.locator(".mstgat-error-close button").first.click()
    alert.wait_for(state="hidden")
    assert map_canvas(page).bounding_box()["y"] == before["y"]


def test_neighbour_heatmap_ticks_have_room_at_1366_px(page, app_url):
    """At 1366 px the scale-3 heatmap's x ticks ran together ("-3-2-10 1 2 3"): 7 labels on 110 px."""
    page.set_viewport_size({"width": 1366, "height": 768})
    open_app(page, app_url)
    wait_for_plots(page, three_scales)
    page.wait_for_timeout(1000)
    axes = page.evaluate(JS_NEIGHBOUR_TICKS)
    assert len(axes) == 3, axes
    for axis in axes:
        assert axis["ticker"] == "FixedTicker" and len(axis["ticks"]) >= 3, axis
        px_per_unit = axis["inner_width"] / (axis["end"] - axis["start"])
        ticks = sorted(axis["ticks"])
        spacing = min(b - a for a, b in zip(ticks, ticks[1:])) * px_per_unit
        assert spacing >= MIN_TICK_PX, (axis["title"], spacing, axis)


def titles_that_do_not_fit(page) -> list:
    titles = page.evaluate(JS_TITLES)
    assert len(titles) >= 5, titles
    return [
        (t["title"], round(t["text_width"]), t["inner_width"]) for t in titles if t["text_width"] > t["inner_width"]
    ]


def test_plot_titles_fit_their_figures_at_1600_and_1366_px(page, app_url):
    """Titles in the explanation column (441 px at 1600 px) were cut on the right: "IG (logit) ± spread, 5
    members; red: enric"; each title line must fit in its figure's frame, before and after a click."""
    page.set_viewport_size({"width": 1600, "height": 900})
    open_app(page, app_url)
    wait_for_plots(page, three_scales)
    page.wait_for_timeout(1000)
    cut = {"1600, before a click": titles_that_do_not_fit(page)}
    explained = []
    for fx, fy in [(0.42, 0.45), (0.5, 0.5), (0.35, 0.6)]:
        text, _ = explain_click(page, fx, fy, ["Explanation"])
        if text is not None:
            explained.append(text)
            break
    assert explained, "no cell explained"
    wait_for_plots(page, lambda plots: any(p["title"].startswith("IG (logit)") for p in plots))
    page.wait_for_timeout(1500)
    cut["1600, after a click"] = titles_that_do_not_fit(page)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.wait_for_timeout(2000)
    cut["1366, after a click"] = titles_that_do_not_fit(page)
    assert not any(cut.values()), cut
