"""The partition manifest of a campaign: which rows each partition holds (frozen at submit).

The schema and the planning belong to :mod:`sedscale.catalog.plan`; this module gives the
campaign's view: the manifest file inside the campaign directory, read once per process and
turned into plain per-partition rows. Tests build manifests by hand with :func:`synthetic_manifest`.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.fsutil import atomic_write
from sedscale.campaign.paths import CampaignPaths
from sedscale.errors import CampaignError


def write_campaign_manifest(paths: CampaignPaths, table: pa.Table) -> None:
    """Write the manifest durably (Parquet, temporary name, fsync, rename)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write(paths.manifest, sink.getvalue().to_pybytes())


def read_campaign_manifest(paths: CampaignPaths) -> pa.Table:
    try:
        return pq.read_table(paths.manifest)
    except FileNotFoundError:
        raise CampaignError(f"{paths.manifest}: the partition manifest is missing") from None


@lru_cache(maxsize=4)
def _rows_cached(manifest_path: str, mtime_ns: int) -> tuple[dict[str, Any], ...]:
    return tuple(pq.read_table(manifest_path).to_pylist())


def manifest_row(paths: CampaignPaths, partition_id: int) -> dict[str, Any]:
    """One partition's manifest row (the file is read once per process and cached)."""
    rows = _rows_cached(str(paths.manifest), paths.manifest.stat().st_mtime_ns)
    row = rows[partition_id]
    if int(row["partition_id"]) != partition_id:  # manifests are dense and ordered by id
        raise CampaignError(f"{paths.manifest}: row {partition_id} holds partition {row['partition_id']}")
    return row


def partition_sizes(paths: CampaignPaths) -> list[int]:
    """Rows per partition, indexed by partition id."""
    table = pq.read_table(paths.manifest, columns=["n_rows"])
    return [int(n) for n in table.column("n_rows").to_pylist()]


def synthetic_manifest(sizes: list[int]) -> pa.Table:
    """A manifest of partitions with the given row counts over no real file (tests, benchmarks)."""
    from sedscale.catalog.plan import MANIFEST_SCHEMA

    starts = [0, *itertools.accumulate(sizes)][:-1]
    cols: dict[str, list[Any]] = {
        "partition_id": list(range(len(sizes))),
        "file": ["<synthetic>"] * len(sizes),
        "file_index": [0] * len(sizes),
        "row_start": starts,
        "row_stop": [s + n for s, n in zip(starts, sizes)],
        "n_rows": list(sizes),
        "row_groups": [[0]] * len(sizes),
        "rg_offset": [0] * len(sizes),
    }
    return pa.Table.from_pydict(cols, schema=MANIFEST_SCHEMA)
