"""Draine & Li (2007) dust emission, used to re-emit the luminosity the attenuation absorbed.

Each shipped file holds one HDU per q_PAH (0.10 … 4.58 %), a (1001 × 23) table whose column 0 is
wavelength (Å, 1 µm – 1 cm) and columns 1 … 22 the emission for U_min = 0.1 … 20 (no
normalisation). The spectrum for (U_min, q_PAH, γ) is γ × (U_min < U < U_max = 10⁶ power-law
component) + (1 − γ) × (U = U_min component), bilinear in (q_PAH, U_min) on the table, normalised
to unit luminosity on the shared wavelength grid: multiply by L_dust (L☉) to get L☉/Å.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sedscale.sed import wavegrid
from sedscale.sed.data import DL07_UMIN_ONLY_FILE, DL07_UMIN_UMAX_FILE, grid_file

UMIN_GRID = np.array([0.10, 0.15, 0.20, 0.30, 0.40, 0.50, 0.70, 0.80, 1.00, 1.20, 1.50, 2.00,
                      2.50, 3.00, 4.00, 5.00, 7.00, 8.00, 10.0, 12.0, 15.0, 20.0])
QPAH_GRID = np.array([0.10, 0.47, 0.75, 1.12, 1.49, 1.77, 2.37, 2.50, 3.19, 3.90, 4.58])


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from astropy.io import fits

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        with fits.open(grid_file(name), memmap=False) as hdul:
            data = [np.asarray(hdul[1 + q].data, dtype=np.float64) for q in range(QPAH_GRID.size)]
        return data[0][:, 0], np.stack([d[:, 1:] for d in data])  # (11, 1001, 22)

    wave, only = read(DL07_UMIN_ONLY_FILE)
    _, umax = read(DL07_UMIN_UMAX_FILE)
    return wave, only, umax


def _interp_weights(grid: np.ndarray, value: float) -> tuple[int, float]:
    x = float(np.clip(value, grid[0], grid[-1]))
    hi = int(np.clip(np.searchsorted(grid, x, side="left"), 1, grid.size - 1))
    return hi, (x - grid[hi - 1]) / (grid[hi] - grid[hi - 1])


def dust_emission_spectrum(umin: float, qpah: float, gamma: float) -> np.ndarray:
    """(n_wave,) DL07 spectrum on the shared grid, L☉/Å per L☉ of dust luminosity."""
    wave, only, umax = _tables()
    qi, qf = _interp_weights(QPAH_GRID, qpah)
    ui, uf = _interp_weights(UMIN_GRID, umin)

    def bilinear(t: np.ndarray) -> np.ndarray:
        tq = qf * t[qi] + (1.0 - qf) * t[qi - 1]  # (1001, 22)
        return uf * tq[:, ui] + (1.0 - uf) * tq[:, ui - 1]

    model = gamma * bilinear(umax) + (1.0 - gamma) * bilinear(only)
    spec = np.interp(wavegrid.wavelengths(), wave, model, left=0.0, right=0.0)
    return spec / np.sum(spec * wavegrid.widths())
