"""``open_results`` and every export format on a real campaign: ``sedscale submit`` of a small
mock on the local site (Parsl), padded last partition and planted bad rows included.

Slow: it runs a real engine and the triage fit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

import sedscale
from sedscale.campaign.manifest import partition_sizes
from sedscale.campaign.paths import CampaignPaths
from tests.campaign.mock_catalog import TINY_WORKFLOW, write_mock_catalog

N_ROWS = 1700


def _sedscale(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run([sys.executable, "-m", "sedscale", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_submitted_campaign_reads_the_same_through_open_results_parquet_and_fits(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_WORKFLOW.replace("rows_per_partition: 2500", "rows_per_partition: 700"))
    catalog = write_mock_catalog(tmp_path / "mock.parquet", n=N_ROWS)
    proc = _sedscale("submit", str(catalog), "--site", "local", "--workflow", "tiny.yaml", "--campaign", "camp",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for fmt, name in (("parquet", "r.parquet"), ("fits", "r.fits")):
        proc = _sedscale("export", "camp", "-o", name, "--format", fmt, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]

    table = pq.read_table(tmp_path / "r.parquet")
    ds = sedscale.open_results(tmp_path / "camp")
    assert ds.sizes["source"] == table.num_rows == N_ROWS
    sizes = partition_sizes(CampaignPaths.at(tmp_path / "camp"))
    assert len(sizes) > 1 and min(sizes) < max(sizes)  # the store pads the short partition ...
    assert ds["logmstar"].chunks == (tuple(sizes),)  # ... and the view shows none of it
    ids = table.column("source_id").to_pylist()
    assert [i for i in ds["source_id"].values.tolist() if i > 0] == [i for i in ids if i is not None]
    for name in ("logmstar", "logsfr", "av", "redshift", "chi2_red"):
        np.testing.assert_array_equal(ds[name].values, table.column(name).to_numpy(zero_copy_only=False))
    assert ds["status"].values.tolist() == table.column("status").to_pylist()
    with fits.open(tmp_path / "r.fits") as hdus:
        data = hdus["RESULTS"].data
        np.testing.assert_array_equal(np.asarray(data["logmstar"]), ds["logmstar"].values)
        assert list(data["status"]) == table.column("status").to_pylist()
