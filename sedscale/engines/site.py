"""Site configs: where a campaign runs (one YAML per machine in ``site_configs/``).

The top-level keys are pinned in docs/INTERNAL-CONTRACTS.md; ``extra="forbid"`` everywhere so a
misspelt key is an error naming the file and key. Engine sections (``parsl``, ``dask``) are typed
for what the local back ends use; ``scheduler_options`` stays a loose mapping until the HPC issue
types it. ``llm`` is the serving layer's :class:`~sedscale.serve.settings.LLMSettings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sedscale.errors import ConfigError
from sedscale.serve.settings import LLMSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParslSettings(_Strict):
    """HighThroughputExecutor knobs the local back end uses (more arrive with the HPC issue)."""

    max_workers_per_node: Optional[int] = Field(None, ge=1, description="default: workers_per_node")
    cores_per_worker: float = Field(1.0, gt=0)
    heartbeat_period: int = Field(30, ge=1)
    heartbeat_threshold: int = Field(120, ge=2)
    init_blocks: int = Field(1, ge=0)
    max_blocks: int = Field(1, ge=1)
    worker_init: str = ""
    extra: dict[str, Any] = Field(default_factory=dict, description="passed to HighThroughputExecutor")


class DaskSettings(_Strict):
    """distributed.LocalCluster knobs."""

    n_workers: Optional[int] = Field(None, ge=1, description="default: workers_per_node")
    threads_per_worker: int = Field(1, ge=1)
    memory_limit: str = Field("auto", description="per worker, e.g. '4GiB'; 'auto' splits the machine")
    dashboard: bool = False
    extra: dict[str, Any] = Field(default_factory=dict, description="passed to LocalCluster / the jobqueue cluster")


def _duration_s(text: str, key: str) -> float:
    """'90s', '25m', '2h' (Dask's --lifetime syntax, the subset sedscale accepts) in seconds."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h)\s*", str(text))
    if not m:
        raise ValueError(f"{key}: expected a duration like '90s', '25m' or '2h', got {text!r}")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


_WALLTIME = r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$"


class SchedulerOptions(_Strict):
    """Batch-scheduler settings of an HPC site (Slurm or PBS Pro); ignored by local sites.

    One *block* is one batch job of ``nodes_per_block`` nodes; the engine keeps between
    ``min_blocks`` and ``max_blocks`` of them and replaces a lost one (auto-scaling strategy).
    """

    account: Optional[str] = Field(None, description="project/allocation charged (-A); $VARS expanded at submit time")
    partition: Optional[str] = Field(None, description="Slurm partition (-p)")
    queue: Optional[str] = Field(None, description="PBS queue (-q)")
    qos: Optional[str] = Field(None, description="Slurm QOS (-q)")
    constraint: Optional[str] = Field(None, description="Slurm -C, e.g. 'nvme' (Frontier) or 'gpu' (Perlmutter)")
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
    exclusive: bool = Field(True, description="whole nodes (Slurm --exclusive)")
    directives: list[str] = Field(default_factory=list, description="extra '#SBATCH ...'/'#PBS ...' lines")
    filesystems: Optional[str] = Field(None, description="PBS -l filesystems=... (ALCF: home:eagle, home:flare)")
    select_options: Optional[str] = Field(None, description="PBS extra select options, e.g. 'ngpus=4'")
    address: Optional[str] = Field(None, description="driver address the workers connect to; default: this host's name")
    status_poll_s: int = Field(30, ge=1, description="how often the engine polls sacct/squeue/qstat (Parsl's default: 60)")
    strategy_period_s: float = Field(5.0, gt=0, description="Parsl auto-scaling period")
    heartbeat_period_s: int = Field(10, ge=1, description="Parsl worker heartbeat")
    heartbeat_threshold_s: int = Field(30, ge=2, description="a manager silent this long is lost; its tasks retry")
    worker_lifetime: str = Field("25m", description="Dask worker --lifetime (before the walltime kills it)")
    worker_lifetime_stagger: str = Field("2m", description="Dask worker --lifetime-stagger")
    dask_processes_per_node: Optional[int] = Field(None, ge=1, description="Dask worker processes per job; default workers_per_node")

    @model_validator(mode="after")
    def _blocks(self) -> "SchedulerOptions":
        if self.min_blocks > self.max_blocks:
            raise ValueError(f"min_blocks ({self.min_blocks}) must be <= max_blocks ({self.max_blocks})")
        if self.init_blocks > self.max_blocks:
            raise ValueError(f"init_blocks ({self.init_blocks}) must be <= max_blocks ({self.max_blocks})")
        if self.heartbeat_threshold_s <= self.heartbeat_period_s:
            raise ValueError("heartbeat_threshold_s must be larger than heartbeat_period_s")
        life = _duration_s(self.worker_lifetime, "worker_lifetime")
        _duration_s(self.worker_lifetime_stagger, "worker_lifetime_stagger")
        if life >= self.walltime_seconds:
            raise ValueError(f"worker_lifetime ({self.worker_lifetime}) must be shorter than walltime "
                             f"({self.walltime}) so workers retire before the scheduler kills them")
        return self

    @property
    def walltime_seconds(self) -> int:
        days, _, hms = self.walltime.rpartition("-")
        h, m, s = (int(x) for x in hms.split(":"))
        return (int(days) if days else 0) * 86400 + h * 3600 + m * 60 + s


class SiteConfig(_Strict):
    """One machine: engine, scheduler, node shape, engine settings, LLM service."""

    name: str
    description: str = ""
    engine: Literal["parsl", "dask"] = "parsl"
    scheduler: Literal["local", "slurm", "pbs"] = "local"
    cores_per_node: int = Field(1, ge=1)
    gpus_per_node: int = Field(0, ge=0)
    gpu_kind: Literal["none", "nvidia", "amd", "intel"] = "none"
    workers_per_node: int = Field(1, ge=1)
    parsl: ParslSettings = Field(default_factory=ParslSettings)
    dask: DaskSettings = Field(default_factory=DaskSettings)
    scheduler_options: SchedulerOptions = Field(default_factory=SchedulerOptions)
    llm: Optional[LLMSettings] = None

    @field_validator("cores_per_node", "workers_per_node", mode="before")
    @classmethod
    def _auto(cls, value: Any) -> Any:
        """``auto`` = this machine's usable cores (the local site runs wherever it is loaded)."""
        if value == "auto":
            import os

            return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "SiteConfig":
        if self.gpus_per_node == 0 and self.gpu_kind != "none":
            raise ValueError(f"gpu_kind is {self.gpu_kind!r} but gpus_per_node is 0")
        if self.gpus_per_node > 0 and self.gpu_kind == "none":
            raise ValueError("gpus_per_node > 0 needs gpu_kind (nvidia, amd or intel)")
        if self.scheduler == "slurm" and not self.scheduler_options.partition and not self.scheduler_options.constraint:
            raise ValueError("scheduler_options: a Slurm site needs 'partition' or 'constraint'")
        if self.scheduler == "pbs" and not self.scheduler_options.queue:
            raise ValueError("scheduler_options.queue: a PBS site needs a queue (e.g. 'debug', 'prod')")
        if self.scheduler == "pbs" and self.scheduler_options.launcher == "srun":
            raise ValueError("scheduler_options.launcher: 'srun' needs Slurm; use 'mpiexec' or 'single' on PBS")
        return self


def _format(exc: ValidationError) -> str:
    def one(err: Any) -> str:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err.get("type") == "extra_forbidden":
            msg = "unknown key (misspelt?)"
        elif err.get("type") == "string_pattern_mismatch":
            msg = f"expected HH:MM:SS (or D-HH:MM:SS), got {err.get('input')!r}"
        elif "input" in err and not isinstance(err["input"], (dict, list)):
            msg = f"{msg} (got {err['input']!r})"
        return f"{loc}: {msg}"

    return "; ".join(one(err) for err in exc.errors())


def site_from_dict(data: Any, source: str) -> SiteConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a site config must be a mapping of keys")
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_format(exc)}") from None


def load_site(name_or_path: Optional[str] = None) -> SiteConfig:
    """A shipped site by name (``frontier``) or a YAML file; None = ``local`` (the embedded default)."""
    from sedscale.resources import resolve_named_yaml

    path = resolve_named_yaml(name_or_path or "local", "site")
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read site config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return site_from_dict(data, str(path))
