"""Dask back end: a ``distributed.LocalCluster`` of single-threaded worker processes.

Worker processes (not threads) because SED fitting holds the GIL in places and a crashing task
must not take the driver down. Dask futures are bridged to :class:`concurrent.futures.Future`
so the shared retry loop in :class:`~sedscale.engines.base.Engine` serves both back ends.
Tasks are submitted with ``pure=False`` (every attempt really runs).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sedscale.engines.base import Engine, run_task, worker_thread_env
from sedscale.engines.site import SiteConfig


class DaskEngine(Engine):
    name = "dask"

    def __init__(self, site: SiteConfig, local_directory: Path, workers: int | None = None) -> None:
        self.site = site
        self.local_directory = Path(local_directory)
        self.workers = workers or site.dask.n_workers or site.workers_per_node
        self.hpc = site.scheduler != "local"
        if self.hpc:
            o = site.scheduler_options
            self.workers = (o.dask_processes_per_node or site.dask.n_workers or site.workers_per_node) \
                * o.nodes_per_block * o.max_blocks
        self._cluster: Any = None
        self._client: Any = None

    @property
    def slots(self) -> int:
        return self.workers * self.site.dask.threads_per_worker

    def start(self) -> None:
        import dask
        from distributed import Client, LocalCluster

        s = self.site.dask
        self.local_directory.mkdir(parents=True, exist_ok=True)
        # set before the worker process starts, so BLAS reads it when numpy is first imported
        pre_spawn = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        pre_spawn.update(worker_thread_env(s.threads_per_worker))
        if self.hpc:
            self._start_jobqueue()
            return
        with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}):
            self._cluster = self._make_cluster(LocalCluster)
        self._client = Client(self._cluster)

    def _start_jobqueue(self) -> None:
        """dask-jobqueue SLURMCluster / PBSCluster: one job per block, adaptive between the site's
        min_blocks and max_blocks; workers retire before the walltime (--lifetime) and adapt()
        submits replacements, so walltime kills don't surface as KilledWorker."""
        from distributed import Client

        from sedscale.engines.hpc import dask_cluster_class, dask_cluster_kwargs

        o = self.site.scheduler_options
        cls = dask_cluster_class(self.site)
        self._cluster = cls(**dask_cluster_kwargs(self.site, self.local_directory))
        self._cluster.adapt(minimum_jobs=max(o.min_blocks, 1) * o.nodes_per_block, maximum_jobs=o.max_blocks * o.nodes_per_block,
                            interval="2s", wait_count=30)
        self._client = Client(self._cluster)
        import threading

        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch_jobs, name="sedscale-dask-jobs", daemon=True)
        self._watchdog.start()
        self._start_job_recorder(self.site.scheduler)
        self._client.wait_for_workers(1, timeout=300)

    def _watch_jobs(self) -> None:
        """Replace jobs that died outside Dask's control (scancel, node failure, walltime).

        dask-jobqueue keeps a dead job in its worker spec, so ``adapt`` believes it is still there
        and never submits a replacement; dropping the spec of a job the scheduler no longer runs
        lets ``adapt`` scale back to its minimum."""
        from sedscale.engines.hpc import live_job_ids

        poll = self.site.scheduler_options.status_poll_s
        while not self._stop.wait(poll):
            cluster = self._cluster
            if cluster is None:
                return
            jobs = {name: str(getattr(job, "job_id", "") or "") for name, job in list(cluster.workers.items())}
            if not any(jobs.values()):
                continue
            alive = live_job_ids(self.site.scheduler)
            if alive is None:
                continue
            dead = [name for name, jid in jobs.items() if jid and jid not in alive]
            if not dead:
                continue
            logging.getLogger(__name__).warning("dask jobs gone from the scheduler: %s; replacing", dead)

            def drop(cluster: Any = cluster, dead: list = dead) -> None:
                for name in dead:
                    cluster.worker_spec.pop(name, None)
                cluster._correct_state()

            cluster.loop.add_callback(drop)

    def job_ids(self) -> list[str]:
        """Batch job ids of the jobs this engine submitted (HPC sites; empty for local)."""
        if self._cluster is None or not self.hpc:
            return []
        return [str(j.job_id) for j in list(self._cluster.workers.values()) if getattr(j, "job_id", None)]

    def _make_cluster(self, cluster_class: Any) -> Any:
        s = self.site.dask
        return cluster_class(
            n_workers=self.workers,
            threads_per_worker=s.threads_per_worker,
            processes=True,
            memory_limit=s.memory_limit,
            dashboard_address=":0" if s.dashboard else None,
            local_directory=str(self.local_directory),
            silence_logs=logging.ERROR,
            **s.extra,
        )

    def submit(self, ref: str, *args: Any) -> Future:
        if self._client is None:
            raise RuntimeError("DaskEngine.start() was not called")
        bridge: Future = Future()
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
        if getattr(self, "_stop", None) is not None:
            self._stop.set()
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()  # cancels the jobs
        self._stop_job_recorder()
