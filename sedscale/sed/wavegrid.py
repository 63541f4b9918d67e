"""The rest-frame wavelength grid every spectrum in the SED layer is resampled onto.

One shared grid lets attenuation, nebular emission, dust emission and filter responses meet as
plain array products. It is logarithmic: fine (Δlnλ = 0.001, R ≈ 1000) from 500 Å to 5 µm where
broad-band filters sample the rest frame for 0 < z < 10, coarse (Δlnλ = 0.01) outside, where only
the energy balance (far-UV absorption, far-IR emission) needs it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

LAMBDA_MIN_AA = 10.0
LAMBDA_MAX_AA = 1.0e8
_FINE = (500.0, 5.0e4, 0.001)
_COARSE_STEP = 0.01


@lru_cache(maxsize=1)
def _edges() -> np.ndarray:
    lo, hi, step = _FINE
    blue = np.exp(np.arange(np.log(LAMBDA_MIN_AA), np.log(lo), _COARSE_STEP))
    fine = np.exp(np.arange(np.log(lo), np.log(hi), step))
    red = np.exp(np.arange(np.log(hi), np.log(LAMBDA_MAX_AA) + _COARSE_STEP / 2, _COARSE_STEP))
    edges = np.concatenate([blue, fine, red])
    edges.flags.writeable = False
    return edges


def edges() -> np.ndarray:
    """(N+1,) pixel edges in Å."""
    return _edges()


@lru_cache(maxsize=1)
def _centres() -> tuple[np.ndarray, np.ndarray]:
    e = _edges()
    c = np.sqrt(e[1:] * e[:-1])
    w = np.diff(e)
    c.flags.writeable = False
    w.flags.writeable = False
    return c, w


def wavelengths() -> np.ndarray:
    """(N,) pixel centres in Å (geometric mean of the edges)."""
    return _centres()[0]


def widths() -> np.ndarray:
    """(N,) pixel widths in Å."""
    return _centres()[1]


def rebin(wave: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """Flux-conserving resampling of ``flux`` (..., len(wave)) onto the grid's pixels.

    Each output pixel is the mean of the piecewise-linear input over the pixel, computed from the
    cumulative trapezoid integral, so integrals (luminosities, band fluxes) are preserved whatever
    the input sampling. Outside the input's range the flux is zero.
    """
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    cum = np.concatenate(
        [np.zeros(flux.shape[:-1] + (1,)), np.cumsum(0.5 * (flux[..., 1:] + flux[..., :-1]) * np.diff(wave), axis=-1)],
        axis=-1,
    )
    e = np.clip(_edges(), wave[0], wave[-1])
    idx = np.clip(np.searchsorted(wave, e, side="right") - 1, 0, wave.size - 2)
    t = (e - wave[idx]) / (wave[idx + 1] - wave[idx])
    # integral up to e = cum[idx] + partial trapezoid from wave[idx] to e
    f0 = flux[..., idx]
    f1 = flux[..., idx + 1]
    dx = e - wave[idx]
    partial = dx * (f0 + 0.5 * t * (f1 - f0))
    integral = cum[..., idx] + partial
    return np.diff(integral, axis=-1) / widths()


def add_lines(spectrum: np.ndarray, line_wave: np.ndarray, line_lum: np.ndarray) -> np.ndarray:
    """Add emission lines (luminosities ``line_lum`` (..., L) at ``line_wave`` (L,)) to
    ``spectrum`` (..., N) as one pixel each (luminosity / pixel width), so a band integral sees
    exactly the line's luminosity. Returns a new array."""
    out = np.array(spectrum, dtype=np.float64, copy=True)
    pix = np.searchsorted(_edges(), line_wave, side="right") - 1
    ok = (pix >= 0) & (pix < out.shape[-1])
    w = widths()
    for j in np.flatnonzero(ok):  # ~100 lines, not per model
        out[..., pix[j]] += line_lum[..., j] / w[pix[j]]
    return out
