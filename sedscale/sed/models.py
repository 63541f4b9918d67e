"""Photometry of individually specified models (one parameter set per source), vectorized.

The grid builder spans a Cartesian product; mocks and tests need N arbitrary parameter sets
instead. This module evaluates the same physics (same SSPs, SFH integrals, attenuation, nebular,
Draine & Li energy balance, AGN, IGM) per source, building each source's rest-frame spectrum as
a GEMM of its (metallicity × age) weights with the SSP table. Redshifts are snapped to the
known-z node lattice so that every group of sources at a node shares one response matrix; the
snapped redshift is returned and is the model's true redshift.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from sedscale.sed import wavegrid
from sedscale.sed.agn import agn_spectra, at_wavelength, wavelength_factors
from sedscale.sed.attenuation import attenuation_shape
from sedscale.sed.builder import LYMAN_LIMIT_AA, response_matrix
from sedscale.sed.dust_emission import dust_emission_spectrum
from sedscale.sed.nebular import load_nebular, logu_weights
from sedscale.sed.sfh import delayed_burst_sfr, delayed_burst_weights
from sedscale.sed.ssp import load_ssp, metallicity_weights, young_fraction


@dataclass(frozen=True)
class SourceParams:
    """Physical parameters of N model galaxies (delayed-τ + burst SFH, one attenuation law)."""

    z: np.ndarray
    age: np.ndarray  # Gyr
    tau: np.ndarray  # Gyr
    metallicity: np.ndarray  # Z_sun
    av: np.ndarray  # mag
    logu: np.ndarray
    burst_age: np.ndarray | None = None  # Myr
    burst_fraction: np.ndarray | None = None
    young_factor: np.ndarray | None = None
    frac_agn: np.ndarray | None = None
    av_agn: np.ndarray | None = None
    law: str = "calzetti"
    agn_fraction_at: float | None = None  # rest Å frac_agn is a share of λL_λ at; None: of L_IR
    dust_emission: tuple[float, float, float] = (1.0, 2.5, 0.01)  # umin, qpah, gamma

    def take(self, idx: np.ndarray) -> SourceParams:
        """The sources ``idx``: every per-source array sliced, the law and dust emission shared."""

        def rows(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[idx]

        return replace(
            self, z=self.z[idx], age=self.age[idx], tau=self.tau[idx], metallicity=self.metallicity[idx],
            av=self.av[idx], logu=self.logu[idx], burst_age=rows(self.burst_age),
            burst_fraction=rows(self.burst_fraction), young_factor=rows(self.young_factor),
            frac_agn=rows(self.frac_agn), av_agn=rows(self.av_agn),
        )

    def filled(self, name: str, default: float) -> np.ndarray:
        value = getattr(self, name)
        return np.full(self.z.shape, default) if value is None else np.asarray(value, dtype=np.float64)


def snap_redshift(z: np.ndarray, step: float) -> np.ndarray:
    """Nearest node of the lattice log10(1+z) = k·step."""
    k = np.round(np.log10(1.0 + np.asarray(z, dtype=np.float64)) / step)
    return 10 ** (k * step) - 1.0


def rest_frame_spectra(p: SourceParams) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(N, n_wave) rest-frame spectra in L☉/Å per M☉ formed, and per-source quantities
    (mstar surviving fraction, sfr10, sfr100, ldust, lagn_ir)."""
    n = p.z.size
    wave, dw = wavegrid.wavelengths(), wavegrid.widths()
    ssp = load_ssp()
    w = delayed_burst_weights(p.age, p.tau, p.filled("burst_age", 10.0), p.filled("burst_fraction", 0.0))
    zw = metallicity_weights(p.metallicity)  # (N, 7)
    fy = young_fraction()
    ky = int(np.count_nonzero(fy > 0))
    n_age = ssp.spectra.shape[1]
    uw = logu_weights(p.logu)  # (N, 9)
    neb_grid = load_nebular()
    old = np.zeros((n, wave.size))
    young = np.zeros((n, wave.size))
    w_old, w_young = w * (1.0 - fy), w[:, :ky] * fy[:ky]
    # Each source touches at most 2 metallicities × 2 log U cells: one small GEMM per used cell.
    for i in np.flatnonzero(zw.any(axis=0)):
        rows = np.flatnonzero(zw[:, i] > 0)
        wi = zw[rows, i][:, None]
        old[rows] += (wi * w_old[rows]) @ ssp.spectra[i]
        young_i = (wi * w_young[rows]) @ ssp.spectra[i, :ky]
        young_i[:, wave < LYMAN_LIMIT_AA] = 0.0  # ionising photons → nebular emission
        young[rows] += young_i
        for j in np.flatnonzero(uw[rows].any(axis=0)):
            sub = np.flatnonzero(uw[rows, j] > 0)
            young[rows[sub]] += (wi[sub] * uw[rows[sub], j][:, None] * w_young[rows[sub]]) @ neb_grid[i, j, :ky]

    shape = attenuation_shape(p.law, wave)
    av = p.filled("av", 0.0)[:, None]
    t_old = 10 ** (-0.4 * av * shape)
    t_young = 10 ** (-0.4 * av * p.filled("young_factor", 1.0)[:, None] * shape)
    seen = old * t_old + young * t_young
    ldust = ((old - old * t_old + young - young * t_young) * dw).sum(axis=1)
    spec = seen + ldust[:, None] * dust_emission_spectrum(*p.dust_emission)[None, :]

    frac = p.filled("frac_agn", 0.0)
    if p.agn_fraction_at is None:
        lagn = ldust * frac / (1.0 - frac)
    else:
        ref = p.agn_fraction_at
        lagn = at_wavelength(spec, ref) * wavelength_factors(frac, p.filled("av_agn", 0.0), ref)
    if np.any(lagn > 0):
        spec += lagn[:, None] * agn_spectra(p.filled("av_agn", 0.0))[0]

    ba, bf = p.filled("burst_age", 10.0), p.filled("burst_fraction", 0.0)
    extras = {
        "mstar": np.einsum("nk,ni,ik->n", w, zw, ssp.surviving_frac),
        "mstar_living": np.einsum("nk,ni,ik->n", w, zw, ssp.living_frac),
        "sfr10": delayed_burst_sfr(p.age, p.tau, ba, bf, 1e7),
        "sfr100": delayed_burst_sfr(p.age, p.tau, ba, bf, 1e8),
        "ldust": ldust,
        "lagn_ir": lagn,
    }
    return spec, extras


def model_photometry(
    p: SourceParams,
    filters: Sequence[str],
    *,
    node_step: float = 0.0005,
    cosmology_name: str = "Planck18",
    igm: bool = True,
    chunk: int = 512,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Band fluxes (N, B) in µJy per M☉ formed, the snapped redshifts (N,), and per-source
    quantities. ``progress(k)`` is called with the number of sources finished in each chunk."""
    filters = tuple(filters)
    z = snap_redshift(p.z, node_step)
    order = np.argsort(z, kind="stable")  # chunks then span few redshift nodes
    flux = np.empty((z.size, len(filters)))
    extras: dict[str, np.ndarray] = {}
    last: tuple[float, np.ndarray] | None = None
    for start in range(0, z.size, chunk):  # chunks of sources bound memory, not per model
        idx = order[start : start + chunk]
        sub = p.take(idx)
        spec, ex = rest_frame_spectra(sub)
        for k, v in ex.items():
            extras.setdefault(k, np.empty(z.size))[idx] = v
        zs = z[idx]
        for zn in np.unique(zs):  # one response matrix per occupied redshift node
            if last is None or last[0] != zn:
                last = (float(zn), response_matrix(filters, float(zn), cosmology_name, igm))
            rows = np.flatnonzero(zs == zn)
            flux[idx[rows]] = spec[rows] @ last[1]
        if progress is not None:
            progress(idx.size)
    return flux, z, extras
