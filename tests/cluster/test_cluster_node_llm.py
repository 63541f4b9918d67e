"""One LLM service per node, on every node of a multi-node block — the real CPU vLLM with the tiny
random-weight model on the namespace Slurm cluster. Each node has its own host name and its own
loopback, so a node's service (bound on 127.0.0.1) is private to it, as on a real machine.

A block of 2 nodes runs one worker pool per node; every task needing the LLM calls
:func:`sedscale.serve.node.ensure_node_service`. Checked: exactly one service started on each node
(keyed by its host name), each worker used its own node's service (its partitions' sources carry
tokens and the node's accounting covers them), and the report lists both hosts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from sedscale.resources import site_configs_dir
from tests.cluster.conftest import summary_hosts
from tests.hpc.test_node_llm import WORKFLOW
from tests.hpc.conftest import sedscale

pytestmark = [pytest.mark.cluster, pytest.mark.vllm, pytest.mark.slow]

N = 120


def _site(folder: Path, tiny_model: Path) -> Path:
    from sedscale.testing.llm import tiny_llm_settings

    data = yaml.safe_load((Path(site_configs_dir()) / "slurm-cluster.yaml").read_text())
    data["workers_per_node"] = 1  # one worker per node: two nodes, two services, on 2 shared cores
    data["llm"] = tiny_llm_settings(tiny_model).model_dump(mode="json")
    path = folder / "slurm-cluster-llm.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _host_rows(doc: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in the report's JSON that describes a host's LLM services."""
    if isinstance(doc, dict):
        if "host" in doc and "services" in doc:
            yield doc
        for value in doc.values():
            yield from _host_rows(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _host_rows(value)


@pytest.mark.timeout(900)
def test_one_llm_service_on_each_node_of_a_block(tiny_model: Path, tmp_path: Path,
                                                 healthy_cluster: set[str]) -> None:
    from sedscale.campaign.paths import CampaignPaths
    from sedscale.sed.mock import make_mock

    table = make_mock("euclid", N, seed=5, hard_fraction=0.6)
    pq.write_table(table.select([c for c in table.column_names if not c.startswith("truth")]),
                   tmp_path / "cat.parquet")
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    proc = sedscale("submit", "cat.parquet", "--site", str(_site(tmp_path, tiny_model)), "--workflow", "wf.yaml",
                    "--campaign", "camp", cwd=tmp_path, timeout=840)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    paths = CampaignPaths.at(tmp_path / "camp")
    hosts = summary_hosts(tmp_path / "camp")
    assert len(hosts) == 2, f"partitions should run on both nodes of the block: {hosts}"
    assert sedscale("export", "camp", "-o", "out.parquet", cwd=tmp_path).returncode == 0
    out = pq.read_table(tmp_path / "out.parquet").to_pandas()
    summaries = {int(p.stem.split("-")[1]): json.loads(p.read_text())
                 for p in (tmp_path / "camp" / "summaries").glob("partition-*.json")}
    for host in hosts:
        service_dir = paths.llm_host_dir(host)
        starts = (service_dir / "starts.log").read_text().splitlines()
        assert len(starts) == 1, f"{len(starts)} LLM services started on {host}: {starts}"
        assert f"host={host}" in starts[0], starts
        (acc_file,) = service_dir.glob("accounting-*.json")
        acc = json.loads(acc_file.read_text())
        assert acc["host"] == host
        own = {pid for pid, s in summaries.items() if s["host"] == host}
        part = pd.Series(range(len(out))) // 20  # the export keeps partition order: 20 rows each
        rows = out[part.isin(own).values & (out.llm_calls > 0).values]
        assert len(rows) > 0, f"no source of {host}'s partitions reached the LLM"
        # the node's own service generated at least the tokens of its own sources
        assert acc["metrics"]["generation_tokens"] >= rows.tokens_completion.sum() > 0
    report = sedscale("report", "camp", "--json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    listed = {row["host"] for row in _host_rows(json.loads(report.stdout))}
    assert set(hosts) <= listed, f"the report lists LLM hosts {listed}, not {set(hosts)}"
