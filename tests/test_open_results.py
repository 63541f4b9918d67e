"""``sedscale.open_results(DIR)``: 1-D variables along ``source``, the id as coordinate, units and
CF attributes, no padding, only committed partitions, lazy — and the same values as the export."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sedscale
from sedscale.campaign.commit import commit_partition
from sedscale.campaign.export import export_campaign
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.results_dataset import FILL_FLAG, FILL_INT32, FILL_INT64, SOURCE_DIM
from sedscale.campaign.testing import make_synthetic_campaign, synthetic_results
from sedscale.errors import CampaignError
from sedscale.results import RESULT_COLUMNS, RESULT_UNITS

SIZES = [50, 23, 0, 41]  # chunk_rows 50: two padded partitions and an empty one


def _campaign(root: Path, *, skip: tuple[int, ...] = ()) -> CampaignPaths:
    paths = make_synthetic_campaign(root, SIZES)
    start = 0
    for pid, n in enumerate(SIZES):
        if pid not in skip:
            table = synthetic_results(start, n)
            if pid == 0:  # a null id
                table = table.set_column(0, "source_id", pa.array([None] + table.column(0).to_pylist()[1:], pa.int64()))
            commit_partition(paths, pid, table, chunk_rows=max(SIZES), run_id=None)
        start += n
    return paths


def test_one_variable_per_column_along_source_without_padding(tmp_path: Path) -> None:
    paths = _campaign(tmp_path / "c")
    ds = sedscale.open_results(paths.root)
    assert dict(ds.sizes) == {SOURCE_DIM: sum(SIZES)}  # 114, not 4 x 50 padded rows
    assert set(ds.data_vars) | set(ds.coords) == set(RESULT_COLUMNS)
    assert ds["source_id"].dims == (SOURCE_DIM,) and "source_id" in ds.coords
    assert all(ds[name].dims == (SOURCE_DIM,) for name in ds.data_vars)
    assert ds["logmstar"].chunks == ((50, 23, 41),)  # lazy: one dask chunk per committed partition

    out = tmp_path / "r.parquet"
    export_campaign(paths.root, out)
    table = pq.read_table(out)
    ids = table.column("source_id")
    assert ds["source_id"].values.tolist() == [FILL_INT64, *ids.to_pylist()[1:]]
    for name in ("logmstar", "redshift", "ra", "dec", "chi2_red"):
        np.testing.assert_array_equal(ds[name].values, table.column(name).to_numpy(zero_copy_only=False))
    assert ds["status"].values.tolist() == table.column("status").to_pylist()
    assert ds["reason"].values.tolist() == table.column("reason").to_pylist()  # None where null
    n_bands = table.column("n_bands").to_pylist()
    assert ds["n_bands"].values.tolist() == [FILL_INT32 if v is None else v for v in n_bands]
    accepted = table.column("accepted").to_pylist()
    assert ds["accepted"].values.tolist() == [FILL_FLAG if v is None else int(v) for v in accepted]
    assert not (ds["status"].values == "").any()  # no padding row anywhere


def test_units_and_cf_attributes(tmp_path: Path) -> None:
    ds = sedscale.open_results(_campaign(tmp_path / "c").root)
    assert ds.attrs["Conventions"].startswith("CF-")
    assert ds.attrs["source"] == f"sedscale {sedscale.__version__}"
    assert "sedscale.open_results" in ds.attrs["history"] and ds.attrs["title"]
    for name, unit in RESULT_UNITS.items():
        assert ds[name].attrs["units"] == (unit or "1"), name
        assert ds[name].attrs["long_name"]
    assert ds["source_id"].attrs["_FillValue"] == FILL_INT64 and "units" not in ds["source_id"].attrs
    assert ds["n_bands"].attrs["_FillValue"] == FILL_INT32
    assert ds["accepted"].attrs["flag_meanings"] == "false true"
    assert ds["accepted"].attrs["_FillValue"] == FILL_FLAG


def test_select_by_id_after_indexing_the_coordinate(tmp_path: Path) -> None:
    ds = sedscale.open_results(_campaign(tmp_path / "c").root).set_xindex("source_id")
    row = ds.sel(source_id=11)  # synthetic row 1: id 11
    assert str(row["status"].values) == "fitted"
    np.testing.assert_allclose(float(row["logmstar"]), synthetic_results(1, 1).column("logmstar")[0].as_py())


def test_an_incomplete_campaign_is_refused_unless_partial_is_allowed(tmp_path: Path) -> None:
    paths = _campaign(tmp_path / "c", skip=(1,))
    with pytest.raises(CampaignError, match="not committed"):
        sedscale.open_results(paths.root)
    ds = sedscale.open_results(paths.root, allow_partial=True)
    assert ds.sizes[SOURCE_DIM] == SIZES[0] + SIZES[3]
    assert ds.attrs["partitions_committed"] == 3 and ds.attrs["partitions_total"] == 4


def test_importing_sedscale_does_not_load_the_campaign_layer() -> None:
    import subprocess

    code = "import sys, sedscale; print(sorted(m for m in sys.modules if m.startswith(('sedscale.campaign', 'xarray'))))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
