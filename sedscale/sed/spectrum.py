"""One model of a grid, rebuilt: its observed spectrum and its band fluxes at a source's redshift.

The results keep, for every fitted source, the hash of the fit configuration and the index of the
best model in that configuration's grid (``fit_config_id``, ``best_model``), not the model
itself: a grid is a pure function of (configuration, filters, redshift), so the model can be
rebuilt whenever someone wants to look at it (``sedscale show``, the report's gallery).

Two products, each through the code that made the fit's grid:

* **band fluxes** — from :func:`sedscale.sed.grid.build_lattice_grid` at the two lattice nodes
  that bracket the redshift, interpolated in log10(1+z) with the weight the known-z fit used
  (:func:`sedscale.sed.grid.lattice_coordinates`), so χ² and residuals match the fit's;
* **the spectrum** — the same composition :mod:`sedscale.sed.builder` contracts with the filter
  responses (stars old and young under their attenuation, nebular emission, dust re-emission and
  AGN from the energy balance), taken from the builder's per-configuration preparation but kept
  on the wavelength grid instead of folded into bands, then redshifted and dimmed exactly as
  :func:`sedscale.sed.builder.response_matrix` does (IGM transmission, luminosity distance,
  µJy).

Both are per 1 M☉ formed; :meth:`ModelSED.scale_to` finds the normalisation that fits a
source's photometry (the analytic χ² minimum with the given error floor; with declared upper
limits, Sawicki's likelihood as the fit maximises it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sedscale.sed import cosmology, wavegrid
# The builder's per-configuration preparation (composite spectra, SFH weights, attenuation
# curves, absorbed luminosities, dust and AGN templates): the one source of the model physics.
from sedscale.sed.builder import _prepare as prepare_config
from sedscale.sed.config import FitConfig
from sedscale.sed.filters import load_filters
from sedscale.sed.grid import build_lattice_grid, known_z_cells, lattice_coordinates
from sedscale.sed.igm import igm_transmission
from sedscale.sed.limits import best_normalisation, limit_aware_residual


@dataclass(frozen=True)
class ModelSED:
    """Model ``model_index`` of a configuration's grid at ``redshift``, times ``scale`` M☉ formed."""

    model_index: int
    redshift: float
    filters: tuple[str, ...]
    pivots: np.ndarray  # (B,) pivot wavelengths of the filters, Å
    band_flux: np.ndarray  # (B,) µJy, as the fit saw the model (lattice-interpolated)
    wavelength: np.ndarray  # (L,) observed-frame wavelengths, Å
    spectrum: np.ndarray  # (L,) f_ν in µJy
    scale: float = 1.0  # M☉ formed

    def scale_to(self, flux: np.ndarray, error: np.ndarray, error_floor: float,
                 is_limit: np.ndarray | None = None) -> ModelSED:
        """This model with the normalisation that minimises χ² against ``flux`` ± ``error`` (µJy;
        NaN = not observed), with ``error_floor`` × flux added in quadrature as the fit does.
        Bands flagged in ``is_limit`` are upper limits (value ``flux``, width ``error``): the
        normalisation then maximises Sawicki's likelihood with s ≥ 0, as the known-z fit does
        (:func:`sedscale.sed.limits.best_normalisation`; the photometry as given — a caller that
        wants the fit's exact value passes Milky-Way-corrected fluxes and the fit's floor)."""
        sigma = effective_error(flux, error, error_floor)
        m = self.band_flux / self.scale
        ok = np.isfinite(sigma) & np.isfinite(m)
        if is_limit is not None and np.any(is_limit & ok):
            usable = np.where(ok, sigma, np.inf)
            s = float(best_normalisation(np.where(ok, flux, 0.0), usable, is_limit & ok,
                                         np.where(ok, m, 0.0)[None]).s[0])
        else:
            den = float(np.sum(m[ok] ** 2 / sigma[ok] ** 2))
            s = float(np.sum(flux[ok] * m[ok] / sigma[ok] ** 2)) / den if den > 0 else float("nan")
        factor = s / self.scale
        return ModelSED(self.model_index, self.redshift, self.filters, self.pivots, self.band_flux * factor,
                        self.wavelength, self.spectrum * factor, s)

    def residual_sigma(self, flux: np.ndarray, error: np.ndarray, error_floor: float,
                       is_limit: np.ndarray | None = None) -> np.ndarray:
        """(flux − model) / σ_eff per band (NaN where not observed), σ_eff as in the fit; an
        upper-limit band counts only the model's excess above its limit, as the fit's residuals do."""
        limits = np.zeros(np.shape(flux), bool) if is_limit is None else np.asarray(is_limit, bool)
        return limit_aware_residual(flux, self.band_flux, effective_error(flux, error, error_floor), limits)


def effective_error(flux: np.ndarray, error: np.ndarray, error_floor: float) -> np.ndarray:
    """σ_eff = sqrt(σ² + (floor·f)²) where a band is observed (finite, σ > 0), NaN elsewhere —
    the fit's own definition (:meth:`sedscale.sed.fitter.Observations.sigma_eff`)."""
    f = np.asarray(flux, np.float64)
    e = np.asarray(error, np.float64)
    observed = np.isfinite(f) & np.isfinite(e) & (e > 0)
    with np.errstate(invalid="ignore"):
        s = np.sqrt(e * e + (error_floor * f) ** 2)
    return np.where(observed, s, np.nan)


def model_axes_shape(prep: dict[str, Any]) -> tuple[int, ...]:
    """The grid's model axes in the builder's order: metallicity, SFH, log U, attenuation, dust
    emission, AGN (a model index is a flat index over them)."""
    return (int(prep["n_z"]), int(prep["n_s"]), int(prep["n_u"]), int(prep["n_a"]), int(prep["n_d"]),
            int(prep["n_g"]))


def rest_frame_spectrum(config: FitConfig, model_index: int) -> np.ndarray:
    """(L,) L☉/Å per M☉ formed of model ``model_index`` on :func:`sedscale.sed.wavegrid.wavelengths`.

    The sum the builder folds into band fluxes, term by term: old stars under ``T_old``, young
    stars and their nebular emission under ``T_young``, and the absorbed luminosity re-emitted by
    dust (Draine & Li) plus the AGN torus in proportion to it."""
    prep = prepare_config(config)
    shape = model_axes_shape(prep)
    if not 0 <= model_index < int(np.prod(shape)):
        raise ValueError(f"model index {model_index} outside the grid of {int(np.prod(shape))} models")
    i, s, u, a, d, g = (int(x) for x in np.unravel_index(model_index, shape))
    spec = np.asarray(prep["spec"], np.float64)
    young = np.asarray(prep["spec_young"], np.float64)
    neb = np.asarray(prep["neb"], np.float64)
    w_old, w_young = prep["w_old"][s], prep["w_young"][s]
    stars_old = (w_old @ spec[i]) * prep["t_old"][a]
    stars_young = (w_young @ young[i]) * prep["t_young"][a]
    nebular = (w_young @ neb[i, u]) * prep["t_young"][a]
    l_abs = float(prep["l_abs"][i, s, u, a])
    reemitted = l_abs * (prep["dust_spec"][d] + prep["agn_fac"][g] * prep["agn_spec"][g])
    out: np.ndarray = stars_old + stars_young + nebular + reemitted
    return out


def observed_spectrum(config: FitConfig, rest: np.ndarray, redshift: float) -> tuple[np.ndarray, np.ndarray]:
    """(observed wavelengths in Å, f_ν in µJy) of a rest-frame spectrum in L☉/Å at ``redshift``:
    the IGM transmission (if on), the luminosity distance and the conversion to µJy of
    :func:`sedscale.sed.builder.response_matrix`, applied per wavelength instead of per band."""
    wave = wavegrid.wavelengths()
    obs_wave = wave * (1.0 + redshift)
    f_lambda = rest * (cosmology.L_SUN_ERG_S / (4 * np.pi * float(cosmology.luminosity_distance_cm(redshift, config.cosmology)) ** 2
                                                 * (1.0 + redshift)))
    if config.igm.enabled:
        f_lambda = f_lambda * igm_transmission(wave, redshift)
    f_nu = f_lambda * obs_wave**2 / cosmology.C_AA_S * 1e29
    return obs_wave, f_nu


def lattice_band_flux(config: FitConfig, filters: Sequence[str], model_index: int, redshift: float,
                      cache_dir: Path | None = None) -> np.ndarray:
    """(B,) µJy per M☉ formed of one model at ``redshift``, as a known-z fit sees it: the grid at
    the two bracketing lattice nodes (from the campaign's cache where it is there), mixed with the
    fit's interpolation weight."""
    z = np.array([redshift], np.float64)
    cell, frac = lattice_coordinates(config, z)
    if cell[0] < 0:
        raise ValueError(f"redshift {redshift} is not usable (negative or not finite)")
    grid = build_lattice_grid(config, filters, z, cache_dir=cache_dir)
    lo = int(np.searchsorted(known_z_cells(config, z), cell[0]))
    t = float(frac[0])
    mixed: np.ndarray = (1.0 - t) * grid.flux[lo, model_index].astype(np.float64) \
        + t * grid.flux[lo + 1, model_index].astype(np.float64)
    return mixed


def rebuild_model(config: FitConfig, filters: Sequence[str], model_index: int, redshift: float, *,
                  cache_dir: Path | None = None) -> ModelSED:
    """Model ``model_index`` of ``config``'s grid at ``redshift`` in ``filters``, per M☉ formed
    (see the module docstring); :meth:`ModelSED.scale_to` normalises it to a source."""
    filters = tuple(filters)
    rest = rest_frame_spectrum(config, model_index)
    wave, f_nu = observed_spectrum(config, rest, redshift)
    band = lattice_band_flux(config, filters, model_index, redshift, cache_dir)
    pivots = np.array([f.pivot for f in load_filters(list(filters))])
    return ModelSED(model_index, float(redshift), filters, pivots, band, wave, f_nu)
