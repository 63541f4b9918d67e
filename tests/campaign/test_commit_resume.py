"""Atomic commit, done-markers, corruption detection, fencing, and what resume finds left."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sedscale.campaign import commit as commit_module
from sedscale.campaign.commit import StaleRunError, commit_partition
from sedscale.campaign.export import export_campaign
from sedscale.fsutil import atomic_write
from sedscale.campaign.paths import FLOAT_ARRAY, INT_ARRAY, STRING_ARRAY, CampaignPaths
from sedscale.campaign.resume import plan_resume
from sedscale.campaign.state import read_marker
from sedscale.campaign.testing import make_synthetic_campaign, synthetic_results
from sedscale.errors import CampaignError

SIZES = [40, 40, 40, 40, 17]


@pytest.fixture()
def campaign(tmp_path: Path) -> CampaignPaths:
    return make_synthetic_campaign(tmp_path / "c", SIZES)


def _commit(paths: CampaignPaths, pid: int, run_id: str | None = None) -> None:
    commit_partition(paths, pid, synthetic_results(40 * pid, SIZES[pid]), chunk_rows=40, run_id=run_id)


def test_uncommitted_partitions_are_pending(campaign: CampaignPaths) -> None:
    _commit(campaign, 0)
    _commit(campaign, 3)
    plan = plan_resume(campaign, len(SIZES))
    assert plan.done == [0, 3]
    assert plan.todo == [1, 2, 4]


def test_crash_between_chunk_renames_leaves_partition_pending(campaign: CampaignPaths, monkeypatch) -> None:
    """Simulate dying after the first chunk is placed: no marker, so not done; export refuses."""
    real_replace = os.replace
    calls = {"n": 0}

    def dying_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated crash")
        return real_replace(src, dst)

    monkeypatch.setattr(commit_module.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        _commit(campaign, 2)
    monkeypatch.setattr(commit_module.os, "replace", real_replace)
    assert campaign.chunk_path(FLOAT_ARRAY, 2).exists()  # half-placed on disk ...
    assert read_marker(campaign, 2) is None  # ... but never committed
    assert 2 in plan_resume(campaign, len(SIZES)).pending
    with pytest.raises(CampaignError, match="not committed"):
        export_campaign(campaign.root, campaign.root / "x.parquet")


@pytest.mark.parametrize("array", [FLOAT_ARRAY, INT_ARRAY, STRING_ARRAY])
def test_corrupt_same_size_chunk_is_detected_by_checksum(campaign: CampaignPaths, array: str) -> None:
    _commit(campaign, 1)
    chunk = campaign.chunk_path(array, 1)
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    assert plan_resume(campaign, len(SIZES), verify="size").done == [1]  # same size: stat cannot tell
    plan = plan_resume(campaign, len(SIZES))
    assert 1 in plan.corrupt and "checksum" in plan.corrupt[1]
    assert 1 in plan.todo


def test_truncated_or_missing_chunk_is_detected_by_size(campaign: CampaignPaths) -> None:
    _commit(campaign, 0)
    _commit(campaign, 1)
    chunk = campaign.chunk_path(INT_ARRAY, 0)
    chunk.write_bytes(chunk.read_bytes()[:-3])
    campaign.chunk_path(STRING_ARRAY, 1).unlink()
    plan = plan_resume(campaign, len(SIZES), verify="size")
    assert set(plan.corrupt) == {0, 1}


def test_unreadable_marker_means_not_committed(campaign: CampaignPaths) -> None:
    _commit(campaign, 4)
    campaign.done_marker(4).write_text('{"partition_id": 4, "kind": "do')  # torn marker
    assert 4 in plan_resume(campaign, len(SIZES)).pending


def test_recommit_replaces_a_corrupt_partition(campaign: CampaignPaths, tmp_path: Path) -> None:
    for pid in range(len(SIZES)):
        _commit(campaign, pid)
    campaign.chunk_path(FLOAT_ARRAY, 2).write_bytes(b"garbage")
    assert plan_resume(campaign, len(SIZES)).todo == [2]
    _commit(campaign, 2)
    assert plan_resume(campaign, len(SIZES)).todo == []
    export_campaign(campaign.root, tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").equals(synthetic_results(0, sum(SIZES)))


def test_stale_run_cannot_commit(campaign: CampaignPaths) -> None:
    atomic_write(campaign.run_id_file, b"run-new")
    with pytest.raises(StaleRunError):
        _commit(campaign, 0, run_id="run-old")
    assert read_marker(campaign, 0) is None
    _commit(campaign, 0, run_id="run-new")
    assert read_marker(campaign, 0) is not None


def test_submit_into_existing_campaign_is_refused(campaign: CampaignPaths) -> None:
    with pytest.raises(CampaignError, match="resume") as err:
        make_synthetic_campaign(campaign.root, SIZES)
    assert err.value.exit_code == 4


def test_resume_bookkeeping_scales(tmp_path: Path) -> None:
    """2,000 committed partitions: finding what is left stays well under two seconds."""
    import time

    from sedscale.campaign.testing import clone_committed

    sizes = [3] * 2000
    paths = make_synthetic_campaign(tmp_path / "big", sizes)
    commit_partition(paths, 1, synthetic_results(3, 3), chunk_rows=3, run_id=None)
    clone_committed(paths, 1, [pid for pid in range(2, 2000) if pid % 97])
    t0 = time.perf_counter()
    plan = plan_resume(paths, len(sizes))
    elapsed = time.perf_counter() - t0
    assert plan.todo == list(range(0, 2000, 97))
    assert elapsed < 2.0, elapsed
