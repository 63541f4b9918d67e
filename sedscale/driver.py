"""The driver: run what is left of a campaign on an engine, and account for every partition.

It sits beside :mod:`sedscale.pipeline` (the per-partition task) because it joins the campaign
layer (lock, manifest, resume plan, run records) to an engine; engines only map tasks.

Sequence: take the campaign lock → stop what a dead earlier run left (its batch jobs by id, its
local processes by pid and start time) → refuse if the catalog changed → find the partitions left
(missing, torn/corrupt, or failed earlier) → claim the campaign with a fresh run id (which fences
workers of any earlier run) → map the partition task over them → commit a partition whose task
failed after every retry as ``failed`` rows with the reason (nothing is lost) → record the run.
The driver never handles result tables of successful partitions; workers commit their own.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from sedscale.campaign.commit import StaleRunError
from sedscale.campaign.lock import campaign_lock
from sedscale.campaign.manifest import partition_sizes
from sedscale.campaign.meta import CampaignMeta, read_meta
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.resume import ResumePlan, Verify, check_catalog_unchanged, plan_resume
from sedscale.campaign.state import read_marker
from sedscale.campaign.status import RunRecord
from sedscale.engines import make_engine
from sedscale.engines.base import Engine, TaskOutcome, resolve_task
from sedscale.engines.jobs import cancel_orphans
from sedscale.engines.processes import stop_recorded
from sedscale.engines.site import SiteConfig
from sedscale.fsutil import atomic_write

log = logging.getLogger(__name__)


@dataclass
class RunEvent:
    """Sent to the progress callback: once at start (``outcome`` None), then per partition."""

    partitions_todo: int
    rows_todo: int
    partitions_finished: int
    rows_finished: int
    started_at: float
    outcome: Optional[TaskOutcome] = None


@dataclass
class RunReport:
    run_id: str
    partitions_run: int = 0
    partitions_failed: list[int] = field(default_factory=list)
    rows_run: int = 0
    partitions_left: int = 0  # not committed after the run (0 unless something beyond a task failed)
    wall_seconds: float = 0.0
    plan: Optional[ResumePlan] = None

    @property
    def sources_per_second(self) -> float:
        return self.rows_run / self.wall_seconds if self.wall_seconds > 0 else 0.0


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def _clean_tmp(paths: CampaignPaths) -> None:
    """Temporary files of commits that never finished (their writers are dead or fenced)."""
    if paths.tmp_dir.is_dir():
        shutil.rmtree(paths.tmp_dir, ignore_errors=True)
    paths.tmp_dir.mkdir(parents=True, exist_ok=True)


def _stop_node_services(paths: CampaignPaths) -> None:
    """Ask the per-node LLM services this run's workers started to stop, and wait (bounded) until
    they have written their final accounting.

    They also stop by themselves once no worker of theirs is alive; asking makes it prompt. It
    must happen *before* the engine shuts down: cancelling a block signals every process of the
    job, vLLM included, and a service whose servers are already gone cannot read their final
    token counters.
    """
    if paths.llm_dir.is_dir():
        from sedscale.serve.node import request_stop, wait_stopped

        request_stop(paths.llm_stop_file)
        wait_stopped(paths.llm_host_dirs())


def read_driver_pid(paths: CampaignPaths) -> Optional[int]:
    """The detached driver's pid (``submit --detach``): ``state/driver.pid``, or the campaign
    root's ``driver.pid`` that campaigns made before it moved into ``state/`` have."""
    for path in (paths.driver_pid, paths.root / "driver.pid"):
        try:
            return int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return None


def stop_dead_run(paths: CampaignPaths) -> None:
    """Stop what a dead earlier run left: its batch jobs (by recorded id) and its processes on
    this machine (by pid and start time). The caller holds the campaign lock, so that run's
    driver is gone; never by name, so other campaigns' workers are untouched."""
    orphans = cancel_orphans(paths.hpc_jobs)
    if orphans:
        log.warning("cancelled jobs of a dead driver: %s", orphans)
    stopped = stop_recorded(paths.processes)
    if stopped:
        log.warning("stopped %d process(es) a dead driver left: %s", len(stopped), [p.pid for p in stopped])


def committed_in_run(paths: CampaignPaths, partition_id: int, run_id: str) -> bool:
    """Whether this run already committed the partition: its task then failed only because its
    worker was lost after the commit (a node died before the result came back)."""
    marker = read_marker(paths, partition_id)
    return marker is not None and marker.run_id == run_id


def _run_partitions(paths: CampaignPaths, meta: CampaignMeta, engine: Engine, todo: list[int], run_id: str,
                    report: RunReport, event: RunEvent, on_event: Callable[[RunEvent], None] | None) -> None:
    """Map the partition task over ``todo``; a partition whose task failed after every retry
    is committed as ``failed`` rows with the reason."""
    sizes = partition_sizes(paths)
    fail = resolve_task(meta.fail_task)
    outcomes = engine.map_partitions(meta.task, todo, lambda pid: (str(paths.root), pid, run_id),
                                     retries=int(meta.workflow.get("retries", 2)), no_retry=(StaleRunError,),
                                     committed=lambda pid: committed_in_run(paths, pid, run_id))
    for outcome in outcomes:
        if not outcome.ok:
            fail(str(paths.root), outcome.partition_id,
                 f"task failed after {outcome.attempts} attempt(s): {outcome.error}", run_id)
            report.partitions_failed.append(outcome.partition_id)
        report.partitions_run += 1
        report.rows_run += sizes[outcome.partition_id]
        event.partitions_finished = report.partitions_run
        event.rows_finished = report.rows_run
        event.outcome = outcome
        if on_event:
            on_event(event)


def run_campaign(
    root: str | Path,
    site: SiteConfig,
    *,
    on_event: Callable[[RunEvent], None] | None = None,
    verify: Verify = "checksum",
    engine: Engine | None = None,
    command: str = "resume",
    workers: int | None = None,
) -> RunReport:
    """Run every partition not yet committed; returns when each is done or failed-with-reason."""
    paths = CampaignPaths.at(root)
    meta = read_meta(paths)
    with campaign_lock(paths):
        stop_dead_run(paths)
        check_catalog_unchanged(paths, meta)
        plan = plan_resume(paths, meta.n_partitions, verify=verify)
        run_id = new_run_id()
        atomic_write(paths.run_id_file, run_id.encode(), paths.state_dir)
        _clean_tmp(paths)
        record = RunRecord(run_id=run_id, started_at=time.time(), engine=site.engine, site=site.name,
                           command=command, pid=os.getpid(), host=socket.gethostname(),
                           partitions_todo=len(plan.todo))
        record.write(paths)
        report = RunReport(run_id=run_id, plan=plan)
        sizes = partition_sizes(paths)
        event = RunEvent(len(plan.todo), sum(sizes[p] for p in plan.todo), 0, 0, record.started_at)
        if on_event:
            on_event(event)
        if plan.todo:
            own_engine = engine is None
            if engine is None:
                engine = make_engine(site, paths, workers)
                engine.start()
            try:
                _run_partitions(paths, meta, engine, list(plan.todo), run_id, report, event, on_event)
            finally:
                _stop_node_services(paths)
                if own_engine:
                    engine.shutdown()
        report.partitions_left = len(plan_resume(paths, meta.n_partitions, verify="none").pending)
        record.finished_at = time.time()
        record.write(paths)
        report.wall_seconds = record.finished_at - record.started_at
        return report
