"""Campaigns on the real single-node Slurm cluster (scripts/slurm-local.sh): Parsl +
SlurmProvider and dask-jobqueue SLURMCluster give exports identical to the local Parsl run; a
block cancelled with ``scancel`` mid-campaign is replaced and the campaign completes with nothing
lost or duplicated. No job of these tests is left in ``squeue`` afterwards."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from sedscale.campaign.paths import CampaignPaths
from sedscale.driver import read_driver_pid
from sedscale.resources import site_configs_dir
from tests.campaign.mock_catalog import TINY_WORKFLOW
from tests.campaign.test_pipeline_e2e import assert_tables_identical
from tests.hpc.conftest import sedscale, squeue_ids

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

N = 2000
TIMING = ("fit_seconds",)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hpc-mock")
    (folder / "tiny.yaml").write_text(TINY_WORKFLOW.replace("rows_per_partition: 2500", "rows_per_partition: 250"))
    import shutil

    return Path(shutil.copy(Path(__file__).resolve().parents[2] / "examples" / "euclid_mock_2k.parquet",
                            folder / "mock.parquet"))


def _site_file(folder: Path, engine: str) -> Path:
    data = yaml.safe_load((Path(site_configs_dir()) / "slurm-local.yaml").read_text())
    data["engine"] = engine
    path = folder / f"slurm-local-{engine}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(catalog: Path, site: str, work: Path) -> pq.ParquetFile:
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    proc = sedscale("submit", str(catalog), "--site", site, "--workflow", str(catalog.parent / "tiny.yaml"),
                    "--campaign", "camp", cwd=work)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    proc = sedscale("export", "camp", "-o", "out.parquet", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"{site}: {time.time() - t0:.1f} s")
    return pq.read_table(work / "out.parquet")


@pytest.fixture(scope="module")
def local_export(catalog: Path, tmp_path_factory: pytest.TempPathFactory):
    return _run(catalog, "local", tmp_path_factory.mktemp("local"))


@pytest.mark.parametrize("engine", ["parsl", "dask"])
def test_campaign_on_slurm_matches_local(engine: str, catalog: Path, local_export, tmp_path: Path,
                                         no_leftover_jobs: set[str]) -> None:
    before = set(no_leftover_jobs)
    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:  # proves the work really ran in batch jobs
        while not stop.is_set():
            seen.update(squeue_ids() - before)
            time.sleep(0.5)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        table = _run(catalog, str(_site_file(tmp_path, engine)), tmp_path / "w")
    finally:
        stop.set()
        t.join()
    assert seen, "no Slurm job was seen while the campaign ran"
    assert table.num_rows == N
    keep = [c for c in local_export.column_names if c not in TIMING]
    assert_tables_identical(local_export.select(keep), table.select(keep))


@pytest.mark.timeout(240)  # a block that is never replaced would otherwise hang the run
@pytest.mark.parametrize("engine", ["parsl", "dask"])
def test_scancel_block_mid_campaign_is_replaced(engine: str, tmp_path: Path, no_leftover_jobs: set[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from sedscale.campaign.export import export_campaign
    from sedscale.campaign.paths import CampaignPaths
    from sedscale.campaign.status import campaign_status
    from sedscale.campaign.testing import make_synthetic_campaign
    from sedscale.engines import make_engine
    from sedscale.driver import run_campaign
    from sedscale.engines.site import load_site

    sizes = [20] * 14
    monkeypatch.setenv("SEDSCALE_TEST_TASK_WORK", "1.0")  # sbatch exports the driver's environment
    site = load_site(str(_site_file(tmp_path, engine)))
    paths = make_synthetic_campaign(tmp_path / "c", sizes, faults={})
    engine_obj = make_engine(site, CampaignPaths.at(paths.root))
    engine_obj.start()
    cancelled: list[str] = []

    def killer() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            if campaign_status(str(paths.root), verify="none").partitions_done >= 3:
                jobs = sorted(set(engine_obj.job_ids()) & squeue_ids())
                if jobs:
                    subprocess.run(["scancel", jobs[0]], check=True, timeout=30)
                    cancelled.append(jobs[0])
                    return
            time.sleep(0.3)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        report = run_campaign(paths.root, site, engine=engine_obj)
        t.join(timeout=5)
        all_jobs = set(engine_obj.job_ids())
    finally:
        engine_obj.shutdown()
    assert cancelled, "the block was never cancelled (campaign too fast?)"
    assert len(all_jobs - set(cancelled)) >= 1, f"no replacement block was submitted: {all_jobs}"
    assert report.partitions_failed == [] and report.partitions_left == 0
    out = tmp_path / "out.parquet"
    export_campaign(paths.root, out)
    table = pq.read_table(out)
    assert table.num_rows == sum(sizes)
    ids = table.column("source_id").to_pylist()
    assert len(set(ids)) == len(ids)
    st = campaign_status(str(paths.root))
    assert st.partitions_done == len(sizes) and st.partitions_failed == 0


@pytest.mark.timeout(300)
def test_dead_driver_jobs_are_cancelled_on_resume(catalog: Path, tmp_path: Path, no_leftover_jobs: set[str]) -> None:
    """SIGKILL the driver (its whole process group, as a login-node death would) while its block
    runs; the block survives in squeue; ``resume`` cancels it by the recorded job id, runs the rest
    on a new block, and the export is complete."""
    import json
    import signal
    import sys

    site = _site_file(tmp_path, "parsl")
    env = os.environ | {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "sedscale", "submit", str(catalog), "--site", str(site),
                             "--workflow", str(catalog.parent / "tiny.yaml"), "--campaign", "camp"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    jobs_file = CampaignPaths.at(tmp_path / "camp").hpc_jobs
    owned: list[str] = []
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if jobs_file.exists():
                owned = json.loads(jobs_file.read_text())["job_ids"]
                if owned and set(owned) & squeue_ids():
                    break
            time.sleep(0.3)
        assert owned, "the driver never recorded a job"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert set(owned) & squeue_ids(), "the block should outlive its driver"
    res = sedscale("resume", "camp", cwd=tmp_path)  # the site it was submitted with
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert not set(owned) & squeue_ids(), "the dead driver's job is still queued"
    assert sedscale("export", "camp", "-o", "out.parquet", cwd=tmp_path).returncode == 0
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == N
    ids = table.column("source_id").to_pylist()
    assert len(set(ids)) == len(ids)


@pytest.mark.timeout(200)
def test_submit_detach_returns_and_the_driver_finishes(catalog: Path, tmp_path: Path,
                                                       no_leftover_jobs: set[str]) -> None:
    import json

    t0 = time.time()
    proc = sedscale("submit", str(catalog), "--site", str(_site_file(tmp_path, "parsl")), "--workflow",
                    str(catalog.parent / "tiny.yaml"), "--campaign", "camp", "--detach", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.time() - t0 < 30, "--detach should return before the campaign runs"
    camp = tmp_path / "camp"
    pid = read_driver_pid(CampaignPaths.at(camp))
    assert pid is not None
    deadline = time.time() + 150
    while time.time() < deadline and Path(f"/proc/{pid}").exists():
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                break
        except OSError:
            break
        time.sleep(1)
    st = json.loads(sedscale("status", "camp", "--json", cwd=tmp_path).stdout)
    assert st["partitions_done"] == st["partitions_total"], (camp / "driver.log").read_text()[-3000:]
    assert (camp / "driver.log").exists()
