"""Node loss on the namespace Slurm cluster: node2 dies (every process in its namespace SIGKILLed)
~25 s after ``submit``; Slurm marks it down and ends its block (``--no-requeue``: never requeued
beside the replacement), the engine replaces the block or its workers on the nodes left, and the
campaign finishes within 15 minutes with an export equal to an uninterrupted run's and no
partition committed twice."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.campaign.paths import CampaignPaths
from tests.cluster.conftest import (CommitWatcher, QueueWatcher, assert_same_as_reference, bigger_catalog,
                                    cluster_run, cluster_script, cluster_site_file, submit_and_export)
from tests.hpc.conftest import sedscale

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CRASH_AFTER_S = 25
COPIES = 3  # 6,000 rows, 24 partitions
#: seconds each task pauses (sedscale._testhooks; sbatch exports the driver's environment to the
#: workers): a partition of this tiny grid takes 0.1 s, so without it the run would be over before
#: the crash; with it the 24 partitions take ~35 s on 4 workers and the crash lands in the middle
TASK_PAUSE_S = "5"


@pytest.fixture(scope="module")
def loss_catalog(cluster_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bigger_catalog(cluster_catalog, tmp_path_factory.mktemp("loss-mock"), COPIES)


@pytest.fixture(scope="module")
def loss_reference(loss_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    """The uninterrupted run (local site) the crashed runs must equal."""
    return submit_and_export(loss_catalog, "local", tmp_path_factory.mktemp("loss-ref"))


def _driver(catalog: Path, site: Path, cwd: Path, task_pause_s: str = TASK_PAUSE_S) -> subprocess.Popen[str]:
    env = os.environ | {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
                        "SEDSCALE_TEST_TASK_PAUSE": task_pause_s}
    return subprocess.Popen([sys.executable, "-m", "sedscale", "submit", str(catalog), "--site", str(site),
                             "--workflow", str(catalog.parent / "tiny.yaml"), "--campaign", "camp"],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _node_state(node: str) -> str:
    return cluster_run("sinfo", "-h", "-n", node, "-o", "%T").stdout.strip()


@pytest.mark.timeout(1000)
@pytest.mark.parametrize("engine", ["parsl", "dask"])
def test_node_crash_mid_campaign_loses_nothing(engine: str, loss_catalog: Path, loss_reference: pa.Table,
                                               tmp_path: Path, healthy_cluster: set[str]) -> None:
    site = cluster_site_file(tmp_path, engine)
    paths = CampaignPaths.at(tmp_path / "camp")
    states: list[str] = []
    t0 = time.time()
    driver = _driver(loss_catalog, site, tmp_path)

    def crash_later() -> None:
        time.sleep(CRASH_AFTER_S)
        if driver.poll() is None:
            cluster_script("crash", "node2")
            for _ in range(60):  # the scheduler notices (SlurmdTimeout=10 s)
                states.append(_node_state("node2"))
                if states[-1].startswith("down"):
                    return
                time.sleep(1)

    crasher = threading.Thread(target=crash_later, daemon=True)
    try:
        with QueueWatcher(healthy_cluster) as queue, CommitWatcher(paths.done_dir) as commits:
            crasher.start()
            out, _ = driver.communicate(timeout=900)
            crasher.join(timeout=90)
    finally:
        if driver.poll() is None:
            driver.kill()
    elapsed = time.time() - t0
    print(f"{engine}: node2 crashed at {CRASH_AFTER_S} s, campaign done in {elapsed:.0f} s; "
          f"node2 states {states[-1:]}; jobs {queue.history}")
    assert driver.returncode == 0, out[-4000:]
    assert states and states[-1].startswith("down"), f"node2 was not marked down: {states}"
    assert elapsed < 900
    assert not queue.requeued(), f"a block was requeued: {queue.history}"
    assert not commits.recommitted, f"partitions committed twice: {commits.recommitted}"
    jobs_per_block = 1 if engine == "parsl" else 2  # dask-jobqueue: one job per node
    assert len(queue.history) > jobs_per_block, f"the lost block was never replaced: {queue.history}"
    assert sedscale("export", "camp", "-o", "out.parquet", cwd=tmp_path).returncode == 0
    assert_same_as_reference(loss_reference, pq.read_table(tmp_path / "out.parquet"))
