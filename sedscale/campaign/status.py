"""Progress of a campaign from its done-markers and run records: cheap enough to poll.

``sources_per_second`` is measured over the most recent driver run (rows committed by that run
divided by the time from its start to its last commit); ``eta_seconds`` divides the rows left by
that rate. Nothing here reads result chunks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from sedscale.fsutil import atomic_write
from sedscale.campaign.lock import is_locked
from sedscale.campaign.manifest import partition_sizes
from sedscale.campaign.meta import read_meta
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.resume import Verify, plan_resume


@dataclass
class RunRecord:
    """One driver run (``state/runs/<run_id>.json``)."""

    run_id: str
    started_at: float
    engine: str
    site: str
    command: str
    pid: int
    host: str
    partitions_todo: int = 0
    finished_at: Optional[float] = None

    def write(self, paths: CampaignPaths) -> None:
        paths.runs_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(paths.run_record(self.run_id), json.dumps(asdict(self)).encode(), paths.tmp_dir)


def read_runs(paths: CampaignPaths) -> list[RunRecord]:
    runs = []
    if paths.runs_dir.is_dir():
        for p in paths.runs_dir.glob("*.json"):
            try:
                runs.append(RunRecord(**json.loads(p.read_text())))
            except (ValueError, TypeError):
                continue
    return sorted(runs, key=lambda r: r.started_at)


@dataclass
class CampaignStatus:
    campaign: str
    name: str
    running: bool
    partitions_total: int
    partitions_done: int
    partitions_failed: int
    partitions_pending: int
    rows_total: int
    rows_committed: int
    sources_fitted: int
    sources_quarantined: int
    sources_failed: int
    sources_per_second: Optional[float]
    eta_seconds: Optional[float]
    runs: int
    last_run: Optional[dict[str, Any]] = None
    failed_reasons: dict[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def campaign_status(root: str, *, verify: Verify = "size") -> CampaignStatus:
    paths = CampaignPaths.at(root)
    meta = read_meta(paths)
    plan = plan_resume(paths, meta.n_partitions, verify=verify)
    sizes = partition_sizes(paths)
    committed = [plan.markers[p] for p in plan.done + plan.failed]
    counts = {"fitted": 0, "quarantined": 0, "failed": 0}
    for m in committed:
        for k in counts:
            counts[k] += int(m.counts.get(k, 0))
    runs = read_runs(paths)
    rate = eta = None
    last = runs[-1] if runs else None
    if last is not None:
        mine = [m for m in committed if m.run_id == last.run_id]
        if mine:
            end = max(m.committed_at for m in mine)
            rows = sum(m.n_rows for m in mine)
            if end > last.started_at and rows:
                rate = rows / (end - last.started_at)
    rows_left = sum(sizes[p] for p in plan.todo)
    if rate:
        eta = rows_left / rate
    return CampaignStatus(
        campaign=str(paths.root),
        name=meta.name,
        running=is_locked(paths),
        partitions_total=meta.n_partitions,
        partitions_done=len(plan.done),
        partitions_failed=len(plan.failed),
        partitions_pending=len(plan.pending) + len(plan.corrupt),
        rows_total=meta.n_rows,
        rows_committed=sum(m.n_rows for m in committed),
        sources_fitted=counts["fitted"],
        sources_quarantined=counts["quarantined"],
        sources_failed=counts["failed"],
        sources_per_second=rate,
        eta_seconds=eta if rows_left else 0.0,
        runs=len(runs),
        last_run=asdict(last) if last else None,
        failed_reasons={p: plan.markers[p].reason for p in plan.failed[:20]},
    )

