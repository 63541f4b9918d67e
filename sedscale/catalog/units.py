"""Flux units to µJy with astropy.units; AB magnitudes with their magnitude errors.

Everything inside sedscale is in µJy. Magnitudes of 90 or more in absolute value (the usual
99 / -99 "not observed" sentinels) become NaN, i.e. "not observed in this band".
"""

from __future__ import annotations

from typing import Literal

import astropy.units as u
import numpy as np

FluxUnit = Literal["uJy", "nJy", "mJy", "Jy", "ABmag"]
FLUX_UNITS: tuple[str, ...] = ("uJy", "nJy", "mJy", "Jy", "ABmag")
MAG_SENTINEL = 90.0

_LN10_OVER_2P5 = np.log(10.0) / 2.5


def flux_factor_to_ujy(unit: str) -> float:
    """Multiplicative factor from a linear flux-density unit to µJy (via astropy.units)."""
    return float((1.0 * u.Unit(unit)).to(u.uJy).value)


def to_microjansky(values: np.ndarray, errors: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert a flux column and its error column to µJy.

    For ``ABmag`` the error column is a magnitude error: σ_f = f · ln(10)/2.5 · σ_m (first order).
    """
    values = np.asarray(values, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    if unit == "ABmag":
        sentinel = np.abs(values) >= MAG_SENTINEL
        with np.errstate(invalid="ignore", over="ignore"):
            mags = np.where(sentinel, np.nan, values)
            flux = (mags * u.ABmag).to_value(u.uJy)
            err = flux * _LN10_OVER_2P5 * np.where(sentinel, np.nan, errors)
        return flux, err
    factor = flux_factor_to_ujy(unit)
    return values * factor, errors * factor
