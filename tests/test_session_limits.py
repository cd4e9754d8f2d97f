"""Per-session and per-server limits of the dashboard: disk for uploads, one queue for heavy jobs,
stale session folders. Plain pytest, no browser."""

import asyncio
import concurrent.futures
import os
import threading
import time

import pytest

from mstgat_core.dashboard.state import JobSlots, Session, remove_stale_session_folders
from mstgat_core.errors import DataError


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
            seen_queued.append(sessions[1].progress_text)
            await asyncio.sleep(0.1)

    async def cancel_third():
        await asyncio.sleep(0.3)
        sessions[2].cancel_event.set()

    async def main():
        return await asyncio.gather(
            jobs[0].run("training", heavy),
            jobs[1].run("training", heavy),
            jobs[2].run("cross-validation", heavy),
            watch_queue(),
            cancel_third(),
        )

    try:
        # a fresh thread: under xdist another test's event loop (playwright's) may be running in this one
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            results = pool.submit(asyncio.run, main()).result()
        assert results[:3] == ["done", "done", None]
        assert most[0] == 1  # never two heavy jobs at once
        assert any("queued - 1 heavy job(s) running on this server" in t for t in seen_queued), seen_queued
        assert sessions[2].status == "cancelled" and sessions[2].busy == ""
        assert job_module.JOB_SLOTS.running == 0
    finally:
        for s in sessions:
            s.cleanup()


def test_uploads_are_limited_per_session(monkeypatch):
    monkeypatch.setenv("MSTGAT_SESSION_DISK", "1000")
    s = Session()
    try:
        s.save_upload({"a.csv": b"x" * 600})
        s.save_upload({"a.csv": b"y" * 700})  # replaces a.csv: 700 bytes kept
        with pytest.raises(DataError, match=r"per session \(MSTGAT_SESSION_DISK\)"):
            s.save_upload({"b.csv": b"z" * 400})
        assert sorted(p.name for p in s.tmpdir.iterdir()) == ["a.csv"]
        (path,) = s.save_upload({"../../escape.csv": b"ok"})
        assert path.parent == s.tmpdir and path.name == "escape.csv"
    finally:
        s.cleanup()
    assert not s.tmpdir.exists()


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
