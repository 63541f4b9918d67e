"""The report of an LLM campaign on the CPU vLLM: token totals are the sums over sources and agree
with the server's own ``/metrics`` counters (up to the per-partition prefix warm-up requests, which
are overhead, not attributed to any source)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.campaign.test_llm_campaign import WORKFLOW

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_llm_report_tokens_equal_sums_and_agree_with_metrics(llm_service, tmp_path: Path) -> None:
    from sedscale.sed.mock import make_mock

    catalog = tmp_path / "cat.parquet"
    table = make_mock("euclid", 120, seed=5, hard_fraction=0.6)
    pq.write_table(table.select([c for c in table.column_names if not c.startswith("truth")]), catalog)
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    env = dict(os.environ, SEDSCALE_LLM_API_KEY=llm_service.api_key)
    camp = tmp_path / "camp"

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "sedscale", *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    before = llm_service.metrics()
    run("submit", str(catalog), "--site", "local", "--workflow", str(tmp_path / "wf.yaml"), "--campaign", str(camp),
        "--llm-url", llm_service.base_urls[0])
    delta = llm_service.metrics() - before
    run("export", str(camp), "-o", str(tmp_path / "out.parquet"))
    rep = json.loads(run("report", str(camp), "--json").stdout)
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
