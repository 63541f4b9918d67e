"""The partition manifest: the one module that writes and reads the plan on disk.

The catalog layer *plans* (:func:`sedscale.catalog.plan.plan_partitions` yields typed
:class:`~sedscale.catalog.partition.Partition` values); the campaign layer *stores*: this module
owns the Parquet schema of the manifest, its durable write and its reads, and hands every caller
``Partition`` values, never rows as dicts. Tests build manifests with :func:`synthetic_manifest`.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.campaign.paths import CampaignPaths
from sedscale.catalog.partition import Partition
from sedscale.errors import CampaignError
from sedscale.fsutil import atomic_write

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
        pa.field("form", pa.string()),  # parquet | fits
        pa.field("pixel_order", pa.int32()),  # HATS pixel of the file, -1 when not HATS
        pa.field("pixel", pa.int64()),
    ]
)
#: manifests written before ``form``/``pixel_order``/``pixel`` existed lack them: flat Parquet, no pixel


def manifest_table(partitions: Sequence[Partition]) -> pa.Table:
    """The manifest's Parquet table of ``partitions`` (see :data:`MANIFEST_SCHEMA`)."""
    return pa.Table.from_pydict(
        {
            "partition_id": [p.partition_id for p in partitions],
            "file": [p.file for p in partitions],
            "file_index": [p.file_index for p in partitions],
            "row_start": [p.row_start for p in partitions],
            "row_stop": [p.row_stop for p in partitions],
            "n_rows": [p.n_rows for p in partitions],
            "row_groups": [list(p.row_groups) for p in partitions],
            "rg_offset": [p.rg_offset for p in partitions],
            "form": [p.form for p in partitions],
            "pixel_order": [p.pixel_order for p in partitions],
            "pixel": [p.pixel for p in partitions],
        },
        schema=MANIFEST_SCHEMA,
    )


def partitions_of(table: pa.Table) -> list[Partition]:
    """Inverse of :func:`manifest_table` (rows whose ``n_rows`` disagrees with the range are refused)."""
    out = []
    for row in table.to_pylist():
        part = Partition(partition_id=int(row["partition_id"]), file=str(row["file"]),
                         file_index=int(row["file_index"]), row_start=int(row["row_start"]),
                         row_stop=int(row["row_stop"]), row_groups=tuple(int(g) for g in row["row_groups"]),
                         rg_offset=int(row["rg_offset"]), form=str(row.get("form") or "parquet"),
                         pixel_order=int(row.get("pixel_order", -1)), pixel=int(row.get("pixel", -1)))
        if part.n_rows != int(row["n_rows"]):
            raise CampaignError(f"manifest row {part.partition_id}: n_rows {row['n_rows']} is not "
                                f"row_stop - row_start = {part.n_rows}")
        out.append(part)
    return out


def write_manifest(partitions: Sequence[Partition], path: Path) -> Path:
    """Write a manifest durably (Parquet bytes through :func:`sedscale.fsutil.atomic_write`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sink = pa.BufferOutputStream()
    pq.write_table(manifest_table(partitions), sink)
    atomic_write(path, sink.getvalue().to_pybytes())
    return path


def read_manifest(path: Path) -> list[Partition]:
    """Every partition of the manifest at ``path``, in id order."""
    try:
        return partitions_of(pq.read_table(path))
    except FileNotFoundError:
        raise CampaignError(f"{path}: the partition manifest is missing") from None


def write_campaign_manifest(paths: CampaignPaths, partitions: Sequence[Partition]) -> None:
    """Write the campaign's manifest (once, at submit)."""
    write_manifest(partitions, paths.manifest)


@lru_cache(maxsize=4)
def _partitions_cached(manifest_path: str, mtime_ns: int) -> tuple[Partition, ...]:
    return tuple(read_manifest(Path(manifest_path)))


def manifest_row(paths: CampaignPaths, partition_id: int) -> Partition:
    """One partition of the campaign (the manifest is read once per process and cached)."""
    partitions = _partitions_cached(str(paths.manifest), paths.manifest.stat().st_mtime_ns)
    part = partitions[partition_id]
    if part.partition_id != partition_id:  # manifests are dense and ordered by id
        raise CampaignError(f"{paths.manifest}: row {partition_id} holds partition {part.partition_id}")
    return part


def partition_sizes(paths: CampaignPaths) -> list[int]:
    """Rows per partition, indexed by partition id (reads one column only: cheap at 10^5 partitions)."""
    table = pq.read_table(paths.manifest, columns=["n_rows"])
    return [int(n) for n in table.column("n_rows").to_pylist()]


def synthetic_manifest(sizes: Sequence[int]) -> list[Partition]:
    """Partitions with the given row counts over no real file (tests, benchmarks)."""
    starts = [0, *itertools.accumulate(sizes)][:-1]
    return [Partition(partition_id=i, file="<synthetic>", file_index=0, row_start=start, row_stop=start + n,
                      row_groups=(0,), rg_offset=0)
            for i, (start, n) in enumerate(zip(starts, sizes))]
