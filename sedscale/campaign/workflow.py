"""Workflows: what a campaign runs (profile, partition size, fit configuration, acceptance
test, policy and budgets, validation rules), as a YAML recipe validated before anything runs.

Sites say *where* a campaign runs; a workflow says *what*. Both are data; the core never branches
on a workflow's name. Unknown keys are errors (``extra="forbid"``) whose message names the file
and the key, so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sedscale.errors import ConfigError

Policy = Literal["none", "rules", "llm"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcceptanceSettings(_Strict):
    """The triage acceptance test: a source that fails any of these enters the agent loop."""

    chi2_red_max: float = Field(5.0, gt=0, description="reduced chi² above this fails")
    band_sigma_max: float = Field(5.0, gt=0, description="any band's |residual| in sigma above this fails")
    min_good_models: int = Field(1, ge=0, description="fewer models within Δχ² of the best fails")


class BudgetSettings(_Strict):
    """Limits of the agent loop (used once the agent issue lands; validated now)."""

    max_agent_steps: int = Field(5, ge=0, description="propose/execute/evaluate rounds per source")
    max_tokens_per_source: int = Field(20_000, ge=0)
    max_agent_fraction: float = Field(1.0, ge=0, le=1, description="share of a partition's sources that may enter the loop")


class Workflow(_Strict):
    """A campaign recipe (``workflows/<name>.yaml``)."""

    name: str
    description: str = ""
    profile: str = Field("generic", description="catalog profile: generic, euclid-q1, roman or a YAML file")
    rows_per_partition: int = Field(50_000, ge=1)
    photoz: bool = Field(False, description="fit the redshift where the catalog has none (else quarantine)")
    fit: dict[str, Any] = Field(default_factory=dict, description="a FitConfig mapping; omitted keys take defaults")
    acceptance: AcceptanceSettings = Field(default_factory=AcceptanceSettings)
    policy: Policy = "rules"
    llm_url: Optional[str] = Field(None, description="OpenAI-compatible base URL for policy llm (else the site's LLM service)")
    llm_model: Optional[str] = Field(None, description="model name at llm_url (default: the first it lists)")
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)
    validation: dict[str, Any] = Field(default_factory=dict, description="ValidationRules mapping")
    retries: int = Field(2, ge=0, le=10, description="re-runs of a partition task that raised")

    @field_validator("fit")
    @classmethod
    def _fit_is_a_fit_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            from sedscale.sed.config import FitConfig
        except ImportError:  # the SED layer not installed yet: validated when a task builds it
            return value
        FitConfig.model_validate(value)
        return value

    @field_validator("validation")
    @classmethod
    def _validation_rules(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            from sedscale.catalog.validate import ValidationRules
        except ImportError:
            return value
        ValidationRules.model_validate(value)
        return value

    def fit_config(self) -> Any:
        """The :class:`sedscale.sed.config.FitConfig` of this workflow."""
        from sedscale.sed.config import FitConfig

        return FitConfig.from_dict(self.fit, source=f"workflow {self.name!r}: fit")

    def validation_rules(self) -> Any:
        """The :class:`sedscale.catalog.validate.ValidationRules`; photo-z off => redshift required."""
        from sedscale.catalog.validate import ValidationRules

        data = {"require_redshift": not self.photoz} | dict(self.validation)
        return ValidationRules.model_validate(data)


def _format(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def workflow_from_dict(data: Any, source: str) -> Workflow:
    """Validate a mapping, naming ``source`` and each bad key in the error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a workflow must be a mapping of keys")
    try:
        return Workflow.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_format(exc)}") from None


def load_workflow(name_or_path: Optional[str]) -> Workflow:
    """A shipped workflow by name (``euclid-wide``) or a user's YAML file; None = ``default``."""
    from sedscale.resources import resolve_named_yaml

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
