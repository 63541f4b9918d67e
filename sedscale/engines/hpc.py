"""Batch-scheduler wiring: Parsl providers and dask-jobqueue clusters built from a site config.

Everything here is driven by ``SiteConfig.scheduler_options`` (see ``site.SchedulerOptions``),
never by a machine's name. The same builders render the batch script a block would submit
(``sedscale sites show``) without submitting anything.

Notes that shaped it (NOTES-HPC.md, issue 7):
- Parsl starts ``interchange.py`` / ``process_worker_pool.py`` by name: the worker pool is started
  by absolute path with the compute-node Python, and the venv's ``bin`` is put on ``PATH`` in the
  batch job too.
- ``worker_init`` runs once per block on its first node; per-node work goes through the launcher.
- SlurmProvider / PBSProProvider poll every 60 s (a fixed property): subclassed here so the poll
  follows ``status_poll_s`` and a lost block is noticed and replaced by ``htex_auto_scale`` soon.
- Without slurmdbd plain ``sacct`` fails and Parsl falls back to ``squeue`` (a job missing from
  ``squeue`` counts as completed) — fine for block replacement.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from sedscale.engines.base import worker_thread_env
from sedscale.engines.site import SiteConfig

DRY_RUN_JOB_ID = "DRYRUN"


def compute_python(site: SiteConfig) -> str:
    """The Python interpreter the batch job runs (the site's venv, else the driver's own)."""
    venv = site.scheduler_options.venv
    if venv:
        return os.path.join(os.path.expandvars(venv), "bin", "python")
    return sys.executable


def compute_bin_dir(site: SiteConfig) -> str:
    return str(Path(compute_python(site)).parent)


def job_prologue(site: SiteConfig, threads: int = 1) -> list[str]:
    """Shell lines that open every batch job: thread pins, PATH with the venv's bin, user init."""
    lines = [f"export {k}={v}" for k, v in worker_thread_env(threads).items()]
    lines.append(f'export PATH="{compute_bin_dir(site)}:$PATH"')
    if site.scheduler_options.worker_init.strip():
        lines.extend(site.scheduler_options.worker_init.strip().splitlines())
    return lines


def resolved_account(site: SiteConfig, *, strict: bool) -> str | None:
    """The account with ``$VARS`` expanded (``#SBATCH``/``#PBS`` lines are not expanded by the
    shell); ``strict``: an unset variable is a ConfigError before anything is submitted."""
    from sedscale.errors import ConfigError

    account = site.scheduler_options.account
    if not account:
        return None
    expanded = os.path.expandvars(account)
    if strict and "$" in expanded:
        raise ConfigError(f"site {site.name!r}: scheduler_options.account {account!r} names an unset "
                          "environment variable (e.g. export SEDSCALE_PROJECT=abc123)")
    return expanded


def check_submittable(site: SiteConfig) -> None:
    """Everything that can be checked before a batch job is submitted (raises ConfigError)."""
    import shutil

    from sedscale.errors import ConfigError

    resolved_account(site, strict=True)
    tool = {"slurm": "sbatch", "pbs": "qsub"}[site.scheduler]
    if shutil.which(tool) is None:
        raise ConfigError(f"site {site.name!r}: scheduler {site.scheduler!r} but {tool!r} is not on PATH "
                          "(run from the machine's login node)")
    py = compute_python(site)
    if site.scheduler_options.venv and not os.path.exists(py):
        raise ConfigError(f"site {site.name!r}: scheduler_options.venv: {py} does not exist")


def live_job_ids(scheduler: str) -> set[str] | None:
    """Ids of this user's jobs that are pending or running (None when the scheduler can't be asked)."""
    import getpass
    import json
    import subprocess

    try:
        if scheduler == "slurm":
            out = subprocess.run(["squeue", "-h", "-u", getpass.getuser(), "-o", "%i %t"],
                                 capture_output=True, text=True, timeout=30)
            if out.returncode != 0:
                return None
            rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
            return {r[0] for r in rows if len(r) > 1 and r[1] in ("PD", "R", "CF", "RQ", "RS", "S")}
        out = subprocess.run(["qstat", "-f", "-F", "json", "-u", getpass.getuser()],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            return None
        jobs = json.loads(out.stdout or "{}").get("Jobs", {})
        return {jid.split(".")[0] for jid, j in jobs.items() if j.get("job_state") in ("Q", "R", "H", "W")} | \
            {jid for jid, j in jobs.items() if j.get("job_state") in ("Q", "R", "H", "W")}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None


# --------------------------------------------------------------------------------------- Parsl


def _launcher(site: SiteConfig) -> Any:
    from parsl.launchers import MpiExecLauncher, SingleNodeLauncher, SrunLauncher

    kind = site.scheduler_options.launcher
    if kind == "srun":
        # one worker pool per node; --cpus-per-task gives each pool the whole node's cores
        return SrunLauncher(overrides=f"--cpus-per-task={site.cores_per_node}")
    if kind == "mpiexec":
        # Cray PALS mpiexec (Polaris, Aurora): one rank = one worker pool per node
        return MpiExecLauncher(bind_cmd="--cpu-bind", overrides="--ppn 1")
    return SingleNodeLauncher()


def _poll_mixin(base: type) -> type:
    class Provider(base):  # type: ignore[misc,valid-type]
        """The Parsl provider with a configurable status poll and a dry-run (render) mode."""

        _sedscale_poll = 60
        _sedscale_dry_run = False

        @property
        def status_polling_interval(self) -> int:
            return self._sedscale_poll

        def execute_wait(self, cmd: str, timeout: Any = None) -> Any:  # noqa: D401
            if self._sedscale_dry_run:
                self._sedscale_commands = getattr(self, "_sedscale_commands", []) + [cmd]
                if cmd.startswith("sbatch"):
                    return 0, f"Submitted batch job {DRY_RUN_JOB_ID}", ""
                if cmd.startswith("qsub"):
                    return 0, f"{DRY_RUN_JOB_ID}.pbs", ""
                return 0, "", ""
            return super().execute_wait(cmd, timeout) if timeout is not None else super().execute_wait(cmd)

    Provider.__name__ = base.__name__
    Provider.__qualname__ = base.__qualname__
    return Provider


def parsl_provider(site: SiteConfig, *, dry_run: bool = False) -> Any:
    """SlurmProvider / PBSProProvider for an HPC site (block shape from ``scheduler_options``)."""
    from parsl.providers import PBSProProvider, SlurmProvider

    o = site.scheduler_options
    account = resolved_account(site, strict=not dry_run)
    worker_init = "\n".join(job_prologue(site, int(site.parsl.cores_per_worker)))
    directives = list(o.directives)
    common = dict(nodes_per_block=o.nodes_per_block, init_blocks=o.init_blocks, min_blocks=o.min_blocks,
                  max_blocks=o.max_blocks, walltime=o.walltime, worker_init=worker_init, launcher=_launcher(site))
    if site.scheduler == "slurm":
        if o.qos:
            directives.append(f"#SBATCH --qos={o.qos}")
        if site.gpus_per_node:
            directives.append(f"#SBATCH --gpus-per-node={site.gpus_per_node}")
        cls = _poll_mixin(SlurmProvider)
        provider = cls(partition=o.partition, account=account, constraint=o.constraint,
                       mem_per_node=None if o.exclusive else o.mem_per_node_gb, exclusive=o.exclusive,
                       scheduler_options="\n".join(directives) + ("\n" if directives else ""), **common)
    elif site.scheduler == "pbs":
        if o.filesystems:
            directives.append(f"#PBS -l filesystems={o.filesystems}")
        directives.append("#PBS -k doe")
        cls = _poll_mixin(PBSProProvider)
        select = o.select_options or ""
        provider = cls(account=account, queue=o.queue, cpus_per_node=site.cores_per_node, select_options=select,
                       scheduler_options="\n".join(directives) + "\n", **common)
    else:
        raise ValueError(f"site {site.name!r}: scheduler {site.scheduler!r} has no batch provider")
    provider._sedscale_poll = o.status_poll_s
    provider._sedscale_dry_run = dry_run
    return provider


def parsl_launch_cmd(site: SiteConfig) -> str:
    """HTEX's worker-pool command with the compute-node interpreter by absolute path."""
    from parsl.executors.high_throughput import executor as htex_module
    from parsl.executors.high_throughput import process_worker_pool

    pool = process_worker_pool.__file__
    if site.scheduler_options.venv:  # the same relative location inside the site's venv
        rel = Path(pool).relative_to(Path(sys.prefix))
        pool = str(Path(os.path.expandvars(site.scheduler_options.venv)) / rel)
    return htex_module.DEFAULT_LAUNCH_CMD.replace("process_worker_pool.py", f"{compute_python(site)} {pool}", 1)


def parsl_workers_per_node(site: SiteConfig) -> int:
    return site.parsl.max_workers_per_node or site.workers_per_node


def parsl_hpc_config(site: SiteConfig, run_dir: Path, workers: int | None = None) -> Any:
    """A Parsl Config: HTEX on the site's provider, short heartbeat, htex_auto_scale."""
    from parsl.addresses import address_by_hostname
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.executors.high_throughput import interchange

    o = site.scheduler_options
    htex = HighThroughputExecutor(
        label="sedscale",
        provider=parsl_provider(site),
        max_workers_per_node=workers or parsl_workers_per_node(site),
        cores_per_worker=site.parsl.cores_per_worker,
        heartbeat_period=o.heartbeat_period_s,
        heartbeat_threshold=o.heartbeat_threshold_s,
        launch_cmd=parsl_launch_cmd(site),
        interchange_launch_cmd=[sys.executable, interchange.__file__],
        address=o.address or address_by_hostname(),
        **site.parsl.extra,
    )
    return Config(executors=[htex], run_dir=str(run_dir), retries=0, strategy="htex_auto_scale",
                  strategy_period=o.strategy_period_s, max_idletime=float(o.walltime_seconds),
                  usage_tracking=0, initialize_logging=True)


def render_parsl_script(site: SiteConfig) -> str:
    """The batch script one Parsl block submits (ports/ids shown as placeholders); submits nothing."""
    provider = parsl_provider(site, dry_run=True)
    with tempfile.TemporaryDirectory(prefix="sedscale-render-") as tmp:
        provider.script_dir = tmp
        provider.submit(parsl_launch_cmd(site), 1, job_name="sedscale")
        scripts = [p for p in Path(tmp).iterdir() if not p.name.endswith((".stdout", ".stderr"))]
        script = max(scripts, key=lambda p: p.stat().st_size)
        text = script.read_text()
        submitted = [c for c in getattr(provider, "_sedscale_commands", []) if c.startswith(("sbatch", "qsub"))]
        if submitted:
            text += "\n# submitted with: " + submitted[0] + "\n"
    return text.replace(tmp, "<run_dir>/submit_scripts")


# ---------------------------------------------------------------------------------------- Dask


def dask_cluster_kwargs(site: SiteConfig, local_directory: Path | str) -> dict[str, Any]:
    """Arguments of dask_jobqueue.SLURMCluster / PBSCluster. A dask-jobqueue job is one node (its
    worker command runs once, on the first node), so a block of N nodes is N single-node jobs."""
    o = site.scheduler_options
    procs = o.dask_processes_per_node or site.dask.n_workers or site.workers_per_node
    threads = site.dask.threads_per_worker
    directives = [d.split(None, 1)[1] if d.startswith("#") else d for d in o.directives]
    mem = f"{o.mem_per_node_gb}GB" if o.mem_per_node_gb else f"{max(1, 2 * procs)}GB"
    kw: dict[str, Any] = dict(
        cores=procs * threads,
        processes=procs,
        memory=mem,
        walltime=o.walltime,
        account=resolved_account(site, strict=False),
        python=compute_python(site),
        local_directory=str(local_directory),
        log_directory=str(Path(local_directory) / "jobs"),
        job_script_prologue=job_prologue(site, threads),
        worker_extra_args=["--lifetime", o.worker_lifetime, "--lifetime-stagger", o.worker_lifetime_stagger],
        scheduler_options={"host": o.address or _hostname(), "dashboard_address": ":0"},
        job_name="sedscale-dask",
    )
    if site.scheduler == "slurm":
        extra = [d for d in directives]
        if o.constraint:
            extra.append(f"-C {o.constraint}")
        if o.qos:
            extra.append(f"--qos={o.qos}")
        if o.exclusive:
            extra.append("--exclusive")
        if site.gpus_per_node:
            extra.append(f"--gpus-per-node={site.gpus_per_node}")
        kw.update(queue=o.partition, job_extra_directives=extra)
        if o.exclusive:  # whole nodes: --mem only sizes the Dask workers' memory limits
            kw["job_directives_skip"] = ["--mem"]
    else:
        extra = list(directives)
        if o.filesystems:
            extra.append(f"-l filesystems={o.filesystems}")
        kw.update(queue=o.queue, job_extra_directives=extra,
                  resource_spec=f"select=1:ncpus={site.cores_per_node}"
                  + (f":{o.select_options}" if o.select_options else ""))
    kw.update(site.dask.extra)
    return kw


def _hostname() -> str:
    import socket

    return socket.gethostname()


def dask_cluster_class(site: SiteConfig) -> Any:
    from dask_jobqueue import PBSCluster, SLURMCluster

    return SLURMCluster if site.scheduler == "slurm" else PBSCluster


def render_dask_script(site: SiteConfig) -> str:
    """The batch script one dask-jobqueue job submits (no scheduler started, nothing submitted)."""
    cls = dask_cluster_class(site)
    kw = dask_cluster_kwargs(site, "<campaign>/dask")
    kw.pop("scheduler_options", None)
    job = cls.job_cls(scheduler="tcp://<driver>:<port>", name="sedscale-dask", **kw)
    return job.job_script()


def render_batch_script(site: SiteConfig) -> str:
    return render_parsl_script(site) if site.engine == "parsl" else render_dask_script(site)
