"""Self-calibration of per-band zero points from sources of known redshift (as eazy does).

Each round fits the sources at their (spectroscopic) redshift with the current zero points
applied and multiplies each band's zero point by the median of best-fit model / observed flux
over the sources detected in it (S/N ≥ ``min_snr``). A few rounds converge because one band's
offset is shared by the fit across all bands less each round. The result is what a profile's
per-band ``zero_point`` key takes (docs/FITTER.md, "Faint sources, upper limits and
calibrations"); :func:`sedscale.catalog.profiles.zero_point_snippet` writes it as profile YAML.

Score photo-z only on sources *not* used here: calibrating on the scored sources' spec-z would
flatter the score.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from sedscale.catalog.photometry import Photometry
from sedscale.sed.api import fit_photometry
from sedscale.sed.config import FitConfig
from sedscale.sed.mw_extinction import deredden


def self_calibrate(phot: Photometry, config: FitConfig, *, rounds: int = 3, min_snr: float = 5.0,
                   cache_dir: Path | None = None) -> np.ndarray:
    """(B,) multiplicative zero points from the sources of ``phot`` with a known redshift.

    A band with no source detected at ``min_snr`` keeps 1. An overall factor common to every band
    is the normalisation's (the mass), not a calibration: the zero points are scaled to a median
    of 1 over the bands, so the bands that agree keep ≈ 1."""
    known = np.isfinite(phot.redshift)
    # compare like with like: best_flux comes out of the fit Milky-Way-corrected, so correct the
    # observed fluxes first (a zero point multiplies before the correction, so the ratio is the same)
    sources = deredden(phot.take(np.flatnonzero(known)))
    zero_points = np.ones(len(phot.filters))
    for _ in range(rounds):
        scaled = dataclasses.replace(sources, flux=sources.flux * zero_points,
                                     error=sources.error * zero_points)
        fit = fit_photometry(scaled, config, cache_dir=cache_dir)
        with np.errstate(invalid="ignore", divide="ignore"):
            detected = (scaled.flux / scaled.error >= min_snr) & ~scaled.limits & fit.fitted[:, None]
            ratio = np.where(detected, fit.best_flux / scaled.flux, np.nan)
        step = np.array([np.nanmedian(ratio[:, j]) if detected[:, j].any() else 1.0
                         for j in range(ratio.shape[1])])
        zero_points = zero_points * step
        zero_points = zero_points / np.median(zero_points)
    return zero_points
