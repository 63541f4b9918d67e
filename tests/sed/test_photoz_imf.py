"""The IMF of the shipped BC03 grids is Kroupa (2001), and the remnant reconstruction uses it.

The evidence is in the data: the living-mass table (LIV_MSTAR_FRAC) inverted through an IMF gives
the turn-off mass at each age, and only Kroupa's turn-off masses agree with stellar lifetimes
(a solar-metallicity star of 1 M☉ lives ~10 Gyr, one of 2.2 M☉ ~1 Gyr, one of 5 M☉ ~100 Myr).
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from sedscale.sed import ssp
from sedscale.sed.data import STELLAR_FILE, grid_file


def _chabrier_dn_dm(m: np.ndarray) -> np.ndarray:
    """Chabrier (2003) dN/dm: log-normal below 1 M☉ (m_c 0.08, σ 0.69), slope −2.3 above."""
    lognormal = np.exp(-((np.log10(m) - np.log10(0.08)) ** 2) / (2 * 0.69**2))
    join = np.exp(-((0.0 - np.log10(0.08)) ** 2) / (2 * 0.69**2))
    return np.where(m <= 1.0, lognormal, join * m**-1.3) / m


def _turnoff_mass(living: float, dn_dm: np.ndarray, m: np.ndarray) -> float:
    """The mass below which an IMF holds ``living`` of its mass (0.1–100 M☉)."""
    y = m * dn_dm
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(m))])
    return float(np.interp(living, cum / cum[-1], m))


def _living_at(age_yr: float) -> float:
    """The shipped living-mass fraction at solar metallicity nearest ``age_yr``."""
    with fits.open(grid_file(STELLAR_FILE), memmap=False) as hdul:
        ages = np.asarray(hdul["STELLAR_AGE_YR"].data, np.float64)
        live = np.asarray(hdul["LIV_MSTAR_FRAC"].data, np.float64)
    solar = 1 + int(np.flatnonzero(ssp.METALLICITIES == 1.0)[0])
    return float(live[int(np.argmin(np.abs(ages - age_yr))), solar])


@pytest.mark.parametrize(("age_yr", "lo", "hi"), [(1e10, 1.0, 1.15), (1e9, 2.0, 2.35), (1e8, 4.6, 5.4)])
def test_living_fraction_gives_stellar_lifetimes_only_through_kroupa(age_yr: float, lo: float, hi: float) -> None:
    m = np.geomspace(0.1, 100.0, 200001)
    living = _living_at(age_yr)
    kroupa = _turnoff_mass(living, ssp.kroupa_dn_dm(m), m)
    chabrier = _turnoff_mass(living, _chabrier_dn_dm(m), m)
    assert lo <= kroupa <= hi, f"Kroupa turn-off {kroupa:.3f} M☉ at {age_yr:.0e} yr"
    assert not lo <= chabrier <= hi, f"Chabrier turn-off {chabrier:.3f} M☉ would fit too"


def test_remnants_follow_the_kroupa_turnoff() -> None:
    """At 10 Gyr (living 0.459): turn-off 1.09 M☉, remnants 0.137 → M* ≈ 0.597 per M☉ formed."""
    living = np.array([_living_at(1e10)])
    assert living[0] == pytest.approx(0.459, abs=0.001)
    remnants = ssp.remnant_fraction(living)[0]
    assert remnants == pytest.approx(0.137, abs=0.004)
    grid = ssp.load_ssp()
    i = int(np.argmin(np.abs(ssp.AGE_CENTRES_YR - 1e10)))
    solar = int(np.flatnonzero(ssp.METALLICITIES == 1.0)[0])
    assert grid.surviving_frac[solar, i] == pytest.approx(0.597, abs=0.005)


def test_imf_is_stated_with_its_chabrier_conversion() -> None:
    assert ssp.IMF.startswith("Kroupa (2001)")
    assert ssp.KROUPA_TO_CHABRIER_DEX == pytest.approx(np.log10(0.61 / 0.66), abs=5e-4)
