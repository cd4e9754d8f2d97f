"""What every session of one dashboard server process shares: the slots of heavy jobs and their queue,
the sessions' folders on disk, torch's threads and the basemap's tiles (Panel-free).

Everything else of a session lives in its :class:`~.state.Session`; nothing here holds a user's data.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from ..errors import DataError

SESSION_PREFIX = "mstgat-session-"


# ---------------------------------------------------------------------------------------------- folders


def session_disk_limit() -> int:
    """Bytes of uploads one session may keep (``MSTGAT_SESSION_DISK``, default 1 GiB)."""
    try:
        return int(float(os.environ.get("MSTGAT_SESSION_DISK", 1024**3)))
    except ValueError:
        return 1024**3


def remove_stale_session_folders(max_age_s: float = 3600.0, root=None) -> int:
    """Delete session folders left by a server that stopped without cleaning up (untouched for
    ``max_age_s``); returns how many were removed. Folders of live sessions are younger."""
    root = Path(root or tempfile.gettempdir())
    removed, now = 0, time.time()
    for folder in root.glob(f"{SESSION_PREFIX}*"):
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


_LIVE_FOLDERS: set[Path] = set()  # folders of this process's sessions not yet cleaned up


@atexit.register
def _remove_live_session_folders():
    """A server stopped (Ctrl-C) with sessions still open leaves no folder behind."""
    for folder in list(_LIVE_FOLDERS):
        shutil.rmtree(folder, ignore_errors=True)


class SessionFolder:
    """One session's folder for its uploads and exports (``mstgat-session-*`` in the temporary folder),
    kept within :func:`session_disk_limit` and removed by :meth:`cleanup` or when the server exits."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix=SESSION_PREFIX))
        _LIVE_FOLDERS.add(self.path)

    def save_upload(self, files: dict) -> list[Path]:
        """Write uploaded files (name -> bytes or text) into the folder, names reduced to their last part,
        within :func:`session_disk_limit` for everything the session keeps there.

        Parameters
        ----------
        files : dict
            File name -> content, as a ``FileDropper`` gives them.

        Returns
        -------
        list of Path
            The written files, in the order given.

        Raises
        ------
        DataError
            When the folder would exceed the limit (nothing is written then).
        """
        blobs = {
            Path(name).name or "upload": (data.encode() if isinstance(data, str) else data)
            for name, data in files.items()
        }
        kept = {p.name: p.stat().st_size for p in self.path.iterdir() if p.is_file() and p.name not in blobs}
        total = sum(kept.values()) + sum(len(b) for b in blobs.values())
        limit = session_disk_limit()
        if total > limit:
            raise DataError(
                f"this session's files would take {total / 1024**2:,.0f} MiB; the limit is "
                f"{limit / 1024**2:,.0f} MiB per session (MSTGAT_SESSION_DISK)"
            )
        paths = []
        for name, data in blobs.items():
            path = self.path / name
            path.write_bytes(data)
            paths.append(path)
        return paths

    def cleanup(self) -> None:
        """Delete the folder and everything in it."""
        shutil.rmtree(self.path, ignore_errors=True)
        _LIVE_FOLDERS.discard(self.path)


# ---------------------------------------------------------------------------------------------- heavy jobs


class JobSlots:
    """First-come, first-served slots for heavy jobs, shared by every session of the server process,
    so that a class training at once queues on the cores instead of fighting over them."""

    def __init__(self, slots: int):
        self.slots = max(int(slots), 1)
        self._lock = threading.Lock()
        self._running = 0
        self._queue: list = []

    def join(self, ticket) -> None:
        """Put ``ticket`` at the end of the queue."""
        with self._lock:
            self._queue.append(ticket)

    def leave(self, ticket) -> None:
        """Take ``ticket`` out of the queue (if it is still queued)."""
        with self._lock:
            if ticket in self._queue:
                self._queue.remove(ticket)

    def ahead(self, ticket) -> int:
        """Jobs queued before ``ticket`` (0 when it is next)."""
        with self._lock:
            return self._queue.index(ticket) if ticket in self._queue else 0

    def try_start(self, ticket) -> bool:
        """Start ``ticket`` if it is first in the queue and a slot is free."""
        with self._lock:
            if self._queue and self._queue[0] is ticket and self._running < self.slots:
                self._queue.pop(0)
                self._running += 1
                return True
            return False

    def finish(self) -> None:
        """Free the slot of a job that has ended."""
        with self._lock:
            self._running = max(self._running - 1, 0)

    @property
    def running(self) -> int:
        """Heavy jobs running now."""
        return self._running


def _job_slots() -> int:
    try:
        return int(os.environ.get("MSTGAT_MAX_JOBS", max((os.cpu_count() or 2) // 2, 1)))
    except ValueError:
        return 1


JOB_SLOTS = JobSlots(_job_slots())


# ---------------------------------------------------------------------------------------------- threads, tiles


def torch_threads() -> int:
    """Threads each dashboard job gives torch (``MSTGAT_TORCH_THREADS``, default 1).

    Heavy jobs already run ``MSTGAT_MAX_JOBS`` at a time (half the cores) and clicks run beside them;
    one thread each keeps a training from starving the clicks of every other session, and more only
    thrash on a small server."""
    try:
        return max(int(os.environ.get("MSTGAT_TORCH_THREADS", 1)), 1)
    except ValueError:
        return 1


def set_threads() -> None:
    """Give torch :func:`torch_threads` threads (called at the start of every blocking job)."""
    import torch

    if torch.get_num_threads() != torch_threads():
        torch.set_num_threads(torch_threads())


def tile_url() -> str:
    """XYZ template of the basemap's tiles (``MSTGAT_TILE_URL``; OpenStreetMap's by default, fetched by
    the browser only when the basemap is switched on)."""
    return os.environ.get("MSTGAT_TILE_URL", "https://tile.openstreetmap.org/{Z}/{X}/{Y}.png")
