"""A 20,000-source mock catalog with planted bad rows, for the end-to-end campaign tests.

Built from a small physical mock (:func:`sedscale.sed.mock.make_mock`) tiled with deterministic
flux jitter, so it costs seconds, not minutes. ``PLANTED`` maps each planted row to the reason
code the validation must give it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N_ROWS = 20_000
PLANTED: dict[int, str] = {
    10: "null_id",
    20: "null_id",
    30: "duplicate_id",  # repeats row 5's id (same partition)
    15_000: "duplicate_id",  # repeats row 7's id (another partition and row group)
    40: "non_finite",
    50: "bad_error",
    60: "no_bands",
    70: "bad_redshift",
    80: "missing_redshift",
}

TINY_WORKFLOW = """\
name: tiny
profile: generic
rows_per_partition: 2500
photoz: false
fit:
  sfh: {family: delayed, age: [0.5, 3.0], tau: [1.0]}
  stellar: {metallicity: [1.0]}
  dust_attenuation: {av: [0.0, 1.0]}
  nebular: {enabled: false}
  dust_emission: {enabled: false}
  redshift: {node_step: 0.02}
policy: none
retries: 1
"""


def write_mock_catalog(path: Path, n: int = N_ROWS, seed: int = 3) -> Path:
    from sedscale.sed.mock import make_mock

    base = make_mock("euclid", 400, seed=seed)
    base = base.select([c for c in base.column_names if not c.startswith("truth")])
    reps = -(-n // base.num_rows)
    table = pa.concat_tables([base] * reps).slice(0, n)
    rng = np.random.default_rng(seed)
    cols = {name: table.column(name).to_numpy().copy() for name in table.column_names}
    cols["source_id"] = np.arange(1, n + 1, dtype=np.int64)
    flux_names = [c for c in cols if c.startswith("flux_")]
    for name in flux_names:
        err = cols["fluxerr_" + name[5:]]
        cols[name] = cols[name] + rng.normal(0, 1, n) * err * 0.5
    cols["source_id"][30] = cols["source_id"][5]
    if n > 15_000:  # smaller catalogs (the disk-full test's) keep the in-partition duplicate only
        cols["source_id"][15_000] = cols["source_id"][7]
    cols[flux_names[0]][40] = np.inf
    cols["fluxerr_" + flux_names[1][5:]][50] = -1.0
    for name in flux_names:
        cols[name][60] = np.nan
    cols["redshift"][70] = -1.0
    cols["redshift"][80] = np.nan
    arrays = {k: pa.array(v) for k, v in cols.items()}
    mask = np.zeros(n, bool)
    mask[[10, 20]] = True
    arrays["source_id"] = pa.array(cols["source_id"], pa.int64(), mask=mask)
    pq.write_table(pa.table(arrays), path, row_group_size=5000)
    return path


def sedscale_in(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m sedscale ARGS`` run in ``cwd`` with this interpreter's scripts on PATH."""
    env = os.environ | {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run([sys.executable, "-m", "sedscale", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


# --- the LLM campaign shared by tests/campaign/test_llm_campaign.py and tests/report/test_llm_report.py

def strict_agent_workflow(name: str, rows_per_partition: int, policy: str, budgets: str) -> str:
    """The campaign tests' tiny grid with a strict acceptance test, so sources reach the agent."""
    return (
        TINY_WORKFLOW.replace("name: tiny", f"name: {name}")
        .replace("rows_per_partition: 2500", f"rows_per_partition: {rows_per_partition}")
        .replace("policy: none", "acceptance: {chi2_red_max: 1.5, band_sigma_max: 2.5, min_good_models: 1}\n"
                 f"policy: {policy}\nbudgets: {{{budgets}}}")
    )


#: the campaign tests' tiny grid, with a strict acceptance test so sources reach the LLM
LLM_WORKFLOW = strict_agent_workflow("llm-tiny", 60, "llm",
                                     "max_agent_steps: 2, max_tokens_per_source: 4000, max_agent_fraction: 1.0")
LLM_CAMPAIGN_ROWS = 120


@dataclass
class LLMCampaign:
    """A finished ``sedscale submit --policy llm --llm-url`` campaign on the CPU vLLM."""

    root: Path  # the campaign directory
    workdir: Path  # catalog, workflow file; the cwd of every command
    env: dict[str, str]  # with SEDSCALE_LLM_API_KEY
    metrics_delta: Any  # the server's /metrics counters over the submit (MetricsSnapshot difference)

    def sedscale(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """``python -m sedscale ARGS`` with the campaign's environment; asserts exit 0."""
        proc = subprocess.run([sys.executable, "-m", "sedscale", *args], capture_output=True, text=True,
                              env=self.env, cwd=self.workdir, timeout=timeout)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc


_LLM_CAMPAIGNS: dict[int, LLMCampaign] = {}


def llm_campaign(llm_service: Any, tmp_path_factory: Any) -> LLMCampaign:
    """120 mock sources (60 % hard) submitted with the LLM policy to ``llm_service``'s first
    instance. Run once per service (a session fixture) and shared by the tests that read it: each
    test writes its own outputs (export, report) and never changes the campaign."""
    key = id(llm_service)
    if key in _LLM_CAMPAIGNS:
        return _LLM_CAMPAIGNS[key]
    from sedscale.sed.mock import make_mock

    workdir = tmp_path_factory.mktemp("llm-campaign")
    catalog = workdir / "cat.parquet"
    table = make_mock("euclid", LLM_CAMPAIGN_ROWS, seed=5, hard_fraction=0.6)
    pq.write_table(table.select([c for c in table.column_names if not c.startswith("truth")]), catalog)
    (workdir / "wf.yaml").write_text(LLM_WORKFLOW)
    run = LLMCampaign(workdir / "camp", workdir, dict(os.environ, SEDSCALE_LLM_API_KEY=llm_service.api_key), None)
    before = llm_service.metrics()
    run.sedscale("submit", str(catalog), "--site", "local", "--workflow", str(workdir / "wf.yaml"), "--campaign",
                 str(run.root), "--llm-url", llm_service.base_urls[0])
    run.metrics_delta = llm_service.metrics() - before
    _LLM_CAMPAIGNS[key] = run
    return run
