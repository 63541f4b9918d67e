"""``sedscale report``: totals equal the sums over the exported sources; GPU accounting by hand."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.report.projection import MeasuredRates, SiteCapacity, project
from sedscale.report.summary import build_report
from tests.report.conftest import sedscale

CONTRACT_KEYS = ("sources_total", "sources_fitted", "sources_quarantined", "sources_failed", "agent_sources",
                 "tokens_per_source", "gpu_hours_allocated", "gpu_hours_per_source", "wall_seconds",
                 "sources_per_second")


def test_report_json_keys_and_totals_equal_sums_over_the_export(real_campaign) -> None:
    root, exported = real_campaign
    proc = sedscale("report", str(root), "--json")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    for key in CONTRACT_KEYS:
        assert key in rep, key
    t = pq.read_table(exported).to_pandas()
    assert rep["sources_total"] == len(t) == 600
    assert rep["sources_fitted"] == int((t.status == "fitted").sum())
    assert rep["sources_quarantined"] == int((t.status == "quarantined").sum())
    assert rep["sources_failed"] == int((t.status == "failed").sum())
    assert rep["sources_fitted"] + rep["sources_quarantined"] + rep["sources_failed"] == 600
    # planted bad rows of the mock that fall in the first 600 rows
    assert rep["quarantine_reasons"] == {"null_id": 2, "duplicate_id": 1, "non_finite": 1, "bad_error": 1,
                                         "no_bands": 1, "bad_redshift": 1, "missing_redshift": 1}
    agent = (t.agent_steps > 0) | (t.llm_calls > 0)
    assert rep["agent_sources"] == int(agent.sum()) > 0
    assert rep["agent_steps"] == int(t.agent_steps.sum())
    tokens = int(t.tokens_prompt.sum() + t.tokens_completion.sum())
    assert rep["tokens_total"] == tokens
    assert rep["tokens_per_source"] == pytest.approx(tokens / 600)
    assert rep["gpu_hours_busy"] == pytest.approx(t.gpu_seconds.fillna(0).sum() / 3600)
    acc = t.accepted.fillna(False).astype(bool)
    assert rep["acceptance"]["accepted_after_agent"] == int(acc.sum())
    assert rep["acceptance"]["accepted_before_agent"] == int((acc & ~agent).sum())
    # CPU-only site: no GPU-hours, and the report says so
    assert rep["gpu_hours_allocated"] == 0 and rep["gpu_hours_per_source"] == 0
    assert "CPU-only" in rep["gpu_note"]
    # wall time from the run record; throughput from it
    run = json.loads(next((root / "state" / "runs").glob("*.json")).read_text())
    assert rep["wall_seconds"] == pytest.approx(run["finished_at"] - run["started_at"])
    assert rep["sources_per_second"] == pytest.approx(600 / rep["wall_seconds"])
    assert rep["time"]["fit_seconds"] == pytest.approx(t.fit_seconds.fillna(0).sum())
    # projection: the campaign's site and frontier, with measured / assumed inputs labelled
    sites = {p["site"]: p for p in rep["projection"]["sites"]}
    assert set(sites) == {"local", "frontier"}
    fr = sites["frontier"]
    assert fr["gpus_per_node"] == 8 and fr["nodes"] == 1000 and fr["gpu_hours_allocated"] > 0
    assert fr["basis"]["fit_sources_per_core_second"].startswith("measured")
    assert fr["basis"]["decode_tokens_per_second_per_gpu"].startswith("assumption")
    assert fr["basis"]["tokens_per_agent_source"].startswith("assumption")  # rules policy: no LLM calls
    assert sites["local"]["gpu_hours_allocated"] == 0
    ref = rep["projection"]["reference_points"]
    assert ref["gpt4o"]["tokens_per_source"] == 1e5 and ref["gpt4o"]["usd_per_source"] == 1.0
    assert ref["llama70b_4xh100"]["gpu_minutes_per_source"] == 15.0


def test_report_projection_is_projection_arithmetic_on_the_measured_inputs(real_campaign) -> None:
    root, _ = real_campaign
    rep = build_report(root, sites=("frontier",), nodes=500)
    inp = rep["projection"]["inputs"]
    rates = MeasuredRates(inp["fit_sources_per_core_second"], inp["agent_fraction"],
                          inp["completion_tokens_per_agent_source"], inp["prompt_tokens_per_agent_source"],
                          fixed_seconds_per_node=inp["fixed_seconds_per_node"])
    expect = project(rates, SiteCapacity("frontier", 56, 8, 12_500.0 / 4), sources=1e9, nodes=500)
    fr = next(p for p in rep["projection"]["sites"] if p["site"] == "frontier")
    for key in ("fit_node_hours", "llm_gpu_hours", "node_hours", "wall_days", "tokens_total", "gpu_hours_per_source",
                "fixed_node_hours"):
        assert fr[key] == pytest.approx(getattr(expect, key)), key
    task_s = rep["time"]["task_seconds"]  # the steady-state rate: the tasks' one-off costs taken out
    assert inp["fit_sources_per_core_second"] == pytest.approx(600 / (task_s - rep["fixed_costs"]["in_task_s"]))


def _gpu_campaign(root: Path) -> tuple[Path, pa.Table]:
    """A synthetic campaign on a 4-GPU site with LLM tokens and GPU-seconds per source, one run
    of exactly 1,800 s: every figure of the report can be checked by hand."""
    from sedscale.campaign.commit import commit_partition
    from sedscale.campaign.create import create_from_manifest
    from sedscale.campaign.manifest import synthetic_manifest
    from sedscale.campaign.meta import CatalogRecord
    from sedscale.campaign.status import RunRecord
    from sedscale.campaign.testing import synthetic_results

    site = {"name": "gpu-box", "cores_per_node": 16, "gpus_per_node": 4, "gpu_kind": "nvidia"}
    paths = create_from_manifest(root, synthetic_manifest([100, 100]), name="gpu", catalog=CatalogRecord(spec=[]),
                                 workflow={"name": "synthetic", "policy": "llm"}, site=site,
                                 task="sedscale.campaign.testing:synthetic_partition",
                                 fail_task="sedscale.campaign.testing:synthetic_fail_partition")
    t0 = time.time() - 4000
    RunRecord("r1", t0, "parsl", "gpu-box", "submit", 1, "h", 2, t0 + 1800.0).write(paths)
    tables = []
    for pid in (0, 1):
        t = synthetic_results(pid * 100, 100)
        fitted = np.asarray(t.column("status").to_pylist()) == "fitted"
        every3 = (np.arange(100) % 3 == 0) & fitted
        t = t.set_column(t.schema.get_field_index("agent_steps"), "agent_steps", pa.array(np.where(every3, 2, 0).astype(np.int32)))
        t = t.set_column(t.schema.get_field_index("llm_calls"), "llm_calls", pa.array(np.where(every3, 2, 0).astype(np.int32)))
        t = t.set_column(t.schema.get_field_index("tokens_prompt"), "tokens_prompt", pa.array(np.where(every3, 3000, 0).astype(np.int64)))
        t = t.set_column(t.schema.get_field_index("tokens_cached"), "tokens_cached", pa.array(np.where(every3, 2400, 0).astype(np.int64)))
        t = t.set_column(t.schema.get_field_index("tokens_completion"), "tokens_completion", pa.array(np.where(every3, 80, 0).astype(np.int64)))
        t = t.set_column(t.schema.get_field_index("gpu_seconds"), "gpu_seconds", pa.array(np.where(every3, 1.5, 0.0)))
        commit_partition(paths, pid, t, chunk_rows=100, run_id=None, elapsed_s=60.0)
        tables.append(t)
    return paths.root, pa.concat_tables(tables)


def test_gpu_accounting_by_hand(tmp_path: Path) -> None:
    root, t = _gpu_campaign(tmp_path / "gpu")
    rep = build_report(root, sites=("frontier",))
    n_agent = int((pa.compute.sum(pa.compute.greater(t.column("llm_calls"), 0))).as_py())
    assert rep["agent_sources"] == n_agent > 0
    assert rep["tokens_total"] == n_agent * 3080
    assert rep["tokens_per_source"] == pytest.approx(n_agent * 3080 / 200)
    assert rep["tokens_per_agent_source"] == pytest.approx(3080)
    assert rep["wall_seconds"] == pytest.approx(1800.0)
    assert rep["gpu_hours_allocated"] == pytest.approx(4 * 0.5)  # 4 GPUs x 1 node x 0.5 h
    assert rep["gpu_hours_per_source"] == pytest.approx(2.0 / 200)
    assert rep["gpu_hours_busy"] == pytest.approx(n_agent * 1.5 / 3600)
    assert "CPU-only" not in rep["gpu_note"]
    inp = rep["projection"]["inputs"]
    assert inp["tokens_basis"] == "measured"
    assert inp["prompt_tokens_per_agent_source"] == pytest.approx(3000)
    assert inp["completion_tokens_per_agent_source"] == pytest.approx(80)
    assert inp["prefix_cache_hit_fraction"] == pytest.approx(0.8)
    assert inp["fit_sources_per_core_second"] == pytest.approx(200 / 120.0)
    own = next(p for p in rep["projection"]["sites"] if p["site"] == "gpu-box")
    assert own["gpus_per_node"] == 4 and own["llm_gpu_hours"] > 0


def test_report_of_a_missing_campaign_fails_cleanly(tmp_path: Path) -> None:
    proc = sedscale("report", str(tmp_path / "nope"), "--json")
    assert proc.returncode != 0
    assert "not a sedscale campaign" in proc.stderr and "Traceback" not in proc.stderr
