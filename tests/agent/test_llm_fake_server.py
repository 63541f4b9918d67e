"""LLMPolicy fault paths against a FAKE server (unit tests; the real server is in test_llm_vllm.py).

Every misbehaviour must end with every source fitted by the rules fallback and the reason
recorded; nothing the reply says may get past validation.
"""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from sedscale.agent import AgentBudgets, LLMOptions, LLMPolicy, RulesPolicy, run_agent
from sedscale.sed.config import FitConfig

from .fake_server import FakeServer
from .fakes import FakeFitter, fake_photometry

NEEDS = [1, 2, 3, 0, 5, 7]


def _run(base_url: str, options: LLMOptions = LLMOptions(timeout_s=5.0), needs=NEEDS, **kw):
    fitter = FakeFitter()
    phot = fake_photometry(needs)
    triage = fitter(phot, FitConfig())
    policy = LLMPolicy(base_url=base_url, api_key="k", options=options, **kw)
    out = run_agent(phot, triage, FitConfig(), policy, partition_id=0, fit=fitter)
    return out, policy


def _assert_all_fitted(out) -> None:
    assert np.all(np.isfinite(out.chi2_red))
    assert np.all(out.chi2_red <= out.triage_chi2_red)
    assert all(r for r in out.stop_reason)


def _reasons(out) -> list[str]:
    return [f for a in out.accounting for f in a.fallbacks]


@pytest.mark.parametrize("mode,code", [
    ("nonjson", "invalid_json"),
    ("schema", "schema_violation"),
    ("injection", "schema_violation"),
    ("illegal", "rejected_no_change"),
    ("truncated", "truncated"),
    ("error500", "http_500"),
    ("garbage", "client_error"),
])
def test_fake_server_bad_replies_fall_back_with_reason(mode: str, code: str) -> None:
    with FakeServer(mode) as srv:
        out, policy = _run(srv.base_url, LLMOptions(timeout_s=5.0, backoff_s=0.01, breaker_threshold=1000))
    _assert_all_fitted(out)
    reasons = _reasons(out)
    entered = int(out.entered.sum())
    assert len(reasons) >= entered and all(r.startswith(code) for r in reasons), reasons[:3]
    assert out.accepted[out.entered].mean() >= 0.8  # the rules did the work
    if mode not in ("error500", "garbage"):
        assert sum(a.llm_calls for a in out.accounting) == len(reasons)
        assert sum(a.tokens_prompt for a in out.accounting) == 100 * len(reasons)
        assert sum(a.tokens_cached for a in out.accounting) == 80 * len(reasons)
    if mode == "error500":
        assert len(srv.requests) > len(reasons)  # retried
    # the structured-output request carried the bounded schema
    req = srv.requests[-1]
    assert req["response_format"]["type"] == "json_schema" and req["response_format"]["json_schema"]["strict"] is True


def test_fake_server_good_replies_are_used() -> None:
    with FakeServer("good") as srv:
        out, _ = _run(srv.base_url)
    _assert_all_fitted(out)
    # source 0 needs only the AGN: the LLM's "enable agn" fixes it in one step without fallback
    assert out.accepted[0] and out.accounting[0].agent_steps == 1 and not out.accounting[0].fallbacks
    assert out.history[1000][0].action == "enable:agn"
    # later steps repeat the same proposal: recorded as repeats, the rules act
    assert any(f.startswith("repeat") for f in _reasons(out))


def test_fake_server_accept_stops_but_does_not_mark_accepted() -> None:
    with FakeServer("accept") as srv:
        out, _ = _run(srv.base_url)
    assert set(r for r, e in zip(out.stop_reason, out.entered) if e) == {"policy_accept"}
    assert not out.accepted[out.entered].any()  # only the acceptance test accepts
    assert np.array_equal(out.chi2_red, out.triage_chi2_red)


def test_fake_server_slow_replies_time_out_and_trip_the_breaker() -> None:
    with FakeServer("good", delay_s=3.0) as srv:
        t0 = time.perf_counter()
        out, policy = _run(srv.base_url, LLMOptions(timeout_s=0.3, max_retries=1, backoff_s=0.01,
                                                     breaker_threshold=4, breaker_cooldown_s=60.0))
        wall = time.perf_counter() - t0
    _assert_all_fitted(out)
    reasons = _reasons(out)
    assert reasons and all(r.startswith(("timeout", "circuit_open")) for r in reasons)
    assert any(r.startswith("circuit_open") for r in reasons) and policy.breaker.trips >= 1
    assert wall < 20.0  # the breaker keeps a slow server from costing timeouts × sources × steps
    assert out.accepted[out.entered].mean() >= 0.8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_from_the_start() -> None:
    """No fake needed: nothing listens on the port."""
    t0 = time.perf_counter()
    out, policy = _run(f"http://127.0.0.1:{_free_port()}/v1",
                       LLMOptions(timeout_s=2.0, backoff_s=0.01, breaker_threshold=4, breaker_cooldown_s=60.0))
    _assert_all_fitted(out)
    reasons = _reasons(out)
    assert len(reasons) == sum(a.agent_steps for a in out.accounting) + sum(
        1 for r in out.stop_reason if r == "no_candidate")
    assert all(r.startswith(("connection_error", "circuit_open")) for r in reasons)
    assert time.perf_counter() - t0 < 30
    assert out.accepted[out.entered].mean() >= 0.8


def test_same_model_given_explicitly_skips_listing() -> None:
    with FakeServer("good") as srv:
        out, policy = _run(srv.base_url, model="fake-model")
        assert all(r["model"] == "fake-model" for r in srv.requests)
    assert policy.model == "fake-model"


def test_fake_server_policy_reused_across_runs_and_after_the_breaker_opened() -> None:
    fitter = FakeFitter()
    phot = fake_photometry(NEEDS)
    triage = fitter(phot, FitConfig())
    with FakeServer("good") as srv:
        policy = LLMPolicy(base_url=srv.base_url, api_key="k", options=LLMOptions(timeout_s=5.0))
        a = run_agent(phot, triage, FitConfig(), policy, partition_id=0, fit=fitter)
        b = run_agent(phot, triage, FitConfig(), policy, partition_id=0, fit=fitter)  # new loop, same policy
        assert a.decisions == b.decisions
    # the server is gone: the breaker opens; a later run falls back at once, without hanging
    policy.options = LLMOptions(timeout_s=1.0, backoff_s=0.01, breaker_threshold=2, breaker_cooldown_s=600.0)
    policy.breaker.threshold = 2
    c = run_agent(phot, triage, FitConfig(), policy, partition_id=0, fit=fitter)
    t0 = time.perf_counter()
    d = run_agent(phot, triage, FitConfig(), policy, partition_id=0, fit=fitter)
    assert time.perf_counter() - t0 < 10
    for out in (c, d):
        _assert_all_fitted(out)
        assert all(r.startswith(("connection_error", "circuit_open")) for r in _reasons(out))
