"""Disk full during a commit, on the real fitting path (issue 13, "Disk full and torn files").

A campaign of a few thousand rows lives on a small tmpfs; partitions run in process through the
real task (:func:`sedscale.pipeline.process_partition`: read, validate, triage fit, commit). The
file system is shrunk to what the first partitions used plus a few pages, so the next commit runs
out of space: the error must name the path and the errno, no temporary, marker or chunk of that
partition may remain, and after the file system is enlarged the remaining partitions run and the
export equals an uninterrupted campaign's, value for value (except ``fit_seconds``).
Needs root (``mount``); CI runs the suite as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from sedscale.campaign.commit import StorageFullError
from sedscale.campaign.create import create_campaign
from sedscale.campaign.export import export_campaign
from sedscale.campaign.meta import read_meta
from sedscale.campaign.paths import DATA_ARRAYS, CampaignPaths
from sedscale.campaign.resume import plan_resume
from sedscale.campaign.workflow import workflow_from_dict
from sedscale.engines.site import load_site
from tests.campaign.mock_catalog import TINY_WORKFLOW, write_mock_catalog

ROWS = 2_400
ROWS_PER_PARTITION = 400
PAGE = 4096


def _mount(target: Path, size: int, remount: bool = False) -> None:
    options = f"{'remount,' if remount else ''}size={size}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=True,
                   capture_output=True, text=True)


def _used_bytes(target: Path) -> int:
    st = os.statvfs(target)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


@pytest.fixture()
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs at ``tmp_path/fs``, unmounted afterwards."""
    target = tmp_path / "fs"
    target.mkdir()
    _mount(target, 64 << 20)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _create(root: Path, catalog: Path) -> CampaignPaths:
    wf = workflow_from_dict(yaml.safe_load(TINY_WORKFLOW) | {"rows_per_partition": ROWS_PER_PARTITION}, "test")
    create_campaign(root, [str(catalog)], workflow=wf, site=load_site("local"), profile_spec="generic",
                    rows_per_partition=ROWS_PER_PARTITION)
    return CampaignPaths.at(root)


def _run_pending(paths: CampaignPaths) -> None:
    from sedscale.pipeline import process_partition

    for pid in plan_resume(paths, read_meta(paths).n_partitions).todo:
        process_partition(str(paths.root), pid)


def _export(paths: CampaignPaths, out: Path) -> pa.Table:
    export_campaign(paths.root, out)
    return pq.read_table(out).drop_columns(["fit_seconds"])


@pytest.mark.slow
def test_commit_on_a_full_file_system_leaves_nothing_torn_and_resume_completes(small_fs: Path,
                                                                              tmp_path: Path) -> None:
    catalog = write_mock_catalog(tmp_path / "cat.parquet", n=ROWS)
    reference = _create(tmp_path / "ref", catalog)
    _run_pending(reference)
    expected = _export(reference, tmp_path / "ref.parquet")

    paths = _create(small_fs / "camp", catalog)
    n_partitions = read_meta(paths).n_partitions
    assert n_partitions >= 5
    from sedscale.pipeline import process_partition

    for pid in (0, 1):  # the grid cache and two partitions' files are in place
        process_partition(str(paths.root), pid)
    _mount(small_fs, _used_bytes(small_fs) + 3 * PAGE, remount=True)  # room for the summary, not the chunks
    with pytest.raises(StorageFullError) as caught:
        process_partition(str(paths.root), 2)
    message = str(caught.value)
    assert str(paths.root) in message and "ENOSPC" in message and "partition 2" in message
    assert "resume" in message
    assert not list(paths.root.rglob("*.tmp")), "a temporary of the failed commit was left"
    assert not paths.done_marker(2).exists()
    assert not any(paths.chunk_path(array, 2).exists() for array in DATA_ARRAYS)
    plan = plan_resume(paths, n_partitions)
    assert plan.todo == list(range(2, n_partitions)) and not plan.corrupt

    _mount(small_fs, 64 << 20, remount=True)  # space freed
    _run_pending(paths)
    got = _export(paths, tmp_path / "got.parquet")
    assert got.num_rows == ROWS
    assert got.equals(expected)
    shutil.rmtree(paths.root)
