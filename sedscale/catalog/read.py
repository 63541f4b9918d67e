"""Reading one partition's rows: only its row groups, only the projected columns."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.catalog.partition import Partition
from sedscale.errors import CatalogError


def read_partition(partition: Partition, columns: Sequence[str]) -> pa.Table:
    """The rows ``[row_start, row_stop)`` of the partition's file, with ``columns`` only."""
    path = Path(partition.file)
    try:
        pf = pq.ParquetFile(path)
        table = pf.read_row_groups(list(partition.row_groups), columns=list(columns))
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise CatalogError(f"{path}: cannot read row groups {list(partition.row_groups)}: {exc}") from exc
    return table.slice(partition.row_start - partition.rg_offset, partition.n_rows)
