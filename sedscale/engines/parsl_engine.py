"""Parsl back end: a HighThroughputExecutor on a LocalProvider, or on SlurmProvider /
PBSProProvider for HPC sites (built in :mod:`sedscale.engines.hpc`).

Notes that shaped it (see NOTES-HPC.md): Parsl's own retries and memoization are off — retries
live in :class:`~sedscale.engines.base.Engine` so both back ends behave alike, and resume relies
on done-markers, not on Parsl checkpoints. ``run_dir`` is inside the campaign directory. The
interchange and the worker pool are started with this interpreter by absolute path (Parsl
starts ``interchange.py`` by name otherwise, which needs the venv's ``bin`` on ``PATH``); ``PATH``
is also extended for any other helper Parsl spawns.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sedscale.engines.base import Engine, run_task, worker_thread_env
from sedscale.engines.site import SiteConfig


class ParslEngine(Engine):
    name = "parsl"

    def __init__(self, site: SiteConfig, run_dir: Path, workers: int | None = None) -> None:
        self.site = site
        self.run_dir = Path(run_dir)
        self.workers = workers or site.parsl.max_workers_per_node or site.workers_per_node
        self.hpc = site.scheduler != "local"
        self._dfk: Any = None
        self._app: Any = None

    @property
    def slots(self) -> int:
        if self.hpc:
            o = self.site.scheduler_options
            return self.workers * o.nodes_per_block * o.max_blocks
        return self.workers

    def job_ids(self) -> list[str]:
        """Batch job ids of the blocks this engine submitted (HPC sites; empty for local)."""
        if self._dfk is None or not self.hpc:
            return []
        provider = self._dfk.executors["sedscale"].provider
        return [str(j) for j in getattr(provider, "resources", {})]

    def _config(self) -> Any:
        if self.hpc:
            from sedscale.engines.hpc import parsl_hpc_config

            return parsl_hpc_config(self.site, self.run_dir, self.workers)
        from parsl.config import Config
        from parsl.executors import HighThroughputExecutor
        from parsl.executors.high_throughput import executor as htex_module
        from parsl.executors.high_throughput import interchange, process_worker_pool
        from parsl.providers import LocalProvider

        s = self.site.parsl
        launch_cmd = htex_module.DEFAULT_LAUNCH_CMD.replace(
            "process_worker_pool.py", f"{sys.executable} {process_worker_pool.__file__}", 1
        )
        exports = " ".join(f"{k}={v}" for k, v in worker_thread_env(int(s.cores_per_worker)).items())
        worker_init = f"export {exports}" + (f"; {s.worker_init}" if s.worker_init else "")
        provider = LocalProvider(
            init_blocks=max(1, s.init_blocks), min_blocks=1, max_blocks=s.max_blocks, worker_init=worker_init
        )
        htex = HighThroughputExecutor(
            label="sedscale",
            provider=provider,
            max_workers_per_node=self.workers,
            cores_per_worker=s.cores_per_worker,
            heartbeat_period=s.heartbeat_period,
            heartbeat_threshold=s.heartbeat_threshold,
            launch_cmd=launch_cmd,
            interchange_launch_cmd=[sys.executable, interchange.__file__],
            address="127.0.0.1",  # local site: no probing of other interfaces
            encrypted=False,  # localhost only; CurveZMQ certificates cost startup time
            **s.extra,
        )
        return Config(executors=[htex], run_dir=str(self.run_dir), retries=0, strategy="simple",
                      strategy_period=1,  # the first block is launched at the first strategy poll
                      usage_tracking=0, initialize_logging=True)

    def start(self) -> None:
        from parsl.app.app import python_app
        from parsl.dataflow.dflow import DataFlowKernel

        bin_dir = str(Path(sys.executable).parent)
        if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._dfk = DataFlowKernel(self._config())
        self._app = python_app(run_task, data_flow_kernel=self._dfk, cache=False)
        if self.hpc:
            self._start_job_recorder(self.site.scheduler)

    def submit(self, ref: str, *args: Any) -> Future:
        if self._app is None:
            raise RuntimeError("ParslEngine.start() was not called")
        return self._app(ref, *args)

    def shutdown(self) -> None:
        if self._dfk is not None:
            dfk = self._dfk
            if self._recorder is not None:
                self._recorder.record()
            dfk.cleanup()  # cancels the blocks
            self._dfk = self._app = None
            self._stop_job_recorder()
