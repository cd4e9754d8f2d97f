"""Drive the dashboard in a real browser: serve it, open it, read its text.

Used by the browser tests (``tests/ui``) and ``scripts/screenshots.py``. Needs
playwright and a system chromium (``CHROMIUM_ARGS`` are the flags that work
in containers); nothing here imports Panel.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .paths import ROOT  # the checkout holding app.py

LONG = 180_000  # ms; the test machines are small and shared


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
]


def run_in_a_fresh_loop(coroutine):
    """Run ``coroutine`` to its end in a fresh thread's event loop: a test worker that already ran a browser
    test has playwright's loop running in its own thread, where ``asyncio.run`` refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(log_path: Path, timeout: float = 240, extra_args: Sequence[str] = (), extra_env: dict | None = None):
    """``panel serve app.py`` on a free local port; yields the page URL once it answers HTTP 200.

    ``extra_args`` are appended to the ``panel serve`` command line (e.g. Bokeh's
    ``--check-unused-sessions``), ``extra_env`` added to the server's environment (e.g. ``TMPDIR``).
    """
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(extra_env or {})}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "panel",
                "serve",
                "app.py",
                "--port",
                str(port),
                "--address",
                "127.0.0.1",
                "--allow-websocket-origin",
                f"127.0.0.1:{port}",
                "--num-procs",
                "1",
                *extra_args,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/app"
        try:
            deadline = time.time() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"panel serve exited: see {log_path}")
                if time.time() > deadline:
                    raise RuntimeError(f"panel serve did not answer within {timeout:.0f} s")
                try:
                    with urllib.request.urlopen(url, timeout=60) as r:
                        if r.status == 200:
                            break
                except Exception:
                    time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def open_app(page, url):
    page.set_default_timeout(LONG)
    page.goto(url, timeout=LONG)
    map_canvas(page).wait_for(state="visible", timeout=LONG)


def map_canvas(page):
    return page.locator(".mstgat-map .bk-events").first


JS_TEXT = """e => {
  const r = e.shadowRoot;
  if (!r) return e.textContent;
  return Array.from(r.childNodes).filter(n => n.nodeName !== 'STYLE' && n.nodeName !== 'LINK')
    .map(n => n.textContent).join(' ').trim();
}"""


def text_of(page, selector) -> str:
    """Text of a Panel component (its content lives in a shadow root)."""
    text = page.locator(selector).first.evaluate(JS_TEXT)
    return text.strip()


def status_text(page) -> str:
    return text_of(page, ".mstgat-status")


def header_text(page) -> str:
    return text_of(page, ".mstgat-explain-header")


def wait_text(page, selector, pattern, timeout=LONG):
    """Wait until the element's text matches the regex ``pattern``; return the text."""
    rx = re.compile(pattern)
    deadline = time.time() + timeout / 1000
    text = ""
    while time.time() < deadline:
        try:
            text = text_of(page, selector)
        except Exception:
            text = ""
        if rx.search(text):
            return text
        page.wait_for_timeout(300)
    try:
        err = text_of(page, ".mstgat-error")[:300]
        status = text_of(page, ".mstgat-status")[:300]
    except Exception:
        err = status = "?"
    raise AssertionError(
        f"{selector!r} never matched {pattern!r}; last text: {text[:300]!r}; status: {status!r}; error: {err!r}"
    )


def select_option(page, label_text, option):
    """Pick ``option`` in the <select> whose options include it."""
    sel = page.locator("select").filter(has=page.locator(f"option:text-is('{option}')")).first
    sel.select_option(label=option)


JS_PLOTS = """() => {
  const plots = [];
  const name = m => m.constructor.__name__ || m.constructor.name;
  for (const d of Bokeh.documents) for (const m of d.all_models) {
    if (name(m) !== 'Figure' && name(m) !== 'Plot') continue;
    // a replaced figure stays among the document's models for about 30 s: only figures drawn on the page count
    if (Bokeh.index.find_one(m) == null) continue;
    const range = r => r && ('factors' in r ? {factors: r.factors.length} : {start: r.start, end: r.end});
    const renderers = m.renderers.filter(r => name(r) === 'GlyphRenderer').map(r => ({
      name: r.name, glyph: name(r.glyph),
      rows: r.data_source && r.data_source.data ? Object.values(r.data_source.data)[0]?.length ?? 0 : 0,
      nonselection_alpha: r.nonselection_glyph && r.nonselection_glyph.fill_alpha
        ? r.nonselection_glyph.fill_alpha.value : null,
      selected: r.data_source && r.data_source.selected ? r.data_source.selected.indices.length : 0,
    }));
    const bars = m.right.concat(m.left, m.below, m.above).filter(r => name(r) === 'ColorBar' && r.visible)
      .map(c => ({title: c.title, low: c.color_mapper.low, high: c.color_mapper.high}));
    plots.push({title: m.title ? m.title.text : '', x: range(m.x_range), y: range(m.y_range),
                width: m.inner_width, height: m.inner_height, renderers, colorbars: bars});
  }
  return plots;
}"""


def bokeh_plots(page) -> list[dict]:
    """Every Bokeh plot drawn on the page (not the replaced ones the document still holds): title, ranges
    (start/end, or factor count), inner size in pixels,
    glyph renderers (name, glyph, rows, non-selection alpha, selected rows) and the colour bars shown."""
    return page.evaluate(JS_PLOTS)


def plot_titled(page, title: str) -> dict:
    """The first Bokeh plot whose title is ``title`` (AssertionError naming the titles seen otherwise)."""
    plots = bokeh_plots(page)
    for plot in plots:
        if plot["title"] == title:
            return plot
    raise AssertionError(f"no plot titled {title!r}; titles: {[p['title'] for p in plots]}")


# a signature of every explanation plot's data (weighted sums: a new cell gives new numbers); the
# explanation's figures are updated in place, so a click changes their data, not their titles
JS_EXPLAIN_SIG = """() => {
  const name = m => m.constructor.__name__ || m.constructor.name;
  const want = /^\\[CLS\\] attention|^IG|^composition|^scale \\d \\(cells\\)$/;
  const out = {}; let s = 0, i = 0;
  const add = v => {
    if (typeof v === 'number') { if (Number.isFinite(v)) s += v * (++i % 97 + 1); return; }
    if (v && typeof v === 'object' && typeof v.length === 'number') for (const x of v) add(x);
  };
  for (const d of Bokeh.documents) for (const m of d.all_models) {
    if (name(m) !== 'Figure' && name(m) !== 'Plot') continue;
    const t = m.title ? m.title.text : '';
    if (!want.test(t)) continue;
    s = 0; i = 0;
    for (const r of m.renderers) if (r.data_source && r.data_source.data)
      for (const v of Object.values(r.data_source.data)) add(v);
    out[t] = (out[t] || '') + s.toPrecision(12) + ';';
  }
  return out;
}"""


def explanation_redrawn(before: dict, now: dict) -> bool:
    """Every explanation plot (attention, composition and IG bars, three neighbour heatmaps) drawn with new
    data: ``before`` and ``now`` are :data:`JS_EXPLAIN_SIG` signatures taken before and after a click."""
    keys = [k for k in now if k.startswith(("[CLS] attention", "IG", "composition"))]
    scales = [k for k in now if k.startswith("scale ")]
    return len(keys) == 3 and len(scales) == 3 and all(now[k] != before.get(k) for k in keys + scales)
