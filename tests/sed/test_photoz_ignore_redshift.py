"""``sedscale fit --ignore-redshift``: photo-z for every row although the profile maps a redshift.

Scoring photo-z against spec-z needs the spec-z rows fitted without their redshift; the shipped
HDF-N profile maps ``redshift: z_spec``, so without the option they are fitted at z_spec.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.commands.test_fit_command import run_sedscale

HDFN = Path(__file__).resolve().parents[2] / "examples" / "hdfn"
#: A small grid, coarse in redshift, so the test builds it in seconds.
TINY_PHOTOZ_CONFIG = """\
sfh: {family: delayed, age: [0.3, 3.0], tau: [1.0]}
stellar: {metallicity: [1.0]}
dust_attenuation: {av: [0.0, 1.0]}
nebular: {enabled: false}
dust_emission: {enabled: false}
redshift: {z_max: 4.0, dlog1pz: 0.02}
"""


def _fit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache: Path, *flags: str) -> pq.ParquetFile:
    catalog = tmp_path / "hdfn.parquet"
    pq.write_table(pq.read_table(HDFN / "hdfn_fs99_zspec.parquet").slice(0, 12), catalog)
    config = tmp_path / "fit.yaml"
    config.write_text(TINY_PHOTOZ_CONFIG)
    out = tmp_path / f"out{'-'.join(flags)}.parquet"
    code = run_sedscale(monkeypatch, "fit", str(catalog), "-o", str(out), "--profile",
                        str(HDFN / "hdfn_profile.yaml"), "--config", str(config), "--policy", "none",
                        "--cache-dir", str(cache), *flags)
    assert code == 0
    return pq.read_table(out)


@pytest.mark.slow  # two grid builds and two CLI fits: ~15 s on a busy 2-core machine
def test_ignore_redshift_fits_every_row_for_its_photoz(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      sedscale_cache_dir: Path) -> None:
    z_spec = pq.read_table(HDFN / "hdfn_fs99_zspec.parquet").column("z_spec").to_numpy()[:12]
    known = _fit(monkeypatch, tmp_path, sedscale_cache_dir, "--photoz")
    assert known.column("z_phot").null_count == 12  # the profile's z_spec is used: no photo-z
    assert np.allclose(known.column("redshift").to_numpy(), z_spec)
    ignored = _fit(monkeypatch, tmp_path, sedscale_cache_dir, "--ignore-redshift")
    assert ignored.column("status").to_pylist() == ["fitted"] * 12
    z_phot = ignored.column("z_phot").to_numpy(zero_copy_only=False)
    assert np.all(np.isfinite(z_phot)) and np.all((z_phot >= 0) & (z_phot <= 4.0))
    assert np.array_equal(ignored.column("redshift").to_numpy(zero_copy_only=False), z_phot)
    assert not np.allclose(z_phot, z_spec)  # a fit, not the input copied
