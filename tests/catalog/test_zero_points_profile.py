"""Per-band multiplicative zero points: flux and error both scaled (after unit conversion);
a zero point ≤ 0 is refused when the profile is loaded, naming the band."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from sedscale.catalog.profiles import CatalogProfile, load_profile
from sedscale.catalog.validate import ValidationRules, validate_table
from sedscale.errors import ConfigError


def _table() -> pa.Table:
    return pa.table({"id": pa.array([7], pa.int64()), "f_r": [10.0], "e_r": [1.0],
                     "m_k": [23.9], "e_mk": [0.1]})


def _load(tmp_path: Path, zp_r: str, zp_k: str = "1.0") -> CatalogProfile:
    path = tmp_path / "p.yaml"
    path.write_text("id: id\nbands:\n"
                    f"  - {{column: f_r, error: e_r, filter: lsst_r, zero_point: {zp_r}}}\n"
                    f"  - {{column: m_k, error: e_mk, unit: ABmag, filter: lsst_y, zero_point: {zp_k}}}\n")
    return load_profile(path, _table().schema)


def test_zero_point_multiplies_flux_and_error(tmp_path: Path) -> None:
    out = validate_table(_table(), _load(tmp_path, "1.05", "0.9"), ValidationRules(min_bands=2))
    # hand-worked: 10 µJy × 1.05 = 10.5 ± 1.05; 23.9 AB = 1 µJy → × 0.9 = 0.9, its error
    # 1 µJy × 0.4 ln10 × 0.1 mag = 0.0921034 µJy → × 0.9 = 0.0828931
    np.testing.assert_allclose(out.photometry.flux[0], [10.5, 0.9], rtol=1e-12)
    np.testing.assert_allclose(out.photometry.error[0], [1.05, 0.4 * np.log(10) * 0.1 * 0.9], rtol=1e-6)


@pytest.mark.parametrize("bad", ["0", "-1.2", ".nan"])
def test_non_positive_zero_point_is_refused_at_load(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=r"band f_r \(lsst_r\): zero_point .* must be > 0"):
        _load(tmp_path, bad)
