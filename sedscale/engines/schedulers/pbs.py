"""PBS Pro: ``qsub``/``qdel``/``qstat``, its state letters, Parsl's PBSProProvider and
dask-jobqueue's PBSJob, with the directives every sedscale block carries.

Blocks are submitted with ``-r n`` (not rerunnable), so a node failure never reruns a block's
partitions beside its replacement. PBS Pro sends no warning before the walltime: Dask workers
retire by their ``worker_lifetime``; a Parsl block's partitions in flight at the walltime are
abandoned uncommitted and run again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, ClassVar, Literal, Mapping, Optional

from pydantic import Field

from sedscale.engines.schedulers.base import (BatchOptions, BatchScheduler, JobState, NodeShape,
                                              ProviderArgs)
from sedscale.engines.schedulers.provider import configurable_provider

if TYPE_CHECKING:
    from dask_jobqueue.core import JobQueueCluster
    from parsl.providers.base import ExecutionProvider

NOT_RERUNNABLE = "-r n"


class PBSOptions(BatchOptions):
    """A PBS Pro site's block shape and submission options."""

    kind: Literal["pbs"] = "pbs"
    queue: str = Field(..., description="PBS queue (-q), e.g. 'debug', 'prod'")
    filesystems: Optional[str] = Field(None, description="PBS -l filesystems=... (ALCF: home:eagle, home:flare)")
    select_options: Optional[str] = Field(None, description="PBS extra select options, e.g. 'ngpus=4'")

    def qsub_options(self) -> list[str]:
        """``qsub`` options sedscale adds to the site's own directives (without ``#PBS``)."""
        extra = []
        if self.filesystems:
            extra.append(f"-l filesystems={self.filesystems}")
        extra.append(NOT_RERUNNABLE)
        return extra


class PBSScheduler(BatchScheduler):
    name = "pbs"
    submit_tool = "qsub"
    cancel_tool = "qdel"
    status_tool = "qstat"
    states: ClassVar[Mapping[str, JobState]] = {
        "Q": JobState.PENDING, "W": JobState.PENDING, "R": JobState.RUNNING, "H": JobState.HELD,
        "E": JobState.COMPLETING, "F": JobState.COMPLETED, "X": JobState.COMPLETED,
    }

    def status_command(self, user: str) -> list[str]:
        return ["qstat", "-f", "-F", "json", "-u", user]

    def reason_command(self, job_ids: list[str]) -> Optional[list[str]]:
        return ["qstat", "-s", *job_ids]  # PBS Pro: the scheduler's comment ("Not Running: ...")

    def parse_status(self, text: str) -> list[tuple[str, str]]:
        """Both spellings of each job id: ``123.server`` (qstat's) and ``123`` (qsub may print it)."""
        jobs = json.loads(text or "{}").get("Jobs", {})
        pairs = []
        for job_id, job in jobs.items():
            state = str(job.get("job_state", ""))
            pairs += [(job_id, state), (job_id.split(".")[0], state)]
        return pairs

    def parsl_provider(self, options: BatchOptions, shape: NodeShape, args: ProviderArgs,
                       dry_run: bool) -> "ExecutionProvider":
        from parsl.providers import PBSProProvider

        o = _pbs(options)
        directives = list(o.directives)
        if o.filesystems:
            directives.append(f"#PBS -l filesystems={o.filesystems}")
        directives += ["#PBS -k doe", f"#PBS {NOT_RERUNNABLE}"]
        cls = configurable_provider(PBSProProvider, poll_s=o.status_poll_s, dry_run=dry_run)
        return cls(account=args.account, queue=o.queue, cpus_per_node=shape.cores_per_node,
                   select_options=o.select_options or "", scheduler_options="\n".join(directives) + "\n",
                   nodes_per_block=o.nodes_per_block, init_blocks=o.init_blocks, min_blocks=o.min_blocks,
                   max_blocks=o.max_blocks, walltime=o.walltime, worker_init=args.worker_init,
                   launcher=args.launcher)

    def jobqueue_cluster_class(self) -> type["JobQueueCluster"]:
        from dask_jobqueue import PBSCluster

        return PBSCluster

    def jobqueue_kwargs(self, options: BatchOptions, shape: NodeShape) -> dict[str, object]:
        o = _pbs(options)
        extra = [d.split(None, 1)[1] if d.startswith("#") else d for d in o.directives]
        extra.extend(o.qsub_options())
        spec = f"select=1:ncpus={shape.cores_per_node}" + (f":{o.select_options}" if o.select_options else "")
        return {"queue": o.queue, "job_extra_directives": extra, "resource_spec": spec}


def _pbs(options: BatchOptions) -> PBSOptions:
    if not isinstance(options, PBSOptions):
        raise TypeError(f"PBS needs PBSOptions, got {type(options).__name__}")
    return options
