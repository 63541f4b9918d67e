"""Per-source limits of the agent loop, and the default numbers every layer derives from.

The defaults are the ones users of the shipped workflows get (5 steps, 20,000 LLM tokens per
source): they are written once here, as importable constants, so the workflow model and the
command line take them from the agent layer instead of restating (and drifting from) them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sedscale.agent.apply import ApplyLimits

#: Propose → fit → evaluate rounds one source may take.
DEFAULT_MAX_STEPS = 5
#: LLM prompt + completion tokens one source may spend before the rules decide for it.
DEFAULT_MAX_TOKENS_PER_SOURCE = 20_000
#: Consecutive steps without improvement after which a source stops.
DEFAULT_PATIENCE = 3
#: Share of the sources that may enter the loop (1: every source that fails triage).
DEFAULT_MAX_AGENT_FRACTION = 1.0


class AgentBudgets(BaseModel):
    """Per-source limits of the loop (a pydantic model, so workflows can nest and validate it).

    ``max_agent_fraction`` is a per-source admission probability, not a partition quota: a source
    that fails triage enters the loop when a hash of (campaign seed, source id) falls below it
    (:func:`sedscale.agent.seeds.admitted`). So the expected share of triage failures that enter
    is the fraction, and whether one source enters never depends on which other sources share
    its partition (before issue 13, the worst ``fraction × n`` triage fits of each partition
    entered, which made a source's fate depend on its neighbours).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int = Field(default=DEFAULT_MAX_STEPS, ge=0, description="propose/fit/evaluate rounds per source")
    max_tokens_per_source: int = Field(default=DEFAULT_MAX_TOKENS_PER_SOURCE, ge=0,
                                       description="LLM prompt + completion tokens per source")
    patience: int = Field(default=DEFAULT_PATIENCE, ge=1, description="steps without improvement before stopping")
    max_agent_fraction: float = Field(default=DEFAULT_MAX_AGENT_FRACTION, ge=0.0, le=1.0,
                                      description="probability that a triage failure enters the loop")
    limits: ApplyLimits = Field(default_factory=ApplyLimits, description="guards on proposed configurations")
