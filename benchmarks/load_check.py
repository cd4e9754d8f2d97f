"""Load check of the dashboard in a real browser (system chromium, playwright): a figure, never a test.

One ``panel serve app.py`` (its own ``TMPDIR``; Bokeh told to destroy closed sessions within about
3 s) and one chromium with four browser sessions open at once, driven concurrently:

* **A, upload grid**: uploads NetCDF subsets of the South China demo grid into the grid dropper,
  one after the other, each time waiting until the status names the new file;
* **B, upload points**: uploads the Lapland till CSV (``../shared/data/lapland-till``), waits until
  it is gridded, then presses "Score the samples (label-free)" (unless ``--no-score``);
* **C, training**: trains on the demo with a few epochs (``--epochs``) and waits for the new model;
* **D, clicking**: clicks a valid cell of the map every ~2 s for as long as the others work, and
  times each click to the explanation header and to every explanation plot redrawn for that cell
  (attention bars, IG bars, three neighbour heatmaps), with the longest gap between animation frames.

While A and C wait, they also change the outline share now and then and time the zone readout's
answer (the session stays responsive while its own job runs). A background thread samples every
0.25 s the server's RSS (with its children) and the number and bytes of its ``mstgat-session-*``
folders. At the end each session's status, model and error are read (isolation: nobody sees
another's data or model), the contexts are closed, and the time until every session folder is gone
is measured. The server log is scanned for tracebacks.

Run: ``.venv/bin/python benchmarks/load_check.py --json benchmarks/results-load-2core.json``
(about 6 minutes on 2 cores; one heavy job at a time; ``--quick``: a shorter smoke run; ``--help`` for
the other options). The server log is ``/tmp/mstgat-load-check.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from playwright.async_api import async_playwright

from mstgat_core.data import io as mio
from mstgat_core.paths import DEMO_GRID, SHARED_DATA
from mstgat_core.testing import CHROMIUM_ARGS, JS_EXPLAIN_SIG, JS_TEXT, explanation_redrawn, serve_app

CHROMIUM = os.environ.get("MSTGAT_CHROMIUM", "/usr/bin/chromium")
LAPLAND = SHARED_DATA / "lapland-till" / "till_geochem_511p.csv"
LOG = Path("/tmp/mstgat-load-check.log")
SERVE_ARGS = ["--check-unused-sessions", "1000", "--unused-session-lifetime", "2000"]
VIEWPORT = {"width": 1600, "height": 1200}
MS = 1000
STATUS, ERROR, HEADER = ".mstgat-status", ".mstgat-error", ".mstgat-explain-header"
PROVENANCE, READOUT, PROGRESS = ".mstgat-provenance", ".mstgat-zone-readout", ".mstgat-progress"

FRAME_GAPS = """() => { if (window.__gapsOn) return; window.__gapsOn = true;
  window.__gap = 0; window.__maxGap = 0; window.__longGaps = 0; let last = performance.now();
  const tick = t => { const g = t - last; last = t; window.__gap = Math.max(window.__gap, g);
    window.__maxGap = Math.max(window.__maxGap, g); if (g > 500) window.__longGaps++; requestAnimationFrame(tick); };
  requestAnimationFrame(tick); }"""

# where the map's frame is on the screen, and its data ranges
JS_MAP_FRAME = """title => {
  for (const v of Bokeh.index.all_views()) {
    const m = v.model;
    if (!m.title || m.title.text !== title || !v.frame || !v.canvas_view) continue;
    const b = v.frame.bbox, r = v.canvas_view.events_el.getBoundingClientRect();
    if (r.width === 0) continue;
    return {x: r.x + b.left, y: r.y + b.top, width: b.width, height: b.height,
            x0: m.x_range.start, x1: m.x_range.end, y0: m.y_range.start, y1: m.y_range.end};
  }
  return null;
}"""


# ------------------------------------------------------------------ server side


def server_process(url: str) -> psutil.Process:
    """The ``panel serve`` child of this process listening on the URL's port."""
    port = url.split(":")[2].split("/")[0]
    for child in psutil.Process().children(recursive=True):
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        if "panel" in cmd and "serve" in cmd and port in cmd:
            return child
    raise RuntimeError(f"no panel serve process on port {port}")


def tree_rss(proc: psutil.Process) -> int:
    """RSS of a process and its descendants, bytes."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def session_folders(root: Path) -> tuple[int, int]:
    """(number, total bytes) of the ``mstgat-session-*`` folders under ``root``."""
    count = size = 0
    for folder in root.glob("mstgat-session-*"):
        count += 1
        for dirpath, _, files in os.walk(folder):
            for name in files:
                try:
                    size += os.path.getsize(os.path.join(dirpath, name))
                except OSError:
                    continue
    return count, size


class Monitor(threading.Thread):
    """Samples the server's RSS and its session folders every ``interval`` s; keeps peaks and a timeline."""

    def __init__(self, proc: psutil.Process, root: Path, interval: float = 0.25):
        super().__init__(daemon=True)
        self.proc, self.root, self.interval = proc, root, interval
        self.stop = threading.Event()
        self.t0 = time.perf_counter()
        self.peak_rss = self.peak_bytes = self.peak_folders = 0
        self.last = (0, 0, 0)  # rss, folders, bytes
        self.timeline: list[list[float]] = []

    def sample(self) -> None:
        rss = tree_rss(self.proc)
        folders, size = session_folders(self.root)
        self.last = (rss, folders, size)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_bytes = max(self.peak_bytes, size)
        self.peak_folders = max(self.peak_folders, folders)
        t = round(time.perf_counter() - self.t0, 2)
        if not self.timeline or t - self.timeline[-1][0] >= 1.0:  # ~1 s resolution in the output
            self.timeline.append([t, round(rss / 2**20, 1), folders, round(size / 2**20, 2)])

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.sample()
            except psutil.Error:
                break
            self.stop.wait(self.interval)


def log_problems(path: Path) -> dict:
    """Tracebacks and ERROR lines in the server log."""
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.splitlines()
    errors = [line for line in lines if re.search(r"\bERROR\b|Exception|Error:", line)]
    return {"tracebacks": text.count("Traceback"), "error_lines": len(errors), "first_error_lines": errors[:8]}


# ------------------------------------------------------------------ page helpers


async def text(page, selector: str) -> str:
    """Text of a Panel component ('' when it is missing)."""
    try:
        return (await page.locator(selector).first.evaluate(JS_TEXT)).strip()
    except Exception:
        return ""


class Probe:
    """Changes a session's outline share now and then and times the zone readout's answer."""

    def __init__(self, page, every_s: float = 3.0):
        self.page, self.every_s = page, every_s
        self.last = time.perf_counter()
        self.latencies: list[float] = []
        self.failed = 0
        self.share = "top 10 %"

    async def maybe(self) -> None:
        if time.perf_counter() - self.last < self.every_s:
            return
        t0 = time.perf_counter()
        try:
            await self.page.locator(".mstgat-top-share select").first.select_option(label=self.share)
            while time.perf_counter() - t0 < 60:
                if f"the {self.share} of the area" in await text(self.page, READOUT):
                    self.latencies.append(time.perf_counter() - t0)
                    break
                await asyncio.sleep(0.05)
            else:
                self.failed += 1
        except Exception:
            self.failed += 1
        self.share = "top 5 %" if self.share == "top 10 %" else "top 10 %"
        self.last = time.perf_counter()

    def figures(self) -> dict:
        return {"n": len(self.latencies), "failed": self.failed, **stats(self.latencies)}


async def wait_text(
    page, selector: str, pattern: str, timeout_s: float, probe: Probe | None = None, queue: dict | None = None
) -> str:
    """Wait until the element's text matches ``pattern`` (meanwhile probing, and adding to ``queue['queued_s']``
    the time the progress line says the job is queued); TimeoutError naming status and error otherwise."""
    rx = re.compile(pattern)
    t0 = last = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        found = await text(page, selector)
        if rx.search(found):
            return found
        if queue is not None and "queued" in await text(page, PROGRESS):
            queue["queued_s"] = round(queue.get("queued_s", 0.0) + time.perf_counter() - last, 2)
        last = time.perf_counter()
        if probe is not None:
            await probe.maybe()
        await asyncio.sleep(0.3)
    raise TimeoutError(
        f"{selector} never matched {pattern!r} in {timeout_s:.0f} s; status {await text(page, STATUS)!r}; "
        f"error {await text(page, ERROR)!r}"
    )


async def open_page(page, url: str) -> float:
    """Load the app; seconds until the map is visible."""
    page.set_default_timeout(180 * MS)
    t0 = time.perf_counter()
    await page.goto(url, timeout=180 * MS)
    await page.locator(".mstgat-map .bk-events").first.wait_for(state="visible", timeout=180 * MS)
    return time.perf_counter() - t0


async def set_epochs(page, epochs: int) -> None:
    box = page.locator(".mstgat-epochs input").first
    await box.fill(str(epochs))
    await box.press("Enter")
    await box.blur()


def stats(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"median_s": None, "max_s": None}
    return {"median_s": round(statistics.median(values), 3), "max_s": round(max(values), 3)}


# ------------------------------------------------------------------ the four sessions


async def upload_grids(page, files: list[Path], timeout_s: float) -> dict:
    """Session A: upload each grid file in turn; seconds until the status names it."""
    probe, seconds = Probe(page), []
    for path in files:
        t0 = time.perf_counter()
        await page.locator(".mstgat-grid-upload input[type=file]").first.set_input_files(str(path))
        await wait_text(page, STATUS, rf"loaded {re.escape(path.name)}: \d+x\d+ cells", timeout_s, probe)
        seconds.append(round(time.perf_counter() - t0, 2))
    return {"files": [p.name for p in files], "upload_to_loaded_s": seconds, "readout_probe": probe.figures()}


async def upload_points(page, csv: Path, score: bool, epochs: int, timeout_s: float) -> dict:
    """Session B: upload the point CSV, wait until gridded, then score the samples (label-free)."""
    await set_epochs(page, epochs)
    t0 = time.perf_counter()
    await page.locator(".mstgat-grid-upload input[type=file]").first.set_input_files(str(csv))
    status = await wait_text(page, STATUS, rf"loaded {re.escape(csv.name)}: .*gridded from \d+ samples", timeout_s)
    out = {"file": csv.name, "upload_to_gridded_s": round(time.perf_counter() - t0, 2), "status": status[:200]}
    if score:
        t0, queue = time.perf_counter(), {"queued_s": 0.0}
        await page.locator(".mstgat-score-samples button").first.click()
        status = await wait_text(page, STATUS, r"scored \d+ samples without deposits", timeout_s, queue=queue)
        out.update(score_s=round(time.perf_counter() - t0, 2), score_queued_s=queue["queued_s"], status=status[:200])
    return out


async def train(page, epochs: int, timeout_s: float) -> dict:
    """Session C: train on the demo (pretraining, 5 members) with a few epochs."""
    probe, queue = Probe(page), {"queued_s": 0.0}
    await set_epochs(page, epochs)
    t0 = time.perf_counter()
    await page.locator(".mstgat-train button").first.click()
    await wait_text(
        page, STATUS, r"pretrained mstgat, \d+ member\(s\): [a-z-]+ route, head share", timeout_s, probe, queue
    )
    return {
        "epochs": epochs,
        "train_s": round(time.perf_counter() - t0, 2),
        "train_queued_s": queue["queued_s"],
        "readout_probe": probe.figures(),
    }


def click_cells(n: int, seed: int = 0) -> list[tuple[float, float]]:
    """Map coordinates of ``n`` demo cells whose 5 x 5 neighbourhood has every element (safely inside),
    away from the bottom-right corner, where the map's legend takes the click."""
    ds = mio.load_grid(DEMO_GRID)
    valid = np.all([np.isfinite(ds[v].values) for v in ds.data_vars], axis=0)
    rows, cols = valid.shape
    inner = np.zeros_like(valid)
    inner[2:-2, 2:-2] = np.all(
        [valid[2 + dr : rows - 2 + dr, 2 + dc : cols - 2 + dc] for dr in range(-2, 3) for dc in range(-2, 3)], axis=0
    )
    inner[int(0.75 * rows) :, int(0.6 * cols) :] = False  # under the legend
    picks = np.random.default_rng(seed).choice(np.flatnonzero(inner), size=n, replace=False)
    r, c = np.unravel_index(picks, valid.shape)
    return [(float(ds["x"].values[j]), float(ds["y"].values[i])) for i, j in zip(r, c)]


async def steady_frame(page, tries: int = 10) -> dict | None:
    """The map frame once it stays put for 0.3 s (status and progress lines re-wrap and move it)."""
    await page.locator(".mstgat-map .bk-events").first.scroll_into_view_if_needed()
    frame = await page.evaluate(JS_MAP_FRAME, "probability")
    for _ in range(tries):
        await asyncio.sleep(0.3)
        again = await page.evaluate(JS_MAP_FRAME, "probability")
        if again == frame:
            break
        frame = again
    return frame


async def click_cell(page, x: float, y: float, timeout_s: float) -> dict:
    """Click the map at map coordinates (x, y); seconds to a new header and to every plot redrawn."""
    before, sig = await text(page, HEADER), await page.evaluate(JS_EXPLAIN_SIG)
    f = await steady_frame(page)
    if f is None:
        await asyncio.sleep(1)
        return {"header_s": None, "all_plots_s": None, "longest_frame_gap_s": None, "error": "map frame not found"}
    px = f["x"] + (x - f["x0"]) / (f["x1"] - f["x0"]) * f["width"]
    py = f["y"] + (f["y1"] - y) / (f["y1"] - f["y0"]) * f["height"]
    await page.evaluate("() => { window.__gap = 0; }")
    t0 = time.perf_counter()
    await page.mouse.click(px, py)
    header_s = all_s = None
    while time.perf_counter() - t0 < timeout_s:
        head = await text(page, HEADER)
        if header_s is None and "Cell row" in head and head != before:
            header_s = round(time.perf_counter() - t0, 3)
        if header_s is not None and explanation_redrawn(sig, await page.evaluate(JS_EXPLAIN_SIG)):
            all_s = round(time.perf_counter() - t0, 3)
            break
        await asyncio.sleep(0.1)
    cell = re.search(r"Cell row (\d+), col (\d+)", head)
    if header_s is not None and cell:  # the status line names the cell last: wait for it (it moves the map)
        with contextlib.suppress(TimeoutError):
            await wait_text(page, STATUS, rf"explained row {cell[1]}, col {cell[2]}\b", 15)
    gap = await page.evaluate("() => window.__gap")
    out = {"header_s": header_s, "all_plots_s": all_s, "longest_frame_gap_s": round(gap / MS, 3)}
    if header_s is None:  # what the page said instead
        out.update(at_px=[round(px), round(py)], status=(await text(page, STATUS))[:200])
        out["progress"] = (await text(page, PROGRESS))[:200]
    error = await text(page, ERROR)
    return {**out, "error": error[:200]} if error else out


async def click_loop(page, cells, done: asyncio.Event, min_clicks: int, period_s: float, timeout_s: float) -> dict:
    """Session D: click a new cell every ``period_s`` until the others are done (and ``min_clicks`` made)."""
    await page.evaluate(FRAME_GAPS)
    clicks, own_status = [], True
    for x, y in itertools.cycle(cells):
        if done.is_set() and len(clicks) >= min_clicks:
            break
        t0 = time.perf_counter()
        clicks.append(await click_cell(page, x, y, timeout_s))
        own_status &= "South China demo" in await text(page, STATUS)
        await asyncio.sleep(max(period_s - (time.perf_counter() - t0), 0.0))
    header = [c["header_s"] for c in clicks]
    drawn = [c["all_plots_s"] for c in clicks]
    return {
        "clicks": clicks,
        "n": len(clicks),
        "missed_header": header.count(None),
        "missed_plots": drawn.count(None),
        "clicks_with_error": sum("error" in c for c in clicks),
        "to_header": stats(header),
        "to_all_plots": stats(drawn),
        "longest_frame_gap_s": round(await page.evaluate("() => window.__maxGap") / MS, 3),
        "frame_gaps_over_0_5_s": await page.evaluate("() => window.__longGaps"),
        "status_own_throughout": own_status,
    }


async def timed(coro) -> dict:
    """Run one session's work; its figures plus seconds, or the error it raised."""
    t0 = time.perf_counter()
    try:
        out = await coro
    except Exception as exc:
        out = {"failed": f"{type(exc).__name__}: {exc}"[:500]}
    out["job_s"] = round(time.perf_counter() - t0, 2)
    return out


# ------------------------------------------------------------------ checks


async def isolation(pages: dict, expect: dict) -> dict:
    """Each session shows its own data and model, and no unexpected error."""
    seen = {
        k: {"status": await text(p, STATUS), "model": await text(p, PROVENANCE), "error": await text(p, ERROR)}
        for k, p in pages.items()
    }
    a, b, c, d = (seen[k] for k in "ABCD")
    checks = {
        "A_shows_its_last_upload": f"uploaded {expect['A']}" in a["status"],
        "B_shows_its_points": f"uploaded {LAPLAND.name}" in b["status"],
        "C_has_its_trained_model": c["model"].startswith("pretrained mstgat") and "South China demo" in c["status"],
        "D_shows_the_demo": "South China demo" in d["status"] and "uploaded" not in d["status"],
        "D_keeps_the_bundled_checkpoint": d["model"].startswith("bundled South China checkpoint"),
        "A_keeps_the_bundled_checkpoint": a["model"].startswith("bundled South China checkpoint"),
    }
    if expect["B_scored"]:
        checks["B_scored_its_samples"] = "scored" in b["status"]
    expected_error = {"B": "" if expect["B_scored"] else "does not fit"}
    checks["no_unexpected_error"] = all(
        not s["error"] or (expected_error.get(k) and expected_error[k] in s["error"]) for k, s in seen.items()
    )
    return {"checks": checks, "seen": {k: {f: v[:240] for f, v in s.items()} for k, s in seen.items()}}


def wait_folders_gone(monitor: Monitor, timeout_s: float) -> dict:
    """Seconds until the server has no session folder left (after the browser contexts closed)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        count, _ = session_folders(monitor.root)
        if count == 0:
            return {"all_gone": True, "seconds": round(time.perf_counter() - t0, 2)}
        time.sleep(0.25)
    return {"all_gone": False, "seconds": None, "left": session_folders(monitor.root)[0]}


# ------------------------------------------------------------------ the run


def grid_files(folder: Path, n: int) -> list[Path]:
    """``n`` NetCDF subsets of the demo grid (different extents, so each upload is told apart)."""
    ds = mio.load_grid(DEMO_GRID)
    cuts = [dict(y=slice(0, 110)), dict(y=slice(50, None)), dict(x=slice(0, 100)), dict(x=slice(40, None))]
    paths = []
    for i, cut in enumerate(cuts[:n], start=1):
        path = folder / f"load-grid-{i}.nc"
        mio.save_grid(ds.isel(**cut), path)
        paths.append(path)
    return paths


async def drive(url: str, args, monitor: Monitor, files: list[Path]) -> dict:
    """Open D, then A, B and C; run their work at once; check isolation; close them and time the cleanup."""
    out: dict = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        contexts = [await browser.new_context(viewport=VIEWPORT) for _ in range(4)]
        pages = dict(zip("DABC", [await c.new_page() for c in contexts]))
        out["first_page_to_map_s"] = round(await open_page(pages["D"], url), 2)
        out["first_map_at"] = time.perf_counter()
        await asyncio.sleep(2)
        out["baseline_rss_mib"] = round(monitor.last[0] / 2**20, 1)
        loads = await asyncio.gather(*(open_page(pages[k], url) for k in "ABC"))
        out["three_more_pages_to_map_s"] = [round(s, 2) for s in loads]
        await asyncio.sleep(1.5)
        done = asyncio.Event()
        clicking = asyncio.create_task(
            timed(click_loop(pages["D"], click_cells(200), done, args.clicks, 2.0, args.click_timeout))
        )
        t0 = time.perf_counter()
        work = await asyncio.gather(
            timed(upload_grids(pages["A"], files, args.timeout)),
            timed(upload_points(pages["B"], LAPLAND, args.score, args.epochs, args.timeout)),
            timed(train(pages["C"], args.epochs, args.timeout)),
        )
        out["others_done_s"] = round(time.perf_counter() - t0, 2)
        done.set()
        out["sessions"] = dict(zip(["A_upload_grid", "B_upload_points", "C_training"], work))
        out["sessions"]["D_clicking"] = await clicking
        out["isolation"] = await isolation(pages, {"A": files[-1].name, "B_scored": args.score})
        out["folders_while_open"] = session_folders(monitor.root)[0]
        for context in contexts:
            await context.close()
        out["cleanup"] = await asyncio.to_thread(wait_folders_gone, monitor, 60)
        await browser.close()
    return out


def figures(out: dict, monitor: Monitor) -> dict:
    out.update(
        peak_rss_mib=round(monitor.peak_rss / 2**20, 1),
        peak_session_disk_mib=round(monitor.peak_bytes / 2**20, 2),
        peak_session_folders=monitor.peak_folders,
        cpu_count=os.cpu_count(),
        load_average=[round(v, 2) for v in os.getloadavg()],
        server_log=str(LOG),
        timeline_columns=["t_s", "rss_mib", "session_folders", "session_disk_mib"],
        timeline=monitor.timeline,
    )
    return out


def summary(out: dict) -> str:
    s = out.get("sessions", {})
    d = s.get("D_clicking", {})
    lines = [
        f"server start -> first map {out.get('serve_to_first_map_s')} s; three more pages at once: "
        f"{out.get('three_more_pages_to_map_s')} s",
        f"RSS: baseline {out.get('baseline_rss_mib')} MiB after the first page, peak {out['peak_rss_mib']} MiB",
        f"session folders: peak {out['peak_session_folders']} holding {out['peak_session_disk_mib']} MiB; "
        f"cleanup {out.get('cleanup')}",
    ]
    for name, r in s.items():
        keep = {k: v for k, v in r.items() if k not in ("clicks", "status")}
        lines.append(f"{name}: {keep}")
    lines.append(
        f"clicks under load: n {d.get('n')}, to header {d.get('to_header')}, to all plots {d.get('to_all_plots')}, "
        f"longest frame gap {d.get('longest_frame_gap_s')} s"
    )
    lines.append(f"isolation: {out.get('isolation', {}).get('checks')}")
    lines.append(f"server log: {out.get('server_log_problems')}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="short smoke run: 2 uploads, 2 epochs, 3 clicks")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of C's training and B's scoring")
    parser.add_argument("--uploads", type=int, default=3, help="grid uploads by A (1-4)")
    parser.add_argument("--clicks", type=int, default=10, help="at least this many clicks by D")
    parser.add_argument("--no-score", dest="score", action="store_false", help="B only uploads")
    parser.add_argument("--timeout", type=float, default=600, help="seconds each job may take")
    parser.add_argument("--click-timeout", type=float, default=60, help="seconds a click may take")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.uploads, args.clicks = 2, 2, 3
    with tempfile.TemporaryDirectory(prefix="mstgat-load-check-") as work:
        work = Path(work)
        server_tmp = work / "server-tmp"
        server_tmp.mkdir()
        files = grid_files(work, max(1, min(args.uploads, 4)))
        t0 = time.perf_counter()
        with serve_app(LOG, extra_args=SERVE_ARGS, extra_env={"TMPDIR": str(server_tmp)}) as url:
            monitor = Monitor(server_process(url), server_tmp)
            monitor.start()
            out = {"serve_to_first_map_s": None}
            out.update(asyncio.run(drive(url, args, monitor, files)))
            out["serve_to_first_map_s"] = round(out.pop("first_map_at") - t0, 2)
            monitor.stop.set()
            monitor.join()
        out = figures(out, monitor)
    out["server_log_problems"] = log_problems(LOG)
    text_out = json.dumps(out, indent=1)
    print(summary(out))
    if args.json:
        Path(args.json).write_text(text_out)


if __name__ == "__main__":
    main()
