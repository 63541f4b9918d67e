"""Reading one partition's rows: only its row groups, only the projected columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.errors import CatalogError


def read_partition(manifest_row: Mapping[str, Any], columns: Sequence[str]) -> pa.Table:
    """The rows ``[row_start, row_stop)`` of the partition's file, with ``columns`` only.

    ``manifest_row`` is one row of the manifest as a mapping (``table.slice(i, 1).to_pylist()[0]``).
    """
    path = Path(manifest_row["file"])
    try:
        pf = pq.ParquetFile(path)
        table = pf.read_row_groups(list(manifest_row["row_groups"]), columns=list(columns))
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise CatalogError(f"{path}: cannot read row groups {manifest_row['row_groups']}: {exc}") from exc
    start = int(manifest_row["row_start"]) - int(manifest_row["rg_offset"])
    return table.slice(start, int(manifest_row["n_rows"]))


def manifest_rows(manifest: pa.Table) -> list[dict[str, Any]]:
    """The manifest as a list of plain dicts (small: one per partition)."""
    return manifest.to_pylist()
