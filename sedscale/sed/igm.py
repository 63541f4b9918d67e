"""Mean intergalactic H I transmission of Inoue et al. (2014, MNRAS 442, 1805).

Lyman-series absorption by the Lyα forest (LAF) and damped Lyα systems (DLA), eqs. 21–22 with
the 39 line coefficients of their Table 2 (shipped as a text file beside the SSPs), and the
Lyman-continuum terms, eqs. 25–29. Evaluated directly on the rest-frame wavelengths (no table),
vectorized over wavelength.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sedscale.sed.data import INOUE14_FILE, grid_file

LYMAN_LIMIT_AA = 911.8
LYA_AA = 1215.67


@lru_cache(maxsize=1)
def _coefficients() -> np.ndarray:
    return np.loadtxt(grid_file(INOUE14_FILE))  # (39, 7): j, λ_j, A_LAF1..3, A_DLA1..2


def _tau_lyman_series(lobs: np.ndarray, z: float) -> np.ndarray:
    c = _coefficients()
    lam_j = c[:, 1][:, None]
    x = lobs[None, :] / lam_j
    inside = (lobs[None, :] > lam_j) & (lobs[None, :] < lam_j * (1.0 + z))
    laf = np.where(x < 2.2, c[:, 2][:, None] * x**1.2,
                   np.where(x < 5.7, c[:, 3][:, None] * x**3.7, c[:, 4][:, None] * x**5.5))
    dla = np.where(x < 3.0, c[:, 5][:, None] * x**2.0, c[:, 6][:, None] * x**3.0)
    return np.sum(np.where(inside, laf + dla, 0.0), axis=0)


def _tau_laf_continuum(lobs: np.ndarray, z: float) -> np.ndarray:
    x = lobs / LYMAN_LIMIT_AA
    zp = 1.0 + z
    tau = np.zeros_like(lobs)
    inside = (x > 1.0) & (x < zp)
    if z < 1.2:
        tau = 0.325 * (x**1.2 - zp**-0.9 * x**2.1)
    elif z < 4.7:
        tau = np.where(x < 2.2,
                       2.55e-2 * zp**1.6 * x**2.1 + 0.325 * x**1.2 - 0.25 * x**2.1,
                       2.55e-2 * (zp**1.6 * x**2.1 - x**3.7))
    else:
        tau = np.where(x < 2.2,
                       5.22e-4 * zp**3.4 * x**2.1 + 0.325 * x**1.2 - 3.14e-2 * x**2.1,
                       np.where(x < 5.7,
                                5.22e-4 * zp**3.4 * x**2.1 + 0.218 * x**2.1 - 2.55e-2 * x**3.7,
                                5.22e-4 * (zp**3.4 * x**2.1 - x**5.5)))
    return np.where(inside, tau, 0.0)


def _tau_dla_continuum(lobs: np.ndarray, z: float) -> np.ndarray:
    x = lobs / LYMAN_LIMIT_AA
    zp = 1.0 + z
    inside = (x > 1.0) & (x < zp)
    if z < 2.0:
        tau = 0.211 * zp**2 - 7.66e-2 * zp**2.3 * x**-0.3 - 0.135 * x**2
    else:
        tau = np.where(x < 3.0,
                       0.634 + 4.7e-2 * zp**3 - 1.78e-2 * zp**3.3 * x**-0.3 - 0.135 * x**2 - 0.291 * x**-0.3,
                       4.7e-2 * zp**3 - 1.78e-2 * zp**3.3 * x**-0.3 - 2.92e-2 * x**3)
    return np.where(inside, tau, 0.0)


def igm_transmission(rest_wave: np.ndarray, z: float) -> np.ndarray:
    """exp(−τ_IGM) at rest-frame wavelengths ``rest_wave`` (Å) for a source at redshift ``z``;
    1 redward of Lyα."""
    w = np.asarray(rest_wave, dtype=np.float64)
    out = np.ones_like(w)
    if z <= 0:
        return out
    blue = w < LYA_AA
    lobs = w[blue] * (1.0 + z)
    tau = _tau_lyman_series(lobs, z) + _tau_laf_continuum(lobs, z) + _tau_dla_continuum(lobs, z)
    out[blue] = np.exp(-tau)
    return out
