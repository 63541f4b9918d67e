"""GPU-seconds attribution, partition summaries and HPC allocation on a FABRICATED campaign.

Everything on disk here is written by hand, not by a run: results committed through the real
commit path, then done-markers re-labelled with made-up host names, node accounting files in the
format of ``sedscale.serve.node`` (``llm/<host>/accounting*.json``), task summaries in the format
of ``sedscale.pipeline.save_partition_summary`` and a Slurm site in campaign.json. Every expected
figure is worked out by hand in the test. The real LLM path is tests/report/test_llm_report.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.campaign.attribution import build_attribution, read_node_accounting
from sedscale.campaign.export import export_campaign
from sedscale.report.summary import build_report, load_campaign
from tests.report.conftest import sedscale

RUN = "r1"
WALL = 1800.0
#: partition -> (host, tokens_prompt per agent row, tokens_completion per agent row)
PARTS = {0: ("node-a", 1000, 200), 1: ("node-a", 3000, 60), 2: ("node-b", 500, 10)}
AGENT_ROWS = 10  # rows 0..9 of each partition made LLM calls
ROWS = 40
SLURM_SITE = {"name": "fab-slurm", "scheduler": "slurm", "cores_per_node": 32, "gpus_per_node": 4,
              "gpu_kind": "nvidia", "scheduler_options": {"nodes_per_block": 2, "max_blocks": 3}}


def _accounting(host: str, pid: int, started: float, busy_gpu_s: float, devices: int = 4,
                stopped: bool = True) -> dict:
    return {"host": host, "daemon_pid": pid, "instances": max(devices, 1), "devices_per_instance": 1 if devices else 0,
            "devices_per_node": devices, "started_at": started, "ready_at": started + 40, "updated_at": started + 900,
            "stopped_at": started + 900 if stopped else None, "allocated_gpu_s": devices * 900.0,
            "busy_instance_s": busy_gpu_s / max(devices, 1) if devices else 55.0, "busy_gpu_s": busy_gpu_s,
            "metrics": {"prompt_tokens": 1e4, "generation_tokens": 200.0, "prompt_tokens_cached": 5e3, "requests": 40.0}}


def _write(path: Path, doc: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def _fabricate(root: Path, *, site: dict, workflow: dict, accounting: bool = True) -> Path:
    from sedscale.campaign.commit import commit_partition
    from sedscale.campaign.create import create_from_manifest
    from sedscale.fsutil import atomic_write
    from sedscale.campaign.manifest import synthetic_manifest
    from sedscale.campaign.meta import CatalogRecord
    from sedscale.campaign.status import RunRecord
    from sedscale.campaign.testing import synthetic_results

    paths = create_from_manifest(root, synthetic_manifest([ROWS] * len(PARTS)), name="fab", catalog=CatalogRecord(spec=[]),
                                 workflow=workflow, site=site, task="sedscale.campaign.testing:synthetic_partition",
                                 fail_task="sedscale.campaign.testing:synthetic_fail_partition")
    atomic_write(paths.run_id_file, RUN.encode(), paths.state_dir)
    t0 = time.time() - 4000
    RunRecord(RUN, t0, "parsl", site["name"], "submit", 1, "login", len(PARTS), t0 + WALL).write(paths)
    for pid, (host, prompt, completion) in PARTS.items():
        t = synthetic_results(pid * ROWS, ROWS)
        agent = np.arange(ROWS) < AGENT_ROWS
        for name, value in (("llm_calls", 2), ("agent_steps", 2)):
            t = t.set_column(t.schema.get_field_index(name), name, pa.array(np.where(agent, value, 0).astype(np.int32)))
        for name, value in (("tokens_prompt", prompt), ("tokens_completion", completion)):
            t = t.set_column(t.schema.get_field_index(name), name, pa.array(np.where(agent, value, 0).astype(np.int64)))
        commit_partition(paths, pid, t, chunk_rows=ROWS, run_id=RUN, elapsed_s=100.0)
        marker = paths.done_marker(pid)  # fabricated: as if committed on another node
        doc = json.loads(marker.read_text())
        doc["host"] = host
        marker.write_text(json.dumps(doc))
    if accounting:
        llm = paths.llm_dir
        _write(llm / "node-a" / "accounting.json", _accounting("node-a", 11, t0, 120.0))
        # a second daemon start on node-a (resume), kept as a list in another file
        _write(llm / "node-a" / "accounting-2.json", [_accounting("node-a", 12, t0 + 1000, 30.0)])
        # the same snapshot of daemon 11 again, older: de-duplicated, the newest kept
        old = _accounting("node-a", 11, t0, 100.0)
        old["updated_at"] -= 100
        _write(llm / "node-a" / "accounting-old.json", old)
        _write(llm / "node-b" / "accounting.json", _accounting("node-b", 21, t0, 60.0, stopped=False))
        (llm / "node-b" / "accounting-torn.json").write_text('{"host": "node-b", "busy_gp')
        _write(llm / "node-c" / "accounting.json", _accounting("node-c", 31, t0, 10.0))  # ran no committed work
    # task summaries (sedscale.pipeline.save_partition_summary's format)
    for pid, fallbacks, run in ((0, {"invalid_json": 2, "budget": 1}, RUN), (1, {"invalid_json": 1}, RUN),
                                (2, {"server_error": 7}, "another-run")):
        _write(paths.partition_summary(pid), {
            "triage_failed": 12, "agent_accepted": 5, "fallbacks": fallbacks, "rows": ROWS, "quarantined": 6,
            "fitted": 30, "failed": 4, "triage_fit_s": 20.0, "agent_s": 50.0,
            # partition 1: LLM wait and re-fits overlap (40 + 20 s in a 50 s agent run)
            "llm_wait_s": 40.0 if pid == 1 else 30.0, "refit_s": 20.0 if pid == 1 else 15.0,
            "timings": {"read_s": 2.0, "llm_service_s": 3.0, "fit_table_s": 80.0}, "host": PARTS[pid][0], "pid": 7,
            "run_id": run})
    return paths.root


def _tokens(t: pa.Table) -> np.ndarray:
    return (t.column("tokens_prompt").to_numpy() + t.column("tokens_completion").to_numpy()).astype(float)


def test_node_busy_gpu_seconds_split_by_tokens_in_export_fabricated_campaign(tmp_path: Path) -> None:
    root = _fabricate(tmp_path / "c", site=SLURM_SITE, workflow={"name": "fab", "policy": "llm"})
    out = tmp_path / "out.parquet"
    assert export_campaign(root, out) == 3 * ROWS
    t = pq.read_table(out)
    gpu = t.column("gpu_seconds").to_numpy()
    tok = _tokens(t)
    host_a = np.arange(3 * ROWS) < 2 * ROWS
    # node-a: 120 + 30 busy GPU-s (two daemon starts; the older duplicate snapshot ignored) over its
    # 10 x 1200 + 10 x 3060 tokens (prompt + completion); node-b: 60 GPU-s over 10 x 510 tokens
    assert gpu[host_a].sum() == pytest.approx(150.0)
    assert gpu[~host_a].sum() == pytest.approx(60.0)
    assert gpu[0] == pytest.approx(150.0 * 1200 / (10 * 1200 + 10 * 3060))
    assert gpu[ROWS] == pytest.approx(150.0 * 3060 / (10 * 1200 + 10 * 3060))
    assert gpu[2 * ROWS] == pytest.approx(60.0 / 10)
    assert (gpu[tok == 0] == 0).all() and (gpu[tok > 0] > 0).all()

    # the CLI fills the same column and says where the figure came from
    proc = sedscale("export", str(root), "-o", str(tmp_path / "cli.parquet"))
    assert proc.returncode == 0, proc.stderr
    assert "gpu_seconds:" in proc.stdout and "attributed" in proc.stdout
    assert pq.read_table(tmp_path / "cli.parquet").column("gpu_seconds").to_numpy() == pytest.approx(gpu)


def test_report_sums_attributed_gpu_seconds_summaries_and_slurm_allocation_fabricated_campaign(tmp_path: Path) -> None:
    root = _fabricate(tmp_path / "c", site=SLURM_SITE, workflow={"name": "fab", "policy": "llm"})
    export_campaign(root, tmp_path / "out.parquet")
    exported = pq.read_table(tmp_path / "out.parquet")
    rep = build_report(root, sites=())
    # busy GPU-hours: the sum over sources, = the busy time of the hosts that committed work
    assert rep["gpu_seconds_busy"] == pytest.approx(exported.column("gpu_seconds").to_numpy().sum())
    assert rep["gpu_hours_busy"] == pytest.approx(210.0 / 3600)
    ga = rep["gpu_attribution"]
    assert ga["has_node_accounting"] and ga["busy_gpu_s"] == pytest.approx(220.0)
    assert ga["unattributed_gpu_s"] == pytest.approx(10.0)  # node-c committed nothing
    assert len(ga["unreadable_files"]) == 1 and "accounting-torn.json" in ga["unreadable_files"][0]
    hosts = {h["host"]: h for h in ga["hosts"]}
    assert hosts["node-a"]["services"] == 2 and hosts["node-b"]["running"] == 1
    assert hosts["node-a"]["tokens"] == 10 * 1200 + 10 * 3060
    assert rep["gpu_hours_llm_services_allocated"] == pytest.approx(4 * 4 * 900.0 / 3600)
    assert "node-c" in rep["gpu_note"] and "unattributed" in rep["gpu_note"]
    # Slurm: 3 blocks x 2 nodes for the 1,800 s run, flagged as an upper bound; 2 hosts seen
    alloc = rep["allocation"]
    assert rep["nodes"] == 6 and alloc["upper_bound"]
    assert alloc["runs"][0]["nodes_seen"] == 2 and "upper bound" in alloc["runs"][0]["basis"]
    assert rep["node_hours"] == pytest.approx(6 * 0.5)
    assert rep["gpu_hours_allocated"] == pytest.approx(4 * 6 * 0.5)
    assert rep["cpu_hours_allocated"] == pytest.approx(32 * 6 * 0.5)
    assert rep["gpu_hours_per_source"] == pytest.approx(12.0 / (3 * ROWS))
    # summaries: partition 2's was written by a run that did not commit it -> ignored
    assert rep["per_policy"]["fallbacks_by_reason"] == {"budget": 1, "invalid_json": 3}
    assert rep["acceptance"]["triage_failed"] == 24 and rep["acceptance"]["agent_accepted"] == 10
    tb = rep["time"]["breakdown"]
    assert tb["partitions_with_summary"] == 2 and tb["summaries_stale"] == 1 and tb["partitions_without_summary"] == 1
    s = tb["seconds"]
    assert s["read"] == pytest.approx(4.0) and s["llm_service_start"] == pytest.approx(6.0)
    assert s["triage_fit"] == pytest.approx(40.0)
    # partition 0: 30 + 15 + 5 other; partition 1: 40 and 20 scaled by 50/60 to fill its 50 s, 0 other
    assert s["agent_llm_wait"] == pytest.approx(30 + 40 * 50 / 60) and s["agent_refit"] == pytest.approx(15 + 20 * 50 / 60)
    assert s["agent_other"] == pytest.approx(50 - 30 - 15)
    assert tb["agent_raw"] == pytest.approx({"agent_s": 100.0, "llm_wait_s": 70.0, "refit_s": 35.0, "overlap_s": 10.0})
    assert s["validate_and_results"] == pytest.approx(2 * (80 - 20 - 50))
    assert s["commit"] == pytest.approx(2 * (100 - 2 - 3 - 80))
    assert s["tasks_without_summary"] == pytest.approx(100.0)
    # task seconds (300) = every part but scheduling_idle
    assert sum(v for k, v in s.items() if k != "scheduling_idle") == pytest.approx(rep["time"]["task_seconds"])


def test_no_node_accounting_means_zero_gpu_seconds_and_says_why_fabricated_campaign(tmp_path: Path) -> None:
    site = {"name": "laptop", "cores_per_node": 2, "gpus_per_node": 0}
    root = _fabricate(tmp_path / "c", site=site, workflow={"name": "fab", "policy": "llm", "llm_url": "http://x:1/v1"},
                      accounting=False)
    export_campaign(root, tmp_path / "out.parquet")
    assert (pq.read_table(tmp_path / "out.parquet").column("gpu_seconds").to_numpy() == 0).all()
    rep = build_report(root, sites=())
    assert rep["gpu_hours_busy"] == 0 and rep["gpu_hours_allocated"] == 0
    assert "CPU-only" in rep["gpu_note"] and "external server" in rep["gpu_note"]
    assert not rep["gpu_attribution"]["has_node_accounting"]
    assert rep["nodes"] == 1 and not rep["allocation"]["upper_bound"]  # a local run: 1 node, measured
    assert rep["node_hours"] == pytest.approx(0.5)


def test_cpu_node_services_give_zero_gpu_seconds_fabricated_campaign(tmp_path: Path) -> None:
    site = {"name": "laptop", "cores_per_node": 2, "gpus_per_node": 0}
    root = _fabricate(tmp_path / "c", site=site, workflow={"name": "fab", "policy": "llm"}, accounting=False)
    from sedscale.campaign.paths import CampaignPaths

    paths = CampaignPaths.at(root)
    _write(paths.llm_dir / "node-a" / "accounting.json", _accounting("node-a", 5, time.time() - 100, 0.0, devices=0))
    data = load_campaign(root)
    assert (data.results.column("gpu_seconds").to_numpy() == 0).all()
    rep = build_report(root, sites=(), data=data)
    assert "ran on CPU" in rep["gpu_note"] and rep["gpu_attribution"]["busy_instance_s"] == pytest.approx(55.0)


def test_accounting_reader_is_tolerant_fabricated_files(tmp_path: Path) -> None:
    llm = tmp_path / "llm"
    _write(llm / "h1" / "accounting.json", {"busy_gpu_s": "nan", "daemon_pid": 1})  # no host: folder name
    _write(llm / "h2" / "accounting.json", ["not a record", _accounting("h2", 2, 1.0, 5.0)])
    (llm / "h3").mkdir()
    records, bad = read_node_accounting(llm)
    assert sorted(r["host"] for r in records) == ["h1", "h2"] and len(bad) == 1
    from sedscale.campaign.paths import CampaignPaths

    att = build_attribution(CampaignPaths(tmp_path), [], None)
    assert att.totals()["busy_gpu_s"] == pytest.approx(5.0)  # "nan" counts as 0, never as NaN
