"""A minimal physical AGN: accretion disk + broad lines + hot-dust torus, with polar extinction.

CIGALE's parameterisation idea (Boquien+19, skirtor2016): ``frac_agn`` is the AGN's share of the
total infrared luminosity, L_IR,AGN / (L_IR,AGN + L_dust,galaxy), so the AGN scales with the
galaxy's dust luminosity from the energy balance. Components, per unit L_IR,AGN:

* **disk** — the broken power law used for the SKIRTOR primary source (Schartmann et al. 2005;
  Stalevski et al. 2016): λL_λ ∝ λ^1.2 (λ < 0.01 µm), λ^0 (0.01–0.1 µm), λ^−0.5 (0.1–5 µm),
  λ^−3 (> 5 µm);
* **broad lines** — Lyα, C IV, Mg II, Hβ, Hα with the rest-frame equivalent widths of the SDSS
  quasar composite (Vanden Berk et al. 2001: ≈ 93, 24, 32, 46, 195 Å) on the disk continuum;
* **polar extinction** — disk and lines seen through ``av_agn`` magnitudes of SMC-like dust
  (Gordon et al. 2003), the usual description of red quasars and "little red dots";
* **torus** — a fraction ``COVERING_FACTOR`` of the disk luminosity plus everything the polar dust
  absorbed, re-emitted by dust with equal luminosity per ln T from 100 K to the 1500 K
  sublimation temperature (a flat νL_ν from ~2 to ~30 µm, like mean quasar SEDs).

Two normalisations (``AGNConfig.fraction_at``): ``"dust"`` — ``frac_agn`` of the IR luminosity
as above, so no AGN at all when the galaxy has no dust luminosity; a rest wavelength λ_ref (Å) —
``frac_agn`` of the total (AGN + attenuated galaxy, dust emission included) λL_λ at λ_ref, so
L_IR,AGN = f/(1−f) · L_λ,gal(λ_ref) / L_λ,AGN(λ_ref) per unit L_IR,AGN: a bright disk with no host
dust (CIGALE skirtor2016's ``lambda_fracAGN``). :func:`at_wavelength` is the one interpolation
both the grid builder and the per-source models read λ_ref with.

Limits (see docs/PHYSICS.md): one fixed torus geometry/inclination (no type-1/type-2 split, no
silicate feature), fixed line EWs and no narrow lines, isotropic disk.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sedscale.sed import wavegrid
from sedscale.sed.attenuation import smc

COVERING_FACTOR = 0.5
T_SUBLIMATION_K = 1500.0
T_COLD_K = 100.0
BROAD_LINES_AA = {  # rest wavelength: equivalent width (Å)
    1215.67: 92.9,  # Lyα (+N V)
    1549.06: 23.8,  # C IV
    2798.75: 32.3,  # Mg II
    4862.68: 46.2,  # Hβ
    6564.61: 194.5,  # Hα
}

_H = 6.62607015e-27
_K = 1.380649e-16
_C_CM = 2.99792458e10


def _disk_shape(wave: np.ndarray) -> np.ndarray:
    """λL_λ of the disk, continuous, arbitrary normalisation."""
    mic = wave * 1e-4
    return np.select(
        [mic < 0.01, mic < 0.1, mic < 5.0],
        [(mic / 0.01) ** 1.2, np.ones_like(mic), (mic / 0.1) ** -0.5],
        (5.0 / 0.1) ** -0.5 * (mic / 5.0) ** -3.0,
    )


@lru_cache(maxsize=1)
def _unit_disk() -> np.ndarray:
    """Disk + broad lines, L☉/Å for unit disk continuum luminosity."""
    w = wavegrid.wavelengths()
    cont = _disk_shape(w) / w
    cont /= np.sum(cont * wavegrid.widths())
    lw = np.array(list(BROAD_LINES_AA))
    ew = np.array(list(BROAD_LINES_AA.values()))
    return wavegrid.add_lines(cont, lw, ew * np.interp(lw, w, cont))


@lru_cache(maxsize=1)
def _unit_torus() -> np.ndarray:
    """Torus emission, L☉/Å for unit luminosity."""
    w = wavegrid.wavelengths()
    lam_cm = w * 1e-8
    temps = np.geomspace(T_COLD_K, T_SUBLIMATION_K, 40)
    spec = np.zeros_like(w)
    for t in temps:  # 40 temperatures, once per process
        x = np.minimum(_H * _C_CM / (lam_cm * _K * t), 700.0)
        b = 1.0 / (lam_cm**5 * np.expm1(x))  # B_λ up to constants
        spec += b / np.sum(b * wavegrid.widths())  # equal luminosity per temperature (≈ per ln T)
    return spec / np.sum(spec * wavegrid.widths())


def agn_spectra(av_agn: np.ndarray | list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(N, n_wave) AGN spectra in L☉/Å per L☉ of AGN infrared (torus) luminosity, one per
    polar extinction in ``av_agn``, and (N,) the intrinsic disk luminosity per unit L_IR,AGN."""
    av = np.atleast_1d(np.asarray(av_agn, dtype=np.float64))
    dw = wavegrid.widths()
    disk = _unit_disk()
    disk_total = float(np.sum(disk * dw))
    seen = disk[None, :] * 10 ** (-0.4 * av[:, None] * smc(wavegrid.wavelengths())[None, :])
    absorbed = ((disk[None, :] - seen) * dw).sum(axis=1) / disk_total
    l_disk = 1.0 / (COVERING_FACTOR + absorbed)  # torus = C·L_disk + absorbed = 1
    return _unit_torus()[None, :] + seen * (l_disk / disk_total)[:, None], l_disk


def agn_spectrum(av_agn: float) -> tuple[np.ndarray, float]:
    """One AGN spectrum (see :func:`agn_spectra`) and its disk luminosity per unit L_IR,AGN."""
    spec, l_disk = agn_spectra([av_agn])
    return spec[0], float(l_disk[0])


def at_wavelength(spec: np.ndarray, wave_aa: float) -> np.ndarray:
    """``spec`` (…, n_wave) on the model wavelength grid read at ``wave_aa`` (linear between the
    two pixels around it): the value the wavelength-mode AGN normalisation uses."""
    j, c = reference_pixels(wave_aa)
    return np.asarray((1.0 - c) * spec[..., j] + c * spec[..., j + 1])


def reference_pixels(wave_aa: float) -> tuple[int, float]:
    """(j, c): ``wave_aa`` lies between wavelength pixels j and j+1, a share c of the way to j+1."""
    w = wavegrid.wavelengths()
    j = int(np.clip(np.searchsorted(w, wave_aa) - 1, 0, w.size - 2))
    return j, float((wave_aa - w[j]) / (w[j + 1] - w[j]))


def wavelength_factors(frac_agn: np.ndarray, av_agn: np.ndarray, wave_aa: float) -> np.ndarray:
    """L_IR,AGN per unit galaxy L_λ(``wave_aa``) that gives the AGN a share ``frac_agn`` of the
    total L_λ there: f/(1−f) / L_λ,AGN(``wave_aa``) (per unit L_IR,AGN, polar extinction included)."""
    f = np.asarray(frac_agn, dtype=np.float64)
    spec, _ = agn_spectra(av_agn)
    return f / (1.0 - f) / at_wavelength(spec, wave_aa)
