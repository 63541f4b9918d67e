"""``fit_photometry`` at known redshift on a tiny physics grid: exact recovery and bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from sedscale.catalog.photometry import Photometry
from sedscale.sed.config import FitConfig

BANDS = ("lsst_g", "lsst_r", "lsst_i", "euclid_y", "euclid_j", "euclid_h")
TINY = {"sfh": {"age": [0.5, 2.0, 5.0], "tau": [0.3, 3.0]}, "stellar": {"metallicity": [1.0]},
        "dust_attenuation": {"av": [0.0, 0.5, 1.5]}, "nebular": {"enabled": False},
        "dust_emission": {"enabled": False}, "error_floor": 0.0}


@pytest.fixture(scope="module")
def tiny():
    from sedscale.sed.api import fit_photometry
    from sedscale.sed.grid import build_grid, known_z_nodes

    cfg = FitConfig.from_dict(TINY)
    z = np.array([0.5123, 1.2345, 1.2399, np.nan, 0.8])
    grid = build_grid(cfg, BANDS, known_z_nodes(cfg, z[np.isfinite(z)]))
    # noiseless sources: model j at z, scaled to 10^10 M☉ of surviving stars
    picks = np.array([3, 7, 10, 0, 16])
    flux = np.empty((z.size, len(BANDS)))
    for i, (zi, j) in enumerate(zip(z, picks)):
        zz = 1.0 if not np.isfinite(zi) else zi
        flux[i] = grid.at_redshift(zz)[j] * 1e10 / grid.extensive["mstar"][j]
    err = 0.01 * flux
    flux[4, 2] = np.nan  # one band missing
    phot = Photometry(np.arange(z.size, dtype=np.int64), flux, err, z, BANDS, np.arange(z.size))
    return fit_photometry(phot, cfg), picks, grid


def test_known_redshift_recovers_noiseless_models(tiny):
    res, picks, grid = tiny
    ok = np.array([0, 1, 2, 4])
    np.testing.assert_array_equal(res.best_index[ok], picks[ok])
    np.testing.assert_allclose(res.mean("logmstar")[ok], 10.0, atol=1e-3)
    assert np.all(res.chi2_best[ok] < 1e-3)
    np.testing.assert_allclose(res.mean("av")[ok], grid.intensive["av"][picks[ok]], atol=1e-3)


def test_missing_redshift_and_bookkeeping(tiny):
    res, _, _ = tiny
    assert list(res.fitted) == [True, True, True, False, True]
    assert np.isnan(res.mean("logmstar")[3]) and np.isnan(res.chi2_best[3])
    np.testing.assert_array_equal(res.n_bands, [6, 6, 6, 6, 5])
    np.testing.assert_array_equal(res.dof[[0, 4]], [5, 4])
    assert np.isnan(res.residual_sigma[4, 2])
    for name in ("logmstar", "logsfr", "logsfr10", "ssfr", "age_mw", "av", "ldust", "frac_agn"):
        assert name in res.estimates, name
    assert res.best_flux.shape == (5, len(BANDS)) and res.residual_sigma.shape == (5, len(BANDS))
