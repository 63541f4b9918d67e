"""Batch schedulers as modules: one per scheduler (``slurm``, ``pbs``) behind :class:`BatchScheduler`,
and the discriminated union of their options that a site's ``scheduler_options`` is.

The union's tag ``kind`` is the site's top-level ``scheduler`` (filled in by the site model), so a
site YAML names its scheduler once and a Slurm key in a PBS site is an error naming the key.
"""

from __future__ import annotations

from typing import Annotated, Mapping, Optional, Union

from pydantic import BaseModel, Field

from sedscale.engines.schedulers.base import (BatchOptions, BatchScheduler, JobState, LocalOptions,
                                              NodeShape, ProviderArgs)
from sedscale.engines.schedulers.pbs import PBSOptions, PBSScheduler
from sedscale.engines.schedulers.slurm import SlurmOptions, SlurmScheduler

SchedulerOptions = Annotated[Union[LocalOptions, SlurmOptions, PBSOptions], Field(discriminator="kind")]

_SCHEDULERS: dict[str, type[BatchScheduler]] = {"slurm": SlurmScheduler, "pbs": PBSScheduler}
SCHEDULER_NAMES = ("local", *_SCHEDULERS)


def batch_scheduler(name: str, environment: Optional[Mapping[str, str]] = None) -> BatchScheduler:
    """The scheduler module's implementation for ``name`` (``slurm`` | ``pbs``), running its
    commands with ``environment`` added (a site's ``scheduler_options.environment``)."""
    try:
        cls = _SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"{name!r} is not a batch scheduler (one of {', '.join(_SCHEDULERS)})") from None
    return cls(environment)


def option_fields(name: str) -> set[str]:
    """The keys ``scheduler_options`` may hold on a site of scheduler ``name``."""
    models: dict[str, type[BaseModel]] = {"local": LocalOptions, "slurm": SlurmOptions, "pbs": PBSOptions}
    return set(models[name].model_fields)


__all__ = ["BatchOptions", "BatchScheduler", "JobState", "LocalOptions", "NodeShape", "PBSOptions",
           "PBSScheduler", "ProviderArgs", "SCHEDULER_NAMES", "SchedulerOptions", "SlurmOptions",
           "SlurmScheduler", "batch_scheduler", "option_fields"]
