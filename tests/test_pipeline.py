"""``process_partition`` and ``fail_partition`` directly, on a tiny campaign made by the campaign
layer's own ``create_campaign`` (no engine, no driver)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from sedscale.campaign.create import create_campaign
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.state import read_marker
from sedscale.campaign.store import ResultsReader
from sedscale.engines.site import load_site
from sedscale.pipeline import campaign_context, fail_partition, node_llm_options, process_partition
from sedscale.results import RESULTS_SCHEMA
from tests.test_fitting import PLANTED, tiny_workflow, write_small_catalog

N_ROWS = 40
ROWS_PER_PARTITION = 20


def _campaign(tmp_path: Path, **workflow: object) -> CampaignPaths:
    catalog = write_small_catalog(tmp_path / "cat.parquet", N_ROWS)
    wf = tiny_workflow(rows_per_partition=ROWS_PER_PARTITION, **workflow)
    return create_campaign(tmp_path / "campaign", [str(catalog)], workflow=wf, site=load_site("local"),
                           profile_spec="generic", rows_per_partition=ROWS_PER_PARTITION)


@pytest.mark.slow  # the first fit in a process builds the tiny grid: ~20 s on a busy 2-core machine
def test_process_partition_commits_its_rows_marker_and_summary(tmp_path: Path) -> None:
    paths = _campaign(tmp_path)
    summary = process_partition(str(paths.root), 0)  # no run id: no driver fences this campaign
    assert (summary.partition_id, summary.n_rows) == (0, ROWS_PER_PARTITION)
    marker = read_marker(paths, 0)
    assert marker is not None and marker.n_rows == ROWS_PER_PARTITION
    assert read_marker(paths, 1) is None  # only the partition asked for
    rows = ResultsReader(paths.results_zarr).read_partition(0, ROWS_PER_PARTITION)
    assert rows.schema.equals(RESULTS_SCHEMA)
    status = rows.column("status").to_pylist()
    assert sum(s == "quarantined" for s in status) == len(PLANTED)  # all planted rows are in partition 0
    assert marker.counts.get("quarantined") == len(PLANTED)
    record = json.loads(paths.partition_summary(0).read_text())
    assert record["host"] == socket.gethostname() and record["run_id"] is None
    assert record["rows"] == ROWS_PER_PARTITION and record["quarantined"] == len(PLANTED)
    assert set(record["timings"]) == {"read_s", "llm_service_s", "fit_table_s",  # + the one-offs (issue 17)
                                      "kernel_warmup_s", "grid_build_s", "grid_load_s", "grid_build_uncached_s"}
    assert not paths.knowledge_delta(0).exists()  # policy none learns nothing


def test_fail_partition_commits_every_row_as_failed_with_the_reason(tmp_path: Path) -> None:
    paths = _campaign(tmp_path)
    summary = fail_partition(str(paths.root), 1, "worker lost 3 times")
    assert summary.n_rows == ROWS_PER_PARTITION
    marker = read_marker(paths, 1)
    assert marker is not None and marker.kind == "failed" and marker.reason == "worker lost 3 times"
    rows = ResultsReader(paths.results_zarr).read_partition(1, ROWS_PER_PARTITION)
    assert set(rows.column("status").to_pylist()) == {"failed"}
    assert set(rows.column("reason").to_pylist()) == {"worker lost 3 times"}
    assert rows.column("source_id").to_pylist() == list(range(ROWS_PER_PARTITION + 1, N_ROWS + 1))


def test_context_options_come_from_the_frozen_workflow(tmp_path: Path) -> None:
    paths = _campaign(tmp_path, policy="llm", llm_url="http://127.0.0.1:9/v1", llm_model="m")
    ctx = campaign_context(str(paths.root))
    assert ctx.options.policy == "llm" and ctx.options.cache_dir == ctx.meta.grid_cache_dir(paths)
    assert ctx.options.llm is not None and ctx.options.llm.url == "http://127.0.0.1:9/v1"
    assert ctx.options.fit_config == ctx.workflow.fit
    assert node_llm_options(ctx) is ctx.options  # a workflow URL is never routed to a node service
    assert campaign_context(str(paths.root)) is ctx  # cached per process
