"""Fixtures of the report tests: one small real campaign run through the ``sedscale`` CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.campaign.mock_catalog import TINY_WORKFLOW, write_mock_catalog

#: The campaign tests' tiny grid with a rules policy, a strict acceptance test and a one-step budget:
#: a few seconds of fitting, yet sources do enter the agent loop, so the agent columns are exercised.
TINY_RULES_WORKFLOW = (
    TINY_WORKFLOW.replace("name: tiny", "name: tiny-rules")
    .replace("rows_per_partition: 2500", "rows_per_partition: 200")
    .replace("policy: none", "acceptance: {chi2_red_max: 1.5}\npolicy: rules\n"
             "budgets: {max_agent_steps: 1, max_tokens_per_source: 20000, max_agent_fraction: 0.3}")
)


def sedscale(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sedscale", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def real_campaign(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(campaign dir, exported Parquet) of a 600-row mock with planted bad rows, 3 partitions."""
    tmp = tmp_path_factory.mktemp("report-campaign")
    big = write_mock_catalog(tmp / "big.parquet", n=20_000)  # plants rows 10..80 (and 15,000)
    catalog = tmp / "cat.parquet"
    pq.write_table(pq.read_table(big).slice(0, 600), catalog, row_group_size=200)
    big.unlink()
    (tmp / "wf.yaml").write_text(TINY_RULES_WORKFLOW)
    root = tmp / "camp"
    proc = sedscale("submit", str(catalog), "--site", "local", "--workflow", str(tmp / "wf.yaml"),
                    "--campaign", str(root), "--workers", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp / "results.parquet"
    proc = sedscale("export", str(root), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return root, out
