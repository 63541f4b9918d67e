"""Milky Way foreground extinction: per-band A_band / E(B−V) from a standard law, and dereddening.

The law is Gordon et al. (2023) at R_V = 3.1 (``dust_extinction.parameter_averages.G23``, a
maintained astropy-affiliated package; valid 912 Å – 32 µm, wavelengths outside are clipped to
its ends). A band's coefficient is the law averaged over the filter with the weight T(λ)/λ, the
photon-counting weight of a flat-f_ν source (:mod:`sedscale.sed.filters`): the small-E(B−V)
limit of the band's extinction, exact to < 1% of A for E(B−V) < 0.3 at these bandwidths. A
source's fluxes and errors (upper limits included) are divided by 10^(−0.4 E(B−V) A_band/E(B−V))
before the fit. The catalog layer reads and checks the per-source E(B−V) (profile key ``ebv``);
the correction lives here because it needs the filter curves. The results' metadata names the law
(``sedscale.results.MW_EXTINCTION_LAW``, written by every export).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

from sedscale.catalog.photometry import Photometry
from sedscale.sed.filters import load_filters

#: The law's name as the results' metadata states it.
MW_R_V = 3.1


def law_a_over_ebv(wavelength_aa: np.ndarray) -> np.ndarray:
    """A_λ / E(B−V) = R_V · A_λ/A_V of the law at ``wavelength_aa`` (Å), clipped to its range."""
    import astropy.units as u
    from dust_extinction.parameter_averages import G23

    law = G23(Rv=MW_R_V)
    lo, hi = law.x_range  # inverse microns
    x = np.clip(1.0e4 / np.asarray(wavelength_aa, np.float64), lo, hi)
    ratio: np.ndarray = MW_R_V * np.asarray(law(x / u.micron), np.float64)
    return ratio


@lru_cache(maxsize=64)
def band_a_over_ebv(filters: tuple[str, ...]) -> np.ndarray:
    """(B,) A_band / E(B−V): the law averaged over each filter with weight T(λ)/λ."""
    out = np.empty(len(filters))
    for j, flt in enumerate(load_filters(list(filters))):
        weight = flt.throughput / flt.wavelength
        out[j] = np.trapezoid(law_a_over_ebv(flt.wavelength) * weight, flt.wavelength) / \
            np.trapezoid(weight, flt.wavelength)
    out.setflags(write=False)
    return out


def deredden(phot: Photometry) -> Photometry:
    """``phot`` with fluxes and errors corrected for its E(B−V) (then set to 0); unchanged when
    every E(B−V) is 0."""
    ebv = phot.extinction
    if not np.any(ebv != 0):
        return phot
    factor = 10.0 ** (0.4 * ebv[:, None] * band_a_over_ebv(tuple(phot.filters))[None, :])
    return dataclasses.replace(phot, flux=phot.flux * factor, error=phot.error * factor,
                               ebv=np.zeros_like(ebv))
