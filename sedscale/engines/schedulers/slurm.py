"""Slurm: ``sbatch``/``scancel``/``squeue``, its state codes, Parsl's SlurmProvider and
dask-jobqueue's SLURMJob, with the directives every sedscale block carries.

Every block is submitted with ``--no-requeue``: Slurm requeues a job on node failure by
default, which would run its partitions a second time beside the replacement block the engine
has already started. ``signal: USR1@120`` asks for a warning before the walltime, sent to the
batch shell (``B:``), whose trap stops the workers (see :mod:`.preemption`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar, Literal, Mapping, Optional

from pydantic import Field, field_validator

from sedscale.engines.schedulers.base import (BatchOptions, BatchScheduler, JobState, NodeShape,
                                              ProviderArgs)
from sedscale.engines.schedulers.provider import configurable_provider

if TYPE_CHECKING:
    from dask_jobqueue.core import JobQueueCluster
    from parsl.providers.base import ExecutionProvider

NO_REQUEUE = "--no-requeue"


class SlurmOptions(BatchOptions):
    """A Slurm site's block shape and submission options."""

    kind: Literal["slurm"] = "slurm"
    partition: Optional[str] = Field(None, description="Slurm partition (-p)")
    qos: Optional[str] = Field(None, description="Slurm QOS (-q)")
    constraint: Optional[str] = Field(None, description="Slurm -C, e.g. 'nvme' (Frontier) or 'gpu' (Perlmutter)")
    signal: Optional[str] = Field(None, description="walltime warning, e.g. 'USR1@120' (--signal=B:USR1@120): "
                                                    "the block stops its workers when it arrives")

    @field_validator("signal")
    @classmethod
    def _signal(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        m = re.fullmatch(r"(?:B:)?(?:SIG)?([A-Z][A-Z0-9]*)@(\d+)", value.strip())
        if not m:
            raise ValueError(f"expected SIGNAL@SECONDS such as 'USR1@120', got {value!r}")
        return f"{m.group(1)}@{m.group(2)}"

    @property
    def warning_signal(self) -> Optional[str]:
        return self.signal.split("@", 1)[0] if self.signal else None

    def sbatch_options(self) -> list[str]:
        """``sbatch`` options sedscale adds to the site's own directives (without ``#SBATCH``)."""
        extra = [NO_REQUEUE]
        if self.signal:
            extra.append(f"--signal=B:{self.signal}")
        return extra


class SlurmScheduler(BatchScheduler):
    name = "slurm"
    submit_tool = "sbatch"
    cancel_tool = "scancel"
    status_tool = "squeue"
    states: ClassVar[Mapping[str, JobState]] = {
        "PD": JobState.PENDING, "CF": JobState.PENDING, "RQ": JobState.PENDING,
        "R": JobState.RUNNING, "RS": JobState.RUNNING, "S": JobState.SUSPENDED,
        "CG": JobState.COMPLETING, "CD": JobState.COMPLETED,
        "F": JobState.FAILED, "NF": JobState.FAILED, "OOM": JobState.FAILED, "BF": JobState.FAILED,
        "CA": JobState.CANCELLED, "TO": JobState.TIMEOUT, "DL": JobState.TIMEOUT, "PR": JobState.PREEMPTED,
    }

    def status_command(self, user: str) -> list[str]:
        return ["squeue", "-h", "-u", user, "-o", "%i %t"]

    def reason_command(self, job_ids: list[str]) -> Optional[list[str]]:
        return ["squeue", "-h", "-j", ",".join(job_ids), "-o", "job %i %T (reason: %r) nodes %D"]

    def parse_status(self, text: str) -> list[tuple[str, str]]:
        rows = [line.split() for line in text.splitlines() if line.strip()]
        return [(r[0], r[1]) for r in rows if len(r) > 1]

    def parsl_provider(self, options: BatchOptions, shape: NodeShape, args: ProviderArgs,
                       dry_run: bool) -> "ExecutionProvider":
        from parsl.providers import SlurmProvider

        o = _slurm(options)
        directives = list(o.directives)
        if o.qos:
            directives.append(f"#SBATCH --qos={o.qos}")
        if shape.gpus_per_node:
            directives.append(f"#SBATCH --gpus-per-node={shape.gpus_per_node}")
        directives.extend(f"#SBATCH {opt}" for opt in o.sbatch_options())
        cls = configurable_provider(SlurmProvider, poll_s=o.status_poll_s, dry_run=dry_run)
        return cls(partition=o.partition, account=args.account, constraint=o.constraint,
                   mem_per_node=None if o.exclusive else o.mem_per_node_gb, exclusive=o.exclusive,
                   scheduler_options="\n".join(directives) + "\n", nodes_per_block=o.nodes_per_block,
                   init_blocks=o.init_blocks, min_blocks=o.min_blocks, max_blocks=o.max_blocks,
                   walltime=o.walltime, worker_init=args.worker_init, launcher=args.launcher)

    def jobqueue_cluster_class(self) -> type["JobQueueCluster"]:
        from dask_jobqueue import SLURMCluster

        return SLURMCluster

    def jobqueue_kwargs(self, options: BatchOptions, shape: NodeShape) -> dict[str, object]:
        o = _slurm(options)
        extra = [d.split(None, 1)[1] if d.startswith("#") else d for d in o.directives]
        if o.constraint:
            extra.append(f"-C {o.constraint}")
        if o.qos:
            extra.append(f"--qos={o.qos}")
        if o.exclusive:
            extra.append("--exclusive")
        if shape.gpus_per_node:
            extra.append(f"--gpus-per-node={shape.gpus_per_node}")
        extra.extend(o.sbatch_options())
        kw: dict[str, object] = {"queue": o.partition, "job_extra_directives": extra}
        if o.exclusive:  # whole nodes: --mem only sizes the Dask workers' memory limits
            kw["job_directives_skip"] = ["--mem"]
        return kw


def _slurm(options: BatchOptions) -> SlurmOptions:
    if not isinstance(options, SlurmOptions):
        raise TypeError(f"Slurm needs SlurmOptions, got {type(options).__name__}")
    return options
