"""Parsl back end: a HighThroughputExecutor on a LocalProvider, or on the site scheduler's
provider for HPC sites (configurations built in :mod:`sedscale.engines.parsl_config`).

This module only maps tasks: it starts a DataFlowKernel, submits ``run_task`` calls and shuts
down. Parsl's own retries and memoization are off — retries live in
:class:`~sedscale.engines.base.Engine` so both back ends behave alike, and resume relies on
done-markers, not on Parsl checkpoints. ``run_dir`` is inside the campaign directory.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from sedscale.engines.base import Engine, run_task
from sedscale.engines.compute_env import ProcessEnvironment, scheduler_environment
from sedscale.engines.processes import this_process
from sedscale.engines.site import SiteConfig

if TYPE_CHECKING:
    from parsl.dataflow.dflow import DataFlowKernel


class ParslEngine(Engine):
    name = "parsl"

    def __init__(self, site: SiteConfig, run_dir: Path, workers: Optional[int] = None) -> None:
        self.site = site
        self.scheduler = site.scheduler
        self.run_dir = Path(run_dir)
        self.workers = workers or site.parsl.max_workers_per_node or site.workers_per_node
        self.hpc = site.scheduler != "local"
        self.scheduler_environment = scheduler_environment(site)
        self._environment = ProcessEnvironment(self.scheduler_environment)
        self._dfk: Optional["DataFlowKernel"] = None
        self._app: Any = None

    @property
    def slots(self) -> int:
        if self.hpc:
            o = self.site.batch_options
            return self.workers * o.nodes_per_block * o.max_blocks
        return self.workers

    def _provider_job_ids(self) -> list[str]:
        if self._dfk is None:
            return []
        provider = getattr(self._dfk.executors["sedscale"], "provider", None)
        return [str(j) for j in list(getattr(provider, "resources", {}))]

    def job_ids(self) -> list[str]:
        """Batch job ids of the blocks this engine submitted (HPC sites; empty for local)."""
        return self._provider_job_ids() if self.hpc else []

    def process_roots(self) -> list[int]:
        """Local blocks: LocalProvider's job ids are the pids of the shells that run the pools."""
        if self.hpc:
            return []
        return [int(j) for j in self._provider_job_ids() if j.isdigit()]

    def start(self) -> None:
        from parsl.app.app import python_app
        from parsl.dataflow.dflow import DataFlowKernel

        from sedscale.engines.parsl_config import batch_config, local_config

        bin_dir = str(Path(sys.executable).parent)
        if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._environment.apply()
        build = batch_config if self.hpc else local_config
        self._dfk = DataFlowKernel(build(self.site, self.run_dir, self.workers, this_process()))
        self._app = python_app(run_task, data_flow_kernel=self._dfk, cache=False)
        self._start_recorders()
        if self.hpc:
            self._await_first_block()

    def _await_first_block(self) -> None:
        """Return once a worker pool of the first block connected; a block that never starts
        (drained or down nodes) shuts the engine down and raises BlockStartTimeout."""
        from sedscale.engines.block_start import wait_for_first_worker
        from sedscale.engines.schedulers import batch_scheduler

        assert self._dfk is not None
        htex = self._dfk.executors["sedscale"]
        scheduler = batch_scheduler(self.site.scheduler, self.scheduler_environment)
        try:
            wait_for_first_worker(lambda: len(htex.connected_managers()), self.job_ids, scheduler,  # type: ignore[attr-defined]
                                  self.site.batch_options.block_start_timeout_s)
        except BaseException:
            self.shutdown()
            raise

    def submit(self, ref: str, *args: Any) -> Future[Any]:
        if self._app is None:
            raise RuntimeError("ParslEngine.start() was not called")
        future: Future[Any] = self._app(ref, *args)
        return future

    def shutdown(self) -> None:
        if self._dfk is not None:
            dfk = self._dfk
            self._record_jobs_now()
            dfk.cleanup()  # cancels the blocks
            self._dfk = self._app = None
            self._stop_recorders()
        self._environment.restore()
