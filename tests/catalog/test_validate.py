"""Every quarantine reason on a hand-made catalog, and the counts invariant on a mix of them."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from sedscale.catalog.profiles import load_profile
from sedscale.catalog.scan import validate_catalog
from sedscale.catalog.forms import open_catalog
from sedscale.catalog.validate import REASONS, ValidationRules, validate_table

from .catalogs import clean_columns, write


def _validate(tmp_path, cols, rules=None, id_nulls=()):
    path = write(cols, tmp_path / "cat.parquet", id_nulls=id_nulls)
    table = pq.read_table(path)
    profile = load_profile("generic", table.schema)
    return validate_table(table, profile, rules)


def test_clean_catalog_has_no_quarantine(tmp_path):
    out = _validate(tmp_path, clean_columns(50))
    assert out.n_valid == 50 and out.n_quarantined == 0
    assert out.photometry.flux.shape == (50, 6)
    assert out.photometry.filters[0] == "euclid_vis"


@pytest.mark.parametrize(
    "reason,mutate,rules",
    [
        ("duplicate_id", lambda c: c["source_id"].__setitem__(7, 3), None),
        ("non_finite", lambda c: c["flux_euclid_y"].__setitem__(7, np.inf), None),
        ("non_finite", lambda c: c["redshift"].__setitem__(7, -np.inf), None),
        ("bad_error", lambda c: c["fluxerr_euclid_j"].__setitem__(7, 0.0), None),
        ("bad_error", lambda c: c["fluxerr_euclid_j"].__setitem__(7, -0.3), None),
        ("out_of_bounds", lambda c: c["flux_euclid_h"].__setitem__(7, 5e9), None),
        ("no_bands", lambda c: [c[k].__setitem__(7, np.nan) for k in c if k.startswith("flux")], None),
        ("too_few_bands", lambda c: [c[k].__setitem__(7, np.nan) for k in list(c)[2:10]], None),
        ("bad_redshift", lambda c: c["redshift"].__setitem__(7, -0.5), None),
        ("bad_redshift", lambda c: c["redshift"].__setitem__(7, 25.0), None),
        ("missing_redshift", lambda c: c["redshift"].__setitem__(7, np.nan), ValidationRules(require_redshift=True)),
    ],
)
def test_each_reason(tmp_path, reason, mutate, rules):
    cols = clean_columns(20)
    mutate(cols)
    out = _validate(tmp_path, cols, rules)
    assert out.n_quarantined == 1, out.quarantine.to_pylist()
    row = out.quarantine.to_pylist()[0]
    assert row["reason"] == reason
    assert row["row_index"] == 7
    assert "row 7" in row["message"]
    assert 7 not in out.photometry.row_index
    assert out.n_valid + out.n_quarantined == 20


def test_null_id(tmp_path):
    out = _validate(tmp_path, clean_columns(10), id_nulls=[4])
    q = out.quarantine.to_pylist()
    assert [r["reason"] for r in q] == ["null_id"] and q[0]["source_id"] is None


def test_message_names_the_column(tmp_path):
    cols = clean_columns(10)
    cols["fluxerr_lsst_r"][2] = -1.0
    out = _validate(tmp_path, cols)
    assert "fluxerr_lsst_r=-1" in out.quarantine["message"][0].as_py()


def test_missing_redshift_is_fine_when_photoz_allowed(tmp_path):
    cols = clean_columns(10)
    cols["redshift"][3] = np.nan
    out = _validate(tmp_path, cols)
    assert out.n_quarantined == 0 and np.isnan(out.photometry.redshift[3])


def test_nan_error_beside_a_finite_flux_drops_the_band_not_the_source(tmp_path):
    """Issue 15: a NaN error means "not observed" (DESIGN.md section 4), not ``bad_error``."""
    cols = clean_columns(20)
    cols["fluxerr_euclid_j"][7] = np.nan
    out = _validate(tmp_path, cols)
    assert out.n_quarantined == 0
    row = int(np.flatnonzero(out.photometry.row_index == 7)[0])
    assert np.isnan(out.photometry.flux[row, 2]) and np.isnan(out.photometry.error[row, 2])
    assert out.photometry.n_bands_observed[row] == 5


def test_not_observed_band_is_masked_not_quarantined(tmp_path):
    cols = clean_columns(10)
    cols["flux_lsst_g"][1] = np.nan
    cols["fluxerr_lsst_g"][1] = np.nan
    cols["flux_euclid_vis"][2] = -0.05  # a non-detection: a negative flux with its error is data
    out = _validate(tmp_path, cols)
    assert out.n_quarantined == 0
    assert np.isnan(out.photometry.flux[1, 4]) and out.photometry.n_bands_observed[1] == 5
    assert out.photometry.flux[2, 0] == pytest.approx(-0.05)


def test_counts_invariant_on_a_mix_across_files(tmp_path):
    """fitted-to-be + quarantined == input, duplicates caught across files."""
    rng = np.random.default_rng(5)
    a = clean_columns(3000, seed=1)
    b = clean_columns(3000, seed=2, start_id=3000)
    b["source_id"][:10] = a["source_id"][100:110]  # ids repeated in a later file
    planted = {"duplicate_id": 10}
    rows = rng.choice(np.arange(10, 3000), size=60, replace=False)
    for k, r in enumerate(rows):
        kind = k % 6
        if kind == 0:
            a["flux_euclid_y"][r] = np.inf; planted["non_finite"] = planted.get("non_finite", 0) + 1
        elif kind == 1:
            a["fluxerr_euclid_h"][r] = 0.0; planted["bad_error"] = planted.get("bad_error", 0) + 1
        elif kind == 2:
            a["redshift"][r] = -1.0; planted["bad_redshift"] = planted.get("bad_redshift", 0) + 1
        elif kind == 3:
            for key in a:
                if key.startswith("flux"):
                    a[key][r] = np.nan
            planted["no_bands"] = planted.get("no_bands", 0) + 1
        elif kind == 4:
            a["flux_lsst_r"][r] = 1e12; planted["out_of_bounds"] = planted.get("out_of_bounds", 0) + 1
        else:
            for key in list(a)[2:10]:
                a[key][r] = np.nan
            planted["too_few_bands"] = planted.get("too_few_bands", 0) + 1
    write(a, tmp_path / "part-0.parquet", row_group_size=700)
    write(b, tmp_path / "part-1.parquet", row_group_size=700, id_nulls=[2000])
    planted["null_id"] = 1
    source = open_catalog(tmp_path)
    profile = load_profile("generic", source.schema)
    result = validate_catalog(source, profile, rows_per_partition=1000)
    assert result.rows_total == 6000
    assert result.rows_valid + result.rows_quarantined == result.rows_total
    assert dict(result.reasons) == planted
    assert set(result.reasons) <= set(REASONS)
    # the later copies are the duplicates, the first occurrences stay valid
    assert all("part-1.parquet" in s for s in result.samples["duplicate_id"])
