"""Parsl configurations: HighThroughputExecutor on a LocalProvider (local site) or on the site
scheduler's provider (:mod:`sedscale.engines.schedulers`), and the batch script a block submits.

Notes that shaped it (NOTES-HPC.md, issues 7 and 13):
- Parsl starts ``interchange.py`` / ``process_worker_pool.py`` by name: both are started with an
  interpreter by absolute path, and the venv's ``bin`` is put on ``PATH`` in the batch job too.
- ``worker_init`` runs once per block on its first node; per-node work goes through the launcher.
- Parsl's own retries and memoization are off: retries live in :class:`~sedscale.engines.base.Engine`.
- No orphans: on this machine the interchange and the worker pool run under a lifeline
  (:mod:`sedscale.engines.lifeline`) tied to the driver's pid and start time, so they exit within
  seconds of the driver's death; compute-node pools exit after ``heartbeat_threshold_s`` without
  the interchange, and ``resume`` cancels the dead run's jobs.
- Without slurmdbd plain ``sacct`` fails and Parsl falls back to ``squeue`` (a job missing from
  ``squeue`` counts as completed) — fine for block replacement.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from parsl.addresses import address_by_hostname
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.executors.high_throughput import executor as htex_module
from parsl.executors.high_throughput import interchange, process_worker_pool
from parsl.launchers import MpiExecLauncher, SingleNodeLauncher, SrunLauncher
from parsl.launchers.base import Launcher
from parsl.providers import LocalProvider

from sedscale.engines.base import worker_thread_env
from sedscale.engines.compute_env import compute_python, job_prologue, resolved_account
from sedscale.engines.lifeline import lifeline_command
from sedscale.engines.processes import ProcessRecord
from sedscale.engines.schedulers import NodeShape, ProviderArgs, batch_scheduler
from sedscale.engines.schedulers.preemption import preemptible
from sedscale.engines.site import SiteConfig

if TYPE_CHECKING:
    from parsl.providers.base import ExecutionProvider

LABEL = "sedscale"


class PreemptibleLauncher(Launcher):
    """A Parsl launcher whose workers stop cleanly when the batch shell gets the walltime warning
    (see :mod:`sedscale.engines.schedulers.preemption`)."""

    def __init__(self, inner: Launcher, warning_signal: str) -> None:
        super().__init__(debug=inner.debug)
        self.inner = inner
        self.warning_signal = warning_signal

    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        body = self.inner(command, tasks_per_node, nodes_per_block)
        return preemptible(body, self.warning_signal)


def _launcher(site: SiteConfig) -> Launcher:
    o = site.batch_options
    inner: Launcher
    if o.launcher == "srun":
        # one worker pool per node; --cpus-per-task gives each pool the whole node's cores
        inner = SrunLauncher(overrides=f"--cpus-per-task={site.cores_per_node}")
    elif o.launcher == "mpiexec":
        # Cray PALS mpiexec (Polaris, Aurora): one rank = one worker pool per node
        inner = MpiExecLauncher(bind_cmd="--cpu-bind", overrides="--ppn 1")
    else:
        inner = SingleNodeLauncher()
    return PreemptibleLauncher(inner, o.warning_signal) if o.warning_signal else inner


def batch_provider(site: SiteConfig, *, dry_run: bool = False) -> "ExecutionProvider":
    """The site scheduler's Parsl provider (block shape from ``scheduler_options``)."""
    worker_init = "\n".join(job_prologue(site, int(site.parsl.cores_per_worker)))
    args = ProviderArgs(account=resolved_account(site, strict=not dry_run), worker_init=worker_init,
                        launcher=_launcher(site))
    shape = NodeShape(site.cores_per_node, site.gpus_per_node)
    return batch_scheduler(site.scheduler).parsl_provider(site.batch_options, shape, args, dry_run)


def _pool_command(python: str, pool: str, lifeline: Optional[ProcessRecord]) -> str:
    """HTEX's worker-pool command with ``python`` by absolute path (under a lifeline, if given)."""
    command = [python, pool]
    if lifeline is not None:
        command = lifeline_command(lifeline.pid, lifeline.start_time, command)
    return htex_module.DEFAULT_LAUNCH_CMD.replace("process_worker_pool.py", " ".join(command), 1)


def batch_launch_cmd(site: SiteConfig) -> str:
    """The worker-pool command of a compute node (the site venv's pool, if the site names one)."""
    pool = process_worker_pool.__file__
    venv = site.batch_options.venv
    if venv:  # the same relative location inside the site's venv
        rel = Path(pool).relative_to(Path(sys.prefix))
        pool = str(Path(os.path.expandvars(venv)) / rel)
    return _pool_command(compute_python(site), pool, None)


def _interchange_cmd(driver: ProcessRecord) -> list[str]:
    return lifeline_command(driver.pid, driver.start_time, [sys.executable, interchange.__file__])


def local_config(site: SiteConfig, run_dir: Path, workers: int, driver: ProcessRecord) -> Config:
    """HTEX on a LocalProvider: interchange and pool on this machine, both under lifelines."""
    s = site.parsl
    exports = " ".join(f"{k}={v}" for k, v in worker_thread_env(int(s.cores_per_worker)).items())
    worker_init = f"export {exports}" + (f"; {s.worker_init}" if s.worker_init else "")
    provider = LocalProvider(init_blocks=max(1, s.init_blocks), min_blocks=1, max_blocks=s.max_blocks,
                             worker_init=worker_init)
    htex = HighThroughputExecutor(
        label=LABEL, provider=provider, max_workers_per_node=workers, cores_per_worker=s.cores_per_worker,
        heartbeat_period=s.heartbeat_period, heartbeat_threshold=s.heartbeat_threshold,
        launch_cmd=_pool_command(sys.executable, process_worker_pool.__file__, driver),
        interchange_launch_cmd=_interchange_cmd(driver),
        address="127.0.0.1",  # local site: no probing of other interfaces
        encrypted=False,  # localhost only; CurveZMQ certificates cost startup time
        **s.extra,
    )
    return Config(executors=[htex], run_dir=str(run_dir), retries=0, strategy="simple",
                  strategy_period=1,  # the first block is launched at the first strategy poll
                  usage_tracking=0, initialize_logging=True)


def batch_config(site: SiteConfig, run_dir: Path, workers: int, driver: ProcessRecord) -> Config:
    """HTEX on the site's batch provider: short heartbeat, htex_auto_scale replaces lost blocks."""
    o = site.batch_options
    htex = HighThroughputExecutor(
        label=LABEL, provider=batch_provider(site), max_workers_per_node=workers,
        cores_per_worker=site.parsl.cores_per_worker,
        heartbeat_period=o.heartbeat_period_s, heartbeat_threshold=o.heartbeat_threshold_s,
        launch_cmd=batch_launch_cmd(site), interchange_launch_cmd=_interchange_cmd(driver),
        address=o.address or address_by_hostname(),
        **site.parsl.extra,
    )
    return Config(executors=[htex], run_dir=str(run_dir), retries=0, strategy="htex_auto_scale",
                  strategy_period=o.strategy_period_s, max_idletime=float(o.walltime_seconds),
                  usage_tracking=0, initialize_logging=True)


def render_parsl_script(site: SiteConfig) -> str:
    """The batch script one Parsl block submits (ports/ids shown as placeholders); submits nothing."""
    provider = batch_provider(site, dry_run=True)
    with tempfile.TemporaryDirectory(prefix="sedscale-render-") as tmp:
        provider.script_dir = tmp
        provider.submit(batch_launch_cmd(site), 1, job_name="sedscale")
        scripts = [p for p in Path(tmp).iterdir() if not p.name.endswith((".stdout", ".stderr"))]
        script = max(scripts, key=lambda p: p.stat().st_size)
        text = script.read_text()
        submitted = [c for c in getattr(provider, "commands_seen", []) if c.startswith(("sbatch", "qsub"))]
        if submitted:
            text += "\n# submitted with: " + submitted[0] + "\n"
    return text.replace(tmp, "<run_dir>/submit_scripts")
