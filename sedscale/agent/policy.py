"""The policy interface: a batch of source states in, one decision per source out.

A policy is asked once per lock-step step for all active sources of a partition at once, so an
LLM policy can put every request in flight together. Each :class:`DecisionRequest` carries a
``try_apply`` callback that turns an action into the next configuration (or raises
:class:`~sedscale.agent.actions.ActionError`), so every policy proposes through the same
validation, and knows which configurations the source has already tried.

The :class:`Policy` protocol is everything the loop uses of a policy — nothing is looked up by
``getattr``: its name, the ``fallback`` that decides once a source's token budget is spent, the
``overhead`` tokens not attributable to any source, ``set_base_config`` (the triage
configuration, for an LLM's prompt prefix), ``decide`` and ``aclose``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol, Sequence, get_args, runtime_checkable

import numpy as np

from sedscale.agent.actions import Action
from sedscale.agent.state import SourceState
from sedscale.sed.config import FitConfig
from sedscale.tokens import TokenCounts

#: What a source can get: the triage fit alone, the rules policy, or an LLM (with rules fallback).
#: The one place these names are spelled; workflows, the CLI and the results use this type.
PolicyName = Literal["none", "rules", "llm"]
POLICY_NAMES: tuple[str, ...] = get_args(PolicyName)


@dataclass
class DecisionRequest:
    """One source's question to a policy at one step."""

    state: SourceState
    config: FitConfig  # the configuration the next action edits (the best so far)
    try_apply: Callable[[Action], FitConfig]  # action → new config, or ActionError
    tried: frozenset[str]  # config hashes already fitted for this source
    rng: np.random.Generator  # seeded by (campaign seed, source id, step) only
    seed: int  # integer form of the same seed (for the LLM's sampling)
    tokens_used: int = 0  # LLM tokens this source has consumed so far


@dataclass
class Decision:
    """A policy's answer: a validated action and, unless it is terminal, the config it leads to."""

    action: Action | None  # None = nothing left to try
    config: FitConfig | None
    policy: str  # "rules" or "llm": who chose the action in the end
    rule: str = ""  # the rule / pattern that produced it (rules policy)
    fallback: str | None = None  # why the LLM's answer was not used
    tokens: TokenCounts = field(default_factory=TokenCounts)  # what deciding cost (LLM calls and tokens)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class Policy(Protocol):
    """Anything that can decide the next action for a batch of sources: all the loop uses."""

    @property
    def name(self) -> str:
        """Who decides (``rules``, ``llm``, ...): recorded per decision."""
        ...

    @property
    def fallback(self) -> Policy | None:
        """The policy that decides once a source's token budget is spent (None: the source stops)."""
        ...

    @property
    def overhead(self) -> TokenCounts:
        """Tokens spent for no source in particular (warm-up, model listing), cumulative."""
        ...

    def set_base_config(self, config: FitConfig) -> None:
        """The triage configuration of the run (an LLM names it in its shared prompt prefix)."""
        ...

    async def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """One decision per request, in order. Must not raise for a single source's trouble."""
        ...

    async def aclose(self) -> None:
        """Release clients / connections (no-op for stateless policies)."""
        ...
