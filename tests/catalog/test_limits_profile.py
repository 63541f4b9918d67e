"""Upper limits declared through a user profile: a per-band ``limit_flag`` column (with
``limit_sigma``) and CIGALE's ``upper_limits: negative_error``; the generic profile keeps an error
≤ 0 as ``bad_error``; a flagged band without a limit value is quarantined ``bad_limit``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from sedscale.catalog.profiles import CatalogProfile, load_profile
from sedscale.catalog.validate import REASONS, ValidationRules, validate_table

RULES = ValidationRules(min_bands=2)


def _table() -> pa.Table:
    return pa.table({
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "z": [0.5, 0.5, 0.5, 0.5],
        "f_r": [10.0, 10.0, 10.0, 10.0], "e_r": [1.0, 1.0, 1.0, 1.0],
        # row 0: measured; row 1: a 3σ limit of 0.6 µJy, no error; row 2: a limit with its own
        # 1σ width 0.25; row 3: flagged but no limit value
        "f_k": [2.0, 0.6, 0.9, None], "e_k": [0.5, None, 0.25, None],
        "lim_k": pa.array([False, True, True, True]),
    })


def _profile(tmp_path: Path, text: str, table: pa.Table) -> CatalogProfile:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return load_profile(path, table.schema)


FLAGGED = ("id: id\nredshift: z\nbands:\n  - {column: f_r, error: e_r, filter: lsst_r}\n"
           "  - {column: f_k, error: e_k, filter: lsst_y, limit_flag: lim_k, limit_sigma: 3}\n")


def test_limit_flag_column_marks_upper_limits_with_their_width(tmp_path: Path) -> None:
    table = _table()
    out = validate_table(table, _profile(tmp_path, FLAGGED, table), RULES)
    assert out.photometry.row_index.tolist() == [0, 1, 2]
    phot = out.photometry
    assert phot.limits[:, 0].tolist() == [False, False, False]
    assert phot.limits[:, 1].tolist() == [False, True, True]
    assert phot.flux[1, 1] == pytest.approx(0.6) and phot.error[1, 1] == pytest.approx(0.2)  # 0.6 / 3
    assert phot.flux[2, 1] == pytest.approx(0.9) and phot.error[2, 1] == pytest.approx(0.25)  # given
    assert phot.has_limits.tolist() == [False, True, True]
    assert phot.n_bands_observed.tolist() == [2, 2, 2]  # a limit is a usable band
    assert phot.take(np.array([2])).limits.tolist() == [[False, True]]


def test_limit_flag_without_a_value_is_quarantined(tmp_path: Path) -> None:
    table = _table()
    out = validate_table(table, _profile(tmp_path, FLAGGED, table), RULES)
    row = out.quarantine.to_pylist()
    assert [(r["row_index"], r["reason"]) for r in row] == [(3, "bad_limit")]
    assert "f_k=nan" in row[0]["message"] and REASONS["bad_limit"] in row[0]["message"]


def test_negative_error_convention(tmp_path: Path) -> None:
    table = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "z": [1.0, 1.0, 1.0],
                      "f_r": [10.0, 10.0, 10.0], "e_r": [1.0, 1.0, 1.0],
                      "f_k": [2.0, 0.6, 0.6], "e_k": [0.5, -0.2, 0.0]})
    text = ("id: id\nredshift: z\nupper_limits: negative_error\nbands:\n"
            "  - {column: f_r, error: e_r, filter: lsst_r}\n  - {column: f_k, error: e_k, filter: lsst_y}\n")
    out = validate_table(table, _profile(tmp_path, text, table), RULES)
    assert out.photometry.limits[:, 1].tolist() == [False, True]
    assert out.photometry.error[1, 1] == pytest.approx(0.2)
    assert out.quarantine.to_pylist()[0]["reason"] == "bad_error"  # error 0 is still bad
    # the generic convention: a negative error is bad_error, not a limit
    generic = _profile(tmp_path, text.replace("upper_limits: negative_error\n", ""), table)
    out = validate_table(table, generic, RULES)
    assert out.quarantine["reason"].to_pylist() == ["bad_error", "bad_error"]
    assert not out.photometry.limits.any()


def test_limit_flag_column_must_be_a_flag(tmp_path: Path) -> None:
    from sedscale.errors import CatalogError

    table = _table().set_column(6, "lim_k", pa.array(["y", "n", "y", "n"]))
    with pytest.raises(CatalogError, match="lim_k"):
        _profile(tmp_path, FLAGGED, table)
