"""Fixtures for the multi-node tests: the namespace Slurm cluster of scripts/slurm-cluster.sh
(nodes node1..node3 on a private bridge), its client environment, a guard that cancels by id any
job a test leaves, and a watcher that proves no partition is committed twice."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pytest
import yaml

from sedscale.resources import site_configs_dir

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "scripts" / "slurm-cluster.sh"
SITE = yaml.safe_load((Path(site_configs_dir()) / "slurm-cluster.yaml").read_text())
CLUSTER_ENV = {k: str(v) for k, v in SITE["scheduler_options"]["environment"].items()}


def cluster_run(*command: str, timeout: int = 30) -> subprocess.CompletedProcess[str]:
    """A Slurm client command against the namespace cluster (not the single-node one)."""
    return subprocess.run(list(command), capture_output=True, text=True, timeout=timeout,
                          env=os.environ | CLUSTER_ENV)


def cluster_script(*args: str) -> str:
    out = subprocess.run(["bash", str(CLUSTER_SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def squeue_states() -> dict[str, str]:
    """Job id -> compact state (PD, R, CG ...) of every job in the cluster's queue."""
    out = cluster_run("squeue", "-h", "-o", "%i %t")
    return dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) >= 2)


def idle_nodes() -> set[str]:
    out = cluster_run("sinfo", "-h", "-N", "-o", "%N %T")
    return {r.split()[0] for r in out.stdout.splitlines() if len(r.split()) > 1 and r.split()[1] == "idle"}


def cluster_up() -> bool:
    try:
        out = cluster_run("sinfo", "-h", "-N", "-o", "%N %T", timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and len(out.stdout.split()) >= 6


@pytest.fixture(scope="session")
def cluster() -> None:
    if not cluster_up():
        # scripts/test.sh (so CI) starts the clusters and sets this: there a missing cluster
        # is a failure, never a skip that would count as a pass
        if os.environ.get("SEDSCALE_REQUIRE_CLUSTERS") == "1":
            pytest.fail("the namespace Slurm cluster is not running (scripts/slurm-cluster.sh up 3)")
        pytest.skip("the namespace Slurm cluster is not running (scripts/slurm-cluster.sh up 3)")


@pytest.fixture
def healthy_cluster(cluster: None) -> Iterator[set[str]]:
    """Every node up and idle before the test (a crashed or drained node is healed); afterwards no
    job of the test is left (cancelled by id) and every node is healed again. Yields the job ids
    present before."""
    for node in ("node1", "node2", "node3"):
        if node not in idle_nodes():
            cluster_script("heal", node)
    before = set(squeue_states())
    yield before
    deadline = time.time() + 30
    left = set(squeue_states()) - before
    while left and time.time() < deadline:
        time.sleep(1)
        left = set(squeue_states()) - before
    if left:
        cluster_run("scancel", *sorted(left))
    for node in ("node1", "node2", "node3"):
        if node not in idle_nodes():
            cluster_script("heal", node)
    assert not left, f"jobs left in squeue after the test: {sorted(left)}"


class CommitWatcher:
    """Polls a campaign's done-markers while it runs: a partition whose marker is written a second
    time (another run id, host, pid or commit time) was committed twice."""

    def __init__(self, done_dir: Path, period: float = 0.2) -> None:
        self.done_dir = done_dir
        self.period = period
        self.seen: dict[str, tuple[object, ...]] = {}
        self.recommitted: dict[str, list[tuple[object, ...]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "CommitWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._scan()

    def _scan(self) -> None:
        for marker in self.done_dir.glob("*/p*.json"):
            try:
                doc = json.loads(marker.read_text())
            except (OSError, ValueError):
                continue
            key = (doc.get("run_id"), doc.get("host"), doc.get("pid"), doc.get("committed_at"))
            first = self.seen.setdefault(marker.name, key)
            if key != first:
                self.recommitted.setdefault(marker.name, [first]).append(key)
                self.seen[marker.name] = key

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._scan()


class QueueWatcher:
    """Records every (job id, state) of the cluster's queue while a test runs: a job seen running
    and later pending again was requeued."""

    def __init__(self, before: set[str]) -> None:
        self.before = before
        self.history: dict[str, list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "QueueWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                states = squeue_states()
            except (OSError, subprocess.TimeoutExpired):
                continue
            for job, state in states.items():
                if job in self.before:
                    continue
                history = self.history.setdefault(job, [])
                if not history or history[-1] != state:
                    history.append(state)

    def requeued(self) -> list[str]:
        return [j for j, h in self.history.items() if "R" in h and "PD" in h[h.index("R"):]]

    def running(self) -> list[str]:
        return sorted(j for j, h in self.history.items() if h and h[-1] == "R")


N = 2000  # rows of examples/euclid_mock_2k.parquet: 8 partitions of 250
TIMING = ("fit_seconds",)


@pytest.fixture(scope="session")
def cluster_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2,000-row mock catalog beside the tiny workflow (8 partitions of 250 rows)."""
    import shutil

    from tests.campaign.mock_catalog import TINY_WORKFLOW

    folder = tmp_path_factory.mktemp("cluster-mock")
    (folder / "tiny.yaml").write_text(TINY_WORKFLOW.replace("rows_per_partition: 2500", "rows_per_partition: 250"))
    return Path(shutil.copy(REPO / "examples" / "euclid_mock_2k.parquet", folder / "mock.parquet"))


def cluster_site_file(folder: Path, engine: str, **options: object) -> Path:
    """The shipped slurm-cluster site with ``engine`` and ``scheduler_options`` overrides."""
    data = yaml.safe_load((Path(site_configs_dir()) / "slurm-cluster.yaml").read_text())
    data["engine"] = engine
    data["scheduler_options"].update(options)
    path = folder / f"slurm-cluster-{engine}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def submit_and_export(catalog: Path, site: str, work: Path) -> "pa.Table":
    """``sedscale submit`` then ``export``; the exported table."""
    import pyarrow.parquet as pq

    from tests.hpc.conftest import sedscale

    work.mkdir(parents=True, exist_ok=True)
    proc = sedscale("submit", str(catalog), "--site", site, "--workflow", str(catalog.parent / "tiny.yaml"),
                    "--campaign", "camp", cwd=work, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    proc = sedscale("export", "camp", "-o", "out.parquet", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return pq.read_table(work / "out.parquet")


def bigger_catalog(source: Path, folder: Path, copies: int) -> Path:
    """``copies`` concatenated copies of the catalog at ``source`` with distinct source ids, beside
    its tiny workflow (a campaign long enough to lose a node in the middle of)."""
    import shutil

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    base = pq.read_table(source)
    ids = base.column("source_id")
    step = int(pc.max(ids).as_py()) + 1
    parts = [base.set_column(base.column_names.index("source_id"), "source_id", pc.add(ids, k * step))
             for k in range(copies)]
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source.parent / "tiny.yaml", folder / "tiny.yaml")
    pq.write_table(pa.concat_tables(parts), folder / "mock.parquet")
    return folder / "mock.parquet"


@pytest.fixture(scope="session")
def local_cluster_reference(cluster_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> "pa.Table":
    """The same campaign on the local site: the export every cluster run must equal."""
    return submit_and_export(cluster_catalog, "local", tmp_path_factory.mktemp("local-ref"))


def assert_same_as_reference(reference: "pa.Table", table: "pa.Table") -> None:
    from tests.campaign.test_pipeline_e2e import assert_tables_identical

    ids = table.column("source_id").to_pylist()
    assert table.num_rows == reference.num_rows and len(set(ids)) == len(ids)
    keep = [c for c in reference.column_names if c not in TIMING]
    assert_tables_identical(reference.select(keep), table.select(keep))


def summary_hosts(campaign: Path) -> dict[str, int]:
    """Partitions per host, from the partition summaries."""
    counts: dict[str, int] = {}
    for path in (campaign / "summaries").glob("partition-*.json"):
        host = str(json.loads(path.read_text())["host"])
        counts[host] = counts.get(host, 0) + 1
    return counts
