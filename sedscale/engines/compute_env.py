"""The environment a batch job runs in, and the check that a site can submit one.

Shared by both engines' batch back ends: the compute-node interpreter (the site's venv, else the
driver's own), the shell prologue every block opens with, and the account with ``$VARS``
expanded (``#SBATCH``/``#PBS`` lines are not expanded by the shell).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Optional

from sedscale.engines.base import worker_thread_env
from sedscale.engines.schedulers import batch_scheduler
from sedscale.engines.site import SiteConfig
from sedscale.errors import ConfigError


def compute_python(site: SiteConfig) -> str:
    """The Python interpreter the batch job runs (the site's venv, else the driver's own)."""
    venv = site.batch_options.venv
    if venv:
        return os.path.join(os.path.expandvars(venv), "bin", "python")
    return sys.executable


def compute_bin_dir(site: SiteConfig) -> str:
    return str(Path(compute_python(site)).parent)


def job_prologue(site: SiteConfig, threads: int = 1) -> list[str]:
    """Shell lines that open every batch job: thread pins, PATH with the venv's bin, user init."""
    lines = [f"export {k}={v}" for k, v in worker_thread_env(threads).items()]
    lines.append(f'export PATH="{compute_bin_dir(site)}:$PATH"')
    if site.batch_options.worker_init.strip():
        lines.extend(site.batch_options.worker_init.strip().splitlines())
    return lines


def resolved_account(site: SiteConfig, *, strict: bool) -> Optional[str]:
    """The account with ``$VARS`` expanded; ``strict``: an unset variable is a ConfigError."""
    account = site.batch_options.account
    if not account:
        return None
    expanded = os.path.expandvars(account)
    if strict and "$" in expanded:
        raise ConfigError(f"site {site.name!r}: scheduler_options.account {account!r} names an unset "
                          "environment variable (e.g. export SEDSCALE_PROJECT=abc123)")
    return expanded


def check_submittable(site: SiteConfig) -> None:
    """Everything that can be checked before a campaign is created or a job submitted: the
    account expands, the scheduler's tools are here, the compute venv exists (ConfigError).
    A local site always passes."""
    if site.scheduler == "local":
        return
    resolved_account(site, strict=True)
    scheduler = batch_scheduler(site.scheduler)
    missing = scheduler.missing_tools()
    if missing:
        raise ConfigError(f"site {site.name!r}: scheduler {site.scheduler!r} but {', '.join(map(repr, missing))} "
                          "not on PATH (run from the machine's login node)")
    venv = site.batch_options.venv
    if venv:
        expanded = os.path.expandvars(venv)
        if "$" in expanded:
            raise ConfigError(f"site {site.name!r}: scheduler_options.venv {venv!r} names an unset "
                              "environment variable")
        py = compute_python(site)
        if not os.path.exists(py):
            raise ConfigError(f"site {site.name!r}: scheduler_options.venv: {py} does not exist")


def scheduler_environment(site: SiteConfig) -> dict[str, str]:
    """The variables a batch site's scheduler commands and jobs need (none for a local site)."""
    if site.scheduler == "local":
        return {}
    return site.batch_options.resolved_environment()


class ProcessEnvironment:
    """Variables added to this process's environment while an engine runs, restored afterwards.

    Why process-wide: Parsl's providers and dask-jobqueue run ``sbatch``/``squeue``/``scancel``
    with the driver's environment and ``sbatch`` exports it to the jobs (whose ``srun`` needs the
    same ``SLURM_CONF``); neither takes an environment of its own."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.variables = dict(variables)
        self._saved: Optional[dict[str, Optional[str]]] = None

    def apply(self) -> None:
        if self._saved is not None or not self.variables:
            return
        self._saved = {key: os.environ.get(key) for key in self.variables}
        os.environ.update(self.variables)

    def restore(self) -> None:
        if self._saved is None:
            return
        for key, old in self._saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        self._saved = None
