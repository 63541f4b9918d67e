"""Partition planning from Parquet footers alone: which rows of which file each task fits.

A partition never spans two files and is made of whole row groups where possible (the cheapest
unit to read); a row group larger than the target is split into even row ranges. The plan reads
only footers (:mod:`sedscale.catalog.source` already has them), keeps O(partitions) memory and is
deterministic: files in path order, row groups in file order.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.catalog.source import CatalogSource

DEFAULT_ROWS_PER_PARTITION = 50_000

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("partition_id", pa.int64()),
        pa.field("file", pa.string()),
        pa.field("file_index", pa.int32()),
        pa.field("row_start", pa.int64()),  # first row (within the file) of the partition
        pa.field("row_stop", pa.int64()),  # one past the last row
        pa.field("n_rows", pa.int64()),
        pa.field("row_groups", pa.list_(pa.int32())),  # row groups covering [row_start, row_stop)
        pa.field("rg_offset", pa.int64()),  # row (within the file) where row_groups[0] starts
    ]
)


def _file_partitions(row_group_rows: tuple[int, ...], target: int) -> Iterator[tuple[int, int, list[int], int]]:
    """(row_start, row_stop, row_groups, rg_offset) for one file."""
    cur_start, cur_rows, cur_groups, cur_offset = 0, 0, [], 0
    offset = 0
    for rg, n in enumerate(row_group_rows):
        if n == 0:
            offset += n
            continue
        if n > target:
            if cur_groups:
                yield cur_start, cur_start + cur_rows, cur_groups, cur_offset
                cur_groups, cur_rows = [], 0
            pieces = math.ceil(n / target)
            bounds = [offset + (n * k) // pieces for k in range(pieces + 1)]
            for a, b in zip(bounds[:-1], bounds[1:]):
                yield a, b, [rg], offset
            offset += n
            cur_start = offset
            continue
        if cur_groups and cur_rows + n > target:
            yield cur_start, cur_start + cur_rows, cur_groups, cur_offset
            cur_groups, cur_rows = [], 0
        if not cur_groups:
            cur_start, cur_offset = offset, offset
        cur_groups.append(rg)
        cur_rows += n
        offset += n
    if cur_groups:
        yield cur_start, cur_start + cur_rows, cur_groups, cur_offset


def plan_partitions(source: CatalogSource, rows_per_partition: int = DEFAULT_ROWS_PER_PARTITION) -> pa.Table:
    """The partition manifest of a catalog (see :data:`MANIFEST_SCHEMA`)."""
    if rows_per_partition < 1:
        raise ValueError("rows_per_partition must be at least 1")
    cols: dict[str, list] = {name: [] for name in MANIFEST_SCHEMA.names}
    pid = 0
    for file_index, cf in enumerate(source.files):
        for start, stop, groups, rg_offset in _file_partitions(cf.row_group_rows, rows_per_partition):
            cols["partition_id"].append(pid)
            cols["file"].append(str(cf.path))
            cols["file_index"].append(file_index)
            cols["row_start"].append(start)
            cols["row_stop"].append(stop)
            cols["n_rows"].append(stop - start)
            cols["row_groups"].append(groups)
            cols["rg_offset"].append(rg_offset)
            pid += 1
    return pa.Table.from_pydict(cols, schema=MANIFEST_SCHEMA)


def write_manifest(table: pa.Table, path: str | Path) -> Path:
    """Write the manifest atomically (temporary name, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_manifest(path: str | Path) -> pa.Table:
    return pq.read_table(path, schema=MANIFEST_SCHEMA)
