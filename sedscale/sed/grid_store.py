"""Grid-cache files on disk: checksummed, written atomically, verified before a fit reads them.

Why: the cache directory is shared by every worker of a node (or of a site, on a parallel file
system), survives crashes and fills up like any other. A file cut short by a kill, a full disk or
a bad sector must never be read into a fit — a wrong grid gives wrong masses with nothing to show
for it — so every file carries the sha256 of its arrays, checked on each read; a file that fails
is removed (with a warning naming it) and the caller rebuilds the grid. Files are written through
:mod:`sedscale.fsutil` (temporary + fsync + rename), so two workers writing the
same entry at once each replace it with a complete file, and a reader sees one whole file or
the other. A write that fails (ENOSPC, EDQUOT, …) raises :class:`GridCacheWriteError` naming
the file and leaves no partial file behind.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import logging
import os
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sedscale import _testhooks
from sedscale.fsutil import fsync_dir, unlink_durable, write_temp

log = logging.getLogger(__name__)

#: Name of the member holding the sha256 (hex, as uint8) of every other member.
CHECKSUM_MEMBER = "__sha256__"

#: Bumped when the file layout changes; part of the cache key (see ``grid.grid_cache_key``), so
#: files of another layout are never opened.
STORE_FORMAT = "2"  # 2: sha256 member, written through sedscale.fsutil


_SECONDS_LOCK = threading.Lock()
_SECONDS = {"load": 0.0, "write": 0.0}


def grid_load_seconds() -> float:
    """Seconds this process has spent reading (and verifying) grid-cache files that were usable."""
    with _SECONDS_LOCK:
        return _SECONDS["load"]


def grid_write_seconds() -> float:
    """Seconds this process has spent writing grid-cache files (part of a grid's build cost)."""
    with _SECONDS_LOCK:
        return _SECONDS["write"]


def _count(kind: str, t0: float) -> None:
    with _SECONDS_LOCK:
        _SECONDS[kind] += time.perf_counter() - t0


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the ``sed`` layer's source files (every ``sedscale/sed/*.py``), part of every grid's
    cache key: a grid cache shared across campaigns and installs lives longer than any one checkout,
    and a grid another version of the physics code built (an edited working tree keeps its version
    number) must never be read as this one's — it would give other bits than a fresh build."""
    h = hashlib.sha256()
    for source in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(source.name.encode() + b"\0" + source.read_bytes())
    return h.hexdigest()


#: ``.writing-*`` folders older than this are a killed writer's leftovers (a write takes seconds).
STALE_WRITING_SECONDS = 6 * 3600


def _remove_stale_writing_dirs(folder: Path) -> None:
    """Remove what writers killed mid-write (SIGKILL skips their cleanup) left in a shared cache."""
    cutoff = time.time() - STALE_WRITING_SECONDS
    for leftover in folder.glob(".writing-*"):
        try:
            if leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


class GridCacheWriteError(OSError):
    """A grid-cache file could not be written (no space, quota, permissions): the partition
    stops here rather than fitting on without its cache. ``filename`` is the cache file."""


def payload_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` and their checksum to ``path`` atomically and durably.

    The temporary file lives in a private directory beside ``path`` that is removed whatever
    happens, so a failed write leaves nothing behind."""
    t0 = time.perf_counter()
    digest = np.frombuffer(payload_digest(arrays).encode(), dtype=np.uint8)
    buf = _npz_bytes({**arrays, CHECKSUM_MEMBER: digest})
    private: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        private = Path(tempfile.mkdtemp(dir=path.parent, prefix=".writing-"))
        tmp = write_temp(buf, private, path.name)
        _testhooks.in_grid_write()  # inert unless a crash test sets it
        os.replace(tmp, path)
        fsync_dir(path.parent)
        _remove_stale_writing_dirs(path.parent)
    except OSError as exc:
        code = exc.errno if exc.errno is not None else errno.EIO
        hint = " (free space or raise the quota, then resume)" if code in (errno.ENOSPC, errno.EDQUOT) else ""
        raise GridCacheWriteError(code, f"cannot write grid cache file {path}: "
                                  f"{exc.strerror or os.strerror(code)}{hint}", str(path)) from exc
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
        _count("write", t0)


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The .npz file of ``arrays`` as bytes (uncompressed; written in one piece)."""
    out = io.BytesIO()
    np.savez(out, **dict(arrays))  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    return out.getvalue()


def read_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The verified arrays of ``path`` (without the checksum), or None when the file is missing
    or fails verification — then it is removed, with a warning, for the caller to rebuild. The
    time a usable file takes is added to :func:`grid_load_seconds`."""
    t0 = time.perf_counter()
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        _discard(path, f"unreadable: {type(exc).__name__}: {exc}")
        return None
    stored = arrays.pop(CHECKSUM_MEMBER, None)
    if stored is None:
        _discard(path, "no checksum")
        return None
    if bytes(np.asarray(stored, np.uint8)).decode("ascii", "replace") != payload_digest(arrays):
        _discard(path, "checksum mismatch")
        return None
    _count("load", t0)
    return arrays


def _discard(path: Path, why: str) -> None:
    log.warning("grid cache file %s is corrupt (%s): removed; the grid is rebuilt", path, why)
    try:
        unlink_durable(path)
    except OSError as exc:  # read-only cache: the rebuilt grid replaces it (or is used unsaved)
        log.warning("could not remove corrupt grid cache file %s: %s", path, exc)
