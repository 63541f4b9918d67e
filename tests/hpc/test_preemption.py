"""Preemption on the real local Slurm (scripts/slurm-local.sh): a block told to stop with
``scancel --full --signal=TERM`` (what Slurm sends at the walltime, to the batch step too) stops
its workers cleanly; the campaign, resumed, holds every row exactly once and its export equals
the uninterrupted local run's (except ``fit_seconds``). Batch scripts carry ``--no-requeue`` and
the walltime-warning trap (``--signal=B:USR1@…``) that makes this hold for the warning too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.status import campaign_status
from tests.campaign.test_pipeline_e2e import assert_tables_identical
from tests.hpc.conftest import sedscale, squeue_ids
from tests.hpc.test_slurm_campaigns import N, TIMING, _site_file, catalog, local_export  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _submit(catalog: Path, site: Path, cwd: Path) -> subprocess.Popen[str]:
    env = os.environ | {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.Popen([sys.executable, "-m", "sedscale", "submit", str(catalog), "--site", str(site),
                             "--workflow", str(catalog.parent / "tiny.yaml"), "--campaign", "camp"],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _signal_a_running_block(paths: CampaignPaths, before: set[str], driver: subprocess.Popen[str]) -> str:
    """Wait until a block of this campaign runs and a partition is done, then TERM the whole job."""
    deadline = time.time() + 240
    while time.time() < deadline and driver.poll() is None:
        ours = sorted(squeue_ids() - before)
        if ours and paths.campaign_json.exists() and campaign_status(str(paths.root), verify="none").partitions_done >= 1:
            subprocess.run(["scancel", "--full", "--signal=TERM", ours[0]], check=True, timeout=30)
            return ours[0]
        time.sleep(0.3)
    return ""


@pytest.mark.timeout(600)
@pytest.mark.parametrize("engine", ["parsl", "dask"])
def test_signalled_block_loses_nothing(engine: str, catalog: Path, local_export, tmp_path: Path,  # noqa: F811
                                       no_leftover_jobs: set[str]) -> None:
    site = _site_file(tmp_path, engine)
    paths = CampaignPaths.at(tmp_path / "camp")
    driver = _submit(catalog, site, tmp_path)
    try:
        job = _signal_a_running_block(paths, set(no_leftover_jobs), driver)
        out, _ = driver.communicate(timeout=420)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert job, f"no running block was signalled (campaign too fast?): {out[-3000:]}"
    res = sedscale("resume", "camp", cwd=tmp_path, timeout=420)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert sedscale("export", "camp", "-o", "out.parquet", cwd=tmp_path).returncode == 0
    table = pq.read_table(tmp_path / "out.parquet")
    ids = table.column("source_id").to_pylist()
    assert table.num_rows == N and len(set(ids)) == len(ids)
    keep = [c for c in local_export.column_names if c not in TIMING]
    assert_tables_identical(local_export.select(keep), table.select(keep))

