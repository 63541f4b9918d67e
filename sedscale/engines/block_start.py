"""Waiting for a campaign's first block: a block that never starts is an error, not a hang.

Why: a batch job whose nodes are drained or down stays pending forever, and a driver waiting on
its tasks would wait with it. An engine's ``start`` waits until one worker has connected; after
``scheduler_options.block_start_timeout_s`` it cancels nothing itself (its ``shutdown`` does) and
raises :class:`BlockStartTimeout` with the scheduler's own account of the jobs (state and
pending reason, e.g. ``ReqNodeNotAvail``), so the user sees why.
"""

from __future__ import annotations

import time
from typing import Callable

from sedscale.engines.schedulers import BatchScheduler
from sedscale.errors import SedscaleError


class BlockStartTimeout(SedscaleError):
    """No worker of the campaign's blocks connected within the site's block start timeout."""


def wait_for_first_worker(connected: Callable[[], int], job_ids: Callable[[], list[str]],
                          scheduler: BatchScheduler, timeout_s: float, poll_s: float = 0.5) -> float:
    """Block until ``connected()`` reports a worker; return the seconds waited.

    Raises :class:`BlockStartTimeout` after ``timeout_s`` naming the jobs and the scheduler's
    reason they are not running."""
    t0 = time.monotonic()
    while True:
        try:
            if connected() > 0:
                return time.monotonic() - t0
        except Exception:  # noqa: BLE001 - the back end may still be starting its command channel
            pass
        if time.monotonic() - t0 >= timeout_s:
            ids = sorted(job_ids())
            detail = scheduler.describe_jobs(ids) or "the scheduler gave no reason"
            raise BlockStartTimeout(
                f"no worker connected within {timeout_s:g} s of submitting the first block "
                f"(scheduler_options.block_start_timeout_s); job(s) {', '.join(ids) or '(none recorded)'}: "
                f"{'; '.join(detail.splitlines())}. Are the partition's nodes drained or down (sinfo -R)?")
        time.sleep(poll_s)

