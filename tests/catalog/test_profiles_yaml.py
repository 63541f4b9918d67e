"""User YAML profiles: ra/dec keys, optional bands, ``extends:`` a built-in, generic scale/choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.catalog.partition import Partition
from sedscale.catalog.profile_model import CatalogProfile
from sedscale.catalog.profile_options import ProfileOptions
from sedscale.catalog.profiles import load_profile
from sedscale.catalog.read import read_partition
from sedscale.catalog.survey_profiles import build_builtin
from sedscale.catalog.validate import ValidationRules, validate_table
from sedscale.errors import CatalogError, ConfigError


def _mer(n: int = 3) -> pa.Table:
    return pa.table({
        "OBJECT_ID": pa.array(np.arange(1, n + 1), pa.int64()),
        "PHZ_MEDIAN": np.full(n, 0.7), "RIGHT_ASCENSION": np.full(n, 52.0), "DECLINATION": np.full(n, -28.0),
        "FLUX_VIS_PSF": np.full(n, 3.0), "FLUXERR_VIS_PSF": np.full(n, 0.3),
        "FLUX_H_TEMPLFIT": np.full(n, 5.0), "FLUXERR_H_TEMPLFIT": np.full(n, 0.5),
        "F_K": np.full(n, 8.0), "E_K": np.full(n, 0.8),
    })


def test_extends_overrides_keys_and_adds_bands(tmp_path: Path) -> None:
    prof = tmp_path / "mine.yaml"
    prof.write_text("extends: euclid-q1\nredshift: PHZ_MEDIAN\nbands:\n"
                    "  - {column: F_K, error: E_K, unit: uJy, filter: lsst_y}\n"
                    "  - {column: FLUX_H_TEMPLFIT, error: FLUXERR_H_TEMPLFIT, unit: mJy, filter: euclid_h}\n")
    profile = load_profile(prof, _mer().schema)
    assert profile.name == "mine" and profile.redshift == "PHZ_MEDIAN"
    assert (profile.ra, profile.dec) == ("RIGHT_ASCENSION", "DECLINATION")
    assert profile.filters() == ("euclid_vis", "euclid_h", "lsst_y")
    assert profile.bands[1].unit == "mJy"  # the user's band replaced the built-in one of that filter
    prof.write_text("extends: euclid-q1\nra: null\ndec: null\nredshift: NO_SUCH\n")
    with pytest.raises(CatalogError, match="NO_SUCH"):
        load_profile(prof, _mer().schema, source="mer.fits")


def test_user_profile_ra_dec_keys(tmp_path: Path) -> None:
    prof = tmp_path / "p.yaml"
    prof.write_text("id: OBJECT_ID\nra: RIGHT_ASCENSION\ndec: DECLINATION\nbands:\n"
                    "  - {column: F_K, error: E_K, filter: lsst_y}\n")
    profile = load_profile(prof, _mer().schema)
    assert profile.columns()[:3] == ["OBJECT_ID", "RIGHT_ASCENSION", "DECLINATION"]
    prof.write_text("id: OBJECT_ID\nra: RA_MISSING\nbands:\n  - {column: F_K, error: E_K, filter: lsst_y}\n")
    with pytest.raises(CatalogError, match="RA_MISSING"):
        load_profile(prof, _mer().schema)


def test_optional_band_absent_from_a_file_is_not_observed(tmp_path: Path) -> None:
    table = _mer(4)
    path = tmp_path / "tile.parquet"
    pq.write_table(table, path)
    prof = tmp_path / "p.yaml"
    prof.write_text("id: OBJECT_ID\nbands:\n  - {column: F_K, error: E_K, filter: lsst_y}\n"
                    "  - {column: FLUX_VIS_PSF, error: FLUXERR_VIS_PSF, filter: euclid_vis}\n"
                    "  - {column: F_U_DECAM, error: E_U_DECAM, filter: decam_u, optional: true}\n")
    profile = load_profile(prof, table.schema)
    assert profile.optional_columns() == {"F_U_DECAM", "E_U_DECAM"}
    part = Partition(partition_id=0, file=str(path), file_index=0, row_start=0, row_stop=4,
                     row_groups=(0,), rg_offset=0)
    read = read_partition(part, profile.columns(), profile.optional_columns())
    out = validate_table(read, profile, ValidationRules(min_bands=2))
    assert out.n_valid == 4 and np.isnan(out.photometry.flux[:, 2]).all()
    prof.write_text(prof.read_text().replace(", optional: true", ""))
    with pytest.raises(CatalogError, match="F_U_DECAM"):
        load_profile(prof, table.schema, source=str(path))


def test_a_user_yaml_can_write_a_per_row_choice_and_a_scale(tmp_path: Path) -> None:
    table = pa.table({"id": pa.array([1, 2], pa.int64()), "pt": pa.array([True, False]),
                      "a": [2.0, 2.0], "ea": [0.2, 0.2], "b": [4.0, 4.0], "eb": [0.4, 0.4],
                      "num": [6.0, 6.0], "den": [3.0, -1.0]})
    prof = tmp_path / "p.yaml"
    prof.write_text(
        "id: id\nbands:\n"
        "  - column: {flag: pt, flagged: a, unflagged: b}\n"
        "    error: {flag: pt, flagged: ea, unflagged: eb}\n"
        "    filter: lsst_g\n"
        "  - {column: a, error: ea, filter: lsst_r, scale: {numerator: num, denominator: den}}\n")
    profile = load_profile(prof, table.schema)
    out = validate_table(table, profile, ValidationRules(min_bands=1))
    np.testing.assert_allclose(out.photometry.flux[:, 0], [2.0, 4.0])
    assert out.photometry.flux[0, 1] == pytest.approx(4.0)  # 2 × 6/3
    assert np.isnan(out.photometry.flux[1, 1])  # a negative factor: not observed
    prof.write_text(prof.read_text().replace("denominator: den", "denominator: nope"))
    with pytest.raises(CatalogError, match="nope"):
        load_profile(prof, table.schema)


def test_quarantine_message_names_the_scaled_band(tmp_path: Path) -> None:
    table = pa.table({"id": pa.array([1], pa.int64()), "a": [2.0], "ea": [-1.0], "num": [6.0], "den": [3.0]})
    prof = tmp_path / "p.yaml"
    prof.write_text("id: id\nbands:\n  - {column: a, error: ea, filter: lsst_r, "
                    "scale: {numerator: num, denominator: den}}\n")
    out = validate_table(table, load_profile(prof, table.schema), ValidationRules(min_bands=1))
    message = out.quarantine.column("message")[0].as_py()
    assert "a × num / den=4" in message and "ea × num / den=-2" in message


def test_profile_round_trips_through_json() -> None:
    """A campaign stores its resolved profile as JSON and reads it back: choices and scales survive."""
    schema = pa.schema([pa.field(n, pa.int64() if n == "OBJECT_ID" else pa.float64()) for n in
                        ["OBJECT_ID", "POINT_LIKE_FLAG", "FLUX_VIS_PSF", "FLUXERR_VIS_PSF", "FLUX_DETECTION_TOTAL",
                         "FLUXERR_DETECTION_TOTAL", "FLUX_Y_TEMPLFIT", "FLUXERR_Y_TEMPLFIT", "FLUX_VIS_TO_Y_TEMPLFIT"]])
    profile = build_builtin("euclid-q1", schema, ProfileOptions(total_flux=True), "x")
    assert CatalogProfile.model_validate(profile.model_dump(mode="json")) == profile


def test_extends_needs_a_known_builtin_and_valid_options(tmp_path: Path) -> None:
    prof = tmp_path / "p.yaml"
    prof.write_text("extends: euclid-q1\nvis_flux: kron\n")
    with pytest.raises(ConfigError, match="p.yaml.*vis_flux"):
        load_profile(prof, _mer().schema)
