"""Serve the dashboard once per test session and drive it with the system chromium."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from mstgat_core.testing import CHROMIUM_ARGS, ROOT, serve_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and Path("/usr/bin/chromium").exists():
    CHROMIUM = "/usr/bin/chromium"

pytest.importorskip("playwright")
pytest.importorskip("panel")
if CHROMIUM is None:
    pytest.skip("no system chromium found", allow_module_level=True)

TIMINGS: dict = {}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/ui" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.ui)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """A desktop-sized window: the map must be inside the viewport to be clicked."""
    return {**browser_context_args, "viewport": {"width": 1600, "height": 1000}}


class TileServer:
    """Serves one grey 256 px PNG for every ``/{z}/{x}/{y}.png``, recording the paths asked for: the
    basemap's tiles without the internet."""

    def __init__(self):
        import io
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (256, 256), (200, 200, 200)).save(buffer, format="PNG")
        png, requests = buffer.getvalue(), []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, *args):
                pass

        self.requests = requests
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/{{Z}}/{{X}}/{{Y}}.png"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="session")
def tile_server():
    server = TileServer()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="session")
def app_url(tile_server):
    """``panel serve app.py`` on a free port, its basemap tiles from the local tile server; yields the page
    URL once it answers HTTP 200."""
    os.environ["MSTGAT_TILE_URL"] = tile_server.url  # the server process inherits it
    t0 = time.perf_counter()
    with serve_app(ROOT / "tests" / "ui" / ".panel-serve.log", timeout=180) as url:
        TIMINGS["server_start"] = t0
        TIMINGS["server_ready_s"] = time.perf_counter() - t0
        yield url


@pytest.fixture(scope="session")
def timings():
    yield TIMINGS
    if TIMINGS:
        print("\nUI timings:", {k: round(v, 2) for k, v in TIMINGS.items() if k != "server_start"})
