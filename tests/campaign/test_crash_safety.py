"""Crash safety of a real driver process: SIGKILL it at random moments (some inside a commit),
kill a worker once, resume after each; the final export equals an uninterrupted run's.

The driver is ``python -m sedscale resume DIR`` in its own session; the campaign is synthetic
(deterministic results, no SED layer) so the test isolates commit / resume / engine behaviour.
Test hooks (``sedscale._testhooks``) pause inside commits and tasks so those moments
are reachable.
"""

from __future__ import annotations

import os
import random
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
from sedscale.campaign.resume import plan_resume
from sedscale.campaign.testing import make_synthetic_campaign, synthetic_results

SIZES = [10] * 79 + [7]


def _procs_of(driver: subprocess.Popen, root: Path) -> list[psutil.Process]:
    """The driver, its descendants, and any process naming the campaign dir (Parsl's worker pool)."""
    found: dict[int, psutil.Process] = {}
    try:
        me = psutil.Process(driver.pid)
        found[me.pid] = me
        for child in me.children(recursive=True):
            found[child.pid] = child
    except psutil.NoSuchProcess:
        pass
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(root) in part for part in (proc.info["cmdline"] or [])):
                found[proc.pid] = proc
                for child in proc.children(recursive=True):  # the pool's worker processes
                    found[child.pid] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


def _kill(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


def _start(root: Path, site: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sedscale", "resume", str(root), "--site", site, "--workers", "2"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _wait_for(hook_dir: Path, prefix: str, driver: subprocess.Popen, timeout: float = 90) -> Path | None:
    deadline = time.time() + timeout
    while time.time() < deadline and driver.poll() is None:
        hits = sorted(hook_dir.glob(f"{prefix}-*"))
        if hits:
            return hits[0]
        time.sleep(0.02)
    return None


def _assert_no_lying_marker(paths: CampaignPaths) -> None:
    """After any crash: every done-marker's files check out (old state or new, never torn)."""
    plan = plan_resume(paths, len(SIZES))
    assert not plan.corrupt, plan.corrupt


def _campaign_crash_cycle(tmp_path: Path, site: str, rounds: list[str], seed: int) -> None:
    rng = random.Random(seed)
    paths = make_synthetic_campaign(tmp_path / "camp", SIZES)
    hook_dir = tmp_path / "hooks"
    hook_dir.mkdir()
    base_env = os.environ | {
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "SEDSCALE_TEST_HOOK_DIR": str(hook_dir),
        "SEDSCALE_TEST_TASK_WORK": "0.25",  # ~10 s of work per full pass on 2 workers
        "SEDSCALE_TEST_TASK_PAUSE": "0",  # no pause; drops a hook file per task
    }
    leftovers: list[psutil.Process] = []
    try:
        for kind in rounds:
            for f in hook_dir.iterdir():
                f.unlink()
            env = dict(base_env)
            if kind in ("commit", "driver-only"):
                env["SEDSCALE_TEST_COMMIT_PAUSE"] = "0.3"
            if kind == "worker":
                env["SEDSCALE_TEST_TASK_PAUSE"] = "0.5"
            driver = _start(paths.root, site, env)
            if kind == "early":  # during start-up: lock, plan, claim, engine launch
                time.sleep(rng.uniform(0.2, 3.0))
            elif kind == "random":  # while partitions run
                assert _wait_for(hook_dir, "task", driver), "no task started"
                time.sleep(rng.uniform(0.0, 3.0))
            elif kind in ("commit", "driver-only"):
                assert _wait_for(hook_dir, "in-commit", driver), (
                    f"no commit was reached (rc {driver.poll()}): {driver.stderr.read().decode()[-3000:]}")
                time.sleep(rng.uniform(0.0, 0.2))
            elif kind == "worker":
                hit = _wait_for(hook_dir, "task", driver)
                assert hit, "no task started"
                worker_pid = int(hit.name.split("-")[1])
                os.kill(worker_pid, signal.SIGKILL)
                rc = driver.wait(timeout=240)
                assert rc == 0, driver.stderr.read().decode()[-2000:]
                _assert_no_lying_marker(paths)
                continue
            procs = _procs_of(driver, paths.root)
            if kind == "driver-only":
                _kill([p for p in procs if p.pid == driver.pid])
                time.sleep(1.0)  # orphaned workers run on for a while, as after a lost login
                leftovers = procs + _procs_of(driver, paths.root)
                _kill(leftovers)
            else:
                _kill(procs)
            driver.wait(timeout=30)
            _assert_no_lying_marker(paths)
            print(kind, "left", len(plan_resume(paths, len(SIZES)).todo))
        driver = _start(paths.root, site, base_env)
        rc = driver.wait(timeout=300)
        assert rc == 0, driver.stderr.read().decode()[-3000:]
    finally:
        _kill(_procs_of(driver, paths.root) + leftovers)
    out = tmp_path / "out.parquet"
    export_campaign(paths.root, out)
    table = pq.read_table(out)
    uninterrupted = synthetic_results(0, sum(SIZES))  # what a run without crashes exports (test_store)
    assert table.num_rows == sum(SIZES)
    assert len(set(table.column("source_id").to_pylist())) == sum(SIZES)
    assert table.equals(uninterrupted)


@pytest.mark.slow
def test_parsl_driver_killed_at_random_moments_and_in_commits_then_resumed(tmp_path: Path) -> None:
    seed = int(os.environ.get("SEDSCALE_TEST_SEED", time.time_ns() % 10_000))
    print(f"seed {seed}")
    # the worker round runs on to completion after the kill (the engine retries the partition)
    rounds = ["early", "random", "commit", "random", "driver-only", "worker"]
    _campaign_crash_cycle(tmp_path, "local", rounds, seed)


@pytest.mark.slow
def test_dask_driver_killed_in_a_commit_and_worker_killed_then_resumed(tmp_path: Path) -> None:
    seed = int(os.environ.get("SEDSCALE_TEST_SEED", time.time_ns() % 10_000))
    print(f"seed {seed}")
    _campaign_crash_cycle(tmp_path, "local-dask", ["commit", "worker"], seed)
