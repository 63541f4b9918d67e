"""Preemption across nodes: ``scancel --full --signal=TERM`` (what Slurm sends at the walltime) and
the walltime warning (``USR1``, what the batch scripts request with ``--signal=B:USR1@…``) sent to
a running multi-node block stop its workers on every node; the run goes on on a replacement block,
and the campaign holds every row exactly once, no partition committed twice, its export equal to
the local run's."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.status import campaign_status
from tests.cluster.conftest import (CommitWatcher, QueueWatcher, assert_same_as_reference, cluster_run,
                                    cluster_site_file)
from tests.cluster.test_node_loss import _driver
from tests.hpc.conftest import sedscale

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _signal_running_block(paths: CampaignPaths, queue: QueueWatcher, signal: str) -> str:
    """Once a partition is done, signal the whole of a running block (every node's step too)."""
    deadline = time.time() + 300
    while time.time() < deadline:
        running = queue.running()
        if running and paths.campaign_json.exists() and \
                campaign_status(str(paths.root), verify="none").partitions_done >= 1:
            extra = ["--full"] if signal == "TERM" else ["--batch"]
            cluster_run("scancel", *extra, f"--signal={signal}", running[0])
            return running[0]
        time.sleep(0.3)
    return ""


@pytest.mark.timeout(900)
@pytest.mark.parametrize("signal", ["TERM", "USR1"])
def test_signalled_multi_node_block_loses_nothing(signal: str, cluster_catalog: Path,
                                                  local_cluster_reference: pa.Table, tmp_path: Path,
                                                  healthy_cluster: set[str]) -> None:
    site = cluster_site_file(tmp_path, "parsl")
    paths = CampaignPaths.at(tmp_path / "camp")
    driver = _driver(cluster_catalog, site, tmp_path)
    try:
        with QueueWatcher(healthy_cluster) as queue, CommitWatcher(paths.done_dir) as commits:
            job = _signal_running_block(paths, queue, signal)
            out, _ = driver.communicate(timeout=800)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert job, f"no running block was signalled (campaign too fast?): {out[-3000:]}"
    if driver.returncode != 0 or campaign_status(str(paths.root), verify="none").partitions_done < 8:
        res = sedscale("resume", "camp", cwd=tmp_path, timeout=600)  # a run may end with partitions left
        assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert not queue.requeued(), f"a block was requeued: {queue.history}"
    assert not commits.recommitted, f"partitions committed twice: {commits.recommitted}"
    assert sedscale("export", "camp", "-o", "out.parquet", cwd=tmp_path).returncode == 0
    assert_same_as_reference(local_cluster_reference, pq.read_table(tmp_path / "out.parquet"))
