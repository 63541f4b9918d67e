"""Profiles and units: the same photometry in µJy, nJy, mJy, Jy and AB mag gives the same fluxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.catalog.profiles import load_profile
from sedscale.catalog.validate import validate_table
from sedscale.errors import CatalogError, ConfigError

HDFN = Path(__file__).resolve().parents[2] / "examples" / "hdfn"


def _user_catalog(tmp_path: Path, unit: str, flux: np.ndarray, err: np.ndarray) -> np.ndarray:
    n = len(flux)
    if unit == "ABmag":
        f, e = -2.5 * np.log10(flux) + 23.9, 2.5 / np.log(10) * err / flux
    else:
        scale = {"uJy": 1.0, "nJy": 1e3, "mJy": 1e-3, "Jy": 1e-6}[unit]
        f, e = flux * scale, err * scale
    pq.write_table(pa.table({"id": np.arange(n), "zspec": np.full(n, 1.0), "f_h": f, "e_h": e,
                             "f_vis": f * 2, "e_vis": e * 2 if unit != "ABmag" else e,
                             "f_j": f, "e_j": e}), tmp_path / f"{unit}.parquet")
    prof = tmp_path / f"{unit}.yaml"
    prof.write_text(
        "id: id\nredshift: zspec\nbands:\n"
        f"  - {{column: f_h, error: e_h, unit: {unit}, filter: euclid_h}}\n"
        f"  - {{column: f_j, error: e_j, unit: {unit}, filter: euclid_j}}\n"
        f"  - {{column: f_vis, error: e_vis, unit: {unit if unit != 'ABmag' else 'ABmag'}, filter: euclid_vis}}\n"
    )
    table = pq.read_table(tmp_path / f"{unit}.parquet")
    if unit == "ABmag":
        table = table.set_column(table.schema.get_field_index("f_vis"), "f_vis", pa.array(f - 2.5 * np.log10(2)))
    out = validate_table(table, load_profile(prof, table.schema))
    assert out.n_quarantined == 0
    return np.stack([out.photometry.flux, out.photometry.error])


@pytest.mark.parametrize("unit", ["nJy", "mJy", "Jy", "ABmag"])
def test_units_agree_with_microjansky(tmp_path, unit):
    rng = np.random.default_rng(3)
    flux, err = rng.uniform(0.1, 100.0, 40), rng.uniform(0.01, 0.5, 40)
    ref = _user_catalog(tmp_path, "uJy", flux, err)
    got = _user_catalog(tmp_path, unit, flux, err)
    np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_magnitude_sentinel_means_not_observed(tmp_path):
    pq.write_table(pa.table({"id": [1, 2], "m1": [22.0, 99.0], "e1": [0.1, 99.0], "m2": [22.0, 22.0],
                             "e2": [0.1, 0.1]}), tmp_path / "m.parquet")
    (tmp_path / "p.yaml").write_text("id: id\nbands:\n - {column: m1, error: e1, unit: ABmag, filter: lsst_g}\n"
                                     " - {column: m2, error: e2, unit: ABmag, filter: lsst_r}\n")
    table = pq.read_table(tmp_path / "m.parquet")
    from sedscale.catalog.validate import ValidationRules

    out = validate_table(table, load_profile(tmp_path / "p.yaml", table.schema), ValidationRules(min_bands=1))
    assert np.isnan(out.photometry.flux[1, 0]) and out.photometry.flux[0, 0] == pytest.approx(10 ** (-0.4 * (22 - 23.9)))


def test_user_profile_with_filter_files_relative_to_profile():
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(HDFN / "hdfn_fs99_zspec_uJy.csv")
    profile_path = HDFN / "hdfn_profile.yaml"
    profile = load_profile(profile_path, table.schema)
    assert len(profile.bands) == 7
    assert all(Path(f).is_file() for f in profile.filters())


def test_euclid_q1_profile_maps_mer_columns():
    names = ["OBJECT_ID", "FLUX_VIS_PSF", "FLUXERR_VIS_PSF", "FLUX_Y_TEMPLFIT", "FLUXERR_Y_TEMPLFIT",
             "FLUX_G_EXT_HSC_TEMPLFIT", "FLUXERR_G_EXT_HSC_TEMPLFIT", "FLUX_Z_EXT_DECAM_TEMPLFIT",
             "FLUXERR_Z_EXT_DECAM_TEMPLFIT", "RIGHT_ASCENSION"]
    schema = pa.schema([pa.field(n, pa.int64() if n == "OBJECT_ID" else pa.float64()) for n in names])
    profile = load_profile("euclid-q1", schema)
    assert profile.id == "OBJECT_ID"
    assert set(profile.filters()) == {"euclid_vis", "euclid_y", "hsc_g", "decam_z"}


def test_profile_errors_name_file_and_column(tmp_path):
    schema = pa.schema([pa.field("source_id", pa.int64()), pa.field("flux_euclid_h", pa.float64())])
    with pytest.raises(CatalogError, match="fluxerr_euclid_h"):
        load_profile("generic", schema, source="x.parquet")
    schema = pa.schema([pa.field("source_id", pa.string()), pa.field("flux_euclid_h", pa.float64()),
                        pa.field("fluxerr_euclid_h", pa.float64())])
    with pytest.raises(CatalogError, match="x.parquet.*source_id.*integer"):
        load_profile("generic", schema, source="x.parquet")
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: id\nbands:\n - {column: a, error: b, unit: furlongs, filter: euclid_h}\n")
    with pytest.raises(ConfigError, match="bad.yaml.*unit"):
        load_profile(bad, schema)
    bad.write_text("id: id\nbands:\n - {column: a, error: b, unit: uJy, filter: nofile.dat}\n")
    with pytest.raises(ConfigError, match="bad.yaml.*nofile.dat"):
        load_profile(bad, schema)
