"""A small campaign with the LLM policy against a real CPU vLLM server (the tiny random Llama).

The export must carry tokens per source for the sources that went to the agent, and every row
must still end fitted, quarantined or failed with a reason — whatever the random model replies.
The campaign (tests.campaign.mock_catalog.llm_campaign) is shared with tests/report/test_llm_report.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.campaign.mock_catalog import llm_campaign

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_llm_campaign_export_carries_tokens_per_source(llm_service, tmp_path_factory, tmp_path: Path) -> None:
    camp = llm_campaign(llm_service, tmp_path_factory)
    out = tmp_path / "out.parquet"
    camp.sedscale("export", str(camp.root), "-o", str(out))
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
