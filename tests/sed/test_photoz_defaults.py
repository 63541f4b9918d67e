"""Photo-z defaults (issue 15): EAZY-style error model and an apparent-magnitude prior.

The fast tests pin the recipe docs/FITTER.md documents; the slow ones run it on the real HDF-N
catalog: the faint U-dropouts that the Σ ln σ² term sent to z ≈ 0.2 stay at z > 2.5, and the
issue's own measurement (`sedscale fit CATALOG --photoz --policy none`, a profile with only the
id and the 7 bands) keeps the outlier fraction under the goal of 9 %.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from sedscale.catalog.photometry import Photometry
from sedscale.sed.photoz import PhotozOptions, photoz_blocks
from tests.commands.test_fit_command import run_sedscale

HDFN = Path(__file__).resolve().parents[2] / "examples" / "hdfn"
#: HDF-N U-dropouts at z_spec 3.18–3.36 that the Gaussian normaliser placed at z ≈ 0.1–0.3.
U_DROPOUTS = (307, 390, 955)


def test_defaults_are_the_documented_recipe() -> None:
    opts = PhotozOptions()
    assert opts.tef and opts.tef_scale == 1.0
    assert not opts.log_norm
    assert opts.prior == "luminosity"
    assert opts.error_floor == 0.02


def test_default_blocks_carry_the_magnitude_prior_and_no_normaliser() -> None:
    """Each block gets the prior's penalty for detected sources (0 for an undetected one)."""
    z = np.array([0.2, 1.0, 3.0])
    pivots = np.array([4000.0, 8000.0, 16000.0])
    grid = np.ones((z.size, 2, 3), np.float32)
    flux = np.array([[1.0, 2.0, 5.0], [0.1, 0.1, 0.1]])  # bright in the reddest band; undetected
    error = np.array([[0.1, 0.1, 0.1], [1.0, 1.0, 1.0]])
    blocks = photoz_blocks(flux, error, grid, np.ones((z.size, 2), bool), z, pivots, PhotozOptions())
    assert len(blocks) == z.size
    assert all(not b.log_norm and b.penalty is not None and b.sigma_extra is not None for b in blocks)
    penalty = np.stack([b.penalty for b in blocks if b.penalty is not None], axis=1)
    assert np.ptp(penalty[0]) > 1.0  # a 22.1 mag source: the prior prefers some redshifts
    np.testing.assert_array_equal(penalty[1], 0.0)
    flat = photoz_blocks(flux, error, grid, np.ones((z.size, 2), bool), z, pivots, PhotozOptions(prior="flat"))
    assert all(b.penalty is None for b in flat)


def _hdfn_photometry() -> tuple[Photometry, np.ndarray]:
    prof = yaml.safe_load((HDFN / "hdfn_photoz_profile.yaml").read_text())
    t = pq.read_table(HDFN / "hdfn_fs99_zspec.parquet")
    flux = np.column_stack([t.column(b["column"]).to_numpy() for b in prof["bands"]]).astype(float)
    err = np.column_stack([t.column(b["error"]).to_numpy() for b in prof["bands"]]).astype(float)
    filters = tuple(str((HDFN / b["filter"]).resolve()) for b in prof["bands"])
    n = t.num_rows
    phot = Photometry(t.column("id").to_numpy().astype(np.int64), flux, err, np.full(n, np.nan), filters,
                      np.arange(n))
    return phot, t.column("z_spec").to_numpy()


@pytest.mark.slow  # the default photo-z grid for the 7 HDF-N filters: ~30 s to build
def test_u_dropouts_stay_at_high_redshift(sedscale_cache_dir: Path) -> None:
    from sedscale.sed.api import fit_photometry
    from sedscale.sed.config import FitConfig

    phot, _ = _hdfn_photometry()
    phot = phot.take(np.flatnonzero(np.isin(phot.source_id, U_DROPOUTS)))
    default = fit_photometry(phot, FitConfig(), photoz=True, cache_dir=sedscale_cache_dir)
    normalised = fit_photometry(phot, FitConfig(), photoz=True, cache_dir=sedscale_cache_dir,
                                photoz_options=PhotozOptions(log_norm=True, prior="flat"))
    assert default.z_phot is not None and normalised.z_phot is not None
    assert np.all(default.z_phot > 2.5), default.z_phot
    assert np.sum(normalised.z_phot < 1.0) >= 2, normalised.z_phot  # the failure the default avoids


@pytest.mark.slow  # the CLI fit of 114 HDF-N sources against the default photo-z grid
def test_hdfn_measurement_as_the_issue_runs_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               sedscale_cache_dir: Path) -> None:
    out = tmp_path / "hdfn_photoz.parquet"
    code = run_sedscale(monkeypatch, "fit", str(HDFN / "hdfn_fs99_zspec.parquet"), "--profile",
                        str(HDFN / "hdfn_photoz_profile.yaml"), "--photoz", "--policy", "none", "-o", str(out),
                        "--cache-dir", str(sedscale_cache_dir))
    assert code == 0
    res = pq.read_table(out)
    z_spec = dict(zip(*(pq.read_table(HDFN / "hdfn_fs99_zspec.parquet").column(c).to_pylist() for c in ("id", "z_spec"))))
    z_true = np.array([z_spec[i] for i in res.column("source_id").to_pylist()], dtype=float)
    z_phot = res.column("z_phot").to_numpy(zero_copy_only=False).astype(float)
    sel = (z_true > 0) & (z_true <= 4) & np.isfinite(z_phot)
    d = (z_phot[sel] - z_true[sel]) / (1 + z_true[sel])
    nmad = 1.48 * float(np.median(np.abs(d - np.median(d))))
    outliers = float(np.mean(np.abs(d) > 0.15))
    print(f"HDF-N photo-z (issue-15 measurement): N={sel.sum()} sigma_NMAD={nmad:.4f} outliers={outliers:.3f}")
    assert sel.sum() == 110
    assert outliers < 0.09  # the issue's goal (8.2 % before the defaults changed; 6.4 % now)
    assert nmad <= 0.042  # 0.0371 with photo-z mode's own 2% floor; 0.048 without it (docs/FITTER.md)
