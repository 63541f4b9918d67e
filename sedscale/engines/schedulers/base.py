"""What every batch scheduler module provides, and the options every batch site shares.

Built as Parsl builds its providers: a scheduler is its tool names, a table from its state
strings to one shared :class:`JobState` vocabulary, and factories for the two engines' back ends
(a Parsl provider, a dask-jobqueue cluster class and its directives). ``slurm.py`` and ``pbs.py``
implement it; nothing outside this package branches on a scheduler's name.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, ClassVar, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from dask_jobqueue.core import JobQueueCluster
    from parsl.launchers.base import Launcher
    from parsl.providers.base import ExecutionProvider

DRY_RUN_JOB_ID = "DRYRUN"
_WALLTIME = r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$"


class JobState(Enum):
    """A batch job's state in words every scheduler maps onto (Parsl's ``jobs/states.py`` idea)."""

    PENDING = "pending"
    RUNNING = "running"
    HELD = "held"
    SUSPENDED = "suspended"
    COMPLETING = "completing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    PREEMPTED = "preempted"
    UNKNOWN = "unknown"

    @property
    def live(self) -> bool:
        """Queued or running: a job that still holds (or will hold) an allocation."""
        return self in (JobState.PENDING, JobState.RUNNING, JobState.HELD, JobState.SUSPENDED)


def duration_seconds(text: str, key: str) -> float:
    """'90s', '25m', '2h' (Dask's --lifetime syntax, the subset sedscale accepts) in seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h)\s*", str(text))
    if not m:
        raise ValueError(f"{key}: expected a duration like '90s', '25m' or '2h', got {text!r}")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


class LocalOptions(BaseModel):
    """A local site has no batch scheduler and so no options (``scheduler_options: {}``)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["local"] = "local"


class BatchOptions(BaseModel):
    """Options every batch scheduler shares. One *block* is one batch job of ``nodes_per_block``
    nodes; the engine keeps between ``min_blocks`` and ``max_blocks`` of them and replaces a lost one."""

    model_config = ConfigDict(extra="forbid")

    account: Optional[str] = Field(None, description="project/allocation charged (-A); $VARS expanded at submit time")
    walltime: str = Field("00:30:00", pattern=_WALLTIME, description="per block, HH:MM:SS")
    nodes_per_block: int = Field(1, ge=1)
    init_blocks: int = Field(1, ge=0)
    min_blocks: int = Field(1, ge=0)
    max_blocks: int = Field(1, ge=1)
    launcher: Literal["single", "srun", "mpiexec"] = Field(
        "single", description="how the worker pool starts on the block's nodes (srun/mpiexec: one per node)")
    worker_init: str = Field("", description="shell lines run in the batch job before the workers (module loads, venv)")
    venv: Optional[str] = Field(
        None, description="Python environment on the compute nodes; default: the driver's own (sys.prefix)")
    mem_per_node_gb: Optional[int] = Field(None, ge=1, description="memory requested per node (GB)")
    exclusive: bool = Field(True, description="whole nodes (Slurm --exclusive; PBS nodes are whole already)")
    directives: list[str] = Field(default_factory=list, description="extra '#SBATCH ...'/'#PBS ...' lines")
    address: Optional[str] = Field(None, description="driver address the workers connect to; default: this host's name")
    status_poll_s: int = Field(30, ge=1, description="how often the engine polls sacct/squeue/qstat (Parsl's default: 60)")
    strategy_period_s: float = Field(5.0, gt=0, description="Parsl auto-scaling period")
    heartbeat_period_s: int = Field(10, ge=1, description="Parsl worker heartbeat")
    heartbeat_threshold_s: int = Field(30, ge=2, description="a manager silent this long is lost; its tasks retry")
    worker_lifetime: str = Field("25m", description="Dask worker --lifetime (before the walltime kills it)")
    worker_lifetime_stagger: str = Field("2m", description="Dask worker --lifetime-stagger")
    dask_processes_per_node: Optional[int] = Field(None, ge=1, description="Dask worker processes per job; default workers_per_node")
    environment: dict[str, str] = Field(
        default_factory=dict, description="environment of the scheduler's commands and of the batch jobs "
                                          "(e.g. SLURM_CONF of a test cluster); $VARS expanded")
    block_start_timeout_s: int = Field(
        1800, ge=1, description="a campaign whose first block has no worker connected after this long fails "
                                "with the scheduler's reason (nodes drained or down) instead of waiting forever")

    @model_validator(mode="after")
    def _consistent(self) -> "BatchOptions":
        if self.min_blocks > self.max_blocks:
            raise ValueError(f"min_blocks ({self.min_blocks}) must be <= max_blocks ({self.max_blocks})")
        if self.init_blocks > self.max_blocks:
            raise ValueError(f"init_blocks ({self.init_blocks}) must be <= max_blocks ({self.max_blocks})")
        if self.heartbeat_threshold_s <= self.heartbeat_period_s:
            raise ValueError("heartbeat_threshold_s must be larger than heartbeat_period_s")
        life = duration_seconds(self.worker_lifetime, "worker_lifetime")
        duration_seconds(self.worker_lifetime_stagger, "worker_lifetime_stagger")
        if life >= self.walltime_seconds:
            raise ValueError(f"worker_lifetime ({self.worker_lifetime}) must be shorter than walltime "
                             f"({self.walltime}) so workers retire before the scheduler kills them")
        return self

    def resolved_environment(self) -> dict[str, str]:
        """:attr:`environment` with ``$VARS`` expanded from the driver's environment."""
        return {key: os.path.expandvars(value) for key, value in self.environment.items()}

    @property
    def walltime_seconds(self) -> int:
        days, _, hms = self.walltime.rpartition("-")
        h, m, s = (int(x) for x in hms.split(":"))
        return (int(days) if days else 0) * 86400 + h * 3600 + m * 60 + s

    @property
    def warning_signal(self) -> Optional[str]:
        """The signal name sent before the walltime (``USR1`` of ``USR1@120``); None: no warning."""
        return None


@dataclass(frozen=True)
class NodeShape:
    """What a scheduler needs to know of a site's nodes to size a block."""

    cores_per_node: int
    gpus_per_node: int


@dataclass(frozen=True)
class ProviderArgs:
    """The scheduler-independent parts of a Parsl provider, resolved by the engine side."""

    account: Optional[str]
    worker_init: str
    launcher: "Launcher"


class BatchScheduler(ABC):
    """One batch scheduler: its tools, its state table, and its engines' back ends."""

    name: ClassVar[str]
    submit_tool: ClassVar[str]
    cancel_tool: ClassVar[str]
    status_tool: ClassVar[str]
    states: ClassVar[Mapping[str, JobState]]

    def __init__(self, environment: Optional[Mapping[str, str]] = None) -> None:
        #: added to the driver's environment for every scheduler command (a site's ``environment``)
        self.environment = dict(environment or {})

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        """Run one scheduler command with the site's environment (OSError/TimeoutExpired pass)."""
        return subprocess.run(command, capture_output=True, text=True, timeout=60,
                              env=os.environ | self.environment)

    def state(self, code: str) -> JobState:
        """The shared state of one of this scheduler's state strings."""
        return self.states.get(code.strip(), JobState.UNKNOWN)

    def missing_tools(self) -> list[str]:
        """Tools of this scheduler not on ``PATH`` (a driver must run where it can submit)."""
        return [t for t in (self.submit_tool, self.cancel_tool, self.status_tool) if shutil.which(t) is None]

    def live_job_ids(self) -> Optional[set[str]]:
        """Ids of this user's queued or running jobs; None when the scheduler cannot be asked."""
        try:
            out = self._run(self.status_command(getpass.getuser()))
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
        try:
            return {job_id for job_id, code in self.parse_status(out.stdout) if self.state(code).live}
        except ValueError:
            return None

    def cancel(self, job_ids: list[str]) -> None:
        """Cancel jobs by id (never by name: other campaigns of the user keep theirs)."""
        if not job_ids:
            return
        try:
            self._run([self.cancel_tool, *job_ids])
        except (OSError, subprocess.TimeoutExpired):
            pass  # not on a machine of this scheduler: its jobs end at their walltime

    def describe_jobs(self, job_ids: list[str]) -> str:
        """One line per job with its state and the scheduler's reason (why a block is not running);
        empty when the scheduler cannot be asked."""
        command = self.reason_command(job_ids)
        if not job_ids or command is None:
            return ""
        try:
            out = self._run(command)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    def reason_command(self, job_ids: list[str]) -> Optional[list[str]]:
        """The command that prints ``job_ids`` with their states and pending reasons (None: none)."""
        return None

    @abstractmethod
    def status_command(self, user: str) -> list[str]:
        """The command that lists ``user``'s jobs with their states."""

    @abstractmethod
    def parse_status(self, text: str) -> list[tuple[str, str]]:
        """(job id, state string) pairs of :meth:`status_command`'s output."""

    @abstractmethod
    def parsl_provider(self, options: BatchOptions, shape: NodeShape, args: ProviderArgs,
                       dry_run: bool) -> "ExecutionProvider":
        """The Parsl provider that submits this scheduler's blocks."""

    @abstractmethod
    def jobqueue_cluster_class(self) -> type["JobQueueCluster"]:
        """dask-jobqueue's cluster class of this scheduler."""

    @abstractmethod
    def jobqueue_kwargs(self, options: BatchOptions, shape: NodeShape) -> dict[str, object]:
        """Scheduler-specific arguments of the dask-jobqueue cluster (queue, directives, resources)."""
