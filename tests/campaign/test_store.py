"""The Zarr v3 results store: exact round trip, few files per partition, readable by zarr and xarray."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.campaign.commit import commit_partition
from sedscale.campaign.export import export_campaign
from sedscale.campaign.paths import DATA_ARRAYS, CampaignPaths
from sedscale.campaign.store import LAYOUT, ResultsReader, encode_partition, open_results_dataset
from sedscale.campaign.testing import make_synthetic_campaign, synthetic_results
from sedscale.results import RESULT_COLUMNS, RESULTS_SCHEMA

SIZES = [50, 50, 50, 23]


def _tricky_table(n: int) -> pa.Table:
    """Nulls in every column type, unicode reasons, a null id, extreme ints."""
    base = synthetic_results(0, n).to_pydict()
    base["source_id"][0] = None
    base["source_id"][1] = -(2**63) + 1
    base["reason"][2] = "bad_error: FLUXERR_H=−3 µJy ≤ 0 — “quoted”"
    base["tokens_prompt"][3] = 2**62
    base["accepted"][4] = None
    return pa.Table.from_pydict(base, schema=RESULTS_SCHEMA)


@pytest.fixture()
def campaign(tmp_path: Path) -> CampaignPaths:
    return make_synthetic_campaign(tmp_path / "c", SIZES)


def test_round_trip_is_exact_including_nulls(campaign: CampaignPaths) -> None:
    table = _tricky_table(50)
    commit_partition(campaign, 1, table, chunk_rows=50, run_id=None)
    back = ResultsReader(campaign.results_zarr).read_partition(1, 50)
    assert back.equals(table)
    assert back.column("source_id")[0].as_py() is None
    assert back.column("accepted")[4].as_py() is None


def test_short_partition_is_padded_and_read_back_exactly(campaign: CampaignPaths) -> None:
    table = synthetic_results(150, 23)
    commit_partition(campaign, 3, table, chunk_rows=50, run_id=None)
    assert ResultsReader(campaign.results_zarr).read_partition(3, 23).equals(table)


def test_encoding_is_deterministic() -> None:
    table = _tricky_table(50)
    assert encode_partition(table, 50) == encode_partition(table, 50)


def test_at_most_five_files_per_partition(campaign: CampaignPaths) -> None:
    before = sum(len(files) + len(dirs) for _, dirs, files in os.walk(campaign.root))
    for pid, n in enumerate(SIZES):
        commit_partition(campaign, pid, synthetic_results(50 * pid, n), chunk_rows=50, run_id=None)
    after = sum(len(files) + len(dirs) for _, dirs, files in os.walk(campaign.root))
    per_partition = (after - before) / len(SIZES)
    assert per_partition <= 5, f"{per_partition} new files or folders per partition"
    assert not list(campaign.tmp_dir.iterdir()), "temporary files left behind"


def test_every_results_column_is_in_the_store(campaign: CampaignPaths) -> None:
    stored = set(LAYOUT.floats) | set(LAYOUT.ints) | set(LAYOUT.strings)
    assert set(RESULT_COLUMNS) <= stored


def test_opens_with_zarr_and_xarray(campaign: CampaignPaths) -> None:
    import xarray as xr
    import zarr

    for pid, n in enumerate(SIZES):
        commit_partition(campaign, pid, synthetic_results(50 * pid, n), chunk_rows=50, run_id=None)
    group = zarr.open_group(str(campaign.results_zarr), mode="r")
    assert set(DATA_ARRAYS) <= set(group.array_keys())
    ds = xr.open_zarr(str(campaign.results_zarr))
    logm = ds.floats.sel(float_column="logmstar").values
    expected = pa.concat_tables([synthetic_results(50 * p, n) for p, n in enumerate(SIZES)])
    present = ds.ints.sel(int_column="_present").values == 1
    assert present.sum() == expected.num_rows
    np.testing.assert_array_equal(logm[present], expected.column("logmstar").to_numpy(zero_copy_only=False))
    view = open_results_dataset(campaign.results_zarr)
    assert set(RESULT_COLUMNS) <= set(view.data_vars)
    status = view.status.values[present]
    assert list(status) == expected.column("status").to_pylist()


def test_export_is_one_row_per_input_row_in_input_order(campaign: CampaignPaths, tmp_path: Path) -> None:
    for pid in reversed(range(len(SIZES))):  # commit order must not matter
        commit_partition(campaign, pid, synthetic_results(50 * pid, SIZES[pid]), chunk_rows=50, run_id=None)
    out = tmp_path / "out.parquet"
    assert export_campaign(campaign.root, out) == sum(SIZES)
    table = pq.read_table(out)
    assert table.schema.equals(RESULTS_SCHEMA)
    assert table.equals(synthetic_results(0, sum(SIZES)))
