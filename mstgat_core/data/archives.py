"""Reading zip archives without trusting them.

An upload is whatever its sender made it: a 1 MB zip can declare (and
inflate to) gigabytes, name members ``../../etc/x`` or ``/tmp/x``, or hold a
million members. :func:`extract_members` therefore

* reads the central directory first and refuses, before writing anything, an
  archive whose member count, total declared size or compression ratio
  exceeds :class:`ArchiveLimits`;
* refuses absolute names, names with ``..`` components, drive letters and
  symbolic links;
* extracts only the members asked for (by suffix), one by one in chunks, into
  the given folder, and stops if a member inflates beyond the size it
  declared (a forged header).

Every refusal is a one-line :class:`~mstgat_core.errors.DataError` that names
the limit and the archive's own name, never a server path. The defaults can
be changed per call or, for a server, with the environment variables
``MSTGAT_ZIP_MAX_BYTES``, ``MSTGAT_ZIP_MAX_RATIO`` and ``MSTGAT_ZIP_MAX_MEMBERS``.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import DataError

CHUNK = 1 << 20


def _env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class ArchiveLimits:
    """What an archive may hold.

    Attributes
    ----------
    max_bytes : int
        Total uncompressed size of the members extracted (default 2 GiB).
    max_ratio : float
        Uncompressed / compressed size of any member over 1 MiB (default 200;
        float32 GeoTIFFs with deflate stay far below, archive bombs reach 1000).
    max_members : int
        Entries in the archive (default 1,000).
    """

    max_bytes: int = int(_env("MSTGAT_ZIP_MAX_BYTES", 2 * 1024**3))
    max_ratio: float = _env("MSTGAT_ZIP_MAX_RATIO", 200.0)
    max_members: int = int(_env("MSTGAT_ZIP_MAX_MEMBERS", 1000))


def _unsafe_name(name: str) -> bool:
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    return posix.is_absolute() or bool(windows.drive) or windows.is_absolute() or ".." in posix.parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _size(n: float) -> str:
    return f"{n / 1024**2:,.0f} MiB" if n >= 1024**2 else f"{n:,.0f} bytes"


def extract_members(path, dest, suffixes, limits: ArchiveLimits | None = None) -> list[Path]:
    """Extract the members of zip ``path`` whose names end in one of ``suffixes`` into folder ``dest``.

    Returns the extracted files. Raises :class:`DataError` (nothing left in
    ``dest`` by this call) if the file is not a zip or breaks a limit or a
    naming rule (see the module docstring).
    """
    limits = limits or ArchiveLimits()
    path, dest = Path(path), Path(dest)
    suffixes = tuple(s.lower() for s in suffixes)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise DataError(f"not a valid zip file: {path.name}") from None
    written: list[Path] = []
    try:
        with archive:
            infos = archive.infolist()
            if len(infos) > limits.max_members:
                raise DataError(f"{path.name} has {len(infos):,} entries; the limit is {limits.max_members:,}")
            for info in infos:
                if _unsafe_name(info.filename) or _is_symlink(info):
                    raise DataError(f"{path.name}: member {info.filename!r} points outside the archive; refused")
            wanted = [i for i in infos if not i.is_dir() and i.filename.lower().endswith(suffixes)]
            total = sum(i.file_size for i in wanted)
            if total > limits.max_bytes:
                raise DataError(f"{path.name} would unpack to {_size(total)}; the limit is {_size(limits.max_bytes)}")
            for info in wanted:
                if info.file_size > CHUNK and info.file_size > limits.max_ratio * max(info.compress_size, 1):
                    raise DataError(
                        f"{path.name}: member {PurePosixPath(info.filename).name!r} is compressed "
                        f"{info.file_size / max(info.compress_size, 1):,.0f} to 1; the limit is {limits.max_ratio:g}"
                    )
            for info in wanted:
                target = dest / Path(*PurePosixPath(info.filename).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                written.append(target)
                _copy_member(archive, info, target, path.name)
    except zipfile.BadZipFile as exc:
        _remove(written)
        raise DataError(f"not a valid zip file: {path.name} ({exc})") from None
    except BaseException:
        _remove(written)
        raise
    return written


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, name: str) -> None:
    done = 0
    with archive.open(info) as source, open(target, "wb") as out:
        while chunk := source.read(CHUNK):
            done += len(chunk)
            if done > info.file_size:
                raise DataError(f"{name}: member {PurePosixPath(info.filename).name!r} is larger than it declares")
            out.write(chunk)


def _remove(paths) -> None:
    for p in paths:
        try:
            p.unlink()
        except OSError:
            pass
