"""Cloudy nebular emission (continuum + lines) powered by young BC03 populations.

The shipped grids hold, for each of 7 metallicities × 9 log U (−4 … 0 in 0.5 steps), the nebular
continuum (L☉/Å) and 124 line luminosities (L☉) per M☉ formed in each of the first 15 age bins
(log age 6.0 … 7.4), i.e. the gas emission that the ionising photons of that population produce
(no escape, no dust grains inside the H II region). HDU ``1 + 7*j + i`` holds metallicity ``i``
and log U ``j``; row 0 of each HDU is the wavelength (or line) axis, column 0 the age.

Only stars younger than 10 Myr contribute (as in bagpipes and CIGALE); their own ionising
continuum (λ < 912 Å) is then removed from the stellar spectrum, having been converted into
this emission.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sedscale.sed import wavegrid
from sedscale.sed.data import LINE_WAVS_FILE, NEBULAR_CONT_FILE, NEBULAR_LINE_FILE, grid_file
from sedscale.sed.ssp import METALLICITIES

LOGU_GRID = np.arange(-4.0, 0.01, 0.5)
N_NEB_AGES = 15


@lru_cache(maxsize=1)
def load_nebular() -> np.ndarray:
    """(7, 9, 15, n_wave) continuum + lines on the shared grid, L☉/Å per M☉ formed per age bin."""
    from astropy.io import fits

    line_wavs = np.loadtxt(grid_file(LINE_WAVS_FILE))
    n_z, n_u = METALLICITIES.size, LOGU_GRID.size
    out = np.empty((n_z, n_u, N_NEB_AGES, wavegrid.wavelengths().size))
    with fits.open(grid_file(NEBULAR_CONT_FILE), memmap=False) as cont, fits.open(
        grid_file(NEBULAR_LINE_FILE), memmap=False
    ) as lines:
        wave = np.asarray(cont[1].data[0, 1:], dtype=np.float64)
        for j in range(n_u):
            for i in range(n_z):  # 63 HDUs, read once per process
                hdu = 1 + n_z * j + i
                c = np.asarray(cont[hdu].data[1:, 1:], dtype=np.float64)  # (15, n_wave_raw)
                lum = np.asarray(lines[hdu].data[1:, 1:], dtype=np.float64)  # (15, 124)
                out[i, j] = wavegrid.add_lines(wavegrid.rebin(wave, c), line_wavs, lum)
    out.flags.writeable = False
    return out


def logu_weights(logu_values: np.ndarray | list[float]) -> np.ndarray:
    """(n, 9) linear-interpolation weights in log U on the Cloudy grid."""
    u = np.asarray(logu_values, dtype=np.float64)
    w = np.zeros((u.size, LOGU_GRID.size))
    for n, un in enumerate(u):
        x = np.clip(un, LOGU_GRID[0], LOGU_GRID[-1])
        hi = int(np.clip(np.searchsorted(LOGU_GRID, x, side="left"), 1, LOGU_GRID.size - 1))
        f = (x - LOGU_GRID[hi - 1]) / (LOGU_GRID[hi] - LOGU_GRID[hi - 1])
        w[n, hi], w[n, hi - 1] = f, 1.0 - f
    return w
