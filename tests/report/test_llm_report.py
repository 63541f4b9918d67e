"""The report of an LLM campaign on the CPU vLLM: token totals are the sums over sources and agree
with the server's own ``/metrics`` counters (up to the per-partition prefix warm-up requests, which
are overhead, not attributed to any source). The campaign is the one tests/campaign/test_llm_campaign.py
exports (tests.campaign.mock_catalog.llm_campaign)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.campaign.mock_catalog import llm_campaign

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_llm_report_tokens_equal_sums_and_agree_with_metrics(llm_service, tmp_path_factory, tmp_path: Path) -> None:
    camp = llm_campaign(llm_service, tmp_path_factory)
    delta = camp.metrics_delta
    camp.sedscale("export", str(camp.root), "-o", str(tmp_path / "out.parquet"))
    rep = json.loads(camp.sedscale("report", str(camp.root), "--json").stdout)
    res = pq.read_table(tmp_path / "out.parquet").to_pandas()

    assert rep["llm_calls"] == int(res.llm_calls.sum()) > 0
    assert rep["tokens_prompt"] == int(res.tokens_prompt.sum())
    assert rep["tokens_completion"] == int(res.tokens_completion.sum())
    assert rep["tokens_cached"] == int(res.tokens_cached.sum())
    assert rep["tokens_per_source"] == pytest.approx((res.tokens_prompt.sum() + res.tokens_completion.sum()) / len(res))
    assert rep["agent_sources"] == int(((res.agent_steps > 0) | (res.llm_calls > 0)).sum())
    assert rep["gpu_hours_busy"] == pytest.approx(res.gpu_seconds.fillna(0).sum() / 3600)
    assert rep["gpu_hours_allocated"] == 0 and "CPU-only" in rep["gpu_note"]  # the local site has no GPU
    assert rep["projection"]["inputs"]["tokens_basis"] == "measured"
    # the server's counters: every source's call plus at most one warm-up request per partition
    warmups = rep["partitions_total"]
    assert rep["llm_calls"] <= delta.requests_finished <= rep["llm_calls"] + warmups
    assert rep["tokens_completion"] <= delta.generation_tokens <= rep["tokens_completion"] + warmups
    assert rep["tokens_prompt"] <= delta.prompt_tokens <= rep["tokens_prompt"] + warmups * 4000


def test_llm_report_external_server_gpu_seconds_and_partition_summaries(llm_service, tmp_path_factory) -> None:
    """--llm-url: no node accounting, so GPU-seconds are 0 and the report says why; the task
    summaries of every partition are read (acceptance before/after the agent, where the time went)."""
    camp = llm_campaign(llm_service, tmp_path_factory)
    rep = json.loads(camp.sedscale("report", str(camp.root), "--json").stdout)
    assert rep["gpu_seconds_busy"] == 0 and not rep["gpu_attribution"]["has_node_accounting"]
    assert "external server" in rep["gpu_note"]
    tb = rep["time"]["breakdown"]
    assert tb["partitions_with_summary"] == rep["partitions_committed"] == rep["partitions_total"]
    s = tb["seconds"]
    assert s["triage_fit"] > 0 and s["read"] > 0 and s["tasks_without_summary"] == 0
    assert s["agent_llm_wait"] + s["agent_refit"] + s["agent_other"] > 0  # the agent ran and was timed
    assert sum(v for k, v in s.items() if k != "scheduling_idle") == pytest.approx(rep["time"]["task_seconds"])
    acc = rep["acceptance"]
    assert acc["triage_failed"] > 0  # recorded by the tasks: sources whose triage fit failed and entered the loop
    assert 0 <= acc["agent_accepted"] <= min(acc["triage_failed"], acc["accepted_after_agent"])
