"""Dask clusters: the arguments of a ``distributed.LocalCluster`` (local site) or of the site
scheduler's dask-jobqueue cluster, and the batch script one of its jobs submits.

A dask-jobqueue job is one node (its worker command runs once, on the first node), so a block of
N nodes is N single-node jobs. No orphans: every worker closes ``DEATH_TIMEOUT_S`` after it lost
the scheduler (which lives in the driver), and retires by ``--lifetime`` before the walltime.
"""

from __future__ import annotations

import logging
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from sedscale.engines.compute_env import compute_python, job_prologue, resolved_account
from sedscale.engines.schedulers import NodeShape, batch_scheduler
from sedscale.engines.schedulers.preemption import preemptible
from sedscale.engines.site import SiteConfig

if TYPE_CHECKING:
    from dask_jobqueue.core import Job, JobQueueCluster

#: Seconds a worker waits for a lost scheduler before it closes (dask's default: 60).
DEATH_TIMEOUT_S = 30


def local_cluster_kwargs(site: SiteConfig, workers: int, local_directory: Path) -> dict[str, object]:
    """Arguments of ``distributed.LocalCluster``: single-threaded worker processes."""
    s = site.dask
    kw: dict[str, object] = dict(
        n_workers=workers, threads_per_worker=s.threads_per_worker, processes=True,
        memory_limit=s.memory_limit, dashboard_address=":0" if s.dashboard else None,
        local_directory=str(local_directory), silence_logs=logging.ERROR, death_timeout=DEATH_TIMEOUT_S,
    )
    kw.update(s.extra)
    return kw


def jobqueue_processes(site: SiteConfig) -> int:
    """Dask worker processes per batch job."""
    return site.batch_options.dask_processes_per_node or site.dask.n_workers or site.workers_per_node


def jobqueue_kwargs(site: SiteConfig, local_directory: Union[Path, str]) -> dict[str, object]:
    """Arguments of the site scheduler's dask-jobqueue cluster."""
    o = site.batch_options
    procs = jobqueue_processes(site)
    threads = site.dask.threads_per_worker
    kw: dict[str, object] = dict(
        cores=procs * threads,
        processes=procs,
        memory=f"{o.mem_per_node_gb}GB" if o.mem_per_node_gb else f"{max(1, 2 * procs)}GB",
        walltime=o.walltime,
        account=resolved_account(site, strict=False),
        python=compute_python(site),
        local_directory=str(local_directory),
        log_directory=str(Path(local_directory) / "jobs"),
        job_script_prologue=job_prologue(site, threads),
        death_timeout=DEATH_TIMEOUT_S,
        worker_extra_args=["--lifetime", o.worker_lifetime, "--lifetime-stagger", o.worker_lifetime_stagger],
        scheduler_options={"host": o.address or socket.gethostname(), "dashboard_address": ":0"},
        job_name="sedscale-dask",
    )
    kw.update(batch_scheduler(site.scheduler).jobqueue_kwargs(o, NodeShape(site.cores_per_node, site.gpus_per_node)))
    kw.update(site.dask.extra)
    return kw


def jobqueue_cluster_class(site: SiteConfig) -> type["JobQueueCluster"]:
    """The scheduler's dask-jobqueue cluster class; with a walltime warning, one whose job
    script runs the workers in the background under the preemption trap."""
    base = batch_scheduler(site.scheduler).jobqueue_cluster_class()
    signal = site.batch_options.warning_signal
    if not signal:
        return base
    base_job = job_class(base)
    job_cls = type(base_job.__name__, (base_job,), {
        "_script_template": "%(shebang)s\n\n%(job_header)s\n%(job_script_prologue)s\n"
                            + preemptible("%(worker_command)s", signal)})
    return type(base.__name__, (base,), {"job_cls": job_cls})


def job_class(cluster_class: type["JobQueueCluster"]) -> type["Job"]:
    """The Job class a dask-jobqueue cluster class submits (its ``job_cls``)."""
    job_cls: type["Job"] = getattr(cluster_class, "job_cls")
    return job_cls


def render_dask_script(site: SiteConfig) -> str:
    """The batch script one dask-jobqueue job submits (no scheduler started, nothing submitted).

    dask-jobqueue creates the job's log directory when the job object is made, so the script is
    rendered against a temporary directory (a preview must not create ``<campaign>/dask/jobs``
    in the caller's working directory) and that path is shown as ``<campaign>/dask``."""
    with tempfile.TemporaryDirectory(prefix="sedscale-dask-preview-") as tmp:
        kw: dict[str, Any] = jobqueue_kwargs(site, tmp)
        kw.pop("scheduler_options", None)
        job = job_class(jobqueue_cluster_class(site))(scheduler="tcp://<driver>:<port>", name="sedscale-dask", **kw)
        return str(job.job_script()).replace(tmp, "<campaign>/dask")
