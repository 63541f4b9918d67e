"""``sedscale export``: the campaign's results as one Parquet file, one row per input row.

Rows come out in input order (files by path, rows in order; i.e. by partition id, then row),
which is deterministic and independent of which engine, worker or retry committed a partition.
Export streams one partition at a time (memory stays one partition), verifies each partition's
chunk checksums against its done-marker before trusting it, and refuses when any partition is
not committed or does not check out — it never writes a silently incomplete file.

``gpu_seconds`` is filled here, not at commit: each node's LLM busy GPU-seconds (from
``llm/<host>/accounting.json``) are split over the sources committed on that node by their share of
tokens (:mod:`sedscale.campaign.attribution`). Without node accounting the committed value (0) stays.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from sedscale.campaign.attribution import GpuAttribution, build_attribution
from sedscale.fsutil import atomic_output
from sedscale.campaign.manifest import partition_sizes
from sedscale.campaign.meta import read_meta
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.resume import Verify, plan_resume
from sedscale.campaign.store import ResultsReader
from sedscale.errors import CampaignError
from sedscale.results import RESULTS_SCHEMA


def export_campaign(root: str | Path, out: str | Path, *, verify: Verify = "checksum",
                    attribution: GpuAttribution | None = None) -> int:
    """Write every committed row to ``out`` (Parquet), ``gpu_seconds`` attributed from the nodes'
    LLM accounting; returns the number of rows."""
    paths = CampaignPaths.at(root)
    meta = read_meta(paths)
    plan = plan_resume(paths, meta.n_partitions, verify=verify)
    if plan.pending or plan.corrupt:
        missing = sorted(plan.pending + list(plan.corrupt))
        detail = "" if not plan.corrupt else f" ({len(plan.corrupt)} corrupt, e.g. partition " \
            f"{next(iter(plan.corrupt))}: {next(iter(plan.corrupt.values()))})"
        raise CampaignError(
            f"{paths.root}: {len(missing)} of {meta.n_partitions} partitions are not committed{detail}; "
            f"finish them with `sedscale resume {paths.root}` first"
        )
    sizes = partition_sizes(paths)
    if attribution is None:
        attribution = build_attribution(paths, plan.markers.values(), meta)
    reader = ResultsReader(paths.results_zarr)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with atomic_output(out) as tmp, pq.ParquetWriter(tmp, RESULTS_SCHEMA) as writer:
        for pid in range(meta.n_partitions):
            marker = plan.markers[pid]
            if marker.n_rows != sizes[pid]:
                raise CampaignError(f"{paths.root}: partition {pid} committed {marker.n_rows} rows, the plan has {sizes[pid]}")
            table = attribution.apply(pid, reader.read_partition(pid, sizes[pid]))
            if table.num_rows:
                writer.write_table(table)
            rows += table.num_rows
    return rows
