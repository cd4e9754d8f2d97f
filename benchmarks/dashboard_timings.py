"""Dashboard timings in a real browser (system chromium, playwright): a figure, never a test.

Measures, on the South China demo with the bundled checkpoint:

* ``panel serve app.py`` start to the first rendered map (first session);
* page load to map for two further sessions (the demo prediction is cached
  per process, so these should not pay for it);
* a click on the map to the explanation header, and to every explanation plot
  (attention bars, IG bars, three neighbour heatmaps) drawn for that cell;
* the longest main-thread stall while clicking (a ``requestAnimationFrame``
  loop records the largest gap between frames).

Run: ``.venv/bin/python benchmarks/dashboard_timings.py --json timings.json``
(about 2 minutes on 2 cores; one heavy job at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from mstgat_core.dashboard.browser import bokeh_plots, header_text, map_canvas, open_app, serve_app

CHROMIUM = os.environ.get("MSTGAT_CHROMIUM", "/usr/bin/chromium")
FRAME_GAPS = """() => { window.__gaps = []; let last = performance.now();
  const tick = t => { window.__gaps.push(t - last); last = t; requestAnimationFrame(tick); };
  requestAnimationFrame(tick); }"""


def explanation_drawn(page, before: str) -> bool:
    header = header_text(page)
    if "Cell row" not in header or header == before:
        return False
    titles = [p["title"] for p in bokeh_plots(page)]
    return (
        any(t.startswith("[CLS] attention") for t in titles)
        and any(t.startswith("IG") for t in titles)
        and sum(bool(re.fullmatch(r"scale \d \(cells\)", t)) for t in titles) == 3
    )


def click(page, fx, fy, timeout=120.0) -> dict:
    before = header_text(page)
    canvas = map_canvas(page)
    box = canvas.bounding_box()
    page.evaluate("() => { window.__gaps = []; }")
    t0 = time.perf_counter()
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    header_s = None
    while time.perf_counter() - t0 < timeout:
        if header_s is None and header_text(page) != before and "Cell row" in header_text(page):
            header_s = time.perf_counter() - t0
        if explanation_drawn(page, before):
            break
        page.wait_for_timeout(50)
    all_s = time.perf_counter() - t0
    gaps = page.evaluate("() => window.__gaps")
    return {"header_s": header_s, "all_plots_s": all_s, "longest_frame_gap_s": max(gaps, default=0) / 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures here")
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
        out["clicks"] = [click(first, fx, fy) for fx, fy in ((0.45, 0.5), (0.55, 0.45), (0.5, 0.6))]
        browser.close()
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
