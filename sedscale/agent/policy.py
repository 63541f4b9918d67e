"""The policy interface: a batch of source states in, one decision per source out.

A policy is asked once per lock-step step for all active sources of a partition at once, so an
LLM policy can put every request in flight together. Each :class:`DecisionRequest` carries a
``try_apply`` callback that turns an action into the next configuration (or raises
:class:`~sedscale.agent.actions.ActionError`), so every policy proposes through the same
validation, and knows which configurations the source has already tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol, Sequence, get_args

import numpy as np

from sedscale.agent.state import SourceState
from sedscale.sed.config import FitConfig

#: What a source can get: the triage fit alone, the rules policy, or an LLM (with rules fallback).
#: The one place these names are spelled; workflows, the CLI and the results use this type.
PolicyName = Literal["none", "rules", "llm"]
POLICY_NAMES: tuple[str, ...] = get_args(PolicyName)


@dataclass
class DecisionRequest:
    """One source's question to a policy at one step."""

    state: SourceState
    config: FitConfig  # the configuration the next action edits (the best so far)
    try_apply: Callable[[Any], FitConfig]  # action → new config, or ActionError
    tried: frozenset[str]  # config hashes already fitted for this source
    rng: np.random.Generator  # seeded by (seed, partition id, source id, step)
    seed: int  # integer form of the same seed (for the LLM's sampling)
    tokens_used: int = 0  # LLM tokens this source has consumed so far


@dataclass
class Decision:
    """A policy's answer: a validated action and, unless it is terminal, the config it leads to."""

    action: Any | None  # an Action; None = nothing left to try
    config: FitConfig | None
    policy: str  # "rules" or "llm": who chose the action in the end
    rule: str = ""  # the rule / pattern that produced it (rules policy)
    fallback: str | None = None  # why the LLM's answer was not used
    llm_calls: int = 0
    tokens_prompt: int = 0
    tokens_cached: int = 0
    tokens_completion: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class Policy(Protocol):
    """Anything that can decide the next action for a batch of sources."""

    name: str

    async def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """One decision per request, in order. Must not raise for a single source's trouble."""
        ...

    async def aclose(self) -> None:
        """Release clients / connections (no-op for stateless policies)."""
        ...
