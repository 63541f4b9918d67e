"""Posterior percentiles (sedscale.sed.posterior): the kernel's window against a brute-force
float64 posterior over every model, the quantile helpers against closed forms, and undetected
sources (every normalisation ≤ 0) getting a proper posterior instead of NaN."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import truncnorm

from _fitter_synth import synthetic_grid, synthetic_sources
from sedscale.sed.estimates import ModelTable
from sedscale.sed import posterior
from sedscale.sed.fitter import KernelOptions, KernelResult, Observations, fit_single_redshift
from sedscale.sed.posterior import (
    LEVELS,
    Candidates,
    binned_quantiles,
    normalisation_nodes,
    percentiles,
    weighted_quantiles,
)


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, ModelTable, np.ndarray, np.ndarray]:
    flux, table = synthetic_grid(3000, 8, seed=5)
    f, e, _, _ = synthetic_sources(flux, 120, snr=8.0, seed=6, missing=0.1)
    return flux, table, f, e


def _all_pairs(flux: np.ndarray, error: np.ndarray, models: np.ndarray) -> Candidates:
    """Every (source, model) pair in float64: the posterior without any window."""
    sig = Observations(flux, error).sigma_eff(slice(None))
    w = np.where(np.isfinite(sig), 1.0 / np.where(np.isfinite(sig), sig, 1.0) ** 2, 0.0)
    f = np.nan_to_num(flux)
    m = np.asarray(models, np.float64)
    a = (w * f) @ m.T
    c = w @ (m * m).T
    chi2 = np.sum(w * f * f, axis=1)[:, None] - np.where(a > 0, a * a / c, 0.0)
    n, n_models = a.shape
    rows = np.repeat(np.arange(n), n_models)
    model = np.tile(np.arange(n_models), n)
    return Candidates(n, rows, model, chi2.ravel(), (a / c).ravel(), (1.0 / np.sqrt(c)).ravel(),
                      np.zeros(rows.size))


@pytest.mark.parametrize("fused", [True, False])
def test_window_holds_the_posterior_and_matches_brute_force(problem, fused: bool,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    flux, table, f, e = problem
    res = fit_single_redshift(f, e, flux, table, options=KernelOptions(use_numba=fused))
    # the window (Δχ² ≤ 20) holds all but a negligible share of the likelihood weight
    assert np.nanmin(res.window_mass) > 0.999
    # the reference: every model, each with the finest normalisation nodes
    monkeypatch.setattr(posterior, "NODE_BUDGET", 64 * flux.shape[0])
    brute = percentiles(_all_pairs(f, e, flux), table, ("logmstar", "logsfr", "av"))
    for name in ("logmstar", "logsfr", "av"):
        got = res.percentiles[name]
        assert got.shape == (len(f), LEVELS.size) and np.all(np.isfinite(got))
        assert np.all(np.diff(got, axis=1) >= -1e-12)  # ordered
        # node resolution and window truncation: ≤ 0.01 + 2% of the 68% width
        width = brute[name][:, 3] - brute[name][:, 1]
        assert np.all(np.abs(got[:, 1:4] - brute[name][:, 1:4]) < 0.01 + 0.02 * width[:, None]), name


def test_candidates_weighted_mean_matches_kernel_mean(problem) -> None:
    """The window's weighted mean of A_V is the kernel's moment mean (same weights)."""
    flux, table, f, e = problem
    res = fit_single_redshift(f, e, flux, table)
    cand = _all_pairs(f, e, flux)
    w = cand.weights()
    inside = cand.chi2 <= np.minimum.reduceat(cand.chi2, np.arange(0, cand.rows.size, flux.shape[0]))[cand.rows] + 20
    av = table.intensive[cand.model, table.intensive_names.index("av")]
    mean = np.bincount(cand.rows[inside], weights=(w * av)[inside]) / np.bincount(cand.rows[inside], weights=w[inside])
    assert np.max(np.abs(mean - res.estimates["av"][0])) < 1e-3


def test_fused_and_array_paths_agree(problem) -> None:
    flux, table, f, e = problem
    a = fit_single_redshift(f, e, flux, table, options=KernelOptions(use_numba=True))
    b = fit_single_redshift(f, e, flux, table, options=KernelOptions(use_numba=False))
    for name in ("logmstar", "logsfr", "av"):
        np.testing.assert_allclose(a.percentiles[name], b.percentiles[name], atol=2e-3)


def test_no_percentiles_when_switched_off(problem) -> None:
    flux, table, f, e = problem
    on = fit_single_redshift(f, e, flux, table)
    off = fit_single_redshift(f, e, flux, table, options=KernelOptions(posterior_chi2=0.0))
    assert off.percentiles == {}
    for name, (mean, std) in on.estimates.items():  # listing more pairs changes no estimate
        np.testing.assert_array_equal(mean, off.estimates[name][0])
        np.testing.assert_array_equal(std, off.estimates[name][1])
    np.testing.assert_array_equal(on.n_good, off.n_good)


def test_weighted_quantiles_closed_form() -> None:
    rows = np.array([0, 0, 0, 0, 1])
    values = np.array([3.0, 1.0, 2.0, 4.0, 7.0])
    weights = np.array([1.0, 1.0, 1.0, 1.0, 2.0])
    q = weighted_quantiles(rows, values, weights, 3, np.array([0.125, 0.5, 0.875, 0.99]))
    # the inverse CDF of the samples, each smeared over one of 2048 bins of its source's range
    np.testing.assert_allclose(q[0], [1.0, 2.0, 4.0, 4.0], atol=3.0 / 2048)
    np.testing.assert_allclose(q[1], 7.0)
    assert np.all(np.isnan(q[2]))  # no samples


def test_binned_quantiles_spread_over_cells() -> None:
    centres = np.array([0.0, 1.0, 2.0])
    prob = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 0.0]])
    q = binned_quantiles(prob, centres, np.array([0.25, 0.4, 0.75]))
    np.testing.assert_allclose(q[0], [0.75, 0.9, 1.25])  # the cell [0.5, 1.5]
    np.testing.assert_allclose(q[1], [0.25, 0.4, 1.75])  # half-cells at the ends
    assert np.all(np.isnan(q[2]))


@pytest.mark.parametrize("a_hat", [-40.0, -3.0, 0.0, 0.5, 3.0, 50.0])
def test_normalisation_nodes_are_truncated_normal_quantiles(a_hat: float) -> None:
    u = np.array([0.025, 0.16, 0.5, 0.84, 0.975])
    got = normalisation_nodes(np.full(u.size, a_hat), np.full(u.size, 2.0), u)
    want = truncnorm.ppf(u, -a_hat / 2.0, np.inf, loc=a_hat, scale=2.0)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert np.all(got > 0)


def _undetected(flux: np.ndarray, table: ModelTable, f: np.ndarray, e: np.ndarray) -> KernelResult:
    return fit_single_redshift(f, e, flux, table)


@pytest.mark.parametrize("kind", ["zero", "negative", "noise"])
def test_undetected_sources_get_a_mass_posterior(problem, kind: str) -> None:
    """Every flux 0, every flux negative, or noise only: a finite log M* (the posterior median)
    and an upper limit (p975) above it — not NaN."""
    flux, table, _, _ = problem
    rng = np.random.default_rng(9)
    err = np.full((20, flux.shape[1]), 1.0)
    f = {"zero": np.zeros_like(err), "negative": -np.abs(rng.normal(1.0, 0.3, err.shape)),
         "noise": rng.normal(0.0, 1.0, err.shape)}[kind]
    res = _undetected(flux, table, f, err)
    mean, std = res.estimates["logmstar"]
    p = res.percentiles["logmstar"]
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)
    assert np.all(p[:, 4] > p[:, 2]) and np.all(np.isfinite(p))
    if kind != "noise":  # no model has a positive normalisation: the column is the median
        np.testing.assert_array_equal(mean, p[:, 2])
    # an upper limit of the right size: a 1 µJy error allows ≲ 2-3σ of flux in the best band
    upper_flux = 10 ** p[:, 4] / 10 ** table.log_extensive[:, 0].min() * flux.max()
    assert np.all(upper_flux < 1e3 * 1e9)


def test_detected_sources_keep_their_estimates(problem) -> None:
    """Sources with positive normalisations keep the moment mean as their column."""
    flux, table, f, e = problem
    res = fit_single_redshift(f, e, flux, table)
    off = fit_single_redshift(f, e, flux, table, options=KernelOptions(posterior_chi2=0.0))
    finite = np.isfinite(off.estimates["logmstar"][0])
    assert finite.all()
    np.testing.assert_array_equal(res.estimates["logmstar"][0], off.estimates["logmstar"][0])


def test_z_phot_percentiles_are_the_pz_summary() -> None:
    """p16/p50/p84 of z_phot are summarize_pz's z_lo68/z_median/z_hi68 (one distribution)."""
    from sedscale.sed.photoz import pz_percentiles, summarize_pz

    z = 10 ** np.arange(0.0, 0.7, 0.005) - 1.0
    rng = np.random.default_rng(4)
    centre = rng.uniform(0.2, 3.0, 30)
    prob = np.exp(-0.5 * ((z[None, :] - centre[:, None]) / 0.1) ** 2) + 1e-3 * rng.uniform(size=(30, z.size))
    summary = summarize_pz(prob, z)
    pct = pz_percentiles(summary.pz, z)
    np.testing.assert_allclose(pct[:, 1], summary.z_lo68, rtol=1e-9)
    np.testing.assert_allclose(pct[:, 2], summary.z_median, rtol=1e-9)
    np.testing.assert_allclose(pct[:, 3], summary.z_hi68, rtol=1e-9)
    assert np.all(pct[:, 0] <= pct[:, 1]) and np.all(pct[:, 4] >= pct[:, 3])
