"""Built-in survey profiles: each resolves a survey's own column names to one CatalogProfile."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sedscale.catalog.profile_model import FlagChoice
from sedscale.catalog.profiles import BUILTIN_PROFILES, load_profile
from sedscale.catalog.validate import ValidationRules, validate_table
from sedscale.errors import CatalogError, ConfigError

F64 = pa.float64()


def _schema(names: list[str], id_type: pa.DataType = pa.int64(), ids: tuple[str, ...] = ()) -> pa.Schema:
    return pa.schema([pa.field(n, id_type if n in ids else F64) for n in names])


def test_builtin_names() -> None:
    assert set(BUILTIN_PROFILES) == {"generic", "euclid-q1", "euclid-q1-irsa", "roman", "roman-generic"}


def test_generic_picks_up_positions() -> None:
    names = ["source_id", "ra", "dec", "flux_euclid_h", "fluxerr_euclid_h"]
    profile = load_profile("generic", _schema(names, ids=("source_id",)))
    assert (profile.ra, profile.dec) == ("ra", "dec")
    without = load_profile("generic", _schema(names[:1] + names[3:], ids=("source_id",)))
    assert (without.ra, without.dec) == (None, None)


def test_euclid_q1_native_names_positions_and_redshift() -> None:
    names = ["OBJECT_ID", "RIGHT_ASCENSION", "DECLINATION", "REDSHIFT", "FLUX_VIS_PSF", "FLUXERR_VIS_PSF",
             "FLUX_H_TEMPLFIT", "FLUXERR_H_TEMPLFIT", "FLUX_U_EXT_MEGACAM_TEMPLFIT",
             "FLUXERR_U_EXT_MEGACAM_TEMPLFIT", "FLUX_Y_EXT_HSC_TEMPLFIT", "FLUXERR_Y_EXT_HSC_TEMPLFIT"]
    profile = load_profile("euclid-q1", _schema(names, ids=("OBJECT_ID",)))
    assert (profile.id, profile.ra, profile.dec, profile.redshift) == (
        "OBJECT_ID", "RIGHT_ASCENSION", "DECLINATION", "REDSHIFT")
    assert profile.filters() == ("euclid_vis", "euclid_h", "megacam_u")  # EXT Y is not u…z
    external = profile.bands[-1]
    assert external.optional and not profile.bands[0].optional
    assert {"FLUX_U_EXT_MEGACAM_TEMPLFIT", "FLUXERR_U_EXT_MEGACAM_TEMPLFIT"} == profile.optional_columns()
    lower = load_profile("euclid-q1", _schema(["OBJECT_ID", "redshift", "FLUX_VIS_PSF", "FLUXERR_VIS_PSF"],
                                              ids=("OBJECT_ID",)))
    assert lower.redshift == "redshift" and lower.ra is None
    none = load_profile("euclid-q1", _schema(["OBJECT_ID", "FLUX_VIS_PSF", "FLUXERR_VIS_PSF"], ids=("OBJECT_ID",)))
    assert none.redshift is None


IRSA_CORE = ["object_id", "ra", "dec", "phz_phz_median", "mer_flux_vis_psf", "mer_fluxerr_vis_psf",
             "mer_flux_y_templfit", "mer_fluxerr_y_templfit", "mer_flux_j_templfit", "mer_fluxerr_j_templfit",
             "mer_flux_h_templfit", "mer_fluxerr_h_templfit", "mer_flux_g_ext_decam_templfit",
             "mer_fluxerr_g_ext_decam_templfit", "mer_flux_detection_total", "mer_fluxerr_detection_total",
             "mer_flux_vis_to_y_templfit", "mer_flux_vis_to_j_templfit", "mer_flux_vis_to_h_templfit",
             "mer_flux_vis_to_g_ext_decam_templfit", "mer_point_like_flag", "mer_vis_det"]


def _irsa_schema(extra: int = 300) -> pa.Schema:
    fields = [pa.field(n, pa.int64() if n in ("object_id", "mer_point_like_flag", "mer_vis_det") else F64,
                       metadata={b"unit": b"uJy"} if "flux" in n else None) for n in IRSA_CORE]
    fields += [pa.field(f"morph_filler_{i:04d}", pa.string() if i % 3 else F64) for i in range(extra)]
    return pa.schema(fields)


def test_euclid_q1_irsa_names_read_only_what_is_needed() -> None:
    profile = load_profile("euclid-q1-irsa", _irsa_schema())
    assert (profile.id, profile.ra, profile.dec, profile.redshift) == ("object_id", "ra", "dec", "phz_phz_median")
    assert profile.filters() == ("euclid_vis", "euclid_y", "euclid_j", "euclid_h", "decam_g")
    assert profile.bands[1].column == "mer_flux_y_templfit" and profile.bands[1].scale is None
    assert not any(c.startswith("morph_") for c in profile.columns())
    assert len(profile.columns()) == 4 + 2 * 5


def test_euclid_total_flux_option_builds_the_cookbook_recipe(tmp_path) -> None:
    prof = tmp_path / "q1.yaml"
    prof.write_text("extends: euclid-q1-irsa\ntotal_flux: true\n")
    profile = load_profile(prof, _irsa_schema(extra=0))
    vis = profile.bands[0]
    assert vis.column == FlagChoice(flag="mer_point_like_flag", flagged="mer_flux_vis_psf",
                                    unflagged="mer_flux_detection_total")
    y = profile.bands[1]
    assert y.scale is not None and y.scale.numerator == vis.column
    assert y.scale.denominator == "mer_flux_vis_to_y_templfit"
    assert {"mer_point_like_flag", "mer_flux_detection_total", "mer_flux_vis_to_h_templfit"} <= set(profile.columns())
    # the flag is read by VIS (required) too: a file without it is a fault, not "not observed"
    assert "mer_point_like_flag" not in profile.optional_columns()
    assert "mer_flux_vis_to_g_ext_decam_templfit" in profile.optional_columns()
    prof.write_text("extends: euclid-q1-irsa\ntotal_flux: true\nvis_flux: total\n")
    assert load_profile(prof, _irsa_schema(extra=0)).bands[0].column == "mer_flux_detection_total"
    prof.write_text("extends: euclid-q1-irsa\ntotal_flux: true\nvis_flux: psf\n")
    assert load_profile(prof, _irsa_schema(extra=0)).bands[0].column == "mer_flux_vis_psf"


@pytest.mark.parametrize("missing, option", [
    ("mer_flux_vis_to_j_templfit", "total_flux"),
    ("mer_flux_vis_to_g_ext_decam_templfit", "total_flux"),
    ("mer_point_like_flag", "vis_flux=auto"),
    ("mer_flux_detection_total", "total_flux"),
])
def test_total_flux_without_a_needed_column_names_column_and_option(tmp_path, missing, option) -> None:
    schema = _irsa_schema(extra=0)
    schema = schema.remove(schema.get_field_index(missing))
    prof = tmp_path / "q1.yaml"
    prof.write_text("extends: euclid-q1-irsa\ntotal_flux: true\n")
    with pytest.raises(CatalogError, match=f"{missing}.*{option}"):
        load_profile(prof, schema, source="irsa/")
    load_profile("euclid-q1-irsa", schema)  # default off: the extra columns are not needed


def _correction_table() -> pa.Table:
    """Three rows: extended, point-like, and extended with an unusable VIS_TO (hand-computed below)."""
    return pa.table({
        "OBJECT_ID": pa.array([1, 2, 3], pa.int64()),
        "POINT_LIKE_FLAG": pa.array([0, 1, 0], pa.int32()),
        "FLUX_VIS_PSF": [10.0, 30.0, 7.0], "FLUXERR_VIS_PSF": [1.0, 3.0, 0.7],
        "FLUX_DETECTION_TOTAL": [20.0, 33.0, 9.0], "FLUXERR_DETECTION_TOTAL": [2.0, 3.3, 0.9],
        "FLUX_Y_TEMPLFIT": [5.0, 6.0, 4.0], "FLUXERR_Y_TEMPLFIT": [0.5, 0.6, 0.4],
        "FLUX_VIS_TO_Y_TEMPLFIT": [8.0, 15.0, 0.0],
        "FLUX_H_TEMPLFIT": [7.0, 9.0, 5.0], "FLUXERR_H_TEMPLFIT": [0.7, 0.9, 0.5],
        "FLUX_VIS_TO_H_TEMPLFIT": [10.0, 20.0, 4.5],
    })


def test_total_flux_correction_arithmetic(tmp_path) -> None:
    table = _correction_table()
    prof = tmp_path / "mer.yaml"
    prof.write_text("extends: euclid-q1\ntotal_flux: true\n")
    out = validate_table(table, load_profile(prof, table.schema), ValidationRules(min_bands=1))
    assert out.n_quarantined == 0
    flux, err = out.photometry.flux, out.photometry.error  # bands: VIS, Y, H (µJy)
    # row 1 extended: VIS_total = DETECTION_TOTAL = 20; Y × 20/8 = 12.5; H × 20/10 = 14
    np.testing.assert_allclose(flux[0], [20.0, 12.5, 14.0])
    np.testing.assert_allclose(err[0], [2.0, 1.25, 1.4])
    # row 2 point-like: VIS_total = VIS_PSF = 30; Y × 30/15 = 12; H × 30/20 = 13.5
    np.testing.assert_allclose(flux[1], [30.0, 12.0, 13.5])
    np.testing.assert_allclose(err[1], [3.0, 1.2, 1.35])
    # row 3: VIS_TO_Y = 0 → Y not observed; H × 9/4.5 = 10
    assert np.isnan(flux[2, 1]) and np.isnan(err[2, 1])
    np.testing.assert_allclose(flux[2, [0, 2]], [9.0, 10.0])
    plain = validate_table(table, load_profile("euclid-q1", table.schema), ValidationRules(min_bands=1))
    np.testing.assert_allclose(plain.photometry.flux[:, 1], [5.0, 6.0, 4.0])  # off: as read


def test_roman_reads_romancal_names_in_nanojansky() -> None:
    table = pa.table({
        "label": pa.array([1, 2], pa.int32()), "ra_centroid": [10.0, 10.1], "dec_centroid": [-5.0, -5.1],
        "kron_f158_flux": [1000.0, 2000.0], "kron_f158_flux_err": [100.0, 50.0],
        "kron_f106_flux": [500.0, 800.0], "kron_f106_flux_err": [50.0, 40.0],
        "psf_f158_flux": [900.0, 1900.0], "psf_f158_flux_err": [90.0, 45.0],
        "aper04_f158_flux": [700.0, 1500.0], "aper04_f158_flux_err": [70.0, 30.0],
        "kron_f158_abmag": [23.9, 23.1], "segment_f106_flux": [1.0, 1.0], "segment_f106_flux_err": [1.0, 1.0],
    })
    profile = load_profile("roman", table.schema)
    assert (profile.id, profile.ra, profile.dec, profile.redshift) == ("label", "ra_centroid", "dec_centroid", None)
    assert profile.filters() == ("roman_f106", "roman_f158")
    assert all(b.unit == "nJy" and b.optional for b in profile.bands)
    out = validate_table(table, profile, ValidationRules(min_bands=1))
    np.testing.assert_allclose(out.photometry.flux[:, 1], [1.0, 2.0])  # 1000 nJy = 1 µJy
    np.testing.assert_allclose(out.photometry.error[:, 0], [0.05, 0.04])


@pytest.mark.parametrize("family, columns", [
    ("psf", ["psf_f158_flux"]), ("aper04", ["aper04_f158_flux"]), ("segment", ["segment_f106_flux"])])
def test_roman_family_is_selectable(tmp_path, family, columns) -> None:
    names = ["label", "ra", "dec", "ra_centroid", "dec_centroid", "photoz", "kron_f158_flux", "kron_f158_flux_err",
             "psf_f158_flux", "psf_f158_flux_err", "aper04_f158_flux", "aper04_f158_flux_err",
             "segment_f106_flux", "segment_f106_flux_err"]
    prof = tmp_path / "r.yaml"
    prof.write_text(f"extends: roman\nfamily: {family}\n")
    profile = load_profile(prof, _schema(names, pa.int32(), ids=("label",)))
    assert [b.column for b in profile.bands] == columns
    assert (profile.ra, profile.dec, profile.redshift) == ("ra", "dec", "photoz")


def test_roman_prefers_a_unique_id_and_points_generic_names_to_roman_generic() -> None:
    names = ["source_id", "label", "kron_f213_flux", "kron_f213_flux_err"]
    assert load_profile("roman", _schema(names, ids=("source_id", "label"))).id == "source_id"
    generic = _schema(["source_id", "flux_roman_f158", "fluxerr_roman_f158", "flux_lsst_g", "fluxerr_lsst_g"],
                      ids=("source_id",))
    with pytest.raises(CatalogError, match="roman-generic"):
        load_profile("roman", generic)
    profile = load_profile("roman-generic", generic)
    assert profile.filters() == ("roman_f158",) and profile.bands[0].unit == "uJy"


def test_options_are_refused_where_they_do_not_belong(tmp_path) -> None:
    schema = _irsa_schema(extra=0)
    prof = tmp_path / "p.yaml"
    prof.write_text("extends: euclid-q1-irsa\nfamily: psf\n")
    with pytest.raises(ConfigError, match="p.yaml.*family"):
        load_profile(prof, schema)
    prof.write_text("extends: roman\nfamily: kronn\n")
    with pytest.raises(ConfigError, match="p.yaml.*kronn"):
        load_profile(prof, schema)
    prof.write_text("id: object_id\ntotal_flux: true\nbands:\n - {column: a, error: b, filter: euclid_h}\n")
    with pytest.raises(ConfigError, match="total_flux.*extends"):
        load_profile(prof, schema)
    prof.write_text("extends: sdss\n")
    with pytest.raises(ConfigError, match="sdss"):
        load_profile(prof, schema)
