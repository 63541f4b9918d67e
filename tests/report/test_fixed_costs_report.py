"""The report keeps one-off costs (engine start, kernel warm-up, grid builds and loads) apart from the
per-source cost, and projects 10^9 sources from the steady-state rate plus the one-offs once per
node; a second campaign of the same configuration builds no grid (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sedscale.report.campaign_data import load_campaign
from sedscale.report.summary import build_report
from tests.campaign.mock_catalog import TINY_WORKFLOW, write_mock_catalog
from tests.report.conftest import sedscale

FIXED_KEYS = ("kernel_warmup_s", "grid_build_s", "grid_load_s")


def test_the_report_separates_fixed_and_steady_state_costs(real_campaign) -> None:
    root, _ = real_campaign
    data = load_campaign(root)
    rep = build_report(root, sites=("frontier",), nodes=500, data=data)
    fc = rep["fixed_costs"]
    timings = [doc["timings"] for doc in data.summaries.values()]
    assert timings and fc["partitions_measured"] == len(timings) == len(data.markers)
    for key in FIXED_KEYS:  # worker-seconds, summed from the task summaries
        assert fc[key] == pytest.approx(sum(t[key] for t in timings)), key
    assert fc["in_task_s"] == pytest.approx(sum(fc[k] for k in FIXED_KEYS))
    assert fc["kernel_warmup_s"] > 0  # the worker made its kernel callable once (compiled or loaded)
    assert timings[0]["kernel_warmup_s"] > 0 and all(t["kernel_warmup_s"] == 0 for t in timings[1:])
    (run,) = data.runs  # engine start: the run's start to its first task's start
    first_task = min(m.committed_at - m.elapsed_s for m in data.markers)
    assert fc["engine_start_s"] == pytest.approx(first_task - run.started_at) and fc["engine_start_s"] > 0
    task_s = rep["time"]["task_seconds"]
    per_worker = 600 / (task_s - fc["in_task_s"])
    assert rep["steady_state_sources_per_worker_second"] == pytest.approx(per_worker)
    assert rep["steady_state_sources_per_second"] == pytest.approx(per_worker * rep["time"]["workers_seen"])
    assert rep["steady_state_sources_per_worker_second"] > 600 / task_s  # the one-offs are out
    assert fc["per_node_s"] == pytest.approx(fc["engine_start_s"] + fc["in_task_s"] / rep["time"]["workers_seen"])
    inputs = rep["projection"]["inputs"]
    assert inputs["fit_sources_per_core_second"] == pytest.approx(per_worker)
    assert inputs["fixed_seconds_per_node"] == pytest.approx(fc["per_node_s"])
    for p in rep["projection"]["sites"]:  # the one-offs once per node, on top of the steady-state work
        assert p["fixed_node_hours"] == pytest.approx(p["nodes"] * fc["per_node_s"] / 3600)
        assert p["node_hours"] == pytest.approx(max(p["fit_node_hours"], p["llm_node_hours"]) + p["fixed_node_hours"])


def test_the_html_report_shows_the_fixed_costs(real_campaign) -> None:
    from sedscale.report.html import render_html

    root, _ = real_campaign
    data = load_campaign(root)
    page = render_html(data, build_report(root, data=data))
    assert 'id="fixed-costs"' in page and "steady-state sources per second" in page
    assert "kernel warm-up" in page and "of which one-off" in page


def _site_with_grid_cache(folder: Path, cache: Path) -> Path:
    from sedscale.resources import site_configs_dir

    text = (site_configs_dir() / "local.yaml").read_text().replace("name: local", "name: local-shared-grids")
    path = folder / "site.yaml"
    path.write_text(text + f"grid_cache: {cache}\n")
    return path


def _grid_build_seconds(root: Path) -> float:
    return sum(json.loads(p.read_text())["timings"]["grid_build_s"] for p in (root / "summaries").glob("*.json"))


@pytest.mark.slow
def test_a_second_campaign_of_the_same_configuration_builds_no_grid(tmp_path: Path) -> None:
    big = write_mock_catalog(tmp_path / "big.parquet", n=2_000)
    catalog = tmp_path / "cat.parquet"
    pq.write_table(pq.read_table(big).slice(0, 400), catalog)
    (tmp_path / "wf.yaml").write_text(TINY_WORKFLOW.replace("rows_per_partition: 2500", "rows_per_partition: 200"))
    cache = tmp_path / "site-grids"
    site = _site_with_grid_cache(tmp_path, cache)
    exports = []
    for name in ("first", "second"):
        proc = sedscale("submit", str(catalog), "--site", str(site), "--workflow", str(tmp_path / "wf.yaml"),
                        "--campaign", str(tmp_path / name), "--workers", "1")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads((tmp_path / name / "campaign.json").read_text())["grid_cache"] == str(cache)
        out = tmp_path / f"{name}.parquet"
        assert sedscale("export", str(tmp_path / name), "-o", str(out)).returncode == 0
        exports.append(pq.read_table(out))
        if name == "first":
            files = {p.name: p.stat().st_mtime_ns for p in cache.glob("grid-*.npz")}
            assert files and _grid_build_seconds(tmp_path / name) > 0
            assert not list((tmp_path / name / "cache").glob("*.npz"))  # not in the campaign's own folder
    assert _grid_build_seconds(tmp_path / "second") == 0
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("grid-*.npz")} == files  # nothing rebuilt
    timing = [c for c in exports[0].column_names if c.endswith("seconds")]
    first, second = (t.drop_columns(timing) for t in exports)
    assert first.equals(second)  # the same bits from built and from cached grids


def test_the_report_shows_the_campaigns_provenance(real_campaign) -> None:
    """The record written once at submit reaches the JSON report unchanged and the HTML page."""
    from sedscale._version import __version__
    from sedscale.report.html import render_html

    root, _ = real_campaign
    recorded = json.loads((root / "provenance.json").read_text())
    data = load_campaign(root)
    rep = build_report(root, data=data)
    assert rep["provenance"] == recorded and recorded["sedscale_version"] == __version__
    page = render_html(data, rep)
    assert 'id="provenance"' in page and recorded["prompt_version"] in page
    assert recorded["physics_version"] in page
