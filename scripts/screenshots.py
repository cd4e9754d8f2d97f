"""Screenshots of the dashboard for the docs: ``python scripts/screenshots.py [--epochs N]``.

Starts ``panel serve app.py`` (``mstgat_core.testing.serve_app``, as the browser tests do), drives it
with playwright and the system chromium, and writes PNGs into docs/screenshots/:

* map_explanation.png - the map and the explanation of a clicked cell;
* brushing.png - a box on the map, its cells in the scatter plot and the histogram;
* training.png - the training curves;
* evaluation.png - a small spatial cross-validation; fold_on_map.png - its first fold on the map;
* learn.png - the exercise and the teaching text;
* map_1366.png, explanation_1366.png, brushing_1366.png, learn_1366.png - the same at 1366 x 768 (a laptop).

With the bundled checkpoint (assets/mstgat_south_china.safetensors) the map shows the South China
demo; without it, a small model trained on the synthetic scenario. The training and evaluation
pictures always use a small synthetic model trained from the page.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from mstgat_core.testing import (
    CHROMIUM_ARGS,
    ROOT,
    header_text,
    map_canvas,
    open_app,
    serve_app,
    status_text,
    wait_text,
)

OUT = ROOT / "docs" / "screenshots"


def set_int(page, css, value):
    box = page.locator(f"{css} input").first
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def show_tab(page, name):
    page.locator(".bk-tab", has_text=name).first.click()  # a tab is built when first opened
    page.wait_for_timeout(5000)


def draw_box(page, fx0, fy0, fx1, fy1):
    """Drag a box on the map with its box-select tool (fractions of the map canvas)."""
    page.locator(".mstgat-map .bk-tool-icon-box-select").first.click()
    box = map_canvas(page).bounding_box()
    page.mouse.move(box["x"] + fx0 * box["width"], box["y"] + fy0 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + fx1 * box["width"], box["y"] + fy1 * box["height"], steps=8)
    page.mouse.up()
    wait_text(page, ".mstgat-brush-readout", r"cells picked by a box on the map")
    wait_text(page, ".mstgat-status", r"summarised a region", timeout=900_000)  # with a model: its summary too
    page.wait_for_timeout(2000)


def train_synthetic(page, epochs):
    page.locator(".mstgat-source select").first.select_option(label="Synthetic scenario")
    page.locator(".mstgat-load button").first.click()
    wait_text(page, ".mstgat-status", r"loaded synthetic scenario")
    set_int(page, ".mstgat-epochs", epochs)
    page.locator(".mstgat-train button").first.click()
    wait_text(page, ".mstgat-status", r"trained mstgat", timeout=900_000)
    page.wait_for_timeout(2000)


def explain_a_cell(page):
    """Click the map at a few spots until one is explained (a spot on the survey's gaps answers "no data")."""
    before = header_text(page)
    for fx, fy in [(0.42, 0.45), (0.5, 0.5), (0.35, 0.6), (0.6, 0.4)]:
        canvas = map_canvas(page)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        t1 = time.perf_counter()
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        deadline = time.time() + 180
        while time.time() < deadline and header_text(page) == before:
            page.wait_for_timeout(200)
            if "no data" in status_text(page) or page.locator(".mstgat-error").first.is_visible():
                break
        if "Cell row" in header_text(page) and header_text(page) != before:
            print(f"click -> explanation: {time.perf_counter() - t1:.1f} s")
            return


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12, help="epochs of the synthetic model when no checkpoint")
    ap.add_argument("--cv-epochs", type=int, default=4)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with serve_app(Path("/tmp") / f"mstgat-screenshots-{os.getpid()}.log") as url:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            open_app(page, url)
            print(f"server start -> first map: {time.perf_counter() - t0:.1f} s")
            trained = False
            if "no model" in status_text(page):
                train_synthetic(page, args.epochs)
                trained = True
            explain_a_cell(page)
            page.mouse.move(5, 500)  # no hover tooltip in the picture
            page.wait_for_timeout(3000)
            page.evaluate("window.scrollTo(0, 0); document.querySelector('#main')?.scrollTo(0, 0)")
            page.screenshot(path=str(OUT / "map_explanation.png"), full_page=False)

            draw_box(page, 0.45, 0.3, 0.7, 0.55)
            page.locator(".mstgat-brushing").first.scroll_into_view_if_needed()
            page.mouse.move(5, 500)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(OUT / "brushing.png"))
            page.evaluate("window.scrollTo(0, 0); document.querySelector('#main')?.scrollTo(0, 0)")

            if not trained:  # the bundled checkpoint has no curves to show: train a small synthetic model
                train_synthetic(page, args.epochs)
            show_tab(page, "Training")
            page.screenshot(path=str(OUT / "training.png"))

            show_tab(page, "Evaluation")
            set_int(page, ".mstgat-cv-epochs", args.cv_epochs)
            page.locator(".mstgat-cv-run button").first.click()
            wait_text(page, ".mstgat-status", r"cross-validation done", timeout=1_200_000)
            page.wait_for_timeout(3000)
            page.screenshot(path=str(OUT / "evaluation.png"))
            show_tab(page, "Map & explanation")  # the first fold, drawn on the map
            page.evaluate("window.scrollTo(0, 0); document.querySelector('#main')?.scrollTo(0, 0)")
            page.screenshot(path=str(OUT / "fold_on_map.png"))

            show_tab(page, "Learn")
            page.screenshot(path=str(OUT / "learn.png"))

            # a laptop screen: the same views at 1366 x 768
            page.set_viewport_size({"width": 1366, "height": 768})
            page.wait_for_timeout(2000)
            page.screenshot(path=str(OUT / "learn_1366.png"))
            show_tab(page, "Map & explanation")
            page.evaluate("window.scrollTo(0, 0); document.querySelector('#main')?.scrollTo(0, 0)")
            page.wait_for_timeout(2000)
            page.screenshot(path=str(OUT / "map_1366.png"))
            explain_a_cell(page)  # the cross-validation's model cleared the explained cell
            page.mouse.move(5, 500)
            page.locator(".mstgat-explanation").first.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)
            page.screenshot(path=str(OUT / "explanation_1366.png"))
            page.locator(".mstgat-brushing").first.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)
            page.screenshot(path=str(OUT / "brushing_1366.png"))
            browser.close()
    for p in sorted(OUT.glob("*.png")):
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
