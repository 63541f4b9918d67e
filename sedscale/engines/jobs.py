"""Batch jobs a driver owns, recorded in the campaign directory so a later driver can cancel them.

A driver on a login node can die (SIGKILL, node reboot) while its blocks keep running and
burning the allocation. Each HPC engine records its job ids in the campaign's jobs file
(``CampaignPaths.hpc_jobs``, handed in as a path) with the owning pid and host while it runs,
and clears the file when it shuts down cleanly; the driver — holding the campaign lock, so the
previous driver is known to be gone — cancels whatever a dead driver left behind, by job id,
before starting its own engine.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Callable, Mapping, Optional

from sedscale.engines.recorder import PeriodicRecorder
from sedscale.engines.schedulers import batch_scheduler
from sedscale.fsutil import atomic_write


def write_jobs(path: Path, scheduler: str, job_ids: list[str],
               environment: Optional[Mapping[str, str]] = None) -> None:
    """Record ``job_ids`` with the scheduler's name and the environment its commands need (a test
    cluster's SLURM_CONF), so a later driver reaches the same cluster to cancel them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"scheduler": scheduler, "pid": os.getpid(), "host": socket.gethostname(),
            "job_ids": sorted(set(job_ids)), "environment": dict(environment or {})}
    atomic_write(path, json.dumps(data).encode(), path.parent)


def cancel_orphans(path: Path) -> list[str]:
    """Cancel the recorded jobs of a previous (dead) driver that are still queued or running."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if data.get("pid") == os.getpid() and data.get("host") == socket.gethostname():
        return []  # our own engine's jobs
    scheduler = batch_scheduler(str(data.get("scheduler", "slurm")), data.get("environment") or {})
    alive = scheduler.live_job_ids()
    ids = [str(j) for j in data.get("job_ids", [])]
    doomed = [j for j in ids if alive is None or j in alive]
    scheduler.cancel(doomed)
    path.unlink(missing_ok=True)
    return doomed


class JobRecorder(PeriodicRecorder):
    """Background thread: keeps ``path`` in step with ``job_ids()`` until stopped."""

    def __init__(self, path: Path, scheduler: str, job_ids: Callable[[], list[str]], period: float = 2.0,
                 environment: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(period, "sedscale-job-recorder")
        self.path, self.scheduler, self.job_ids = Path(path), scheduler, job_ids
        self.environment = dict(environment or {})
        self._last: Optional[list[str]] = None

    def record(self) -> None:
        try:
            ids = sorted(self.job_ids())
        except Exception:  # noqa: BLE001 - the engine may be shutting down
            return
        if ids != self._last:
            write_jobs(self.path, self.scheduler, ids, self.environment)
            self._last = ids

    def stop(self, clean: bool = True) -> None:
        """Stop recording; ``clean``: the engine cancelled its jobs, so forget them."""
        self.halt()
        if clean:
            self.path.unlink(missing_ok=True)
