"""Atomic, durable commit of one partition's results.

Order of operations (the argument for crash safety is in docs/CAMPAIGNS.md):

1. fence: refuse if another driver run now owns the campaign (a stale worker must not write);
2. remove an existing marker durably (a recommit first makes the partition *pending*);
3. encode the three chunks, write each to ``tmp/`` and fsync it;
4. rename each into ``results.zarr`` (atomic replace) and fsync the array folders;
5. write the marker (sizes + CRC-32 of the chunk bytes) the same way — the commit point.

A crash before 5 leaves no marker: the partition is pending and will be recomputed; chunk files
it may have placed are ignored by export and overwritten by the recommit. A crash after 5 leaves
a complete, verified partition. Each partition writes only its own three chunk files and its own
marker, so partitions never contend for an object.
"""

from __future__ import annotations

import errno
import os
import socket
import time

from pathlib import Path
from typing import Callable, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from sedscale import _testhooks
from sedscale.fsutil import atomic_write, fsync_dir, unlink_durable, write_temp
from sedscale.campaign.paths import DATA_ARRAYS, CampaignPaths
from sedscale.campaign.state import DoneMarker, FileCheck, MarkerKind, crc32_bytes
from sedscale.campaign.store import encode_partition
from sedscale.errors import CampaignError
from sedscale.results import RESULTS_SCHEMA, STATUSES
from sedscale.tokens import TOKEN_COLUMNS


class StaleRunError(CampaignError):
    """A task of an earlier driver run tried to commit after a newer run took the campaign."""


def current_run_id(paths: CampaignPaths) -> str | None:
    try:
        return paths.run_id_file.read_text().strip() or None
    except FileNotFoundError:
        return None


def check_fence(paths: CampaignPaths, run_id: str | None) -> None:
    """Raise :class:`StaleRunError` unless ``run_id`` still owns the campaign (None = no fence)."""
    if run_id is None:
        return
    owner = current_run_id(paths)
    if owner != run_id:
        raise StaleRunError(f"{paths.root}: run {run_id} no longer owns the campaign (now {owner})")


def status_counts(table: pa.Table) -> dict[str, int]:
    status = table.column("status").to_pylist()
    return {s: status.count(s) for s in STATUSES}


#: Per-source columns whose partition sums the done-marker keeps (status and report read them).
_SUMMED_COLUMNS = ("agent_steps", *TOKEN_COLUMNS, "gpu_seconds", "fit_seconds")


def _sum_extra(table: pa.Table) -> dict[str, float]:
    out = {}
    for name in _SUMMED_COLUMNS:
        if name in table.column_names:
            value = pc.sum(table.column(name)).as_py()
            out[name] = float(value or 0.0)
    return out


class StorageFullError(CampaignError):
    """A commit ran out of space or quota (ENOSPC/EDQUOT): the partition stays pending, nothing torn."""


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_T = TypeVar("_T")


def commit_partition(
    paths: CampaignPaths,
    partition_id: int,
    table: pa.Table,
    *,
    chunk_rows: int,
    run_id: str | None,
    kind: MarkerKind = "done",
    elapsed_s: float = 0.0,
    reason: str = "",
) -> DoneMarker:
    """Place ``table`` (the partition's rows, results schema, input order) and mark it committed.

    On a full file system or quota the partition is left pending — no marker, none of this
    attempt's temporaries or chunks — and :class:`StorageFullError` names the path and the errno,
    so ``sedscale resume`` recomputes it once space is freed.
    """
    if table.schema.names[: len(RESULTS_SCHEMA)] != RESULTS_SCHEMA.names:
        table = table.select(list(RESULTS_SCHEMA.names))
    check_fence(paths, run_id)
    encoded = encode_partition(table, chunk_rows)
    marker_path = paths.done_marker(partition_id)
    unlink_durable(marker_path)
    try:
        paths.tmp_dir.mkdir(parents=True, exist_ok=True)
        files = {array: FileCheck(size=len(data), crc32=crc32_bytes(data)) for array, data in encoded.items()}
        _place_chunks(paths, partition_id, encoded)
        marker = _marker(partition_id, table, files, kind=kind, run_id=run_id, elapsed_s=elapsed_s, reason=reason)
        check_fence(paths, run_id)
        if not marker_path.parent.is_dir():
            marker_path.parent.mkdir(parents=True, exist_ok=True)
            fsync_dir(marker_path.parent.parent)
        _naming(marker_path, atomic_write, marker_path, marker.to_json(), paths.tmp_dir)
    except OSError as exc:
        _abandon(paths, partition_id)
        if exc.errno in _FULL_ERRNOS:
            raise StorageFullError(
                f"{exc.filename or paths.root}: cannot commit partition {partition_id}: "
                f"[{errno.errorcode[exc.errno]}] {os.strerror(exc.errno)}; the partition stays pending: "
                f"free space, then `sedscale resume {paths.root}`") from exc
        raise
    return marker


def _naming(path: Path, write: Callable[..., _T], *args: object) -> _T:
    """``write(*args)``; an OSError without a file name (``os.write``/``fsync`` set none) gets ``path``."""
    try:
        return write(*args)
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def _place_chunks(paths: CampaignPaths, partition_id: int, encoded: dict[str, bytes]) -> None:
    """Steps 3 and 4: every chunk to ``tmp/`` (fsync'ed), then each renamed into the store."""
    temps: dict[str, Path] = {}
    try:
        for array in DATA_ARRAYS:
            target = paths.chunk_path(array, partition_id)
            tag = f"p{partition_id}.{array}"
            temps[array] = _naming(target, write_temp, encoded[array], paths.tmp_dir, tag)
        for i, array in enumerate(DATA_ARRAYS):
            os.replace(temps.pop(array), paths.chunk_path(array, partition_id))
            if i == 0:
                _testhooks.in_commit(partition_id)
        for array in DATA_ARRAYS:
            fsync_dir(paths.results_zarr / array)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


def _abandon(paths: CampaignPaths, partition_id: int) -> None:
    """After a failed commit: remove this process's temporaries and the chunks it placed (without a
    marker they are garbage, and on a full disk the space is what the next attempt needs)."""
    for tmp in paths.tmp_dir.glob(f"p{partition_id}.*.{os.getpid()}.*.tmp"):
        tmp.unlink(missing_ok=True)
    for array in DATA_ARRAYS:
        paths.chunk_path(array, partition_id).unlink(missing_ok=True)


def _marker(partition_id: int, table: pa.Table, files: dict[str, FileCheck], *, kind: MarkerKind,
            run_id: str | None, elapsed_s: float, reason: str) -> DoneMarker:
    return DoneMarker(
        partition_id=partition_id,
        kind=kind,
        n_rows=table.num_rows,
        counts=status_counts(table),
        files=files,
        run_id=run_id or "",
        committed_at=time.time(),
        elapsed_s=float(elapsed_s),
        host=socket.gethostname(),
        pid=os.getpid(),
        reason=reason,
        extra=_sum_extra(table),
    )
