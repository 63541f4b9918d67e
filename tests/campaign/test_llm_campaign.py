"""A small campaign with the LLM policy against a real CPU vLLM server (the tiny random Llama).

The export must carry tokens per source for the sources that went to the agent, and every row
must still end fitted, quarantined or failed with a reason — whatever the random model replies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.campaign.mock_catalog import TINY_WORKFLOW

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

# the campaign tests' tiny grid, with a strict acceptance test so sources reach the LLM
WORKFLOW = (
    TINY_WORKFLOW.replace("name: tiny", "name: llm-tiny")
    .replace("rows_per_partition: 2500", "rows_per_partition: 60")
    .replace("policy: none", "acceptance: {chi2_red_max: 1.5, band_sigma_max: 2.5, min_good_models: 1}\n"
             "policy: llm\nbudgets: {max_agent_steps: 2, max_tokens_per_source: 4000, max_agent_fraction: 1.0}")
)


def test_llm_campaign_export_carries_tokens_per_source(llm_service, tmp_path: Path) -> None:
    from sedscale.sed.mock import make_mock

    catalog = tmp_path / "cat.parquet"
    table = make_mock("euclid", 120, seed=5, hard_fraction=0.6)
    pq.write_table(table.select([c for c in table.column_names if not c.startswith("truth")]), catalog)
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    env = dict(os.environ, SEDSCALE_LLM_API_KEY=llm_service.api_key)
    camp = tmp_path / "camp"
    proc = subprocess.run(
        [sys.executable, "-m", "sedscale", "submit", str(catalog), "--site", "local", "--workflow",
         str(tmp_path / "wf.yaml"), "--campaign", str(camp), "--llm-url", llm_service.base_urls[0]],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out.parquet"
    proc = subprocess.run([sys.executable, "-m", "sedscale", "export", str(camp), "-o", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = pq.read_table(out).to_pandas()
    assert len(res) == 120
    assert set(res.status) <= {"fitted", "quarantined", "failed"}
    assert res.loc[res.status != "fitted", "reason"].notna().all()
    agent = res[res.agent_steps > 0]
    assert len(agent) > 0, "no source failed the strict acceptance test: the LLM path did not run"
    called = agent[agent.llm_calls > 0]
    assert len(called) > 0
    assert (called.tokens_prompt > 0).all() and (called.tokens_completion > 0).all()
    assert (res.loc[res.agent_steps == 0, "tokens_prompt"] == 0).all()
    assert np.isfinite(res.loc[res.status == "fitted", "logmstar"]).all()
