"""Workflows: what a campaign runs (profile, partition size, fit configuration, acceptance
test, policy and budgets, validation rules), as a YAML recipe validated before anything runs.

Sites say *where* a campaign runs; a workflow says *what*. Both are data; the core never branches
on a workflow's name. Unknown keys are errors (``extra="forbid"``) whose message names the file
and the key, so a typo cannot silently fall back to a default.

The sections are typed: ``fit`` is the SED layer's :class:`~sedscale.sed.config.FitConfig`, and
``acceptance`` / ``budgets`` keep the keys users write in YAML and convert to the agent layer's
:class:`~sedscale.agent.AcceptanceTest` / :class:`~sedscale.agent.AgentBudgets` in one method
each, so no other code renames or coerces them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sedscale.agent.acceptance import AcceptanceTest
from sedscale.agent.loop import AgentBudgets
from sedscale.agent.policy import PolicyName
from sedscale.catalog.validate import ValidationRules
from sedscale.errors import ConfigError
from sedscale.resources import resolve_named_yaml
from sedscale.sed.config import FitConfig

#: The agent's own defaults: the one place the budget numbers are written is the agent layer.
_AGENT_DEFAULTS = AgentBudgets()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcceptanceSettings(_Strict):
    """The triage acceptance test: a source that fails any of these enters the agent loop."""

    chi2_red_max: float = Field(5.0, gt=0, description="reduced chi² above this fails")
    band_sigma_max: float = Field(5.0, gt=0, description="any band's |residual| in sigma above this fails")
    min_good_models: int = Field(
        1, ge=1,
        description="fewer models within Δχ² of the best fails; at least 1, because the best model "
                    "itself always counts (1 = no constraint; 0 was once accepted and meant the same)")

    @field_validator("min_good_models", mode="before")
    @classmethod
    def _zero_means_one(cls, value: Any) -> Any:
        """Workflows (and campaigns) written before the rule was one accepted 0; it meant 1."""
        if isinstance(value, int) and not isinstance(value, bool) and value == 0:
            warnings.warn("acceptance.min_good_models: 0 is deprecated and means 1 (the best model "
                          "always counts); write 1", FutureWarning, stacklevel=2)
            return 1
        return value

    def to_acceptance_test(self) -> AcceptanceTest:
        """The agent layer's :class:`AcceptanceTest` (``band_sigma_max`` is its ``max_abs_residual``)."""
        return AcceptanceTest(chi2_red_max=self.chi2_red_max, max_abs_residual=self.band_sigma_max,
                              min_good_models=self.min_good_models)


class BudgetSettings(_Strict):
    """Limits of the agent loop; the defaults are the agent layer's :class:`AgentBudgets`'."""

    max_agent_steps: int = Field(_AGENT_DEFAULTS.max_steps, ge=0,
                                 description="propose/execute/evaluate rounds per source")
    max_tokens_per_source: int = Field(_AGENT_DEFAULTS.max_tokens_per_source, ge=0,
                                       description="LLM prompt + completion tokens per source")
    max_agent_fraction: float = Field(_AGENT_DEFAULTS.max_agent_fraction, ge=0, le=1,
                                      description="share of a partition's sources that may enter the loop")

    def to_agent_budgets(self) -> AgentBudgets:
        """The agent layer's :class:`AgentBudgets` (``max_agent_steps`` is its ``max_steps``)."""
        return AgentBudgets(max_steps=self.max_agent_steps, max_tokens_per_source=self.max_tokens_per_source,
                            max_agent_fraction=self.max_agent_fraction)


class Workflow(_Strict):
    """A campaign recipe (``workflows/<name>.yaml``)."""

    name: str
    description: str = ""
    profile: str = Field("generic", description="catalog profile: generic, euclid-q1, euclid-q1-irsa, roman, roman-generic or a YAML file")
    rows_per_partition: int = Field(50_000, ge=1)
    photoz: bool = Field(False, description="fit the redshift where the catalog has none (else quarantine)")
    fit: FitConfig = Field(default_factory=FitConfig, description="the triage fit; omitted keys take defaults")
    acceptance: AcceptanceSettings = Field(default_factory=AcceptanceSettings)
    policy: PolicyName = "rules"
    llm_url: Optional[str] = Field(None, description="OpenAI-compatible base URL for policy llm (else the site's LLM service)")
    llm_model: Optional[str] = Field(None, description="model name at llm_url (default: the first it lists)")
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)
    validation: dict[str, Any] = Field(
        default_factory=dict,
        description="ValidationRules keys; kept as written so require_redshift can default from photoz")
    retries: int = Field(2, ge=0, le=10, description="re-runs of a partition task that raised")

    @field_validator("validation")
    @classmethod
    def _validation_rules(cls, value: dict[str, Any]) -> dict[str, Any]:
        ValidationRules.model_validate(value)
        return value

    def validation_rules(self) -> ValidationRules:
        """The catalog layer's :class:`ValidationRules`; photo-z off => redshift required.

        The one source of validation defaults: ``validate``, ``fit`` and ``submit`` all take
        their rules from here (with their ``--min-bands`` through :meth:`with_min_bands`)."""
        data = {"require_redshift": not self.photoz} | dict(self.validation)
        return ValidationRules.model_validate(data)

    def with_min_bands(self, min_bands: Optional[int]) -> Workflow:
        """This workflow with ``validation.min_bands`` replaced (None: unchanged)."""
        if min_bands is None:
            return self
        return self.model_copy(update={"validation": {**self.validation, "min_bands": min_bands}})


def _format(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def workflow_from_dict(data: object, source: str) -> Workflow:
    """Validate a mapping, naming ``source`` and each bad key in the error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a workflow must be a mapping of keys")
    try:
        return Workflow.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_format(exc)}") from None


def load_workflow(name_or_path: Optional[str]) -> Workflow:
    """A shipped workflow by name (``euclid-wide``) or a user's YAML file; None = ``default``."""
    path = resolve_named_yaml(name_or_path or "default", "workflow")
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read workflow ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if isinstance(data, dict) and "name" not in data:
        data = {"name": Path(path).stem} | data
    return workflow_from_dict(data, str(path))
