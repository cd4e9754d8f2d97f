"""Serve the dashboard once per test session and drive it with the system chromium."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from mstgat_core.dashboard.browser import CHROMIUM_ARGS, ROOT, serve_app

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


@pytest.fixture(scope="session")
def app_url():
    """``panel serve app.py`` on a free port; yields the page URL once it answers HTTP 200."""
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
