"""The agent layer: triage acceptance, state, actions, rules and LLM policies, knowledge base, loop.

Public entry points (see docs/AGENT.md)::

    from sedscale.agent import run_agent, AgentBudgets, RulesPolicy, LLMPolicy, KnowledgeBase

    outcome = run_agent(phot, triage, config, RulesPolicy(kb), budgets=AgentBudgets(),
                        knowledge=kb, seed=campaign_seed)

This package knows nothing of Parsl, Dask, Slurm, engines or campaigns.
"""

from sedscale.agent.acceptance import AcceptanceTest, SourceFit, source_fits
from sedscale.agent.accounting import SourceAccounting, summarize
from sedscale.agent.actions import Action, ActionError, action_json_schema, parse_action
from sedscale.agent.apply import ApplyLimits, apply_action
from sedscale.agent.budgets import DEFAULT_MAX_STEPS, DEFAULT_MAX_TOKENS_PER_SOURCE, AgentBudgets
from sedscale.agent.knowledge import KnowledgeBase, RuleStats
from sedscale.agent.llm import LLMOptions, LLMPolicy
from sedscale.agent.loop import run_agent, run_agent_async
from sedscale.agent.outcome import AgentOutcome
from sedscale.agent.policy import Decision, DecisionRequest, Policy
from sedscale.agent.rules import RulesPolicy

__all__ = [
    "DEFAULT_MAX_STEPS", "DEFAULT_MAX_TOKENS_PER_SOURCE",
    "AcceptanceTest", "Action", "ActionError", "AgentBudgets", "AgentOutcome", "ApplyLimits", "Decision",
    "DecisionRequest", "KnowledgeBase", "LLMOptions", "LLMPolicy", "Policy", "RuleStats", "RulesPolicy",
    "SourceAccounting", "SourceFit", "action_json_schema", "apply_action", "parse_action", "run_agent",
    "run_agent_async", "source_fits", "summarize",
]
