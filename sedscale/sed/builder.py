"""Vectorized construction of a model grid's band fluxes (the physics hot path).

No loop runs per model. The grid is the Cartesian product
metallicity × SFH × log U × attenuation × dust emission × AGN, and every stage is linear in the
SFH weights once the attenuation is fixed, so for each redshift node:

1. a response matrix R (wavelength × band) folds filter curve (photon counting), IGM
   transmission, luminosity distance and the µJy conversion together;
2. per metallicity and age bin, SSP and nebular spectra times each attenuation curve are
   contracted with R — one GEMM of (metallicity·age·band × λ) by (λ × attenuation);
3. SFH weights (S × age) combine those band fluxes — one einsum;
4. dust emission (Draine & Li) and the AGN are added as L_dust (from the energy balance, also a
   product of the SFH weights with per-age absorbed luminosities) times their band fluxes.

Young stars (< 10 Myr) get ``young_factor × A_V`` and power the nebular emission; their ionising
photons (< 912 Å) are removed when the nebular module is on (none escape).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from sedscale.sed import cosmology, wavegrid
from sedscale.sed.agn import agn_spectrum, reference_pixels, wavelength_factors
from sedscale.sed.attenuation import attenuation_shape
from sedscale.sed.config import FitConfig
from sedscale.sed.dust_emission import dust_emission_spectrum
from sedscale.sed.filters import load_filters
from sedscale.sed.igm import LYA_AA, igm_transmission
from sedscale.sed.nebular import load_nebular, logu_weights
from sedscale.sed.sfh import sfh_table
from sedscale.sed.ssp import load_ssp, metallicity_weights, young_fraction

LYMAN_LIMIT_AA = 911.8


def response_matrix(filters: Sequence[str], z: float, cosmo: str, igm: bool = True) -> np.ndarray:
    """(n_wave, B) matrix turning a rest-frame spectrum in L☉/Å (per source) into photon-counting
    band fluxes in µJy observed at redshift ``z``."""
    wave, dw = wavegrid.wavelengths(), wavegrid.widths()
    curves = load_filters(list(filters))
    obs_edges = wavegrid.edges() * (1.0 + z)
    trans = np.stack([f.average(obs_edges) for f in curves], axis=1)  # (L, B)
    weight = (wave * dw)[:, None] * trans
    norm = weight.sum(axis=0)
    norm[norm == 0] = np.inf  # band entirely outside the grid: flux 0
    resp = weight / norm
    if igm:
        # The pixel holding Lyα (and the nebular Lyα line) takes the transmission just blueward
        # of the line, as bagpipes does: resonant Lyα photons do not escape the IGM unattenuated.
        lya_pix = int(np.searchsorted(wavegrid.edges(), LYA_AA, side="right")) - 1
        blue = np.flatnonzero(np.any(resp[: lya_pix + 1] != 0, axis=1))  # only where a band looks
        if blue.size:
            at = np.minimum(wave[blue], LYA_AA - 0.01)
            resp[blue] *= igm_transmission(at, z)[:, None]
    d_l = cosmology.luminosity_distance_cm(z, cosmo)
    pivots = np.array([f.pivot for f in curves])
    to_ujy = cosmology.L_SUN_ERG_S / (4 * np.pi * d_l**2 * (1.0 + z)) * pivots**2 / cosmology.C_AA_S * 1e29
    return resp * to_ujy[None, :]


#: Bytes of node responses kept (:func:`node_response`): ~180 KB a node for 11 bands, so a few
#: hundred nodes — an agent partition re-fits each source at its own two lattice nodes.
RESPONSE_CACHE_BYTES = 64 << 20
_RESPONSES: OrderedDict[tuple, tuple[int, int, np.ndarray]] = OrderedDict()
_RESPONSES_BYTES = 0
_RESPONSES_LOCK = threading.Lock()


def node_response(filters: Sequence[str], z: float, cosmo: str, igm: bool = True) -> tuple[int, int, np.ndarray]:
    """``(lo, hi, R[lo:hi])``: the rows of :func:`response_matrix` that some band sees (every
    other row is zero), read-only, cached per (filters, z, cosmology, IGM).

    Why: the response depends on the node and the filters, never on the configuration, and it was
    most of a small grid's cost — an agent re-fits each source under several configurations at the
    same nodes (profiled: 3 ms of the 8 ms per node of a 1,215-model grid)."""
    global _RESPONSES_BYTES
    key = (tuple(filters), float(z), str(cosmo), bool(igm))
    with _RESPONSES_LOCK:
        hit = _RESPONSES.get(key)
        if hit is not None:
            _RESPONSES.move_to_end(key)
            return hit
    resp = response_matrix(filters, z, cosmo, igm)
    rows = np.flatnonzero(np.any(resp != 0, axis=1))
    lo, hi = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)
    part = np.ascontiguousarray(resp[lo:hi])
    part.setflags(write=False)
    out = (lo, hi, part)
    with _RESPONSES_LOCK:
        if key not in _RESPONSES:
            _RESPONSES[key] = out
            _RESPONSES_BYTES += part.nbytes
            while _RESPONSES_BYTES > RESPONSE_CACHE_BYTES and len(_RESPONSES) > 1:
                _, (_, _, old) = _RESPONSES.popitem(last=False)
                _RESPONSES_BYTES -= old.nbytes
    return out


def _attenuation_combos(config: FitConfig) -> tuple[list[tuple[float, float, float, float]], np.ndarray, np.ndarray]:
    """(combos, T_old, T_young): every (av, delta, bump, young_factor) and its transmission
    curves (n_att, n_wave) for old and young stars."""
    da = config.dust_attenuation
    wave = wavegrid.wavelengths()
    if not da.enabled:
        ones = np.ones((1, wave.size))
        return [(0.0, 0.0, 0.0, 1.0)], ones, ones
    if da.law == "modified_starburst":
        combos = list(itertools.product(da.av, da.delta, da.bump, da.young_factor))
    else:
        combos = [(av, 0.0, 0.0, yf) for av, yf in itertools.product(da.av, da.young_factor)]
    shapes: dict[tuple[float, float], np.ndarray] = {}
    t_old = np.empty((len(combos), wave.size))
    t_young = np.empty_like(t_old)
    for n, (av, delta, bump, yf) in enumerate(combos):  # attenuation curves, not models
        key = (delta, bump)
        if key not in shapes:
            shapes[key] = attenuation_shape(da.law, wave, delta, bump)
        t_old[n] = 10 ** (-0.4 * av * shapes[key])
        t_young[n] = 10 ** (-0.4 * av * yf * shapes[key])
    return combos, t_old, t_young


def _folded(trans: np.ndarray, resp: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The left operand of :func:`_band_tables`: trans[a, λ] · R[λ, b] over rows lo:hi, as
    (A, B, hi−lo) float32 — once per node and transmission set, shared by the spectra it weighs."""
    return (trans[:, None, lo:hi] * resp.T[None, :, :]).astype(np.float32)


def _band_tables(spec32: np.ndarray, left: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Band fluxes of spectra ``spec32`` (..., L) float32 C-contiguous under each transmission
    folded into ``left`` (:func:`_folded`): returns (A, ..., B) = Σ_λ spec[..., λ] trans[a, λ]
    R[λ, b], as a single float32 GEMM of (A·B × λ) by (λ × spectra) — the attenuation is in the
    small left operand, and the spectra are a strided view (no copy)."""
    lead = spec32.shape[:-1]
    s = spec32.reshape(-1, spec32.shape[-1])[:, lo:hi]  # (P, hi−lo) view
    n_a, n_b = left.shape[:2]
    out = (left.reshape(n_a * n_b, hi - lo) @ s.T).astype(np.float64)  # (A·B, P)
    out = out.reshape((n_a, n_b) + lead)
    return np.moveaxis(out, 1, -1)


@lru_cache(maxsize=4)
def _young_nebular(ky: int) -> np.ndarray:
    """The nebular grid's first ``ky`` age bins as a contiguous (7·9, ky·L) matrix."""
    neb = load_nebular()
    return np.ascontiguousarray(neb[:, :, :ky]).reshape(neb.shape[0] * neb.shape[1], -1)


def _galaxy_at(ref_aa: float, spec: np.ndarray, spec_young: np.ndarray, neb: np.ndarray,
               w_old: np.ndarray, w_young: np.ndarray, t_old: np.ndarray, t_young: np.ndarray,
               l_abs: np.ndarray, dust_spec: np.ndarray) -> np.ndarray:
    """(nZ, S, nU, nA, nD) rest L_λ at ``ref_aa`` per M☉ formed of every galaxy model (attenuated
    stars + nebular + dust emission): what a wavelength-mode AGN's share is defined against.
    Computed at the two pixels around ``ref_aa`` and interpolated, as :func:`at_wavelength` reads
    a full spectrum."""
    j0, c = reference_pixels(ref_aa)
    out = 0.0
    for j, weight in ((j0, 1.0 - c), (j0 + 1, c)):
        old = np.einsum("sk,ik->is", w_old, spec[:, :, j])[:, :, None] * t_old[None, None, :, j]
        young = np.einsum("sk,ik->is", w_young, spec_young[:, :, j])[:, :, None] * t_young[None, None, :, j]
        nebular = np.einsum("sk,iuk->isu", w_young, neb[:, :, :, j])[..., None] * t_young[None, None, None, :, j]
        stellar = (old + young)[:, :, None, :] + nebular  # (nZ, S, nU, nA)
        out = out + weight * (stellar[..., None] + l_abs[..., None] * dust_spec[None, None, None, None, :, j])
    return np.asarray(out)


def _absorbed(spec: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Luminosity removed by each transmission curve: (A, ...) = Σ_λ spec (1 − T_a) dλ (a GEMM)."""
    lead = spec.shape[:-1]
    out = (spec.reshape(-1, spec.shape[-1]) * wavegrid.widths()) @ (1.0 - trans).T  # (prod(lead), A)
    return np.moveaxis(out.reshape(lead + (trans.shape[0],)), -1, 0)


#: Bytes of prepared configurations kept (at least the last two are, whatever their size). An
#: agent partition re-fits under dozens of small configurations (a few MB each) and comes back to
#: them; a worker drops them all between partitions (:func:`release_prepared`).
PREPARED_CACHE_BYTES = 192 << 20
_PREPARED: OrderedDict[str, dict[str, Any]] = OrderedDict()
_PREPARED_LOCK = threading.Lock()
_PREPARED_NAMES = (
    "wave", "dw", "axes", "ssp", "spec", "surviving", "living", "sfh", "w_all", "ky", "w_young",
    "w_old", "spec_young", "neb", "n_z", "n_s", "n_u", "combos", "n_a", "t_old", "t_young", "l_abs",
    "dust_on", "dust_params", "dust_spec", "agn_on", "agn_params", "agn_spec", "agn_fac", "n_d",
    "n_g", "agn_gal",
)


def release_prepared() -> None:
    """Forget the prepared configurations (their composite spectra reach hundreds of MB for
    configurations with many SFH or AGN combinations) and the node responses. A worker calls
    this between partitions: the grids built from them stay cached, and keeping the last
    partition's largest preparation alive set the worker's memory by the hardest partition it
    had seen so far."""
    global _RESPONSES_BYTES
    with _PREPARED_LOCK:
        _PREPARED.clear()
    with _RESPONSES_LOCK:
        _RESPONSES.clear()
        _RESPONSES_BYTES = 0


def _dust_and_agn(config: FitConfig, spec: np.ndarray, spec_young: np.ndarray, neb: np.ndarray,
                  w_old: np.ndarray, w_young: np.ndarray, t_old: np.ndarray, t_young: np.ndarray,
                  l_abs: np.ndarray) -> tuple[Any, ...]:
    """Dust-emission and AGN templates of ``config`` and the AGN's scale per model: in the IR mode
    a share of the dust luminosity (``agn_gal`` None), in the wavelength mode of the galaxy's
    L_λ at the reference wavelength (``agn_gal`` (nZ, S, nU, nA, nD))."""
    wave = wavegrid.wavelengths()
    de = config.dust_emission
    dust_on = de.enabled and config.dust_attenuation.enabled
    dust_params = list(itertools.product(de.umin, de.qpah, de.gamma)) if dust_on else [(0.0, 0.0, 0.0)]
    dust_spec = (
        np.stack([dust_emission_spectrum(*p) for p in dust_params]) if dust_on else np.zeros((1, wave.size))
    )
    agn_on = config.agn.enabled
    agn_params = list(itertools.product(config.agn.frac_agn, config.agn.av_agn)) if agn_on else [(0.0, 0.0)]
    agn_specs = {av: agn_spectrum(av)[0] for av in {p[1] for p in agn_params}}
    agn_spec = np.stack([agn_specs[av] for _, av in agn_params])  # (nG, L) per unit L_IR,AGN
    agn_fac = np.array([f / (1.0 - f) for f, _ in agn_params])  # L_IR,AGN / L_dust
    agn_gal = None
    if agn_on and config.agn.reference_aa is not None:
        ref = config.agn.reference_aa
        agn_fac = wavelength_factors(np.array([p[0] for p in agn_params]), np.array([p[1] for p in agn_params]), ref)
        agn_gal = _galaxy_at(ref, spec, spec_young, neb, w_old, w_young, t_old, t_young, l_abs, dust_spec)
    return dust_on, dust_params, dust_spec, agn_on, agn_params, agn_spec, agn_fac, agn_gal


def _prepare(config: FitConfig) -> dict[str, Any]:
    """Everything about ``config`` that does not depend on redshift or filters — composite
    spectra per metallicity, SFH weights, attenuation curves, absorbed luminosities, dust and AGN
    templates — cached for the last few configurations, so a grid for new redshift nodes costs
    only the per-node work."""
    key = config.grid_hash()  # the floor does not enter the models
    with _PREPARED_LOCK:
        if key in _PREPARED:
            _PREPARED.move_to_end(key)
            return _PREPARED[key]
    wave, dw = wavegrid.wavelengths(), wavegrid.widths()
    axes = config.axes()

    # --- stellar populations, per requested metallicity -------------------------------------
    ssp = load_ssp()
    zw = metallicity_weights(config.stellar.metallicity)  # (nZ, 7)
    n_age = ssp.spectra.shape[1]
    spec = (zw @ ssp.spectra.reshape(zw.shape[1], -1)).reshape(zw.shape[0], n_age, wave.size)  # (nZ, n_age, L)
    surviving = zw @ ssp.surviving_frac  # (nZ, n_age)
    living = zw @ ssp.living_frac
    sfh = sfh_table(config.sfh)
    w_all = sfh.weights  # (S, n_age)
    fy = young_fraction()
    ky = int(np.count_nonzero(fy > 0))
    w_young = w_all[:, :ky] * fy[:ky]
    w_old = w_all * (1.0 - fy)
    spec_young = spec[:, :ky].copy()

    # --- nebular emission ---------------------------------------------------------------------
    if config.nebular.enabled:
        spec_young[..., wave < LYMAN_LIMIT_AA] = 0.0  # ionising photons → nebular emission
        uw = logu_weights(config.nebular.logu)
        cells = (zw[:, None, :, None] * uw[None, :, None, :]).reshape(zw.shape[0] * uw.shape[0], -1)
        neb_young = _young_nebular(ky)  # (7·9, ky·L)
        neb = (cells @ neb_young).reshape(zw.shape[0], uw.shape[0], ky, wave.size)  # (nZ, nU, ky, L)
    else:
        neb = np.zeros((len(config.stellar.metallicity), 1, ky, wave.size))
    n_z, n_s, n_u = spec.shape[0], w_all.shape[0], neb.shape[1]

    # --- attenuation and energy balance -------------------------------------------------------
    combos, t_old, t_young = _attenuation_combos(config)
    n_a = len(combos)
    e_old = _absorbed(spec, t_old)  # (nA, nZ, n_age) absorbed L☉ per M☉ formed in each bin
    e_young = _absorbed(spec_young, t_young)  # (nA, nZ, ky)
    e_neb = _absorbed(neb, t_young)  # (nA, nZ, nU, ky)
    l_abs = (
        np.einsum("sk,aik->isa", w_old, e_old, optimize=True)[:, :, None, :]
        + np.einsum("sk,aik->isa", w_young, e_young, optimize=True)[:, :, None, :]
        + np.einsum("sk,aiuk->isua", w_young, e_neb, optimize=True)
    )  # (nZ, S, nU, nA) L☉ absorbed (= L_dust) per M☉ formed

    # --- dust emission and AGN templates ------------------------------------------------------
    dust_on, dust_params, dust_spec, agn_on, agn_params, agn_spec, agn_fac, agn_gal = _dust_and_agn(
        config, spec, spec_young, neb, w_old, w_young, t_old, t_young, l_abs)
    n_d, n_g = len(dust_params), len(agn_params)

    # the per-node GEMMs read float32 (half the bytes, no per-node conversion); the float64
    # spectra were only needed for the absorbed luminosities above
    spec, spec_young, neb = (np.ascontiguousarray(a, dtype=np.float32) for a in (spec, spec_young, neb))
    out = {k: v for k, v in locals().items() if k in _PREPARED_NAMES}
    out["_nbytes"] = sum(v.nbytes for v in out.values() if isinstance(v, np.ndarray))
    with _PREPARED_LOCK:
        _PREPARED[key] = out
        _PREPARED.move_to_end(key)
        total = sum(p["_nbytes"] for p in _PREPARED.values())
        while len(_PREPARED) > 2 and total > PREPARED_CACHE_BYTES:
            _, old = _PREPARED.popitem(last=False)
            total -= old["_nbytes"]
    return out


_BUILD_LOCK = threading.Lock()
_BUILD_SECONDS = {"cached": 0.0, "one_off": 0.0}


def grid_build_seconds() -> float:
    """Seconds this process has spent building model grids that go into the grid cache: a one-off
    per configuration wherever the cache is shared, so the report shows it apart from the
    per-source cost."""
    with _BUILD_LOCK:
        return _BUILD_SECONDS["cached"]


def one_off_grid_build_seconds() -> float:
    """Seconds spent building grids that are never cached (the one or two nodes a few sources need
    of a lattice block nobody cached: :func:`sedscale.sed.grid.build_lattice_grid`) — work later
    sources repeat, so it stays in the per-source cost."""
    with _BUILD_LOCK:
        return _BUILD_SECONDS["one_off"]


def build_arrays(config: FitConfig, filters: Sequence[str], redshifts: npt.ArrayLike, *,
                 cached: bool = False) -> dict[str, Any]:
    """Fluxes (Z, M, B), validity (Z, M) and per-model quantities of ``config`` at ``redshifts``;
    the time it takes is added to :func:`grid_build_seconds` when the caller will cache the grid
    (``cached``), else to :func:`one_off_grid_build_seconds`."""
    t0 = time.perf_counter()
    try:
        return _build_arrays(config, filters, redshifts)
    finally:
        with _BUILD_LOCK:
            _BUILD_SECONDS["cached" if cached else "one_off"] += time.perf_counter() - t0


def _spread(values: npt.ArrayLike, dim: int, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast a per-dimension array to (M,) in the grid's model order."""
    shp = [1] * len(shape)
    shp[dim] = shape[dim]
    return np.broadcast_to(np.asarray(values, dtype=np.float64).reshape(shp), shape).reshape(-1).copy()


def _intensive_arrays(config: FitConfig, sfh: Any, combos: Sequence[tuple[float, ...]], dust_on: bool,
                      dust_params: Sequence[tuple[float, ...]], agn_on: bool,
                      agn_params: Sequence[tuple[float, ...]], shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The grid parameters per model (what the estimates average), in the grid's model order."""
    intensive: dict[str, np.ndarray] = {"metallicity": _spread(config.stellar.metallicity, 0, shape)}
    for name, values in sfh.params.items():
        intensive[name] = _spread(values, 1, shape)
    intensive["age_mw"] = _spread(sfh.age_mw, 1, shape)
    if config.nebular.enabled:
        intensive["logu"] = _spread(config.nebular.logu, 2, shape)
    intensive["av"] = _spread([c[0] for c in combos], 3, shape)
    if config.dust_attenuation.enabled:
        if config.dust_attenuation.law == "modified_starburst":
            intensive["delta"] = _spread([c[1] for c in combos], 3, shape)
            intensive["bump"] = _spread([c[2] for c in combos], 3, shape)
        intensive["young_factor"] = _spread([c[3] for c in combos], 3, shape)
    if dust_on:
        for j, name in enumerate(("umin", "qpah", "gamma")):
            intensive[name] = _spread([p[j] for p in dust_params], 4, shape)
    intensive["frac_agn"] = _spread([p[0] for p in agn_params], 5, shape)
    if agn_on:
        intensive["av_agn"] = _spread([p[1] for p in agn_params], 5, shape)
    return intensive


def _build_arrays(config: FitConfig, filters: Sequence[str], redshifts: npt.ArrayLike) -> dict[str, Any]:
    """:func:`build_arrays`, untimed."""
    filters = tuple(filters)
    zs = np.asarray(redshifts, dtype=np.float64).reshape(-1)
    prep = _prepare(config)
    (
        wave, dw, axes, ssp, spec, surviving, living, sfh, w_all, ky, w_young, w_old, spec_young,
        neb, n_z, n_s, n_u, combos, n_a, t_old, t_young, l_abs, dust_on, dust_params, dust_spec,
        agn_on, agn_params, agn_spec, agn_fac, n_d, n_g, agn_gal,
    ) = (prep[k] for k in _PREPARED_NAMES)

    # --- per redshift node --------------------------------------------------------------------
    n_b = len(filters)
    shape = (n_z, n_s, n_u, n_a, n_d, n_g)
    n_models = int(np.prod(shape))
    flux = np.empty((zs.size, n_models, n_b), dtype=np.float32)
    same_trans = np.array_equal(t_old, t_young)  # young_factor 1: one folded operand serves both
    for iz, z in enumerate(zs):  # redshift nodes, not models
        lo, hi, resp = node_response(filters, float(z), config.cosmology, config.igm.enabled)
        if hi == lo:
            flux[iz] = 0.0
            continue
        left_young = _folded(t_young, resp, lo, hi)
        left_old = left_young if same_trans else _folded(t_old, resp, lo, hi)
        b_old = _band_tables(spec, left_old, lo, hi)  # (nA, nZ, n_age, B)
        b_young = _band_tables(spec_young, left_young, lo, hi)  # (nA, nZ, ky, B)
        b_neb = _band_tables(neb, left_young, lo, hi)  # (nA, nZ, nU, ky, B)
        stars = np.einsum("sk,aikb->isab", w_old, b_old, optimize=True) + np.einsum("sk,aikb->isab", w_young, b_young, optimize=True)
        total = stars[:, :, None] + np.einsum("sk,aiukb->isuab", w_young, b_neb, optimize=True)  # (nZ,S,nU,nA,B)
        reemit = dust_spec[:, lo:hi] @ resp  # (nD, B) per L☉
        agn_b = agn_fac[:, None] * (agn_spec[:, lo:hi] @ resp)  # (nG, B) per L☉ of L_dust (or of L_λ,gal(λ_ref))
        if agn_gal is None:
            full = total[:, :, :, :, None, None, :] + l_abs[..., None, None, None] * (
                reemit[None, None, None, None, :, None, :] + agn_b[None, None, None, None, None, :, :]
            )
        else:
            full = (total[:, :, :, :, None, None, :] + l_abs[..., None, None, None] * reemit[None, None, None, None, :, None, :]
                    + agn_gal[..., None, None] * agn_b[None, None, None, None, None, :, :])
        flux[iz] = full.reshape(n_models, n_b)

    # --- per-model quantities -------------------------------------------------------------------
    def spread(values: npt.ArrayLike, dim: int) -> np.ndarray:
        return _spread(values, dim, shape)

    intensive = _intensive_arrays(config, sfh, combos, dust_on, dust_params, agn_on, agn_params, shape)
    missing = set(axes) - set(intensive)
    assert not missing, f"grid axes without intensive arrays: {missing}"

    mstar = np.einsum("sk,ik->is", w_all, surviving, optimize=True)  # (nZ, S) living + remnants per M☉ formed
    mliving = np.einsum("sk,ik->is", w_all, living, optimize=True)
    ldust = np.broadcast_to(l_abs[..., None, None], shape).reshape(-1).copy()
    extensive = {
        "mstar": np.broadcast_to(mstar[:, :, None, None, None, None], shape).reshape(-1).copy(),
        "mstar_living": np.broadcast_to(mliving[:, :, None, None, None, None], shape).reshape(-1).copy(),
        "sfr10": spread(sfh.sfr10, 1),
        "sfr100": spread(sfh.sfr100, 1),
        "ldust": ldust,
        "lagn_ir": (ldust if agn_gal is None else np.broadcast_to(agn_gal[..., None], shape).reshape(-1))
        * spread(agn_fac, 5),
    }

    age_universe = cosmology.age_gyr(zs, config.cosmology)  # (Z,)
    age_m = spread(sfh.age, 1)
    valid = age_m[None, :] <= age_universe[:, None] + 1e-9
    return {"flux": flux, "valid": valid, "intensive": intensive, "extensive": extensive}
