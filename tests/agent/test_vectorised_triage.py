"""The vectorised acceptance test and the memoised action application agree with the per-source
definitions they replace on the hot path."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sedscale.agent import source_fits
from sedscale.agent.acceptance import AcceptanceTest
from sedscale.agent.actions import ActionError, DustLaw, Enable, Narrow, Widen
from sedscale.agent.apply import apply_action
from sedscale.sed.config import FitConfig


def _synthetic_fit_arrays(n: int, seed: int) -> SimpleNamespace:
    """FitResult-shaped arrays with every failure reason present (NaN χ², few dof, outliers)."""
    rng = np.random.default_rng(seed)
    chi2 = rng.gamma(2.0, 1.0, n)
    chi2[rng.random(n) < 0.05] = np.nan
    resid = rng.normal(0.0, 1.6, (n, 6))
    resid[rng.random((n, 6)) < 0.2] = np.nan
    resid[rng.random(n) < 0.03] = np.nan  # a source with no observed band at all
    return SimpleNamespace(chi2_red=chi2, chi2_best=chi2 * 4, dof=rng.integers(0, 5, n),
                           n_good_models=rng.integers(0, 4, n), residual_sigma=resid,
                           best_flux=rng.random((n, 6)), estimates={})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_passes_array_agrees_with_the_per_source_test_on_synthetic_fit_arrays(seed: int) -> None:
    result = _synthetic_fit_arrays(3000, seed)
    test = AcceptanceTest(chi2_red_max=2.0, min_dof=2, max_abs_residual=3.0, min_good_models=2)
    fits = source_fits(result)
    expected_pass = np.array([test.passes(f) for f in fits])
    expected_help = np.array([test.agent_can_help(f) for f in fits])
    assert 0 < expected_pass.sum() < len(fits) and 0 < expected_help.sum() < len(fits)
    np.testing.assert_array_equal(test.passes_array(result), expected_pass)
    np.testing.assert_array_equal(test.helpable_array(result), expected_help)


def test_source_fits_of_a_subset_are_the_same_objects_in_content() -> None:
    result = _synthetic_fit_arrays(50, 3)
    idx = np.array([40, 2, 17])
    for f, g in zip(source_fits(result, idx), [source_fits(result)[i] for i in idx]):
        assert f.chi2_red == g.chi2_red or (np.isnan(f.chi2_red) and np.isnan(g.chi2_red))
        np.testing.assert_array_equal(f.residual, g.residual)


def test_memoised_apply_action_returns_what_a_fresh_computation_returns() -> None:
    from sedscale.agent.apply import ApplyLimits, _apply_action

    base = FitConfig()
    for action in (Enable(op="enable", module="agn"), Widen(op="widen", param="dust_attenuation.av", side="up")):
        first, second = apply_action(base, action), apply_action(base, action)
        fresh = _apply_action(base, action, estimates=None, photoz=False, limits=ApplyLimits())
        assert first is second and first == fresh and first.hash() == fresh.hash()
    same_law = DustLaw(op="dust_law", law=base.dust_attenuation.law)
    for _ in range(2):  # the refusal is memoised too, and raised afresh each time
        with pytest.raises(ActionError) as refused:
            apply_action(base, same_law)
        assert refused.value.code == "no_change"


def test_narrow_is_not_memoised_because_it_follows_the_source_estimates() -> None:
    base = FitConfig()
    param = "dust_attenuation.av"
    low = apply_action(base, Narrow(op="narrow", param=param), estimates={"av": (0.1, 0.05)})
    high = apply_action(base, Narrow(op="narrow", param=param), estimates={"av": (2.0, 0.05)})
    assert low.dust_attenuation.av != high.dust_attenuation.av


def test_the_cached_config_digest_follows_a_copy_with_changes() -> None:
    base = FitConfig()
    changed = base.model_copy(update={"agn": base.agn.model_copy(update={"enabled": not base.agn.enabled})})
    assert base.hash() != changed.hash()
    assert changed.hash() == FitConfig.model_validate(changed.model_dump()).hash()
