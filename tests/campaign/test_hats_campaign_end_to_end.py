"""A new user's path with IRSA-shaped data: a HATS catalog in IRSA's Euclid Q1 names (hundreds of
extra columns, units in the field metadata) → ``sedscale submit --profile euclid-q1-irsa`` on the
local site (real grids, real kernel) → ``sedscale export --format hats`` → ``lsdb.open_catalog``
joins the results back to the input by id; partitions never spanned two pixels and the results
keep the input's pixels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sedscale.campaign.manifest import read_manifest
from sedscale.campaign.paths import CampaignPaths
from sedscale.testing.catalogs import add_sky_positions, irsa_like_table, write_hats_catalog

MOCK = Path(__file__).resolve().parents[2] / "examples" / "euclid_mock_2k.parquet"
N = 300


def _sedscale(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sedscale", *args], capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_irsa_hats_campaign_exports_hats_that_lsdb_joins_back(tmp_path: Path) -> None:
    import hats
    import lsdb

    mock = add_sky_positions(pq.read_table(MOCK).slice(0, N), seed=1, radius_deg=0.7)
    catalog = write_hats_catalog(irsa_like_table(mock, extra_columns=300, seed=1), tmp_path / "in",
                                 catalog_name="euclid_q1_like", pixel_threshold=90)
    root = tmp_path / "campaign"
    proc = _sedscale("submit", str(catalog), "--profile", "euclid-q1-irsa", "--site", "local", "--campaign",
                     str(root), "--policy", "none", "--rows-per-partition", "40", "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]

    partitions = read_manifest(CampaignPaths.at(root).manifest)
    input_pixels = sorted((p.order, p.pixel) for p in hats.read_hats(catalog).get_healpix_pixels())
    assert sorted({(p.pixel_order, p.pixel) for p in partitions}) == input_pixels
    assert all(f"Npix={p.pixel}" in p.file for p in partitions)

    out = tmp_path / "results_hats"
    proc = _sedscale("export", str(root), "-o", str(out), "--format", "hats")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted((p.order, p.pixel) for p in hats.read_hats(out).get_healpix_pixels()) == input_pixels

    joined = lsdb.open_catalog(out).join(
        lsdb.open_catalog(catalog, columns=["object_id", "ra", "dec", "phz_phz_median"]),
        left_on="source_id", right_on="object_id", suffixes=("", "_in"),
        suffix_method="overlapping_columns").compute()
    assert len(joined) == N
    assert (joined["ra"] == joined["ra_in"]).all() and (joined["dec"] == joined["dec_in"]).all()
    fitted = joined[joined["status"] == "fitted"]
    assert len(fitted) > N // 2
    assert (fitted["redshift"] == fitted["phz_phz_median"]).all()  # the profile's redshift was used
