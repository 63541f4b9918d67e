"""A finished campaign's results, checked and read back one partition at a time.

Every export format (Parquet, FITS, HATS) writes from this one source, so each of them refuses an
incomplete campaign the same way, verifies each partition's chunk files against its done-marker
before trusting them, and reads at most one partition into memory. Rows come out in input order
(by partition id, then row): deterministic whichever engine, worker or retry committed a partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from sedscale.campaign.attribution import GpuAttribution, build_attribution
from sedscale.campaign.manifest import read_manifest
from sedscale.campaign.meta import CampaignMeta, read_meta
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.resume import ResumePlan, Verify, plan_resume
from sedscale.campaign.state import DoneMarker
from sedscale.campaign.store import ResultsReader
from sedscale.catalog.partition import Partition
from sedscale.errors import CampaignError


def refuse_incomplete(paths: CampaignPaths, plan: ResumePlan, n_partitions: int) -> None:
    """Raise unless every partition is committed and checks out: a results file or view must
    never be silently incomplete."""
    if not (plan.pending or plan.corrupt):
        return
    missing = sorted(plan.pending + list(plan.corrupt))
    detail = "" if not plan.corrupt else f" ({len(plan.corrupt)} corrupt, e.g. partition " \
        f"{next(iter(plan.corrupt))}: {next(iter(plan.corrupt.values()))})"
    raise CampaignError(
        f"{paths.root}: {len(missing)} of {n_partitions} partitions are not committed{detail}; "
        f"finish them with `sedscale resume {paths.root}` first"
    )


@dataclass(frozen=True)
class CommittedResults:
    """Every partition of a campaign, all committed and verified, ready to be read in order."""

    paths: CampaignPaths
    meta: CampaignMeta
    partitions: tuple[Partition, ...]
    markers: dict[int, DoneMarker]
    attribution: GpuAttribution

    @property
    def n_rows(self) -> int:
        """Rows over all partitions (the campaign's input rows)."""
        return sum(p.n_rows for p in self.partitions)

    def tables(self) -> Iterator[tuple[Partition, pa.Table]]:
        """Each partition with its results table (``gpu_seconds`` attributed), in partition order."""
        reader = ResultsReader(self.paths.results_zarr)
        for part in self.partitions:
            marker = self.markers[part.partition_id]
            if marker.n_rows != part.n_rows:
                raise CampaignError(f"{self.paths.root}: partition {part.partition_id} committed "
                                    f"{marker.n_rows} rows, the plan has {part.n_rows}")
            table = reader.read_partition(part.partition_id, part.n_rows)
            yield part, self.attribution.apply(part.partition_id, table)


def open_committed(root: str | Path, *, verify: Verify = "checksum",
                   attribution: GpuAttribution | None = None) -> CommittedResults:
    """The campaign at ``root`` if every partition is committed (else :class:`CampaignError`)."""
    paths = CampaignPaths.at(root)
    meta = read_meta(paths)
    plan = plan_resume(paths, meta.n_partitions, verify=verify)
    refuse_incomplete(paths, plan, meta.n_partitions)
    partitions = tuple(read_manifest(paths.manifest))
    if len(partitions) != meta.n_partitions:
        raise CampaignError(f"{paths.manifest}: {len(partitions)} partitions, the campaign has {meta.n_partitions}")
    if attribution is None:
        attribution = build_attribution(paths, plan.markers.values(), meta)
    return CommittedResults(paths, meta, partitions, plan.markers, attribution)
