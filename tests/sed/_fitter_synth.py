"""Synthetic model grids and sources for the fitter tests (no physics needed).

Models are smooth SED-like band fluxes: a power law, a Balmer-like break whose strength grows with
age, and a dust-like reddening, at a per-unit-mass amplitude of ~1e-9 µJy (like real grids at
z ~ 1), so float32 range problems would show.
"""

from __future__ import annotations

import numpy as np

from sedscale.sed.estimates import ModelTable


def synthetic_grid(m: int, b: int = 8, seed: int = 0) -> tuple[np.ndarray, ModelTable]:
    rng = np.random.default_rng(seed)
    lam = np.linspace(0.0, 1.0, b)
    age = rng.uniform(0.0, 1.0, m)
    av = rng.uniform(0.0, 2.0, m)
    slope = rng.uniform(-2.0, 2.0, m)
    brk = 0.3 + 0.4 * rng.uniform(0.0, 1.0, m)
    flux = (10 ** (-0.4 * av[:, None] * (1.0 - lam)) * np.exp(slope[:, None] * lam)
            * (1.0 + 3.0 * age[:, None] / (1.0 + np.exp(-(lam - brk[:, None]) / 0.05))))
    flux = (flux * 1e-9).astype(np.float32)
    mstar = rng.uniform(0.4, 0.9, m)
    sfr = 10 ** rng.uniform(-12, -8, m)
    table = ModelTable.from_dicts({"age": age, "av": av}, {"mstar": mstar, "sfr": sfr},
                                  {"mstar": "logmstar", "sfr": "logsfr"})
    return flux, table


def synthetic_sources(flux: np.ndarray, n: int, snr: float = 20.0, seed: int = 1,
                      missing: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Noisy sources drawn from the grid: (flux, error, true model index, true log10 s)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, flux.shape[0], n)
    log_s = rng.uniform(8.0, 11.0, n)
    true = flux[idx].astype(np.float64) * 10 ** log_s[:, None]
    err = true / snr
    obs = true + rng.normal(size=true.shape) * err
    if missing:
        drop = rng.uniform(size=obs.shape) < missing
        obs[drop] = np.nan
        err[drop] = np.nan
    return obs, err, idx, log_s
