"""One LLM service per node, shared by every worker of a block — with the real CPU vLLM on the
real single-node Slurm cluster.

A block of the test site runs two worker processes on its one node; each task needing the LLM
calls :func:`sedscale.serve.node.ensure_node_service`. The test checks that exactly one service
started on the node, that several workers used it, that the export carries the tokens, and that
the service is gone after the run (no orphan vLLM).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from sedscale.resources import site_configs_dir
from tests.campaign.mock_catalog import TINY_WORKFLOW
from tests.hpc.conftest import sedscale

pytestmark = [pytest.mark.slurm, pytest.mark.vllm, pytest.mark.slow]

N = 120
WORKFLOW = (  # the campaign tests' tiny grid; a strict acceptance test so sources reach the LLM
    TINY_WORKFLOW.replace("name: tiny", "name: node-llm")
    .replace("rows_per_partition: 2500", "rows_per_partition: 20")
    .replace("policy: none", "acceptance: {chi2_red_max: 1.5, band_sigma_max: 2.5, min_good_models: 1}\n"
             "policy: llm\nbudgets: {max_agent_steps: 1, max_tokens_per_source: 4000, max_agent_fraction: 1.0}")
)


def _site(folder: Path, engine: str, tiny_model: Path) -> Path:
    from sedscale.testing.llm import tiny_llm_settings

    data = yaml.safe_load((Path(site_configs_dir()) / "slurm-local.yaml").read_text())
    data["engine"] = engine
    data["workers_per_node"] = 2  # two workers in the block's one node share one service
    data["llm"] = tiny_llm_settings(tiny_model).model_dump(mode="json")
    path = folder / f"slurm-local-llm-{engine}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.timeout(900)
def test_one_llm_service_per_node_shared_by_the_block_workers(tiny_model: Path, tmp_path: Path,
                                                              no_leftover_jobs: set[str]) -> None:
    from sedscale.sed.mock import make_mock
    from sedscale.campaign.paths import CampaignPaths
    from sedscale.serve.node import process_alive

    table = make_mock("euclid", N, seed=5, hard_fraction=0.6)
    pq.write_table(table.select([c for c in table.column_names if not c.startswith("truth")]),
                   tmp_path / "cat.parquet")
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    site = _site(tmp_path, "parsl", tiny_model)  # Dask workers take the same path (pipeline.node_llm_options)
    proc = sedscale("submit", "cat.parquet", "--site", str(site), "--workflow", "wf.yaml", "--campaign", "camp",
                    cwd=tmp_path, timeout=840)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    service_dir = CampaignPaths.at(tmp_path / "camp").llm_host_dir(socket.gethostname())
    starts = (service_dir / "starts.log").read_text().splitlines()
    assert len(starts) == 1, f"{len(starts)} LLM services started on one node: {starts}"
    summaries = [json.loads(p.read_text()) for p in sorted((tmp_path / "camp" / "summaries").glob("*.json"))]
    assert len(summaries) == N // 20
    workers = {s["pid"] for s in summaries}
    assert len(workers) >= 2, f"only worker(s) {workers} ran partitions: the sharing was not exercised"

    proc = sedscale("export", "camp", "-o", "out.parquet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = pq.read_table(tmp_path / "out.parquet").to_pandas()
    assert len(res) == N
    called = res[res.llm_calls > 0]
    assert len(called) > 0, "no source reached the LLM"
    assert (called.tokens_completion > 0).all()

    daemon = json.loads((service_dir / "daemon.json").read_text())
    deadline = time.monotonic() + 90  # the driver asked it to stop; vLLM shuts down in seconds
    while process_alive(daemon["pid"], daemon["start_time"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not process_alive(daemon["pid"], daemon["start_time"]), "the node's LLM service outlived the run"
    daemon = json.loads((service_dir / "daemon.json").read_text())
    assert daemon["state"] == "stopped", daemon
    # stopped on the driver's request before the block was cancelled, so the final counters were read
    assert daemon["reason"].startswith("the driver asked"), daemon
    state = json.loads((service_dir / "service.json").read_text())
    for instance in state["instances"]:
        assert not process_alive(instance["pid"], None), f"vLLM instance {instance['pid']} left running"
    (acc_file,) = service_dir.glob("accounting-*.json")
    acc = json.loads(acc_file.read_text())
    assert acc["metrics"]["generation_tokens"] >= called.tokens_completion.sum() > 0
    assert acc["allocated_gpu_s"] == 0.0  # CPU: no devices, so no GPU-seconds by construction
