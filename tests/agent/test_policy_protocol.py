"""The Policy protocol is complete: both shipped policies implement everything the loop uses."""

from __future__ import annotations

import ast
import inspect

from sedscale.agent import LLMPolicy, Policy, RulesPolicy
from sedscale.agent import loop
from sedscale.sed.config import FitConfig
from sedscale.tokens import TokenCounts


def test_rules_and_llm_policies_implement_the_whole_protocol() -> None:
    rules = RulesPolicy()
    llm = LLMPolicy(base_url="http://127.0.0.1:9/v1")
    for policy in (rules, llm):
        assert isinstance(policy, Policy)
        assert isinstance(policy.overhead, TokenCounts)
        policy.set_base_config(FitConfig())
    assert rules.fallback is None and rules.overhead == TokenCounts()
    assert isinstance(llm.fallback, RulesPolicy)


def test_the_loop_reads_no_policy_attribute_by_getattr() -> None:
    tree = ast.parse(inspect.getsource(loop))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "getattr"]
    assert not calls


def test_run_agent_mirrors_run_agent_async() -> None:
    sync = inspect.signature(loop.run_agent).parameters
    asynchronous = inspect.signature(loop.run_agent_async).parameters
    assert [(p.name, p.kind, p.default) for p in sync.values()] == \
        [(p.name, p.kind, p.default) for p in asynchronous.values()]
