"""Campaigns in multi-node blocks on the namespace Slurm cluster (scripts/slurm-cluster.sh up 3):
Parsl (HTEX, SrunLauncher, 2 nodes per block) and dask-jobqueue give exports equal to the local
site's value for value (except ``fit_seconds``), with partitions done on at least two hosts; and a
block whose nodes are all drained fails the run with the scheduler's reason instead of hanging."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from tests.cluster.conftest import (QueueWatcher, assert_same_as_reference, cluster_script,
                                    cluster_site_file, submit_and_export, summary_hosts)
from tests.hpc.conftest import sedscale

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("engine", ["parsl", "dask"])
def test_multi_node_campaign_matches_local(engine: str, cluster_catalog: Path, local_cluster_reference: pa.Table,
                                           tmp_path: Path, healthy_cluster: set[str]) -> None:
    site = cluster_site_file(tmp_path, engine)
    with QueueWatcher(healthy_cluster) as queue:
        table = submit_and_export(cluster_catalog, str(site), tmp_path / "w")
    assert queue.history, "no job of the cluster was seen while the campaign ran"
    assert_same_as_reference(local_cluster_reference, table)
    hosts = summary_hosts(tmp_path / "w" / "camp")
    assert len(hosts) >= 2, f"work done on one host only: {hosts}"
    assert set(hosts) <= {"node1", "node2", "node3"}, hosts


@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ["parsl", "dask"])
def test_block_on_drained_nodes_fails_with_the_reason(engine: str, cluster_catalog: Path, tmp_path: Path,
                                                      healthy_cluster: set[str]) -> None:
    site = cluster_site_file(tmp_path, engine, block_start_timeout_s=15)
    cluster_script("drain", "node1", "node2", "node3")
    try:
        t0 = time.time()
        proc = sedscale("submit", str(cluster_catalog), "--site", str(site), "--workflow",
                        str(cluster_catalog.parent / "tiny.yaml"), "--campaign", "camp", cwd=tmp_path, timeout=240)
        elapsed = time.time() - t0
    finally:
        cluster_script("resume", "node1", "node2", "node3")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "no worker connected within 15 s" in out, out[-3000:]
    assert "ReqNodeNotAvail" in out or "drain" in out.lower(), out[-3000:]
    assert elapsed < 120, f"the failure took {elapsed:.0f} s"
