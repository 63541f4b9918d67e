"""The χ² kernel against a brute-force float64 fit, and its conventions."""

from __future__ import annotations

import numpy as np
import pytest

from sedscale.sed import fitter
from sedscale.sed.fitter import (Block, KernelOptions, ModelSet, Observations, fit_reference,
                                 fit_single_redshift, run_kernel)
from sedscale.sed.kernel_numba import HAVE_NUMBA

from _fitter_synth import synthetic_grid, synthetic_sources

PATHS = [pytest.param(True, id="fused"),
         pytest.param(False, id="array")]


@pytest.fixture(scope="module")
def problem():
    flux, table = synthetic_grid(3000)
    obs, err, idx, log_s = synthetic_sources(flux, 150, snr=20.0, missing=0.1)
    return flux, table, obs, err


@pytest.mark.parametrize("fused", PATHS)
@pytest.mark.parametrize("floor", [0.0, 0.05])
def test_kernel_matches_float64_reference(problem, fused, floor):
    flux, table, obs, err = problem
    res = fit_single_redshift(obs, err, flux, table, floor=floor,
                              options=KernelOptions(use_numba=fused))
    ref = fit_reference(obs, err, flux, table, floor=floor)
    np.testing.assert_allclose(res.chi2_best, ref["chi2_best"], rtol=1e-5, atol=1e-3)
    same = res.best_model == ref["best_model"]
    assert same.mean() > 0.97  # the rest are float32 near-ties, checked through χ²
    np.testing.assert_allclose(res.log_s_best[same], np.log10(ref["s_best"][same]), atol=1e-5)
    for name in ("age", "av", "logmstar", "logsfr"):
        np.testing.assert_allclose(res.estimates[name][0], ref[name], atol=1e-3, err_msg=name)
        np.testing.assert_allclose(res.estimates[name][1], ref[name + "_std"], atol=1e-3, err_msg=name)
    _counts_agree(res.n_good, ref["n_good"])


def _counts_agree(got: np.ndarray, want: np.ndarray) -> None:
    """Model counts within Δχ² agree up to float32 ties at the boundary (χ² good to ~1e-4)."""
    diff = np.abs(got - want)
    assert diff.max() <= 1 and np.mean(diff > 0) < 0.03, (got, want)


@pytest.mark.parametrize("fused", PATHS)
def test_high_snr_rows_are_refined_in_float64(fused):
    flux, table = synthetic_grid(2000, seed=3)
    obs, err, _, _ = synthetic_sources(flux, 40, snr=2000.0, seed=4)
    res = fit_single_redshift(obs, err, flux, table, options=KernelOptions(use_numba=fused))
    ref = fit_reference(obs, err, flux, table)
    np.testing.assert_allclose(res.chi2_best, ref["chi2_best"], rtol=1e-8, atol=1e-6)
    for name in ("age", "logmstar"):
        np.testing.assert_allclose(res.estimates[name][0], ref[name], atol=1e-4, err_msg=name)


@pytest.mark.parametrize("fused", PATHS)
def test_missing_band_weighs_zero(problem, fused, monkeypatch):
    # the 8- and the 7-band model sets would be stored in different shape orders (the key uses
    # every band of the set), and float32 sums in another order differ by ~1e-5: keep grid order
    # so the comparison shows the missing band weighs exactly zero (the order: test_shape_order_*)
    monkeypatch.setattr(fitter, "ORDER_MIN_MODELS", 10**9)
    flux, table, obs, err = problem
    obs = obs.copy()
    err = err.copy()
    obs[:, 2] = np.nan  # band 2 missing everywhere
    opts = KernelOptions(use_numba=fused)
    with_nan = fit_single_redshift(obs, err, flux, table, options=opts)
    keep = [0, 1, 3, 4, 5, 6, 7]
    dropped = fit_single_redshift(obs[:, keep], err[:, keep], flux[:, keep], table, options=opts)
    # The fused kernel sums bands in a fixed order, so a zero-weight band changes nothing; the array
    # path's float32 GEMM blocks an 8- and a 7-band sum differently (OpenBLAS picks its micro-kernel
    # by K and CPU), which moves float32 sums by a few ulp (~5e-6 measured on this CPU class).
    tol = 1e-6 if fused else 2e-5
    np.testing.assert_allclose(with_nan.chi2_best, dropped.chi2_best, rtol=tol, atol=tol)
    for name in ("age", "logmstar"):
        np.testing.assert_allclose(with_nan.estimates[name][0], dropped.estimates[name][0], atol=tol)
    assert np.all(np.isnan(with_nan.residual_sigma[:, 2]))
    np.testing.assert_array_equal(with_nan.n_bands, np.sum(np.isfinite(obs[:, keep]), axis=1))


def test_error_floor_adds_in_quadrature(problem):
    flux, table, obs, err = problem
    a = fit_single_redshift(obs, err, flux, table, floor=0.1)
    inflated = np.sqrt(err**2 + (0.1 * obs) ** 2)
    b = fit_single_redshift(obs, inflated, flux, table, floor=0.0)
    np.testing.assert_allclose(a.chi2_best, b.chi2_best, rtol=1e-9)
    np.testing.assert_allclose(a.estimates["logmstar"][0], b.estimates["logmstar"][0], atol=1e-9)
    assert np.all(a.chi2_best <= fit_single_redshift(obs, err, flux, table).chi2_best + 1e-9)


@pytest.mark.parametrize("fused", PATHS)
def test_delta_chi2_count(problem, fused):
    flux, table, obs, err = problem
    for delta in (1.0, 4.0, 9.0):
        res = fit_single_redshift(obs, err, flux, table,
                                  options=KernelOptions(delta_chi2_good=delta, use_numba=fused))
        ref = fit_reference(obs, err, flux, table, delta_chi2_good=delta)
        _counts_agree(res.n_good, ref["n_good"])
    assert np.all(res.n_good >= 1)


@pytest.mark.parametrize("fused", PATHS)
def test_tiling_does_not_change_answers(problem, fused):
    flux, table, obs, err = problem
    base = fit_single_redshift(obs, err, flux, table,
                               options=KernelOptions(use_numba=fused, rows_per_group=10**6,
                                                     tile_elements=10**9))
    for rows, tile in [(7, 1 << 12), (64, 1 << 15), (150, 1 << 17)]:
        res = fit_single_redshift(obs, err, flux, table,
                                  options=KernelOptions(use_numba=fused, rows_per_group=rows,
                                                        tile_elements=tile))
        np.testing.assert_array_equal(res.best_model, base.best_model)
        np.testing.assert_array_equal(res.n_good, base.n_good)
        # fused: bit-for-bit the same products; array path: the threshold folded into the C GEMM
        # changes float32 rounding with the tile (χ² to ~1e-4, estimates to ~1e-5)
        tol = 1e-6 if fused and HAVE_NUMBA else 5e-4
        for name in ("age", "av", "logmstar", "logsfr"):
            for k in (0, 1):
                np.testing.assert_allclose(res.estimates[name][k], base.estimates[name][k],
                                           rtol=0, atol=tol)


def test_fused_and_array_paths_agree(problem):
    flux, table, obs, err = problem
    a = fit_single_redshift(obs, err, flux, table, options=KernelOptions(use_numba=True))
    b = fit_single_redshift(obs, err, flux, table, options=KernelOptions(use_numba=False))
    np.testing.assert_allclose(a.chi2_best, b.chi2_best, rtol=1e-6, atol=1e-4)
    for name in ("age", "logmstar"):
        np.testing.assert_allclose(a.estimates[name][0], b.estimates[name][0], atol=1e-4)


def test_negative_fluxes_clip_the_normalisation():
    flux, table = synthetic_grid(500)
    obs = -np.abs(np.random.default_rng(2).normal(1.0, 0.1, size=(3, 8)))
    err = np.full_like(obs, 0.5)
    # the moments alone (no posterior pass; with it, an undetected source's mass is its posterior
    # median: tests/sed/test_posterior_percentiles.py)
    res = fit_single_redshift(obs, err, flux, table, options=KernelOptions(posterior_chi2=0.0))
    # every model gets s = 0, so χ² = Σ (f/σ)² and mass-like estimates are undefined
    np.testing.assert_allclose(res.chi2_best, np.sum((obs / err) ** 2, axis=1))
    assert np.all(np.isnan(res.estimates["logmstar"][0]))
    assert np.all(np.isfinite(res.estimates["age"][0]))
    np.testing.assert_allclose(res.best_flux, 0.0)


def test_no_observed_band_gives_nan():
    flux, table = synthetic_grid(200)
    obs = np.full((2, 8), np.nan)
    res = fit_single_redshift(obs, obs, flux, table)
    assert np.all(res.n_bands == 0)
    assert np.all(np.isnan(res.estimates["age"][0])) and np.all(np.isnan(res.chi2_best))


def test_redshift_interpolation_is_exact_through_the_gemms():
    f0, table = synthetic_grid(800, seed=5)
    f1, _ = synthetic_grid(800, seed=6)
    obs, err, _, _ = synthetic_sources(f0, 20, seed=7)
    t = np.linspace(0.0, 1.0, 20)
    mix = np.column_stack([1 - t, t])
    res = run_kernel(Observations(obs, err), [Block(ModelSet(np.stack([f0, f1]), np.arange(800)), mix=mix)],
                     table)
    for i in (0, 7, 19):
        m = (mix[i, 0] * f0.astype(np.float64) + mix[i, 1] * f1.astype(np.float64))
        ref = fit_reference(obs[i : i + 1], err[i : i + 1], m, table)
        np.testing.assert_allclose(res.chi2_best[i], ref["chi2_best"][0], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(res.estimates["logmstar"][0][i], ref["logmstar"][0], atol=1e-4)


def test_recovers_truth_on_noiseless_sources():
    flux, table = synthetic_grid(1000, seed=8)
    obs, err, idx, log_s = synthetic_sources(flux, 30, snr=1e6, seed=9)
    err = obs * 0.01  # noiseless fluxes, 1% errors
    res = fit_single_redshift(obs, err, flux, table)
    np.testing.assert_array_equal(res.best_model, idx)
    np.testing.assert_allclose(res.log_s_best, log_s, atol=1e-5)
    assert np.all(res.chi2_best < 1e-6)
    np.testing.assert_allclose(res.residual_sigma, 0.0, atol=1e-3)


@pytest.mark.parametrize("fused", PATHS)
def test_shape_order_changes_no_estimate(problem, fused, monkeypatch):
    """Model sets stored in shape order (the default above ORDER_MIN_MODELS) give the grid-order
    fit up to float32 summation order: same best models, χ², estimates (to 5e-4, the float64
    reference test's tolerance being 1e-3)."""
    flux, table, obs, err = problem
    assert flux.shape[0] >= fitter.ORDER_MIN_MODELS
    opts = KernelOptions(use_numba=fused)
    ordered = fit_single_redshift(obs, err, flux, table, options=opts)
    monkeypatch.setattr(fitter, "ORDER_MIN_MODELS", 10**9)
    plain = fit_single_redshift(obs, err, flux, table, options=opts)
    np.testing.assert_array_equal(ordered.best_model, plain.best_model)
    np.testing.assert_allclose(ordered.chi2_best, plain.chi2_best, rtol=1e-6, atol=1e-6)
    for name in ("age", "av", "logmstar", "logsfr"):
        for k in (0, 1):
            np.testing.assert_allclose(ordered.estimates[name][k], plain.estimates[name][k], atol=5e-4,
                                       err_msg=name)


def test_shape_order_groups_similar_models():
    """The order is a permutation, stable for identical SEDs, and sorts by the log-flux slope."""
    rng = np.random.default_rng(0)
    slope = rng.uniform(-2, 2, 5000)
    slope[10] = slope[3]  # an identical pair keeps its grid order
    x = np.linspace(-1, 1, 8)
    scaled = 10 ** (slope[:, None] * (x[None, :] - 1))  # largest band = 1
    order = fitter.shape_order(scaled)
    assert sorted(order.tolist()) == list(range(5000))
    assert np.all(np.diff(slope[order]) >= 0)
    pos = np.argsort(order)
    assert pos[10] == pos[3] + 1
    ms = ModelSet(scaled[None].astype(np.float32), np.arange(5000))
    np.testing.assert_array_equal(ms.model_index, order)  # flux and model_index move together
    np.testing.assert_allclose(ms.lin64, scaled[order] / scaled[order].max(axis=1, keepdims=True), rtol=1e-6)
