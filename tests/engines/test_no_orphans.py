"""No orphans (issue 13): SIGKILL a local-site driver's whole process group mid-run; within 60 s
no process it started is alive — neither one whose command line names the campaign directory
(Parsl's worker pool) nor any recorded in ``state/processes.json`` (by pid and start time) —
and ``resume`` then completes the campaign with every row exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from sedscale.campaign.export import export_campaign
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.status import campaign_status
from sedscale.campaign.testing import make_synthetic_campaign
from sedscale.engines.processes import ProcessRecord, process_alive

pytestmark = pytest.mark.slow  # starts Parsl / Dask

SIZES = [10] * 30
ORPHAN_DEADLINE_S = 60


def _driver(root: Path, site: str) -> subprocess.Popen[bytes]:
    env = os.environ | {"SEDSCALE_TEST_TASK_WORK": "0.5",
                        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.Popen([sys.executable, "-m", "sedscale", "resume", str(root), "--site", site, "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _naming(root: Path) -> list[psutil.Process]:
    """Processes (not this one) whose command line names the campaign directory."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid != os.getpid() and any(str(root) in part for part in (proc.info["cmdline"] or [])):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _recorded(paths: CampaignPaths) -> list[ProcessRecord]:
    data = json.loads(paths.processes.read_text())
    return [ProcessRecord(int(r["pid"]), float(r["start_time"])) for r in data["processes"]]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("site", ["local", "local-dask"])
def test_killed_driver_leaves_no_process_and_resume_completes(site: str, tmp_path: Path) -> None:
    paths = make_synthetic_campaign(tmp_path / "c", SIZES)
    driver = _driver(paths.root, site)
    deadline = time.time() + 120
    recorded: list[ProcessRecord] = []
    try:
        while time.time() < deadline and driver.poll() is None:
            if paths.processes.exists() and campaign_status(str(paths.root), verify="none").partitions_done >= 2:
                recorded = _recorded(paths)
                break
            time.sleep(0.2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    assert recorded, "the driver never recorded its processes (or finished before the kill)"
    assert campaign_status(str(paths.root), verify="none").partitions_done < len(SIZES), "killed too late"
    killed_at = time.time()
    while time.time() - killed_at < ORPHAN_DEADLINE_S:
        left = [r for r in _recorded(paths) if process_alive(r.pid, r.start_time)] + _naming(paths.root)
        if not left:
            break
        time.sleep(1)
    assert not left, f"still alive {time.time() - killed_at:.0f} s after the driver died: {left}"
    print(f"{site}: {len(recorded)} recorded processes all gone {time.time() - killed_at:.1f} s after the kill")

    driver = _driver(paths.root, site)
    assert driver.wait(timeout=180) == 0
    out = tmp_path / "out.parquet"
    export_campaign(paths.root, out)
    ids = pq.read_table(out).column("source_id").to_pylist()
    assert len(ids) == sum(SIZES) and len(set(ids)) == len(ids)
    # after a clean finish too: within 60 s no process naming the campaign is alive (the pools
    # of the engine the driver just shut down may take a few seconds to go)
    ended_at = time.time()
    while (left_after := _naming(paths.root)) and time.time() - ended_at < ORPHAN_DEADLINE_S:
        time.sleep(1)
    assert not left_after, f"still alive {time.time() - ended_at:.0f} s after the campaign ended: {left_after}"


def test_stop_recorded_stops_exactly_the_recorded_processes(tmp_path: Path) -> None:
    """``resume``'s clean-up signals a recorded process only while its pid *and* start time match."""
    from sedscale.engines.processes import ProcessRecord, stop_recorded, write_records

    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = psutil.Process(mine.pid).create_time()
        dead_driver = subprocess.Popen([sys.executable, "-c", "pass"])
        dead_driver.wait()
        path = tmp_path / "state" / "processes.json"
        write_records(path, ProcessRecord(dead_driver.pid, time.time() - 5),
                      [ProcessRecord(mine.pid, started), ProcessRecord(other.pid, started - 100.0)])
        stopped = stop_recorded(path, grace_s=5)
        assert [r.pid for r in stopped] == [mine.pid]
        assert mine.wait(timeout=10) is not None
        assert other.poll() is None, "a process whose start time differs from the record was signalled"
        assert not path.exists()
    finally:
        for proc in (mine, other):
            proc.kill()
            proc.wait()
