"""Site configs: where a campaign runs (one YAML per machine in ``site_configs/``).

The top-level keys are pinned in docs/INTERNAL-CONTRACTS.md; ``extra="forbid"`` everywhere so a
misspelt key is an error naming the file and key. Engine sections (``parsl``, ``dask``) are typed
for what the local back ends use; ``scheduler_options`` is the discriminated union of the
scheduler modules' options (:mod:`sedscale.engines.schedulers`), tagged by the top-level
``scheduler``. ``llm`` is the serving layer's :class:`~sedscale.serve.settings.LLMSettings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sedscale.engines.schedulers import (SCHEDULER_NAMES, BatchOptions, LocalOptions, PBSOptions, SchedulerOptions,
                                        SlurmOptions, option_fields)
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
    scheduler_options: SchedulerOptions = Field(default_factory=LocalOptions)
    llm: Optional[LLMSettings] = None
    grid_cache: Optional[str] = Field(None, description="model-grid cache shared by this site's campaigns (default: $SEDSCALE_CACHE_DIR/grids or ~/.cache/sedscale/grids)")

    @model_validator(mode="before")
    @classmethod
    def _tag_scheduler_options(cls, data: Any) -> Any:
        """Tag ``scheduler_options`` with the site's ``scheduler`` (the union's discriminator)."""
        if not isinstance(data, dict):
            return data
        scheduler = data.get("scheduler", "local")
        options = data.get("scheduler_options")
        if scheduler not in SCHEDULER_NAMES or not (options is None or isinstance(options, dict)):
            return data
        if scheduler == "pbs" and not (options or {}).get("queue"):
            raise ValueError("scheduler_options.queue: a PBS site needs a queue (e.g. 'debug', 'prod')")
        return data | {"scheduler_options": tagged_options(dict(options or {}), scheduler)}

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
        o = self.scheduler_options
        if isinstance(o, SlurmOptions) and not o.partition and not o.constraint:
            raise ValueError("scheduler_options: a Slurm site needs 'partition' or 'constraint'")
        if isinstance(o, PBSOptions) and o.launcher == "srun":
            raise ValueError("scheduler_options.launcher: 'srun' needs Slurm; use 'mpiexec' or 'single' on PBS")
        return self

    @property
    def batch_options(self) -> BatchOptions:
        """The scheduler options of a batch site (a local site has none: ValueError)."""
        if not isinstance(self.scheduler_options, BatchOptions):
            raise ValueError(f"site {self.name!r} runs on this machine: it has no batch scheduler")
        return self.scheduler_options


def tagged_options(options: dict[str, Any], scheduler: str) -> dict[str, Any]:
    """``options`` with ``kind`` set to ``scheduler``.

    Campaigns made before the options were split by scheduler stored every key of every
    scheduler (unset ones as null) and local sites stored all of them: a key another scheduler
    owns is dropped when it is null, or on a local site (which never read them), so those
    campaigns still resume. Any other key stays, for the model to name as unknown.
    """
    if "kind" in options:
        if options["kind"] != scheduler:
            raise ValueError(f"scheduler_options.kind {options['kind']!r} disagrees with scheduler {scheduler!r}")
        return options
    own = option_fields(scheduler)
    batch_keys = option_fields("slurm") | option_fields("pbs")
    kept = {k: v for k, v in options.items()
            if k in own or k not in batch_keys or (v is not None and scheduler != "local")}
    return kept | {"kind": scheduler}


def _format(exc: ValidationError) -> str:
    def one(err: Any) -> str:
        parts = [str(p) for p in err["loc"]]
        if parts[:1] == ["scheduler_options"] and parts[1:2] and parts[1] in SCHEDULER_NAMES:
            parts.pop(1)  # the union's tag: the YAML has no such level
        loc = ".".join(parts) or "(top level)"
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
