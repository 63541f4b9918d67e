"""Star-formation histories as mass fractions per SSP age bin, integrated analytically.

For each SFH in the grid, W[s, k] is the fraction of the (unit) formed mass born in age bin k
(lookback ages AGE_EDGES_YR[k] … AGE_EDGES_YR[k+1]). Integrating the SFR analytically over each
bin (rather than sampling it) keeps short τ and young bursts exact. Model fluxes are then W @
(SSP band fluxes): the SFH enters the grid as one matrix product.

Families (t = time since the onset of star formation, ``age`` ago; SFR = 0 before):
delayed SFR ∝ t e^{−t/τ}; exponential SFR ∝ e^{−t/τ}; constant; delayed_burst = (1 − f) delayed +
f constant over the last ``burst_age`` Myr.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sedscale.sed.config import SFHConfig
from sedscale.sed.ssp import AGE_CENTRES_YR, AGE_EDGES_YR


def _cumulative_mass(family: str, t: np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """Mass formed between onset and time ``t`` (yr) for unit SFR normalisation (``tau`` a
    scalar, or an array broadcasting against ``t``)."""
    t = np.maximum(t, 0.0)
    if family == "constant":
        return t
    x = t / tau
    if family == "exponential":
        return -tau * np.expm1(-x)
    if family == "delayed":
        return tau**2 * (-np.expm1(-x) - x * np.exp(-x))
    raise ValueError(family)


def bin_masses(family: str, age_yr: float, tau_yr: float = 1.0, edges: np.ndarray = AGE_EDGES_YR) -> np.ndarray:
    """Fraction of the formed mass in each lookback bin [edges[k], edges[k+1]] (sums to 1)."""
    t_hi = np.clip(age_yr - edges[:-1], 0.0, age_yr)  # time since onset at the bin's young edge
    t_lo = np.clip(age_yr - edges[1:], 0.0, age_yr)
    m = _cumulative_mass(family, t_hi, tau_yr) - _cumulative_mass(family, t_lo, tau_yr)
    return m / m.sum()


def mass_within(family: str, age_yr: float, tau_yr: float, lookback_yr: float) -> float:
    """Fraction of the formed mass born in the last ``lookback_yr`` years."""
    total = _cumulative_mass(family, np.array(age_yr), tau_yr)
    early = _cumulative_mass(family, np.array(age_yr - lookback_yr), tau_yr)
    return float((total - early) / total)


def delayed_burst_weights(
    age_gyr: np.ndarray, tau_gyr: np.ndarray, burst_age_myr: np.ndarray, burst_fraction: np.ndarray
) -> np.ndarray:
    """(N, n_age) bin weights for N delayed-τ + burst histories at once (per-source models)."""
    a = np.asarray(age_gyr, dtype=np.float64)[:, None] * 1e9
    t = np.asarray(tau_gyr, dtype=np.float64)[:, None] * 1e9
    b = np.asarray(burst_age_myr, dtype=np.float64)[:, None] * 1e6
    f = np.asarray(burst_fraction, dtype=np.float64)[:, None]

    def masses(family: str, age: np.ndarray, tau: np.ndarray) -> np.ndarray:
        t_hi = np.clip(age - AGE_EDGES_YR[None, :-1], 0.0, age)
        t_lo = np.clip(age - AGE_EDGES_YR[None, 1:], 0.0, age)
        m = _cumulative_mass(family, t_hi, tau) - _cumulative_mass(family, t_lo, tau)
        return m / m.sum(axis=1, keepdims=True)

    return (1.0 - f) * masses("delayed", a, t) + f * masses("constant", b, t)


def delayed_burst_sfr(
    age_gyr: np.ndarray, tau_gyr: np.ndarray, burst_age_myr: np.ndarray, burst_fraction: np.ndarray, lookback_yr: float
) -> np.ndarray:
    """(N,) mean SFR over the last ``lookback_yr`` per M☉ formed (per-source models)."""
    a = np.asarray(age_gyr, dtype=np.float64) * 1e9
    t = np.asarray(tau_gyr, dtype=np.float64) * 1e9
    b = np.asarray(burst_age_myr, dtype=np.float64) * 1e6
    f = np.asarray(burst_fraction, dtype=np.float64)
    total = _cumulative_mass("delayed", a, t)
    recent = (total - _cumulative_mass("delayed", a - lookback_yr, t)) / total
    return ((1.0 - f) * recent + f * np.minimum(1.0, lookback_yr / b)) / lookback_yr


@dataclass(frozen=True)
class SFHTable:
    """Every SFH of a config: weights and the per-SFH quantities the grid records."""

    weights: np.ndarray  # (S, n_age) mass fraction per age bin
    params: dict[str, np.ndarray]  # (S,) axis values: tau, age, burst_age, burst_fraction (as used)
    age: np.ndarray  # (S,) Gyr, onset of star formation (for validity against the Universe's age)
    sfr10: np.ndarray  # (S,) M☉/yr per M☉ formed, mean over the last 10 Myr
    sfr100: np.ndarray  # (S,) M☉/yr per M☉ formed, mean over the last 100 Myr
    age_mw: np.ndarray  # (S,) Gyr, mass-weighted age of the formed mass


def _bin_masses_many(family: str, age_yr: np.ndarray, tau_yr: np.ndarray) -> np.ndarray:
    """(N, n_age) normalised bin masses for N (age, τ) pairs at once."""
    a, t = age_yr[:, None], tau_yr[:, None]
    t_hi = np.clip(a - AGE_EDGES_YR[None, :-1], 0.0, a)
    t_lo = np.clip(a - AGE_EDGES_YR[None, 1:], 0.0, a)
    m = _cumulative_mass(family, t_hi, t) - _cumulative_mass(family, t_lo, t)
    return m / m.sum(axis=1, keepdims=True)


def _recent_fraction(family: str, age_yr: np.ndarray, tau_yr: np.ndarray, lookback_yr: float) -> np.ndarray:
    total = _cumulative_mass(family, age_yr, tau_yr)
    return (total - _cumulative_mass(family, age_yr - lookback_yr, tau_yr)) / total


def sfh_table(cfg: SFHConfig) -> SFHTable:
    """All SFHs of ``cfg`` in the order of :meth:`FitConfig.axes` (tau, age, burst_age,
    burst_fraction; first varies slowest), computed for all of them at once."""
    fam = cfg.family
    base = "delayed" if fam == "delayed_burst" else fam
    taus = cfg.tau if fam != "constant" else [1.0]
    bursts = (cfg.burst_age, cfg.burst_fraction) if fam == "delayed_burst" else ([0.0], [0.0])
    grids = np.meshgrid(np.asarray(taus), np.asarray(cfg.age), np.asarray(bursts[0]), np.asarray(bursts[1]),
                        indexing="ij")
    tau, age, b_age, b_frac = (g.ravel() for g in grids)
    a_yr, t_yr = age * 1e9, tau * 1e9
    weights = _bin_masses_many(base, a_yr, t_yr)
    m10 = _recent_fraction(base, a_yr, t_yr, 1e7)
    m100 = _recent_fraction(base, a_yr, t_yr, 1e8)
    if fam == "delayed_burst":
        b_yr = b_age * 1e6
        f = b_frac[:, None]
        weights = (1 - f) * weights + f * _bin_masses_many("constant", b_yr, b_yr)
        m10 = (1 - b_frac) * m10 + b_frac * np.minimum(1.0, 1e7 / b_yr)
        m100 = (1 - b_frac) * m100 + b_frac * np.minimum(1.0, 1e8 / b_yr)
    params = {"age": age}
    if fam != "constant":
        params["tau"] = tau
    if fam == "delayed_burst":
        params.update({"burst_age": b_age, "burst_fraction": b_frac})
    return SFHTable(
        weights=weights,
        params=params,
        age=age,
        sfr10=m10 / 1e7,
        sfr100=m100 / 1e8,
        age_mw=weights @ AGE_CENTRES_YR / 1e9,
    )
