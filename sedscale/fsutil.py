"""Durable file operations: write-to-temporary, fsync, rename, fsync the directory.

POSIX ``rename(2)`` replaces the target atomically on one file system: a reader sees the old
file or the new one, never a mix. It is *durable* only after the directory holding the new name
is fsync'ed, and the new name points at complete data only if the file itself was fsync'ed
before the rename. Every durable write in a campaign goes through :func:`atomic_write`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make the directory entries (creations, renames, unlinks) in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(data: bytes, tmp_dir: Path, tag: str) -> Path:
    """Write ``data`` to a fresh, uniquely named file in ``tmp_dir`` and fsync it."""
    tmp = tmp_dir / f"{tag}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:  # ENOSPC / EDQUOT / interrupt: leave no half-written temporary behind
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def atomic_write(path: Path, data: bytes, tmp_dir: Path | None = None, *, sync_dir: bool = True) -> None:
    """Replace ``path`` by ``data`` atomically and durably (temporary in ``tmp_dir`` or beside it)."""
    tmp_dir = tmp_dir or path.parent
    tmp = write_temp(data, tmp_dir, path.name)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def unlink_durable(path: Path) -> bool:
    """Remove ``path`` (if present) and make the removal durable; True when it existed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that streams (Parquet, FITS, HATS files):
    on a clean exit it is fsync'ed and renamed onto ``path`` durably; on an error it is removed,
    so a reader never sees a half-written file under the final name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.partial")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
