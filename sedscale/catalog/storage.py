"""Where catalog files live: a local path, ``s3://bucket/key`` or ``https://host/path``.

Why one module: every reader (Parquet footers, HATS metadata through the ``hats`` library, FITS
headers) must reach the same file the same way, and a campaign's manifest stores the *location*
string a task later reads from, on another node. Local paths are made absolute; remote ones keep
their URI. Remote files are reached through fsspec (``s3fs`` for S3, fsspec's HTTP file system
for HTTPS) — the same file systems ``hats``/``lsdb`` use through ``UPath`` — and handed to pyarrow
wrapped in :class:`pyarrow.fs.PyFileSystem`.

S3 access is anonymous unless AWS credentials are configured in the environment (IRSA's Euclid
Q1 bucket is public); ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) points at another
S3-compatible server (MinIO, Ceph, a test server).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.fs as pafs

if TYPE_CHECKING:
    import fsspec
    from upath import UPath

REMOTE_SCHEMES = ("s3://", "https://", "http://")


def is_remote(location: str) -> bool:
    """True for an ``s3://`` or ``http(s)://`` location."""
    return location.startswith(REMOTE_SCHEMES)


def normalize(location: str | Path) -> str:
    """An absolute local path, or the remote URI unchanged (trailing slashes dropped)."""
    text = str(location)
    if is_remote(text):
        return text.rstrip("/")
    return str(Path(text).resolve())


def join(location: str, *parts: str) -> str:
    """``location/part/...`` for local paths and URIs alike."""
    if is_remote(location):
        return "/".join([location.rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(location, *parts))


def _s3_options() -> dict[str, Any]:
    """s3fs options: anonymous without credentials; the endpoint from the standard variables."""
    has_credentials = bool(os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")
                           or Path("~/.aws/credentials").expanduser().exists())
    options: dict[str, Any] = {"anon": not has_credentials}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
    return options


def storage_options(location: str) -> dict[str, Any]:
    """The fsspec options for ``location`` (what ``UPath``/``hats`` need to reach it)."""
    return _s3_options() if location.startswith("s3://") else {}


@lru_cache(maxsize=8)
def _fsspec_for(scheme: str, options_key: tuple[tuple[str, Any], ...]) -> "fsspec.AbstractFileSystem":
    import fsspec

    return fsspec.filesystem(scheme, **dict(options_key))


def fsspec_filesystem(location: str) -> "fsspec.AbstractFileSystem":
    """The fsspec file system of a remote location (cached per scheme and options)."""
    scheme = location.split("://", 1)[0]
    return _fsspec_for(scheme, tuple(sorted(storage_options(location).items())))


def fs_path(location: str) -> str:
    """The path of ``location`` inside its file system (fsspec strips ``s3://``, keeps URLs)."""
    if location.startswith("s3://"):
        return location[len("s3://"):]
    return location


@lru_cache(maxsize=8)
def _arrow_remote(scheme: str, options_key: tuple[tuple[str, Any], ...]) -> pafs.FileSystem:
    return pafs.PyFileSystem(pafs.FSSpecHandler(_fsspec_for(scheme, options_key)))


def arrow_filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow file system and the path within it, for ``pyarrow.parquet`` reads."""
    if not is_remote(location):
        return pafs.LocalFileSystem(), location
    scheme = location.split("://", 1)[0]
    return _arrow_remote(scheme, tuple(sorted(storage_options(location).items()))), fs_path(location)


def upath(location: str) -> "UPath":
    """``location`` as a ``UPath`` carrying its storage options (for the ``hats`` library)."""
    from upath import UPath

    path: UPath = UPath(location, **storage_options(location))
    return path


@dataclass(frozen=True)
class FileStat:
    """What resume compares: size and modification time (ns; 0 where the store gives none)."""

    size: int
    mtime_ns: int


def _mtime_ns(info: dict[str, Any]) -> int:
    value = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    if value is None:
        return 0
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1e9)
    try:
        return int(float(value) * 1e9)
    except (TypeError, ValueError):
        return 0


def stat(location: str) -> FileStat:
    """Size and mtime of a file; raises FileNotFoundError when it does not exist."""
    if not is_remote(location):
        st = os.stat(location)
        return FileStat(st.st_size, st.st_mtime_ns)
    info = fsspec_filesystem(location).info(fs_path(location))
    return FileStat(int(info.get("size") or 0), _mtime_ns(info))


def exists(location: str) -> bool:
    if not is_remote(location):
        return os.path.exists(location)
    return bool(fsspec_filesystem(location).exists(fs_path(location)))


def is_dir(location: str) -> bool:
    if not is_remote(location):
        return os.path.isdir(location)
    return bool(fsspec_filesystem(location).isdir(fs_path(location)))


def _with_scheme(location: str, found: str) -> str:
    if location.startswith("s3://") and not found.startswith("s3://"):
        return "s3://" + found
    return found


def find_files(location: str, suffixes: tuple[str, ...]) -> list[str]:
    """Every file below the directory ``location`` whose name ends with one of ``suffixes``, sorted."""
    if not is_remote(location):
        return sorted(str(p) for p in Path(location).rglob("*") if p.is_file() and p.name.endswith(suffixes))
    fs = fsspec_filesystem(location)
    return sorted(_with_scheme(location, f) for f in fs.find(fs_path(location)) if f.endswith(suffixes))


def glob(pattern: str) -> list[str]:
    """Files matching a glob pattern (``**`` recursive), sorted."""
    if not is_remote(pattern):
        import glob as globlib

        return sorted(str(Path(m).resolve()) for m in globlib.glob(pattern, recursive=True) if Path(m).is_file())
    fs = fsspec_filesystem(pattern)
    return sorted(_with_scheme(pattern, f) for f in fs.glob(fs_path(pattern)) if fs.isfile(f))


def list_dir(location: str) -> list[str]:
    """Immediate children of a directory (full locations), sorted."""
    if not is_remote(location):
        return sorted(str(p) for p in Path(location).iterdir())
    fs = fsspec_filesystem(location)
    return sorted(_with_scheme(location, f) for f in fs.ls(fs_path(location), detail=False))
