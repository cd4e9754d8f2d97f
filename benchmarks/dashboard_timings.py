"""Dashboard timings in a real browser (system chromium, playwright): a figure, never a test.

Measures, on the South China demo with the bundled checkpoint:

* ``panel serve app.py`` start to the first rendered map (first session);
* page load to map for two further sessions (the demo prediction is cached
  per process, so these should not pay for it);
* a click on the map to the explanation header, and to every explanation plot
  (attention, composition and IG bars, three neighbour heatmaps) redrawn with that cell's data;
* a box on the map to its cells picked and to the region summary; a click on the Data tab to its plots;
* the longest main-thread stall while clicking (a ``requestAnimationFrame``
  loop records the largest gap between frames);
* a large grid (``--large 2000``: 4 million cells, two elements) uploaded as NetCDF: upload to map, and a
  zoom and a pan to the map image resampled (datashader) for the new view.

Run: ``.venv/bin/python benchmarks/dashboard_timings.py --json timings.json``
(about 2 minutes on 2 cores; one heavy job at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from mstgat_core.testing import (
    JS_EXPLAIN_SIG,
    explanation_redrawn,
    header_text,
    map_canvas,
    open_app,
    serve_app,
    text_of,
    wait_text,
)

CHROMIUM = os.environ.get("MSTGAT_CHROMIUM", "/usr/bin/chromium")
FRAME_GAPS = """() => { window.__gaps = []; let last = performance.now();
  const tick = t => { window.__gaps.push(t - last); last = t; requestAnimationFrame(tick); };
  requestAnimationFrame(tick); }"""


def click(page, fx, fy, timeout=120.0) -> dict:
    before, signature = header_text(page), page.evaluate(JS_EXPLAIN_SIG)
    canvas = map_canvas(page)
    box = canvas.bounding_box()
    page.evaluate("() => { window.__gaps = []; }")
    stale_error = text_of(page, ".mstgat-error") if page.locator(".mstgat-error").first.is_visible() else ""
    t0 = time.perf_counter()
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    header_s = None
    while time.perf_counter() - t0 < timeout:
        if header_s is None and header_text(page) != before and "Cell row" in header_text(page):
            header_s = time.perf_counter() - t0
        if header_s is None and page.locator(".mstgat-error").first.is_visible():
            error = text_of(page, ".mstgat-error")
            if error != stale_error and "no data" in error:
                return {"no_data": error}  # a cell outside the survey: not a timing
        if header_s is not None and explanation_redrawn(signature, page.evaluate(JS_EXPLAIN_SIG)):
            break
        page.wait_for_timeout(50)
    all_s = time.perf_counter() - t0
    gaps = page.evaluate("() => window.__gaps")
    return {"header_s": header_s, "all_plots_s": all_s, "longest_frame_gap_s": max(gaps, default=0) / 1000}


# the map image's data: its position and size in map units and its pixel count (a new view resamples it)
JS_MAP_IMAGE = """() => {
  const name = m => m.constructor.__name__ || m.constructor.name;
  for (const d of Bokeh.documents) for (const m of d.all_models) {
    if (name(m) !== 'Figure' || !m.title || !m.title.text.startsWith('element')) continue;
    for (const r of m.renderers) {
      if (name(r) !== 'GlyphRenderer' || name(r.glyph) !== 'Image') continue;
      const data = r.data_source.data, image = data.image[0];
      return {x: data.x[0], dw: data.dw[0], pixels: image.length, shape: image.shape || null};
    }
  }
  return null;
}"""


def large_grid(page, size: int, folder: Path, timeout=600.0) -> dict:
    """Upload a ``size`` x ``size`` grid of two elements (NetCDF) and time it to the map, then a zoom and a
    pan to the map image resampled for the new view: is a grid of that size interactive?"""
    import numpy as np
    import rioxarray  # noqa: F401  (the .rio accessor)
    import xarray as xr

    path = folder / f"large_{size}.nc"
    rng = np.random.default_rng(0)
    coords = {"y": 3_000_000.0 - np.arange(size) * 100.0, "x": 400_000.0 + np.arange(size) * 100.0}
    grid = xr.Dataset(
        {e: (("y", "x"), rng.lognormal(size=(size, size)).astype("float32")) for e in ("Cu", "Zn")}, coords=coords
    ).rio.write_crs("EPSG:32650")
    grid.to_netcdf(path)
    out = {"cells": size * size, "file_mb": round(path.stat().st_size / 1e6, 1)}
    t0 = time.perf_counter()
    page.locator(".mstgat-grid-upload input[type=file]").first.set_input_files(str(path))
    wait_text(page, ".mstgat-status", rf"loaded {path.name}", timeout=timeout * 1000)
    image = None
    while time.perf_counter() - t0 < timeout and not image:
        image = page.evaluate(JS_MAP_IMAGE)
        page.wait_for_timeout(200)
    out["upload_to_map_s"] = time.perf_counter() - t0
    out["first_image"] = image
    page.wait_for_timeout(3000)
    out["settled_image"] = page.evaluate(JS_MAP_IMAGE)  # x and dw: does it cover the new grid's 200 km?
    box = map_canvas(page).bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for step, action in (("zoom", lambda: page.mouse.wheel(0, -600)), ("pan", None)):
        before = page.evaluate(JS_MAP_IMAGE)
        page.mouse.move(*centre)
        t0 = time.perf_counter()
        if action is not None:
            action()
        else:  # drag with the pan tool
            page.mouse.down()
            page.mouse.move(centre[0] + 120, centre[1] + 60, steps=6)
            page.mouse.up()
        now = before
        while time.perf_counter() - t0 < 60 and now == before:
            page.wait_for_timeout(50)
            now = page.evaluate(JS_MAP_IMAGE)
        out[f"{step}_to_resampled_image_s"] = time.perf_counter() - t0 if now != before else None
    return out


def region_summary(page, timeout=900.0) -> dict:
    """A box drawn on the map with the box-select tool: seconds to the picked cells' readout and to the
    region summary (attention maps on first use, then IG on at most 256 of the box's cells)."""
    page.locator(".mstgat-map .bk-tool-icon-box-select").first.click()
    box = map_canvas(page).bounding_box()
    page.mouse.move(box["x"] + 0.45 * box["width"], box["y"] + 0.3 * box["height"])
    page.mouse.down()
    t0 = time.perf_counter()
    page.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.55 * box["height"], steps=8)
    page.mouse.up()
    readout = wait_text(page, ".mstgat-brush-readout", r"cells picked by a box on the map", timeout=timeout * 1000)
    picked_s = time.perf_counter() - t0
    region = wait_text(page, ".mstgat-region", r"Region:", timeout=timeout * 1000)
    return {"picked_s": picked_s, "summary_s": time.perf_counter() - t0, "readout": readout, "region": region[:200]}


def open_tab(page, name: str, selector: str, timeout=120.0) -> float:
    """Seconds from a click on a tab (built when first opened) to its first plot drawn."""
    t0 = time.perf_counter()
    page.locator(".bk-tab", has_text=name).first.click()
    page.locator(selector).first.wait_for(state="visible", timeout=timeout * 1000)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--large", type=int, default=2000, help="side of the large grid (0: skip that stage)")
    args = parser.parse_args()
    out = {}
    t_serve = time.perf_counter()
    with serve_app(Path("/tmp/mstgat-dashboard-timings.log")) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        first = browser.new_context(viewport={"width": 1600, "height": 1100}).new_page()
        t0 = time.perf_counter()
        open_app(first, url)
        out["serve_to_first_map_s"] = time.perf_counter() - t_serve
        out["first_page_to_map_s"] = time.perf_counter() - t0
        later = []
        for _ in range(2):
            page = browser.new_context(viewport={"width": 1600, "height": 1100}).new_page()
            t0 = time.perf_counter()
            open_app(page, url)
            later.append(time.perf_counter() - t0)
            page.close()
        out["further_sessions_page_to_map_s"] = later
        first.wait_for_timeout(1500)
        first.evaluate(FRAME_GAPS)
        spots = ((0.45, 0.5), (0.55, 0.45), (0.5, 0.6), (0.4, 0.4), (0.6, 0.55), (0.5, 0.4), (0.45, 0.6), (0.55, 0.55))
        out["clicks"] = []
        for fx, fy in spots:  # five cells with data (a spot on the survey's gaps answers "no data" and is skipped)
            timing = click(first, fx, fy)
            if "no_data" not in timing:
                out["clicks"].append(timing)
            if len(out["clicks"]) == 5:
                break
        out["box_to_region_summary"] = region_summary(first)
        out["open_data_tab_s"] = open_tab(first, "Data", ".mstgat-data-tab canvas")
        first.locator(".bk-tab", has_text="Map & explanation").first.click()
        if args.large:
            with tempfile.TemporaryDirectory() as folder:
                out["large_grid"] = large_grid(first, args.large, Path(folder))
        browser.close()
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
