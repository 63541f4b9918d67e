"""The MER cookbook's total-flux correction on survey-shaped tables (IRSA's HATS names and the native
MER names, externals included), read through the real input path: a TEMPLFIT band comes out as
FLUX_X_TEMPLFIT × VIS_total / FLUX_VIS_TO_X_TEMPLFIT, VIS_total being the PSF flux for point-like
sources and FLUX_DETECTION_TOTAL for extended ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.catalog.catalog_input import open_for_profile
from sedscale.catalog.plan import plan_partitions
from sedscale.catalog.read import read_partition
from sedscale.catalog.validate import validate_table
from sedscale.testing.catalogs import add_sky_positions, irsa_like_table, mer_like_table
from tests.catalog.catalogs import clean_columns


def _mock(n: int = 40) -> pa.Table:
    cols = clean_columns(n, seed=9)
    cols["flux_lsst_g"], cols["fluxerr_lsst_g"] = cols.pop("flux_lsst_g"), cols.pop("fluxerr_lsst_g")
    return add_sky_positions(pa.table(cols), seed=3, radius_deg=0.3)


@pytest.mark.parametrize("spelling", ["irsa", "mer"])
def test_total_flux_correction_through_the_reader(tmp_path: Path, spelling: str) -> None:
    table = irsa_like_table(_mock(), extra_columns=20, seed=2) if spelling == "irsa" else mer_like_table(_mock())
    pq.write_table(table, tmp_path / "cat.parquet")
    base = "euclid-q1-irsa" if spelling == "irsa" else "euclid-q1"
    profile_file = tmp_path / "total.yaml"
    profile_file.write_text(f"extends: {base}\ntotal_flux: true\nvis_flux: auto\n")
    source, profile = open_for_profile(tmp_path / "cat.parquet", str(profile_file))
    part = plan_partitions(source, 1_000)[0]
    read = read_partition(part, profile.columns(), profile.optional_columns())
    outcome = validate_table(read, profile)
    assert outcome.n_valid == table.num_rows

    def column_name(stem: str) -> str:  # "flux_y_templfit" in the table's spelling
        return f"mer_{stem}" if spelling == "irsa" else stem.upper()

    def values(stem: str) -> np.ndarray:
        return table.column(column_name(stem)).to_numpy()

    point = values("point_like_flag") == 1
    assert point.any() and (~point).any()
    vis_total = np.where(point, values("flux_vis_psf"), values("flux_detection_total"))
    band_columns = [b.column for b in profile.bands]
    for stem in ("y_templfit", "g_ext_lsst_templfit"):
        expected = values(f"flux_{stem}") * vis_total / values(f"flux_vis_to_{stem}")
        j = band_columns.index(column_name(f"flux_{stem}"))
        np.testing.assert_allclose(outcome.photometry.flux[:, j], expected, rtol=1e-12)
    vis = [b.filter for b in profile.bands].index("euclid_vis")
    np.testing.assert_allclose(outcome.photometry.flux[:, vis], vis_total, rtol=1e-12)
