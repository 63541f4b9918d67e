"""The lock-step loop's bookkeeping, with a fit function of known answer (tests/agent/fakes.py)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sedscale.agent import AgentBudgets, KnowledgeBase, RulesPolicy, run_agent, run_agent_async
from sedscale.agent.policy import Decision
from sedscale.sed.config import FitConfig
from sedscale.tokens import TokenCounts

from .fakes import FakeFitter, fake_photometry

NEEDS = [0, 1, 2, 4, 3, 5, 6, 7, 1, 2, 0, 3]


def _run(needs=NEEDS, policy=None, budgets=AgentBudgets(), partition_id=0, fitter=None, **kw):
    fitter = fitter or FakeFitter()
    phot = fake_photometry(needs)
    cfg = FitConfig()
    triage = fitter(phot, cfg)
    fitter.calls.clear()
    out = run_agent(phot, triage, cfg, policy or RulesPolicy(), partition_id=partition_id, budgets=budgets,
                    fit=fitter, **kw)
    return out, fitter, triage


def test_rules_fix_the_fake_sources_and_never_get_worse() -> None:
    out, fitter, triage = _run()
    assert out.entered.tolist() == [n != 0 for n in NEEDS]
    assert out.accepted.all(), out.stop_reason
    assert np.all(out.chi2_red <= out.triage_chi2_red)
    assert [r for r, n in zip(out.stop_reason, NEEDS) if n == 0] == ["triage_accepted"] * 2
    # one fit call per configuration per step: no config is fitted twice in a step
    assert len(fitter.calls) == len({(h, ids) for h, ids in fitter.calls})
    for s, acct in zip(out.source_id, out.accounting):
        assert acct.agent_steps == len(out.history.get(int(s), []))
    summary = out.summary()
    assert summary["acceptance_fraction"] == 1.0
    assert sum(s.n for s in out.knowledge_delta.rules.values()) >= sum(a.agent_steps for a in out.accounting)


def test_groups_share_one_call_per_config_and_step() -> None:
    out, fitter, _ = _run(needs=[1] * 8, policy=RulesPolicy(explore=0.0))  # identical sources, same choices
    assert fitter.calls and all(len(ids) == 8 for _, ids in fitter.calls)
    assert len(fitter.calls) == out.accounting[0].agent_steps


def _actions(out) -> dict[int, list[str]]:
    return {k: [x.action for x in v] for k, v in out.history.items()}


def test_reruns_are_identical_and_seeded_by_the_campaign_seed_not_the_partition() -> None:
    """Issue 13: the seed of a source's step is (campaign seed, source id, step) — the partition
    id changes nothing, the campaign seed does."""
    a, _, _ = _run(policy=RulesPolicy(explore=0.5), partition_id=3, seed=3)
    b, _, _ = _run(policy=RulesPolicy(explore=0.5), partition_id=3, seed=3)
    assert a.config_hash == b.config_hash and a.stop_reason == b.stop_reason
    assert _actions(a) == _actions(b)
    assert a.knowledge_delta == b.knowledge_delta
    other_partition, _, _ = _run(policy=RulesPolicy(explore=0.5), partition_id=4, seed=3)
    assert _actions(a) == _actions(other_partition)
    assert other_partition.config_hash == a.config_hash
    c, _, _ = _run(policy=RulesPolicy(explore=0.5), partition_id=3, seed=4)
    assert _actions(a) != _actions(c)


class _Useless:
    """A policy that only ever proposes something that makes things worse (then repeats)."""

    name = "useless"
    fallback = None

    def __init__(self) -> None:
        self.asked = 0
        self.overhead = TokenCounts()

    def set_base_config(self, config: FitConfig) -> None:
        pass

    async def decide(self, requests):
        out = []
        for r in requests:
            self.asked += 1
            from sedscale.agent.actions import validate_action

            for values in ([0.0], [0.0, 0.1], [0.0, 0.2], [0.0, 0.3], [0.0, 0.4], [0.0, 0.6], [0.0, 0.7]):
                a = validate_action({"op": "set", "param": "dust_attenuation.av", "values": values})
                try:
                    cfg = r.try_apply(a)
                except Exception:
                    continue
                if cfg.hash() not in r.tried:
                    break
            out.append(Decision(action=a, config=cfg, policy=self.name))
        return out

    async def aclose(self):
        return None


def test_budgets_and_no_improvement_stop_and_keep_triage() -> None:
    pol = _Useless()
    out, _, _ = _run(needs=[3, 3], policy=pol, budgets=AgentBudgets(max_steps=6, patience=2))
    assert out.stop_reason == ["no_improvement"] * 2
    assert [a.agent_steps for a in out.accounting] == [2, 2]
    assert np.array_equal(out.chi2_red, out.triage_chi2_red)  # never worse: the triage fit is kept
    assert out.config_hash == [FitConfig().hash()] * 2
    out, _, _ = _run(needs=[3], policy=_Useless(), budgets=AgentBudgets(max_steps=1, patience=5))
    assert out.stop_reason == ["max_steps"]


def test_fit_errors_are_recorded_and_do_not_sink_the_partition() -> None:
    real = FakeFitter()

    def flaky(phot, config, **kw):
        if config.agn.enabled:
            raise MemoryError("grid too big for this test")
        return real(phot, config, **kw)

    phot = fake_photometry([1, 2])
    triage = real(phot, FitConfig())
    out = run_agent(phot, triage, FitConfig(), RulesPolicy(), partition_id=0, fit=flaky)
    assert any(f.startswith("fit_error: MemoryError") for f in out.accounting[0].fallbacks)
    assert out.accepted[1] and not out.accepted[0]
    assert out.chi2_red[0] <= out.triage_chi2_red[0]


def test_async_core_and_facade_inside_a_running_loop() -> None:
    fitter = FakeFitter()
    phot = fake_photometry([1, 2])
    triage = fitter(phot, FitConfig())

    async def main():
        a = await run_agent_async(phot, triage, FitConfig(), RulesPolicy(), partition_id=1, fit=fitter)
        b = run_agent(phot, triage, FitConfig(), RulesPolicy(), partition_id=1, fit=fitter)  # from inside a loop
        return a, b

    a, b = asyncio.run(main())
    assert a.config_hash == b.config_hash


def test_knowledge_ranks_rules() -> None:
    """With a knowledge base that has measured 'enable:burst' as the fix for uv_over, it goes first."""
    kb = KnowledgeBase()
    for _ in range(30):
        kb.record(["uv_over"], "enable:burst", 0.9, True, True)
    out, _, _ = _run(needs=[2], policy=RulesPolicy(kb, explore=0.0))
    first = out.history[1000][0].action
    assert first == "enable:burst"
    out, _, _ = _run(needs=[2], policy=RulesPolicy(explore=0.0))
    assert out.history[1000][0].action.startswith("widen:dust_attenuation.av")


def test_mismatched_triage_is_an_error() -> None:
    fitter = FakeFitter()
    triage = fitter(fake_photometry([1, 2]), FitConfig())
    with pytest.raises(ValueError, match="triage"):
        run_agent(fake_photometry([1]), triage, FitConfig(), RulesPolicy(), partition_id=0, fit=fitter)


def test_agent_fraction_admits_each_source_by_its_own_hash() -> None:
    """Issue 13: ``max_agent_fraction`` admits a triage failure by a hash of (campaign seed,
    source id) below the fraction — never by its rank among its neighbours — so the same source
    gets the same verdict in any partition, and about that fraction of failures enter."""
    from sedscale.agent.seeds import unit_hash

    needs = [1, 7, 2, 3] * 50
    out, _, _ = _run(needs=needs, budgets=AgentBudgets(max_agent_fraction=0.5), seed=5)
    expected = unit_hash(5, out.source_id) < 0.5
    assert out.entered.tolist() == expected.tolist()
    assert 0.35 < out.entered.mean() < 0.65
    assert all(r == "agent_quota" for r, e in zip(out.stop_reason, out.entered) if not e)
    assert not out.accepted[~out.entered].any()
    # the first four sources alone, or in reverse order: each keeps its verdict
    alone, _, _ = _run(needs=needs[:4], budgets=AgentBudgets(max_agent_fraction=0.5), seed=5)
    assert alone.entered.tolist() == out.entered[:4].tolist()
    everyone, _, _ = _run(needs=needs[:8], budgets=AgentBudgets(max_agent_fraction=1.0), seed=5)
    assert everyone.entered.all()
    nobody, _, _ = _run(needs=needs[:8], budgets=AgentBudgets(max_agent_fraction=0.0), seed=5)
    assert not nobody.entered.any()


def test_budget_defaults_are_the_workflow_defaults() -> None:
    from sedscale.agent import DEFAULT_MAX_STEPS, DEFAULT_MAX_TOKENS_PER_SOURCE

    assert (DEFAULT_MAX_STEPS, DEFAULT_MAX_TOKENS_PER_SOURCE) == (5, 20_000)
    b = AgentBudgets()
    assert (b.max_steps, b.max_tokens_per_source, b.max_agent_fraction) == (5, 20_000, 1.0)
    with pytest.raises(ValueError):
        AgentBudgets(max_agent_fraction=1.5)
    with pytest.raises(ValueError):
        AgentBudgets(max_step=5)  # a misspelt key is an error, not silently ignored


def test_budgets_and_acceptance_nest_in_pydantic_models() -> None:
    from pydantic import BaseModel

    from sedscale.agent import AcceptanceTest

    class Recipe(BaseModel):
        budgets: AgentBudgets = AgentBudgets()
        acceptance: AcceptanceTest = AcceptanceTest()

    r = Recipe.model_validate({"budgets": {"max_steps": 2, "limits": {"max_models": 1000}},
                               "acceptance": {"chi2_red_max": 4}})
    assert r.budgets.max_steps == 2 and r.budgets.limits.max_models == 1000
    assert r.acceptance.chi2_red_max == 4
    assert Recipe.model_validate(r.model_dump()) == r


def test_acceptance_accepts_the_workflow_key_name() -> None:
    from sedscale.agent import AcceptanceTest

    assert AcceptanceTest.model_validate({"chi2_red_max": 5, "band_sigma_max": 4, "min_good_models": 1}).max_abs_residual == 4


class _WaitsForAFit:
    """Fake policy (unit test): source 1000 is answered at once; source 1001's answer waits until
    a fit has started in the worker thread — only a pipelined loop can get there (a lock-step
    loop would wait for every answer before fitting anything, and hang)."""

    name = "fake-wait"
    fallback = None

    def __init__(self) -> None:
        import threading

        self.overhead = TokenCounts()
        self.rules = RulesPolicy(explore=0.0)
        self.fit_started: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.asked = threading.Event()

    def set_base_config(self, config: FitConfig) -> None:
        pass

    async def decide(self, requests):
        if self.fit_started is None:
            self.fit_started, self.loop = asyncio.Event(), asyncio.get_running_loop()
        if any(r.state.source_id == 1001 and r.state.step == 1 for r in requests):
            self.asked.set()
            await asyncio.wait_for(self.fit_started.wait(), 60.0)
        return await self.rules.decide(requests)

    async def aclose(self) -> None:
        return None


def test_fits_overlap_policy_waits_and_summary_says_where_time_went_fake_policy() -> None:
    policy = _WaitsForAFit()
    real = FakeFitter()

    def fit(phot, config, **kw):
        if policy.loop is not None and policy.fit_started is not None:
            policy.loop.call_soon_threadsafe(policy.fit_started.set)
        policy.asked.wait(60.0)  # source 1001 is waiting on the policy while this fit runs
        return real(phot, config, **kw)

    phot = fake_photometry([1, 2])
    triage = real(phot, FitConfig())
    out = run_agent(phot, triage, FitConfig(), policy, partition_id=0, fit=fit, overlap=True)
    assert out.accepted.all()
    s = out.summary()
    for key in ("llm_wait_s", "refit_s", "overlap_s", "agent_wall_s"):
        assert isinstance(s[key], float) and s[key] >= 0.0, key
    assert s["refit_s"] > 0.0 and s["llm_wait_s"] > 0.0
    assert s["overlap_s"] > 0.0  # a fit ran while a source waited on the policy
    assert s["llm_wait_s"] + s["refit_s"] - s["overlap_s"] <= s["agent_wall_s"] + 1e-6
    # the accounting still adds up: per-source wall seconds cover the summed fit time
    assert sum(a.wall_seconds for a in out.accounting) >= out.seconds["fit"] - 1e-9


def test_pipelined_fit_group_cap_splits_calls_not_results_fake_fitter() -> None:
    """Pipelined, a re-fit call takes at most ``fit_group`` sources; how they are grouped does
    not change any result (the kernel works row by row)."""
    needs = [1] * 8 + [2, 3, 1, 2]
    one, f_one, _ = _run(needs=needs, policy=RulesPolicy(explore=0.0), overlap=True, fit_group=3)
    all_, f_all, _ = _run(needs=needs, policy=RulesPolicy(explore=0.0), overlap=True, fit_group=1000)
    assert max(len(ids) for _, ids in f_one.calls) <= 3
    assert max(len(ids) for _, ids in f_all.calls) > 3  # the cap is what split them
    assert one.config_hash == all_.config_hash and one.stop_reason == all_.stop_reason
    np.testing.assert_array_equal(one.chi2_red, all_.chi2_red)
    assert one.knowledge_delta == all_.knowledge_delta
