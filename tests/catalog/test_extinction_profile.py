"""The ``ebv`` profile key: the per-source Milky Way E(B−V) reaches the photometry; a negative,
NaN or null value quarantines the row ``bad_ebv`` (the correction itself: tests/sed/test_upper_limits_mw.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from sedscale.catalog.profiles import load_profile
from sedscale.catalog.validate import REASONS, ValidationRules, validate_table


def test_ebv_column_is_carried_and_bad_values_quarantined(tmp_path: Path) -> None:
    table = pa.table({"id": pa.array([1, 2, 3, 4, 5], pa.int64()), "f_r": [1.0] * 5, "e_r": [0.1] * 5,
                      "ebv": pa.array([0.0, 0.12, -0.01, float("nan"), None], pa.float64())})
    path = tmp_path / "p.yaml"
    path.write_text("id: id\nebv: ebv\nbands:\n  - {column: f_r, error: e_r, filter: lsst_r}\n")
    profile = load_profile(path, table.schema)
    assert "ebv" in profile.columns()
    out = validate_table(table, profile, ValidationRules(min_bands=1))
    np.testing.assert_array_equal(out.photometry.extinction, [0.0, 0.12])
    q = out.quarantine.to_pylist()
    assert [(r["row_index"], r["reason"]) for r in q] == [(2, "bad_ebv"), (3, "bad_ebv"), (4, "bad_ebv")]
    assert "ebv=-0.01" in q[0]["message"] and REASONS["bad_ebv"] in q[0]["message"]


def test_without_ebv_key_nothing_is_corrected() -> None:
    table = pa.table({"source_id": pa.array([1], pa.int64()), "flux_lsst_r": [1.0], "fluxerr_lsst_r": [0.1]})
    out = validate_table(table, load_profile("generic", table.schema), ValidationRules(min_bands=1))
    assert out.photometry.extinction.tolist() == [0.0]
