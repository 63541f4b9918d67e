"""Milky Way dereddening (hand-worked coefficients and factors) and the limits / E(B−V) paths
through the public entry point :func:`sedscale.sed.api.fit_photometry` on a tiny grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sedscale.catalog.photometry import Photometry
from sedscale.sed.api import FitResult
from sedscale.sed.config import FitConfig

Noiseless = tuple[np.ndarray, np.ndarray, FitConfig]

BANDS = ("lsst_g", "lsst_r", "lsst_i", "euclid_y", "euclid_j", "euclid_h")
TINY = {"sfh": {"age": [0.5, 2.0, 5.0], "tau": [0.3, 3.0]}, "stellar": {"metallicity": [1.0]},
        "dust_attenuation": {"av": [0.0, 0.5, 1.5]}, "nebular": {"enabled": False},
        "dust_emission": {"enabled": False}, "error_floor": 0.0}


def test_band_coefficient_of_a_narrow_filter_is_the_law_there(tmp_path: Path) -> None:
    """A 2 Å box at 5500 Å: A/E(B−V) = R_V · A(5500)/A_V of G23 = 3.0954 (the law is normalised
    at V, so ≈ R_V = 3.1); E(B−V) = 0.1 then brightens flux and error by 10^(0.04 · 3.0954)."""
    import astropy.units as u
    from dust_extinction.parameter_averages import G23

    from sedscale.sed.mw_extinction import band_a_over_ebv, deredden

    box = tmp_path / "box5500.dat"
    box.write_text("5498 0\n5499 1\n5501 1\n5502 0\n")
    k = band_a_over_ebv((str(box),))
    assert k[0] == pytest.approx(3.1 * float(G23(Rv=3.1)(1 / (5500 * u.AA))), rel=1e-4)
    assert k[0] == pytest.approx(3.0954, abs=1e-3)
    phot = Photometry(np.array([1, 2]), np.array([[10.0], [10.0]]), np.array([[1.0], [1.0]]),
                      np.array([0.5, 0.5]), (str(box),), np.arange(2), ebv=np.array([0.1, 0.0]))
    out = deredden(phot)
    factor = 10 ** (0.4 * 0.1 * 3.0954)  # = 1.3297
    np.testing.assert_allclose(out.flux[:, 0], [10.0 * factor, 10.0], rtol=2e-4)
    np.testing.assert_allclose(out.error[:, 0], [1.0 * factor, 1.0], rtol=2e-4)
    assert out.extinction.tolist() == [0.0, 0.0]
    assert deredden(out) is out


@pytest.fixture(scope="module")
def noiseless(sedscale_cache_dir: Path) -> Noiseless:
    """Two noiseless sources (model 7 at z = 0.8, model 3 at z = 1.2), 10^10 M☉ each."""
    from sedscale.sed.grid import build_grid

    cfg = FitConfig.from_dict(TINY)
    z = np.array([0.8, 1.2])
    grid = build_grid(cfg, BANDS, np.array([0.8, 1.2]), cache_dir=sedscale_cache_dir)
    flux = np.stack([grid.at_redshift(zi)[j] * 1e10 / grid.extensive["mstar"][j] for zi, j in zip(z, (7, 3))])
    return flux, z, cfg


def _fit(flux: np.ndarray, z: np.ndarray, cfg: FitConfig, cache: Path, **kw: np.ndarray) -> FitResult:
    from sedscale.sed.api import fit_photometry

    phot = Photometry(np.arange(len(z)), flux, 0.02 * np.abs(flux), z, BANDS, np.arange(len(z)), **kw)
    return fit_photometry(phot, cfg, cache_dir=cache)


def test_reddened_sources_fit_as_the_unreddened_ones(noiseless: Noiseless, sedscale_cache_dir: Path) -> None:
    from sedscale.sed.mw_extinction import band_a_over_ebv

    flux, z, cfg = noiseless
    ebv = np.array([0.05, 0.2])
    reddened = flux * 10 ** (-0.4 * ebv[:, None] * band_a_over_ebv(BANDS)[None, :])
    plain = _fit(flux, z, cfg, sedscale_cache_dir)
    corrected = _fit(reddened, z, cfg, sedscale_cache_dir, ebv=ebv)
    np.testing.assert_array_equal(corrected.best_index, plain.best_index)
    np.testing.assert_allclose(corrected.mean("logmstar"), plain.mean("logmstar"), atol=1e-6)
    uncorrected = _fit(reddened, z, cfg, sedscale_cache_dir)
    assert np.all(uncorrected.chi2_best > 10 * np.maximum(plain.chi2_best, 1e-3))


def test_limits_through_fit_photometry(noiseless: Noiseless, sedscale_cache_dir: Path) -> None:
    """A limit far above the model changes nothing; a limit below the model's flux in that band
    pulls the mass down; a source without limits in the same call is not affected."""
    flux, z, cfg = noiseless
    base = _fit(flux, z, cfg, sedscale_cache_dir)
    limited = flux.copy()
    is_limit = np.zeros(flux.shape, bool)
    is_limit[0, 5] = True
    limited[0, 5] = 1e3 * flux[0, 5]  # uninformative limit (σ = 2% of it: still far above)
    far = _fit(limited, z, cfg, sedscale_cache_dir, is_limit=is_limit)
    np.testing.assert_allclose(far.mean("logmstar"), base.mean("logmstar"), atol=2e-4)
    assert far.n_bands.tolist() == [6, 6]
    limited[0, 5] = 0.3 * flux[0, 5]
    tight = _fit(limited, z, cfg, sedscale_cache_dir, is_limit=is_limit)
    assert tight.mean("logmstar")[0] < base.mean("logmstar")[0] - 0.01
    assert tight.mean("logmstar")[1] == base.mean("logmstar")[1]
    assert np.isfinite(tight.chi2_red[0]) and tight.best_index[0] >= 0
