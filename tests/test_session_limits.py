"""Per-session and per-server limits of the dashboard: disk for uploads, one queue for heavy jobs,
stale session folders; the page served from the installed package. Plain pytest, no browser."""

import asyncio
import os
import threading
import time

import pytest

from mstgat_core.dashboard.server import JobSlots, remove_stale_session_folders
from mstgat_core.dashboard.state import Session
from mstgat_core.errors import DataError
from mstgat_core.testing import run_in_a_fresh_loop


def test_job_slots_are_first_come_first_served():
    slots = JobSlots(1)
    a, b = object(), object()
    slots.join(a)
    slots.join(b)
    assert slots.ahead(b) == 1 and not slots.try_start(b)  # b may not jump the queue
    assert slots.try_start(a) and slots.running == 1
    assert slots.ahead(b) == 0 and not slots.try_start(b)  # next, but no free slot
    slots.finish()
    assert slots.try_start(b) and slots.running == 1


def test_heavy_jobs_of_two_sessions_queue_and_a_queued_job_can_be_cancelled(monkeypatch):
    from mstgat_core.dashboard import jobs as job_module

    monkeypatch.setattr(job_module, "JOB_SLOTS", JobSlots(1))
    sessions = [Session(), Session(), Session()]
    jobs = [job_module.Jobs(s) for s in sessions]
    running, most, seen_queued = [0], [0], []
    lock = threading.Lock()

    def heavy():
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.6)
        with lock:
            running[0] -= 1
        return "done"

    async def watch_queue():
        for _ in range(20):
            seen_queued.append(sessions[1].activity.progress_text)
            await asyncio.sleep(0.1)

    async def cancel_third():
        await asyncio.sleep(0.3)
        sessions[2].activity.cancel_event.set()

    async def main():
        return await asyncio.gather(
            jobs[0].run("training", heavy, heavy=True),
            jobs[1].run("training", heavy, heavy=True),
            jobs[2].run("cross-validation", heavy, heavy=True),
            watch_queue(),
            cancel_third(),
        )

    try:
        results = run_in_a_fresh_loop(main())
        assert results[:3] == ["done", "done", None]
        assert most[0] == 1  # never two heavy jobs at once
        assert any("queued - 1 heavy job(s) running on this server" in t for t in seen_queued), seen_queued
        assert sessions[2].activity.status == "cancelled" and sessions[2].activity.busy == ""
        assert job_module.JOB_SLOTS.running == 0
    finally:
        for s in sessions:
            s.cleanup()


def test_a_heavy_job_of_any_name_waits_for_a_slot_and_a_light_one_does_not(monkeypatch):
    """Queueing is the caller's explicit ``heavy=True``, not a list of known job names."""
    from mstgat_core.dashboard import jobs as job_module

    slots = JobSlots(1)
    monkeypatch.setattr(job_module, "JOB_SLOTS", slots)
    waiting, light = Session(), Session()
    started = []

    def work(name):
        started.append((name, time.perf_counter()))
        return name

    async def main():
        holder = object()  # another session's heavy job holds the only slot
        slots.join(holder)
        assert slots.try_start(holder)
        queued = asyncio.create_task(
            job_module.Jobs(waiting).run("a job no list has heard of", work, "heavy", heavy=True)
        )
        quick = await job_module.Jobs(light).run("a light job", work, "light")  # runs beside the heavy ones
        await asyncio.sleep(0.8)
        text, was_started = waiting.activity.progress_text, list(started)
        t_free = time.perf_counter()
        slots.finish()
        return quick, await queued, text, was_started, t_free

    try:
        quick, result, text, was_started, t_free = run_in_a_fresh_loop(main())
        assert quick == "light" and result == "heavy"
        assert [name for name, _ in was_started] == ["light"]  # the heavy job waited for the slot ...
        assert (
            text == "a job no list has heard of: queued - 1 heavy job(s) running on this server, 0 waiting before yours"
        )
        assert started[1][0] == "heavy" and started[1][1] >= t_free  # ... and ran once it was free
        assert slots.running == 0 and waiting.activity.busy == ""
    finally:
        for s in (waiting, light):
            s.cleanup()


def test_the_installed_package_serves_the_page_only_when_run_by_panel(monkeypatch):
    """``panel serve <path of mstgat_core/dashboard/app.py>`` builds a page per browser session; importing the
    module (to print its path) builds nothing."""
    import importlib
    import runpy

    from mstgat_core.dashboard import views

    built = []

    class Page:
        def servable(self, title):
            built.append(title)
            return self

    monkeypatch.setattr(views, "create_app", Page)
    app = importlib.import_module("mstgat_core.dashboard.app")
    assert built == []
    runpy.run_path(app.__file__, run_name="bokeh_app_0123")  # as Panel runs it, once per browser session
    runpy.run_path(app.__file__, run_name="bokeh_app_4567")
    assert built == ["MSTGAT Explorer", "MSTGAT Explorer"]


def test_uploads_are_limited_per_session(monkeypatch):
    monkeypatch.setenv("MSTGAT_SESSION_DISK", "1000")
    s = Session()
    try:
        s.folder.save_upload({"a.csv": b"x" * 600})
        s.folder.save_upload({"a.csv": b"y" * 700})  # replaces a.csv: 700 bytes kept
        with pytest.raises(DataError, match=r"per session \(MSTGAT_SESSION_DISK\)"):
            s.folder.save_upload({"b.csv": b"z" * 400})
        assert sorted(p.name for p in s.folder.path.iterdir()) == ["a.csv"]
        (path,) = s.folder.save_upload({"../../escape.csv": b"ok"})
        assert path.parent == s.folder.path and path.name == "escape.csv"
    finally:
        s.cleanup()
    assert not s.folder.path.exists()


def test_stale_session_folders_are_removed_and_live_ones_kept(tmp_path):
    old, fresh, other = tmp_path / "mstgat-session-old", tmp_path / "mstgat-session-new", tmp_path / "keep-me"
    for folder in (old, fresh, other):
        folder.mkdir()
        (folder / "upload.csv").write_text("x")
    past = time.time() - 7200
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    assert remove_stale_session_folders(max_age_s=3600, root=tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep-me", "mstgat-session-new"]
