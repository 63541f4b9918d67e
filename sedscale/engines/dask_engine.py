"""Dask back end: a ``distributed.LocalCluster`` of single-threaded worker processes, or the
site scheduler's dask-jobqueue cluster (arguments built in :mod:`sedscale.engines.dask_config`).

Worker processes (not threads) because SED fitting holds the GIL in places and a crashing task
must not take the driver down. Dask futures are bridged to :class:`concurrent.futures.Future`
so the shared retry loop in :class:`~sedscale.engines.base.Engine` serves both back ends.
Tasks are submitted with ``pure=False`` (every attempt really runs).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from sedscale.engines.base import Engine, run_task, worker_thread_env
from sedscale.engines.compute_env import ProcessEnvironment, scheduler_environment
from sedscale.engines.site import SiteConfig

if TYPE_CHECKING:
    from distributed import Client, SpecCluster

log = logging.getLogger(__name__)


class DaskEngine(Engine):
    name = "dask"

    def __init__(self, site: SiteConfig, local_directory: Path, workers: Optional[int] = None) -> None:
        from sedscale.engines.dask_config import jobqueue_processes

        self.site = site
        self.scheduler = site.scheduler
        self.local_directory = Path(local_directory)
        self.hpc = site.scheduler != "local"
        self.workers = workers or site.dask.n_workers or site.workers_per_node
        if self.hpc:
            o = site.batch_options
            self.workers = jobqueue_processes(site) * o.nodes_per_block * o.max_blocks
        self.scheduler_environment = scheduler_environment(site)
        self._environment = ProcessEnvironment(self.scheduler_environment)
        self._cluster: Optional["SpecCluster"] = None
        self._client: Optional["Client"] = None
        self._stop = threading.Event()

    @property
    def slots(self) -> int:
        return self.workers * self.site.dask.threads_per_worker

    def start(self) -> None:
        import dask
        from distributed import Client, LocalCluster

        from sedscale.engines.dask_config import local_cluster_kwargs

        self.local_directory.mkdir(parents=True, exist_ok=True)
        if self.hpc:
            self._environment.apply()
            try:
                self._start_jobqueue()
            except BaseException:
                self.shutdown()
                raise
            return
        # set before the worker process starts, so BLAS reads it when numpy is first imported
        pre_spawn = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        pre_spawn.update(worker_thread_env(self.site.dask.threads_per_worker))
        with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}):
            self._cluster = LocalCluster(**local_cluster_kwargs(self.site, self.workers, self.local_directory))
        self._client = Client(self._cluster)
        self._start_recorders()

    def _start_jobqueue(self) -> None:
        """One job per node, adaptive between the site's min_blocks and max_blocks; workers retire
        before the walltime (--lifetime) and adapt() submits replacements, so walltime kills
        don't surface as KilledWorker."""
        from distributed import Client

        from sedscale.engines.block_start import wait_for_first_worker
        from sedscale.engines.dask_config import jobqueue_cluster_class, jobqueue_kwargs
        from sedscale.engines.schedulers import batch_scheduler

        import dask

        o = self.site.batch_options
        kwargs: dict[str, Any] = jobqueue_kwargs(self.site, self.local_directory)
        # a task whose worker died (node failure, scancel) fails at once instead of Dask re-running
        # it silently: the shared retry loop first asks whether it had committed (see map_partitions)
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            cluster = jobqueue_cluster_class(self.site)(**kwargs)
        cluster.adapt(minimum_jobs=max(o.min_blocks, 1) * o.nodes_per_block,
                      maximum_jobs=o.max_blocks * o.nodes_per_block, interval="2s", wait_count=30)
        self._cluster = cluster
        client = self._client = Client(cluster)
        threading.Thread(target=self._watch_jobs, name="sedscale-dask-jobs", daemon=True).start()
        self._start_recorders()
        wait_for_first_worker(lambda: len(client.scheduler_info()["workers"]), self.job_ids,
                              batch_scheduler(self.site.scheduler, self.scheduler_environment),
                              o.block_start_timeout_s)

    def _watch_jobs(self) -> None:
        """Replace jobs that died outside Dask's control (scancel, node failure, walltime).

        dask-jobqueue keeps a dead job in its worker spec, so ``adapt`` believes it is still there
        and never submits a replacement; dropping the spec of a job the scheduler no longer runs
        lets ``adapt`` scale back to its minimum."""
        from sedscale.engines.schedulers import batch_scheduler

        scheduler = batch_scheduler(self.site.scheduler, self.scheduler_environment)
        while not self._stop.wait(self.site.batch_options.status_poll_s):
            cluster = self._cluster
            if cluster is None:
                return
            jobs = {name: str(getattr(job, "job_id", "") or "") for name, job in list(cluster.workers.items())}
            alive = scheduler.live_job_ids() if any(jobs.values()) else None
            dead = [name for name, jid in jobs.items() if alive is not None and jid and jid not in alive]
            if dead and cluster.loop is not None:
                log.warning("dask jobs gone from the scheduler: %s; replacing", dead)
                cluster.loop.add_callback(_drop_workers, cluster, dead)

    def job_ids(self) -> list[str]:
        """Batch job ids of the jobs this engine submitted (HPC sites; empty for local)."""
        if self._cluster is None or not self.hpc:
            return []
        return [str(j.job_id) for j in list(self._cluster.workers.values()) if getattr(j, "job_id", None)]

    def submit(self, ref: str, *args: Any) -> Future[Any]:
        if self._client is None:
            raise RuntimeError("DaskEngine.start() was not called")
        bridge: Future[Any] = Future()
        dask_future = self._client.submit(run_task, ref, *args, pure=False)

        def _done(f: Any) -> None:
            try:
                bridge.set_result(f.result())
            except BaseException as exc:  # noqa: BLE001 - forwarded to the caller
                bridge.set_exception(exc)

        dask_future.add_done_callback(_done)
        bridge._sedscale_dask = dask_future  # type: ignore[attr-defined] # keep it alive
        return bridge

    def shutdown(self) -> None:
        self._stop.set()
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()  # cancels the jobs
        self._stop_recorders()
        self._environment.restore()


def _drop_workers(cluster: "SpecCluster", names: list[str]) -> None:
    """Forget the specs of workers whose jobs are gone, so ``adapt`` replaces them."""
    for name in names:
        cluster.worker_spec.pop(name, None)
    cluster._correct_state()
