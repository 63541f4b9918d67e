"""Fixtures for the HPC tests: the local single-node Slurm cluster (scripts/slurm-local.sh) and a
guard that cancels, by job id, every job a test left in ``squeue``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]


def squeue_ids() -> set[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=30)
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s.strip().rstrip("*") in ("idle", "mixed", "allocated")
                                       for s in out.stdout.splitlines())


@pytest.fixture(scope="session")
def slurm() -> None:
    if not slurm_up():
        # scripts/test.sh (so CI) starts the clusters and sets this: there a missing cluster
        # is a failure, never a skip that would count as a pass
        if os.environ.get("SEDSCALE_REQUIRE_CLUSTERS") == "1":
            pytest.fail("the local Slurm cluster is not running (scripts/slurm-local.sh start)")
        pytest.skip("the local Slurm cluster is not running (scripts/slurm-local.sh start)")


@pytest.fixture
def no_leftover_jobs(slurm: None) -> Iterator[set[str]]:
    """Yields the job ids present before the test; afterwards asserts none of the test's jobs is
    left in squeue, cancelling any such job by id first (so one failure cannot leak into others)."""
    before = squeue_ids()
    yield before
    import time

    deadline = time.time() + 20
    left = squeue_ids() - before
    while left and time.time() < deadline:  # engines cancel their blocks at shutdown; give it a moment
        time.sleep(1)
        left = squeue_ids() - before
    if left:
        subprocess.run(["scancel", *sorted(left)], capture_output=True, timeout=30)
    assert not left, f"jobs left in squeue after the test: {sorted(left)}"


def sedscale(*args: str, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full = os.environ | {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    full |= env or {}
    return subprocess.run([sys.executable, "-m", "sedscale", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout)
