"""Upper limits in the likelihood (Sawicki 2012 eq. 8), checked against hand-worked cases, the
float64 reference fit and the public fit entry point."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf
from scipy.stats import norm

from sedscale.sed.estimates import ModelTable
from sedscale.sed.fitter import Block, KernelOptions, ModelSet, Observations, fit_reference
from sedscale.sed.limits import best_normalisation, limit_chi2, run_kernel_with_limits


def sawicki_minus_2lnl(f_lim: float, sigma: float, model: float) -> float:
    """Sawicki (2012) eq. 8, one limit band, written out with erf."""
    return float(-2.0 * np.log(np.sqrt(np.pi / 2) * sigma * (1 + erf((f_lim - model) / (np.sqrt(2) * sigma)))))


def test_limit_term_is_sawickis_plus_a_model_independent_constant() -> None:
    for f_lim, sigma, model in ((5.0, 1.0, 7.3), (0.3, 0.1, 0.0), (2.0, 0.5, 1.0)):
        ours = float(limit_chi2(np.array(f_lim), np.array(sigma), np.array(model)))
        assert ours == pytest.approx(sawicki_minus_2lnl(f_lim, sigma, model) + np.log(2 * np.pi * sigma**2),
                                     rel=1e-12, abs=1e-12)


def test_far_limit_leaves_the_gaussian_fit_alone() -> None:
    """One model (1, 0.1); f = 10 ± 1 detected, a limit of 5 (σ 0.5) in band 2. At the Gaussian
    best s = 10 the model gives 1 in band 2, (5 − 1)/0.5 = 8 σ below the limit: s stays 10 and
    Sawicki's term is −2 ln(√(π/2) · 0.5 · 2) = −0.4516 (χ² term −2 ln Φ(8) ≈ 1e-15)."""
    fit = best_normalisation(np.array([10.0, 5.0]), np.array([1.0, 0.5]), np.array([False, True]),
                             np.array([[1.0, 0.1]]))
    assert fit.s[0] == pytest.approx(10.0, rel=1e-12)
    assert fit.chi2[0] == pytest.approx(0.0, abs=1e-12)
    # the likelihood of s is the measured band's Gaussian: A/C = 10, C^-1/2 = 1
    assert fit.a_hat[0] == pytest.approx(10.0, rel=1e-9) and fit.sigma[0] == pytest.approx(1.0, rel=1e-9)
    assert sawicki_minus_2lnl(5.0, 0.5, 1.0) == pytest.approx(-0.45158, abs=1e-5)


def test_binding_limit_pulls_the_normalisation_down() -> None:
    """One model (1, 1); f = 10 ± 1 detected, limit 5 (σ 1). dχ²/ds = 2(s − 10) + 2 φ(u)/Φ(u) with
    u = 5 − s. By hand: at s = 7.30, u = −2.30, φ/Φ = 0.028327/0.010724 = 2.641 < 10 − s = 2.70;
    at s = 7.35, φ/Φ = 0.025218/0.0093867 = 2.687 > 2.65: the root lies in (7.30, 7.35)."""
    fit = best_normalisation(np.array([10.0, 5.0]), np.array([1.0, 1.0]), np.array([False, True]),
                             np.array([[1.0, 1.0]]))
    s, chi2 = fit.s, fit.chi2
    assert 7.30 < s[0] < 7.35
    u = 5.0 - s[0]
    assert s[0] - 10.0 + norm.pdf(u) / norm.cdf(u) == pytest.approx(0.0, abs=1e-10)  # first-order condition
    assert chi2[0] == pytest.approx((10 - s[0]) ** 2 - 2 * np.log(norm.cdf(u)), rel=1e-12)
    # −2 ln L of Sawicki's eq. 8 (the Gaussian band's constant ln 2πσ² left out, as the kernel does)
    minus_2lnl = (10 - s[0]) ** 2 + sawicki_minus_2lnl(5.0, 1.0, s[0])
    assert chi2[0] - np.log(2 * np.pi) == pytest.approx(minus_2lnl, rel=1e-12)
    # Laplace width: χ²'' = 2 + 2 (u λ + λ²), λ = φ(u)/Φ(u); at the interior optimum a_hat = s
    lam = norm.pdf(u) / norm.cdf(u)
    assert fit.sigma[0] == pytest.approx((1 + u * lam + lam * lam) ** -0.5, rel=1e-9)
    assert fit.a_hat[0] == pytest.approx(s[0], rel=1e-9)


def test_only_limits_give_zero_normalisation() -> None:
    fit = best_normalisation(np.array([0.3, 0.6]), np.array([0.1, 0.2]), np.array([True, True]),
                             np.array([[1.0, 2.0], [0.5, 0.1]]))
    s, chi2 = fit.s, fit.chi2
    np.testing.assert_array_equal(s, [0.0, 0.0])
    assert np.all(fit.a_hat < 0)  # the likelihood peaks at a negative s: truncated at 0
    expected = -2 * np.log(norm.cdf(3.0)) * 2  # u = 0.3/0.1 = 0.6/0.2 = 3 in both bands
    np.testing.assert_allclose(chi2, expected, rtol=1e-12)


def _table(m: int) -> ModelTable:
    rng = np.random.default_rng(1)
    return ModelTable.from_dicts({"av": rng.uniform(0, 2, m), "age": rng.uniform(0.1, 10, m)},
                                 {"mstar": rng.uniform(0.5, 2.0, m)}, {"mstar": "logmstar"})


def test_an_irrelevant_limit_gives_the_float64_reference_fit() -> None:
    """A limit 1e6 σ above every model changes nothing: estimates equal the reference fit of the
    detected bands alone (same weights, same estimates as the kernel)."""
    rng = np.random.default_rng(3)
    models = rng.uniform(0.1, 1.0, (40, 4))
    table = _table(40)
    flux = np.array([[5.0, 6.0, 4.0, 1e6], [3.0, 2.0, 2.5, 1e6]])
    error = np.array([[0.5, 0.6, 0.4, 1.0], [0.3, 0.2, 0.25, 1.0]])
    is_limit = np.zeros((2, 4), bool)
    is_limit[:, 3] = True
    as_stored = models.astype(np.float32).astype(np.float64)  # a ModelSet keeps float32 fluxes
    ref = fit_reference(flux[:, :3], error[:, :3], as_stored[:, :3], table)
    out = run_kernel_with_limits(Observations(flux, error), [Block(ModelSet(models[None], np.arange(40)))],
                                 table, KernelOptions(), np, is_limit)
    np.testing.assert_array_equal(out.best_model, ref["best_model"])
    np.testing.assert_allclose(out.chi2_best, ref["chi2_best"], rtol=1e-9)
    for name in ("av", "age", "logmstar"):
        np.testing.assert_allclose(out.estimates[name][0], ref[name], rtol=1e-4)  # window of 30 in χ²
    # percentiles: the kernel's post-pass with the exact Gaussian of s; same as the kernel's own
    kernel = run_kernel_with_limits(Observations(flux[:, :3], error[:, :3]),
                                    [Block(ModelSet(models[None, :, :3], np.arange(40)))], table,
                                    KernelOptions(), np, np.zeros((2, 3), bool))
    for name in ("logmstar", "av"):
        np.testing.assert_allclose(out.percentiles[name], kernel.percentiles[name], rtol=1e-5)
    np.testing.assert_array_equal(out.n_bands, [4, 4])


def test_mixed_call_keeps_order_and_plain_sources_untouched() -> None:
    rng = np.random.default_rng(5)
    models = rng.uniform(0.1, 1.0, (30, 3))
    table = _table(30)
    flux = rng.uniform(1.0, 5.0, (5, 3))
    error = 0.1 * flux
    is_limit = np.zeros((5, 3), bool)
    is_limit[[1, 3], 2] = True
    flux[[1, 3], 2] = 0.05  # tight limits, far below what the detected bands ask for
    block = Block(ModelSet(models[None], np.arange(30)))
    mixed = run_kernel_with_limits(Observations(flux, error), [block], table, KernelOptions(), np, is_limit)
    plain_rows = np.array([0, 2, 4])
    alone = run_kernel_with_limits(Observations(flux[plain_rows], error[plain_rows]), [block], table,
                                   KernelOptions(), np, is_limit[plain_rows])
    np.testing.assert_array_equal(mixed.best_model[plain_rows], alone.best_model)
    np.testing.assert_array_equal(mixed.estimates["logmstar"][0][plain_rows], alone.estimates["logmstar"][0])
    # the limit sources' χ², recomputed from their best-fit fluxes: Gaussian terms + −2 ln Φ
    for r in (1, 3):
        bf = mixed.best_flux[r]
        expected = np.sum(((flux[r, :2] - bf[:2]) / error[r, :2]) ** 2) - 2 * norm.logcdf((0.05 - bf[2]) / error[r, 2])
        assert mixed.chi2_best[r] == pytest.approx(expected, rel=1e-9)
    assert np.all(np.isfinite(mixed.estimates["logmstar"][0]))
    unlimited = run_kernel_with_limits(Observations(flux[[1, 3]][:, :2], error[[1, 3]][:, :2]),
                                       [Block(ModelSet(models[None, :, :2], np.arange(30)))], table,
                                       KernelOptions(), np, np.zeros((2, 2), bool))
    assert np.all(mixed.estimates["logmstar"][0][[1, 3]] < unlimited.estimates["logmstar"][0])


def test_photoz_blocks_priors_and_template_error_match_the_kernel() -> None:
    """Photo-z-shaped blocks (per-node penalty, template error, Σ ln σ² term): an irrelevant
    limit leaves estimates and the per-block weights (P(z)) at the kernel's values."""
    rng = np.random.default_rng(7)
    sets = [ModelSet(rng.uniform(0.1, 1.0, (1, 25, 4)), np.arange(25)) for _ in range(3)]
    blocks = [Block(ms, sigma_extra=np.full(4, 0.05 * (k + 1)), penalty=np.array([0.3 * k, 1.0 - 0.2 * k]),
                    log_norm=True) for k, ms in enumerate(sets)]
    table = _table(25)
    flux = rng.uniform(1.0, 5.0, (2, 4))
    error = 0.05 * flux
    kernel = run_kernel_with_limits(Observations(flux[:, :3], error[:, :3]),
                                    [Block(ModelSet(b.models.flux[:, :, :3], b.models.model_index),
                                           sigma_extra=np.asarray(b.sigma_extra)[:3], penalty=b.penalty,
                                           log_norm=True)
                                     for b in blocks], table, KernelOptions(), np, np.zeros((2, 3), bool))
    flux[:, 3], error[:, 3] = 1e7, 1.0
    is_limit = np.zeros((2, 4), bool)
    is_limit[:, 3] = True
    exact = run_kernel_with_limits(Observations(flux, error), blocks, table, KernelOptions(), np, is_limit)
    np.testing.assert_allclose(exact.block_prob, kernel.block_prob, rtol=1e-4)
    for name in ("av", "age", "logmstar"):
        np.testing.assert_allclose(exact.estimates[name][0], kernel.estimates[name][0], rtol=1e-4)


def test_a_source_with_only_limits_is_fitted_with_a_mass_upper_limit() -> None:
    """Every model's best s is 0: no mean of log10(s·x) over s > 0, so (as the kernel does for an
    undetected source) the estimate is the posterior median and p975 is the upper limit."""
    rng = np.random.default_rng(2)
    models = rng.uniform(0.1, 1.0, (20, 3))
    flux, error = np.array([[0.3, 0.3, 0.3]]), np.array([[0.1, 0.1, 0.1]])
    out = run_kernel_with_limits(Observations(flux, error), [Block(ModelSet(models[None], np.arange(20)))],
                                 _table(20), KernelOptions(), np, np.ones((1, 3), bool))
    q = out.percentiles["logmstar"][0]
    assert np.all(np.isfinite(q)) and np.all(np.diff(q) > 0)
    assert out.estimates["logmstar"][0][0] == pytest.approx(q[2])
    assert out.log_s_best[0] == -np.inf and out.best_model[0] >= 0


def test_a_met_limit_has_no_residual_and_an_exceeded_one_a_negative_one() -> None:
    """One model (1, 0.1, 1): bands 1 and 3 detected at 10 ± 1, band 2 a limit. With the limit at
    5 (σ 0.5) the best s = 10 puts the model at 1, 8σ below it: residual 0, not +8 — so neither the
    acceptance test's |r| cut nor a rule reads a met limit as missing flux. With the limit at 0.2
    (σ 0.1) the model cannot drop below it while fitting bands 1 and 3: its residual is
    (0.2 − s·0.1)/0.1 < 0, the same as a measured band's would be, and the detected bands keep theirs."""
    table = _table(1)
    block = Block(ModelSet(np.array([[[1.0, 0.1, 1.0]]]), np.arange(1)))
    is_limit = np.array([[False, True, False]] * 2)
    flux = np.array([[10.0, 5.0, 10.0], [10.0, 0.2, 10.0]])
    error = np.array([[1.0, 0.5, 1.0], [1.0, 0.1, 1.0]])
    out = run_kernel_with_limits(Observations(flux, error, 0.0), [block], table, KernelOptions(), np, is_limit)
    assert out.residual_sigma[0, 1] == 0.0
    np.testing.assert_allclose(out.residual_sigma[0, [0, 2]], 0.0, atol=1e-9)
    s = out.best_flux[1, 0]
    assert out.residual_sigma[1, 1] == pytest.approx((0.2 - 0.1 * s) / 0.1, rel=1e-6)  # models are float32
    assert out.residual_sigma[1, 1] < -1.0
    np.testing.assert_allclose(out.residual_sigma[1, [0, 2]], (10.0 - s) / 1.0, rtol=1e-6)
