"""Photometric redshifts: the kernel run over a redshift grid, and P(z) summarised.

Each redshift node of the grid is one kernel *block* (its models, the template error at that
redshift, the prior's penalty), so P(z) is the per-block marginal of the likelihood the kernel
already sums, and every physical estimate (mass, SFR, ...) comes out marginalised over z.

Choices (docs/FITTER.md):

* **Redshift grid**: the physics grid's photo-z nodes, uniform in log10(1+z)
  (``redshift.dlog1pz``); P(z) is per node, i.e. the prior is flat in log(1+z) unless a
  magnitude prior is given.
* **Template error function** (:func:`template_error`): a fractional error added in quadrature
  that depends on rest-frame wavelength — small in the optical, larger in the far-UV (IGM,
  dust-law and burst uncertainty) and beyond 2 µm (PAH/hot dust). Its shape follows the idea of
  EAZY's TEF (Brammer et al. 2008), written as a smooth function, fixed a priori (not tuned
  on any spectroscopic sample).
* **Normalisation**: the Gaussian normaliser Σ ln σ_eff² differs between redshifts when the
  error depends on rest-frame wavelength. It is *left out* by default (``log_norm=False``), as
  EAZY leaves it out: σ_eff grows with the *observed* flux, so the term charges a bright band
  that falls in the template error's UV wing and pushed faint U-dropouts at z ≈ 3.2–3.4 to
  z ≈ 0.1–0.3 (issue 15). P(z) is then exp(−χ²/2) with the template error in χ².
* **Prior**: an apparent-magnitude prior by default (``prior="luminosity"``, as BPZ and EAZY
  use one): p(z | m) ∝ dV/dz · Φ(M) with a Schechter luminosity function
  (:func:`luminosity_prior`), m from the reddest band detected at S/N > 3, flat where none is.
  ``prior="flat"`` gives a prior flat per node (flat in log(1+z)).
* **Systematic floor**: photo-z mode has its own fractional floor, ``error_floor`` = 0.02
  (EAZY's ``SYS_ERR`` is 0.01; the template error adds the rest), in place of the physics fit's
  ``FitConfig.error_floor`` (0.07, the default grid's calibrated allowance for parameter estimation).

What each choice gained, on HDF-N and on a mock at survey depth: docs/FITTER.md, "Photometric
redshifts", and ``benchmarks/bench_photoz.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from sedscale.sed.fitter import Block, ModelSet
from sedscale.sed.posterior import binned_quantiles


@dataclass(frozen=True)
class PhotozOptions:
    """Photo-z settings that are not part of the physics configuration."""

    tef: bool = True  # template error function on/off
    tef_scale: float = 1.0  # multiplies the whole template error
    log_norm: bool = False  # include Σ ln σ_eff² (the error differs between redshifts)
    prior: Literal["flat", "luminosity"] = "luminosity"
    prior_band: int | None = None  # band index for the luminosity prior (default: reddest)
    #: fractional systematic floor of photo-z mode, in place of FitConfig.error_floor (None: the
    #: config's); sedscale.sed.api applies it to the photo-z Observations
    error_floor: float | None = 0.02


def template_error(rest_wavelength_aa: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Fractional template error at rest-frame wavelength (Å).

    0.02 in the rest-frame optical/near-IR, rising smoothly (in log λ) to 0.02+0.15 below
    ~1,500 Å and to 0.02+0.15 beyond ~2.5 µm.
    """
    x = np.log10(np.asarray(rest_wavelength_aa, dtype=np.float64))
    uv = 1.0 / (1.0 + np.exp((x - np.log10(1500.0)) / 0.06))
    ir = 1.0 / (1.0 + np.exp(-(x - np.log10(25000.0)) / 0.08))
    return np.asarray(scale * (0.02 + 0.15 * uv + 0.15 * ir))


def luminosity_prior(mag_ab: np.ndarray, redshifts: np.ndarray, cosmo: str = "Planck18",
                     m_star: float = -21.5, alpha: float = -1.3, q_evol: float = 1.0) -> np.ndarray:
    """−2 ln p(z | m) (N, Z) from a Schechter luminosity function and the comoving volume.

    p(z | m) ∝ dV/dz(z) · Φ(M(m, z)), M = m − DM(z) + 2.5 log10(1+z) (flat-f_ν K-correction),
    Φ(M) ∝ x^(α+1) e^(−x), x = 10^(−0.4 (M − M*(z))), M*(z) = m_star − q_evol·log10(1+z)·2.5.
    Generic, order-of-magnitude numbers for an optical/near-IR selected sample; sources with no
    usable magnitude get a flat prior. Normalised per source over the grid.
    """
    from astropy.cosmology import realizations

    cos = getattr(realizations, cosmo)
    z = np.maximum(np.asarray(redshifts, dtype=np.float64), 1e-3)
    dm = cos.distmod(z).value
    dvdz = cos.differential_comoving_volume(z).value
    mstar = m_star - 2.5 * q_evol * np.log10(1.0 + z)
    m = np.asarray(mag_ab, dtype=np.float64)[:, None]
    absmag = m - dm[None, :] + 2.5 * np.log10(1.0 + z)[None, :]
    x = 10 ** (-0.4 * (absmag - mstar[None, :]))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        lnp = np.log(dvdz)[None, :] + (alpha + 1.0) * np.log(x) - x
    fin = np.isfinite(lnp)
    lnp = np.where(fin, lnp, -np.inf)
    top = np.max(np.where(fin, lnp, -1e300), axis=1, keepdims=True)
    lnp = lnp - top
    pen = -2.0 * lnp
    flat = ~np.isfinite(m[:, 0])
    pen[flat] = 0.0
    return np.where(np.isfinite(pen), np.minimum(pen, 1e4), 1e4)


def photoz_blocks(flux: np.ndarray, error: np.ndarray, grid_flux: np.ndarray, grid_valid: np.ndarray,
                  redshifts: np.ndarray, pivots_aa: np.ndarray, options: PhotozOptions,
                  cosmo: str = "Planck18", model_sets: list[ModelSet] | None = None) -> list[Block]:
    """One kernel block per redshift node (models valid at that node only)."""
    penalty = None
    if options.prior == "luminosity":
        band = int(np.argmax(pivots_aa)) if options.prior_band is None else options.prior_band
        f, e = flux[:, band], error[:, band]
        with np.errstate(invalid="ignore", divide="ignore"):
            mag = np.where((f > 3 * e) & np.isfinite(f), 23.9 - 2.5 * np.log10(np.where(f > 0, f, 1.0)), np.nan)
        penalty = luminosity_prior(mag, redshifts, cosmo)
    sets = model_sets if model_sets is not None else photoz_model_sets(grid_flux, grid_valid)
    blocks = []
    for iz, z in enumerate(redshifts):
        extra = template_error(pivots_aa / (1.0 + z), options.tef_scale) if options.tef else None
        pen = None if penalty is None else penalty[:, iz]
        blocks.append(Block(sets[iz], sigma_extra=extra, penalty=pen,
                            log_norm=options.log_norm and options.tef))
    return blocks


def photoz_model_sets(grid_flux: np.ndarray, grid_valid: np.ndarray) -> list[ModelSet]:
    """The per-node model sets of a photo-z grid (reusable across chunks of sources)."""
    sets = []
    for iz in range(grid_flux.shape[0]):
        idx = np.flatnonzero(grid_valid[iz])
        sets.append(ModelSet(grid_flux[iz][idx][None], idx))
    return sets


@dataclass(frozen=True)
class PzSummary:
    """Per-source summary of P(z) on the grid nodes."""

    z_best: np.ndarray  # mode of P(z), refined by a parabola in ln P
    z_mean: np.ndarray
    z_median: np.ndarray
    z_lo68: np.ndarray  # 16th percentile
    z_hi68: np.ndarray  # 84th percentile
    pz: np.ndarray  # (N, Z) normalised over the nodes


def summarize_pz(block_prob: np.ndarray, redshifts: np.ndarray) -> PzSummary:
    """Mode, mean, median and the central 68% interval of a P(z) given on nodes.

    The probability of a node is spread uniformly over its cell (midpoints in log(1+z)) for the
    percentiles, so they are not quantised to the node spacing."""
    p = np.nan_to_num(np.asarray(block_prob, dtype=np.float64))
    tot = p.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = p / tot
    z = np.asarray(redshifts, dtype=np.float64)
    n, nz = p.shape
    x = np.log10(1.0 + z)
    z_mean = p @ z
    k = np.argmax(p, axis=1)
    z_best = z[k].copy()
    if nz >= 3:
        kk = np.clip(k, 1, nz - 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = np.log(np.maximum(p[np.arange(n)[:, None], kk[:, None] + np.arange(-1, 2)], 1e-300))
            den = lp[:, 0] - 2 * lp[:, 1] + lp[:, 2]
            off = 0.5 * (lp[:, 0] - lp[:, 2]) / den
        step = x[kk + 1] - x[kk]
        ok = (kk == k) & np.isfinite(off) & (den < 0) & (np.abs(off) <= 1)
        z_best = np.where(ok, 10 ** (x[kk] + off * step) - 1.0, z_best)
    edges = np.concatenate([[x[0]], 0.5 * (x[1:] + x[:-1]), [x[-1]]]) if nz > 1 else np.array([x[0], x[0]])
    cdf = np.concatenate([np.zeros((n, 1)), np.cumsum(p, axis=1)], axis=1)

    def quantile(qv: float) -> np.ndarray:
        out = np.empty(n)
        for i in range(n):
            out[i] = 10 ** np.interp(qv, cdf[i], edges) - 1.0 if np.isfinite(cdf[i, -1]) else np.nan
        return out

    bad = ~np.isfinite(tot[:, 0]) | (tot[:, 0] <= 0)
    z_median, z_lo68, z_hi68 = quantile(0.5), quantile(0.16), quantile(0.84)
    for r in (z_best, z_mean, z_median, z_lo68, z_hi68):
        r[bad] = np.nan
    return PzSummary(z_best, z_mean, z_median, z_lo68, z_hi68, pz=p)


def pz_percentiles(pz: np.ndarray, redshifts: np.ndarray) -> np.ndarray:
    """(N, 5) percentiles of z (:data:`sedscale.results.PERCENTILES`) from P(z) on the nodes,
    each node's probability spread uniformly over its cell in log10(1+z) — the same
    distribution :func:`summarize_pz` takes its median and 68% interval from."""
    return 10 ** binned_quantiles(pz, np.log10(1.0 + np.asarray(redshifts, np.float64))) - 1.0
