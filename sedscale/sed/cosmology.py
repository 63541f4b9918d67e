"""Distances and ages from astropy.cosmology (Planck18 by default, any astropy realization).

Kept in one place so that "which cosmology" is a config value, not a scattered constant; the
luminosity distance here sets every model flux and the age of the Universe sets which models are
valid at each redshift.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Luminosity distances are evaluated at z ≥ this value, so a z = 0 node still has finite fluxes
#: (as if observed from ~4 Mpc); real sources at z < 0.001 are outside sedscale's remit.
Z_DISTANCE_FLOOR = 1.0e-3

L_SUN_ERG_S = 3.828e33  # IAU 2015 nominal solar luminosity
MPC_CM = 3.0856775814913673e24
C_AA_S = 2.99792458e18


@lru_cache(maxsize=8)
def get_cosmology(name: str = "Planck18"):
    """The astropy cosmology realization called ``name``."""
    from astropy.cosmology import realizations

    return getattr(realizations, name)


def _tabulated(name: str) -> dict[str, np.ndarray]:
    """log10 d_L(Mpc) and log10 age(Gyr) of cosmology ``name`` at the splines' knots, from
    astropy — kept in the derived-array cache (:mod:`sedscale.sed.derived_cache`), keyed by the
    astropy version: importing astropy.cosmology and integrating 3,000 redshifts cost a worker
    ~2 s before its first grid node, and the cached knots give the same splines bit for bit."""
    from importlib.metadata import version

    from sedscale.sed.derived_cache import cached_arrays

    def build() -> dict[str, np.ndarray]:
        cos = get_cosmology(name)
        x_d, x_a = _distance_knots(), _age_knots()
        return {"log_dl": np.log10(cos.luminosity_distance(10**x_d).to_value("Mpc")),
                "log_age": np.log10(cos.age(10**x_a - 1.0).to_value("Gyr"))}

    return cached_arrays("cosmology", f"{name};astropy={version('astropy')}", build)


def _distance_knots() -> np.ndarray:
    return np.linspace(np.log10(Z_DISTANCE_FLOOR), np.log10(20.0), 1500)


def _age_knots() -> np.ndarray:
    return np.linspace(0.0, np.log10(21.0), 1500)


@lru_cache(maxsize=8)
def _distance_spline(name: str):
    """Cubic spline of log10 d_L(Mpc) in log10 z, 0.001 ≤ z ≤ 20 (relative error < 1e-6):
    astropy integrates numerically per redshift (massive neutrinos), too slow for 10^3 nodes."""
    from scipy.interpolate import CubicSpline

    return CubicSpline(_distance_knots(), _tabulated(name)["log_dl"])


def luminosity_distance_cm(z: np.ndarray | float, name: str = "Planck18") -> np.ndarray:
    """Luminosity distance in cm (z floored at :data:`Z_DISTANCE_FLOOR`, z ≤ 20)."""
    zz = np.maximum(np.asarray(z, dtype=np.float64), Z_DISTANCE_FLOOR)
    if np.any(zz > 20.0):
        raise ValueError("redshifts above 20 are outside sedscale's distance table")
    return 10 ** _distance_spline(name)(np.log10(zz)) * MPC_CM


@lru_cache(maxsize=8)
def _age_spline(name: str):
    """Cubic spline of log10 age(Gyr) in log10(1+z), 0 ≤ z ≤ 20 (relative error < 1e-6)."""
    from scipy.interpolate import CubicSpline

    return CubicSpline(_age_knots(), _tabulated(name)["log_age"])


def age_gyr(z: np.ndarray | float, name: str = "Planck18") -> np.ndarray:
    """Age of the Universe at redshift ``z`` (0 ≤ z ≤ 20) in Gyr."""
    zz = np.asarray(z, dtype=np.float64)
    if np.any(zz > 20.0) or np.any(zz < 0.0):
        raise ValueError("redshifts outside 0-20 are outside sedscale's age table")
    return 10 ** _age_spline(name)(np.log10(1.0 + zz))
