"""Photo-z: P(z) summaries, recovery on noiseless synthetic sources, and the real HDF-N catalogue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sedscale.sed.estimates import ModelTable
from sedscale.sed.fitter import KernelOptions, Observations, run_kernel
from sedscale.sed.photoz import (PhotozOptions, luminosity_prior, photoz_blocks, summarize_pz,
                                 template_error)

HDFN = Path(__file__).resolve().parents[2] / "examples" / "hdfn"  # a copy of shared/data/hdfn_fs99
HDFN_BANDS = ["f300w", "f450w", "f606w", "f814w", "irimj", "irimh", "irimk"]
HDFN_FILTERS = ["F10_wfpc2_f300w", "F12_wfpc2_f450w", "F14_wfpc2_f606w", "F16_wfpc2_f814w",
                "F26_kpno_irim_j", "F27_kpno_irim_h", "F28_kpno_irim_k"]


def _toy_photoz_grid(m: int = 200, nz: int = 120, seed: int = 0):
    """A rest-frame SED family (power law, 4000 Å break, Lyman break, reddening) in 8 bands."""
    rng = np.random.default_rng(seed)
    z = 10 ** np.linspace(np.log10(1.05), np.log10(7.0), nz) - 1.0
    piv = np.geomspace(3500.0, 22000.0, 8)
    slope, brk, av = rng.uniform(-2.5, 0.5, m), rng.uniform(0.2, 1.5, m), rng.uniform(0, 1.5, m)
    rest = piv[None, :] / (1 + z[:, None])
    x = np.log10(rest / 5500.0)
    flux = (10 ** (slope[None, :, None] * x[:, None, :])
            * (1 + brk[None, :, None] / (1 + np.exp(-(rest[:, None, :] - 4000.0) / 150.0)))
            * 10 ** (-0.4 * av[None, :, None] * (5500.0 / rest[:, None, :]))
            / (1 + np.exp(-(rest[:, None, :] - 1216.0) / 30.0))) * 1e-9
    table = ModelTable.from_dicts({"av": av}, {"mstar": np.full(m, 0.7)}, {"mstar": "logmstar"})
    return z, piv, flux.astype(np.float32), table


def test_summary_of_a_known_pz():
    z = 10 ** np.linspace(0, np.log10(5.0), 400) - 1.0
    x = np.log10(1 + z)
    mu, sig = np.log10(1 + 1.5), 0.01
    p = np.exp(-0.5 * ((x - mu) / sig) ** 2)[None, :]
    s = summarize_pz(p, z)
    assert abs(s.z_best[0] - 1.5) < 2e-3
    assert abs(s.z_median[0] - 1.5) < 2e-3
    lo, hi = 10 ** (mu - sig) - 1, 10 ** (mu + sig) - 1
    assert abs(s.z_lo68[0] - lo) < 5e-3 and abs(s.z_hi68[0] - hi) < 5e-3
    np.testing.assert_allclose(s.pz.sum(axis=1), 1.0)


def test_template_error_shape():
    te = template_error(np.array([900.0, 5000.0, 12000.0, 60000.0]))
    assert te[1] < 0.03 and te[2] < 0.03
    assert te[0] > 0.15 and te[3] > 0.15


def test_luminosity_prior_favours_low_z_for_bright_sources():
    z = np.linspace(0.05, 6.0, 100)
    pen = luminosity_prior(np.array([18.0, 26.0, np.nan]), z)
    bright, faint, none = pen
    assert z[np.argmin(bright)] < z[np.argmin(faint)]
    assert bright[-1] > 100.0  # a z = 6 galaxy at m = 18 is (almost) excluded
    np.testing.assert_array_equal(none, 0.0)


@pytest.mark.parametrize("tef", [False, True])
def test_photoz_recovers_redshift_of_noiseless_sources(tef):
    z, piv, flux, table = _toy_photoz_grid()
    rng = np.random.default_rng(1)
    iz = rng.integers(5, z.size - 5, 60)
    im = rng.integers(0, flux.shape[1], 60)
    obs = flux[iz, im].astype(np.float64) * 1e10
    err = 0.02 * obs
    blocks = photoz_blocks(obs, err, flux, np.ones(flux.shape[:2], bool), z, piv,
                           PhotozOptions(tef=tef))
    res = run_kernel(Observations(obs, err), blocks, table, KernelOptions(n_free=2))
    s = summarize_pz(res.block_prob, z)
    dz = np.abs(s.z_best - z[iz]) / (1 + z[iz])
    assert np.median(dz) < 0.005
    assert np.mean(dz > 0.05) < 0.05
    np.testing.assert_array_equal(res.best_block[dz < 0.005], iz[dz < 0.005])
    assert np.all((s.z_lo68 <= s.z_median + 1e-9) & (s.z_median <= s.z_hi68 + 1e-9))


def load_hdfn(spec_only: bool = True):
    """The HDF-N FS99 catalogue as (Photometry, z_spec), read with pyarrow (no profile layer)."""
    import pyarrow.csv as pv

    from sedscale.catalog.photometry import Photometry

    name = "hdfn_fs99_zspec_uJy.csv" if spec_only else "hdfn_fs99_uJy.csv"
    t = pv.read_csv(HDFN / name).to_pydict()
    flux = np.column_stack([t[f"f_{b}_uJy"] for b in HDFN_BANDS]).astype(np.float64)
    err = np.column_stack([t[f"e_{b}_uJy"] for b in HDFN_BANDS]).astype(np.float64)
    zs = np.asarray(t["z_spec"], dtype=np.float64)
    filters = tuple(str(HDFN / "filters" / f"{f}.dat") for f in HDFN_FILTERS)
    phot = Photometry(np.asarray(t["id"], np.int64), flux, err, np.full(zs.size, np.nan), filters,
                      np.arange(zs.size))
    return phot, zs


def photoz_metrics(z_phot: np.ndarray, z_spec: np.ndarray) -> tuple[float, float, int]:
    """σ_NMAD, outlier fraction and N over 0 < z_spec ≤ 4 (definitions of the HDF-N README)."""
    sel = (z_spec > 0) & (z_spec <= 4) & np.isfinite(z_phot)
    dz = (z_phot - z_spec)[sel] / (1 + z_spec[sel])
    nmad = 1.48 * np.median(np.abs(dz - np.median(dz)))
    return float(nmad), float(np.mean(np.abs(dz) > 0.15)), int(sel.sum())


@pytest.mark.slow
def test_hdfn_real_photoz(sedscale_cache_dir):
    from sedscale.sed.api import fit_photometry
    from sedscale.sed.config import FitConfig

    phot, zs = load_hdfn()
    res = fit_photometry(phot, FitConfig(), photoz=True, cache_dir=sedscale_cache_dir)
    nmad, out, n = photoz_metrics(res.z_phot, zs)
    print(f"HDF-N photo-z (z_phot = median of P(z)): N={n} sigma_NMAD={nmad:.4f} outliers={out:.3f}")
    assert n >= 105
    assert nmad <= 0.05
    assert out <= 0.15
    assert np.all(res.n_bands == 7)
    assert np.all(np.isfinite(res.estimates["logmstar"][0]))
