"""Reading one partition's rows: only its row groups (or row range), only the projected columns.

``optional`` columns (bands a profile marks ``optional: true``, absent from some files — Euclid's
external bands vary by field) come back as all-null float64 columns where the file lacks them, so
the validation sees "not observed" rather than a file fault.
"""

from __future__ import annotations

from typing import Collection, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.catalog.partition import Partition
from sedscale.errors import CatalogError


def read_partition(partition: Partition, columns: Sequence[str], optional: Collection[str] = ()) -> pa.Table:
    """The rows ``[row_start, row_stop)`` of the partition's file, with ``columns`` only (in order)."""
    path = partition.file
    try:
        pf = pq.ParquetFile(path)
        present = set(pf.schema_arrow.names)
        wanted = [c for c in columns if c in present or c not in optional]
        table = pf.read_row_groups(list(partition.row_groups), columns=wanted)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise CatalogError(f"{path}: cannot read row groups {list(partition.row_groups)}: {exc}") from exc
    table = table.slice(partition.row_start - partition.rg_offset, partition.n_rows)
    return _with_missing(table, columns)


def _with_missing(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """``table`` with every name of ``columns`` in order, absent (optional) ones all-null float64."""
    if list(table.column_names) == list(columns):
        return table
    arrays = [table.column(c) if c in table.column_names else pa.nulls(table.num_rows, pa.float64())
              for c in columns]
    return pa.Table.from_arrays(arrays, names=list(columns))
