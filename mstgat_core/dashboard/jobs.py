"""Long work of one dashboard session, off the event loop.

:class:`Jobs` runs one blocking job at a time in a worker thread (``asyncio.to_thread``) while the event
loop polls its progress into the session's :class:`~.activity.Activity` (what the page shows of it). A job
started with ``heavy=True`` (training, cross-validation, whole-grid maps) first queues for one of the
server's :data:`~.server.JOB_SLOTS`.
"""

from __future__ import annotations

import asyncio
import time

from .server import JOB_SLOTS
from .state import Session


class Jobs:
    """Runs one blocking job at a time for a session, with progress polling and cancel."""

    def __init__(self, session: Session):
        self.session = session
        self.activity = session.activity

    async def run(self, name: str, func, *args, heavy: bool = False, history: list | None = None, **kwargs):
        """Run ``func(*args, **kwargs)`` in a worker thread, showing its progress; returns its result, or
        None when it failed (the error is shown), was cancelled, or another job is running.

        Parameters
        ----------
        name : str
            The job's name in the progress line and the queue ("training", "attention maps", ...).
        func : callable
            The blocking work.
        heavy : bool
            Queue for one of the server's heavy-job slots first (training, cross-validation, whole-grid
            maps): at most ``MSTGAT_MAX_JOBS`` of them run at once on the server.
        history : list, optional
            A list the job appends epoch logs to (``on_epoch=history.append``), shown as they come.
        **kwargs
            Passed to ``func``; ``progress=True`` is replaced by a ``progress(done, total, msg)`` callback.
        """
        s = self.activity
        if s.busy:
            s.error = f"'{s.busy}' is still running: wait for it or press Cancel"
            return None
        clicked = time.perf_counter()  # times are from the click: the queue is part of the wait
        s.busy, s.error, s.notice = name, "", ""
        s.progress, s.progress_max, s.progress_text = 0, 1, f"{name}..."
        if heavy and not await self._wait_for_slot(name):
            return None
        try:
            return await self._run(name, func, *args, history=history, t0=clicked, **kwargs)
        finally:
            if heavy:
                JOB_SLOTS.finish()

    async def _wait_for_slot(self, name: str) -> bool:
        """Queue for one of the server's heavy-job slots, showing the position; False if cancelled."""
        s = self.activity
        ticket = object()
        JOB_SLOTS.join(ticket)
        s.cancel_event.clear()
        try:
            while not JOB_SLOTS.try_start(ticket):
                if s.cancel_event.is_set():
                    s.busy, s.status, s.progress_text = "", "cancelled", f"{name}: cancelled while queued"
                    return False
                ahead = JOB_SLOTS.ahead(ticket)
                s.progress_text = (
                    f"{name}: queued - {JOB_SLOTS.running} heavy job(s) running on this server, "
                    f"{ahead} waiting before yours"
                )
                await asyncio.sleep(0.3)
            return True
        finally:
            JOB_SLOTS.leave(ticket)

    async def _run(self, name: str, func, *args, history: list | None = None, t0: float, **kwargs):
        s = self.activity
        box = {"done": 0, "total": 1, "msg": ""}

        def progress(done, total, msg=""):
            box.update(done=int(done), total=max(int(total), 1), msg=str(msg or ""))

        if "progress" in kwargs:
            kwargs["progress"] = progress
        task = asyncio.create_task(asyncio.to_thread(func, *args, **kwargs))
        seen, ended = 0, "finished"
        try:
            while not task.done():
                await asyncio.wait([task], timeout=0.4)
                self._sync(box, history, seen, name, t0)
                if history is not None:
                    seen = len(history)
            result = task.result()
            self._sync(box, history, seen, name, t0)
            return result
        except Exception as exc:  # shown in the page, never as a traceback
            ended = "cancelled" if s.fail(exc) == "cancelled" else "failed"
            return None
        finally:
            s.busy = ""
            s.progress = 0  # an empty bar once the job ends: a full one read as still at work
            if history is None or ended != "finished":
                took = f"{time.perf_counter() - t0:.1f} s"
                s.progress_text = (
                    f"{name}: finished in {took}" if ended == "finished" else f"{name}: {ended} after {took}"
                )

    def _sync(self, box, history, seen, name, t0):
        s, epochs = self.activity, self.session.model.epochs
        if history is not None and len(history) != seen:
            logs = list(history)
            s.history = [dict(epoch=e.epoch, loss=e.loss, val_auc=getattr(e, "val_auc", float("nan"))) for e in logs]
            last = logs[-1]
            s.progress_max = max(int(epochs), 1)
            s.progress = min(last.epoch, s.progress_max)
            auc = getattr(last, "val_auc", None)
            stage = "pretraining" if auc is None else "training"
            s.progress_text = f"{name}: {stage} epoch {last.epoch}/{epochs}, loss {last.loss:.4f}" + (
                f", val AUC {auc:.3f}" if auc is not None else ""
            )
        elif history is None:
            s.progress_max, s.progress = box["total"], min(box["done"], box["total"])
            s.progress_text = f"{name}: {box['done']}/{box['total']} {box['msg']}".strip()
        if history is not None and not history:
            s.progress_text = f"{name}: preparing ({time.perf_counter() - t0:.0f} s)"
