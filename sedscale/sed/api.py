"""``fit_photometry``: the one entry point the CLI, campaigns and the agent call.

It builds (or loads from the caches) the model grid for the photometry's filters, runs the χ²
kernel and returns per-source arrays (:class:`FitResult`).

* **Known redshift** (default): the grid is built on the physics engineer's fixed lattice of
  nodes (``redshift.node_step`` in log10(1+z)); sources are grouped by the lattice cell their
  redshift falls in and each is fitted to models *linearly interpolated in log10(1+z)* between
  the cell's two nodes — exactly, inside the kernel (:class:`sedscale.sed.fitter.Block` with ``mix``
  carries the interpolation weights on the source side). Models must be valid (younger than the
  Universe) at both nodes. Sources without a usable redshift get NaN estimates.
* **Photo-z** (``photoz=True``): every source against the photo-z grid; see
  :mod:`sedscale.sed.photoz`. ``redshift`` in the result is then ``z_best``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from sedscale.catalog.photometry import Photometry
from sedscale.sed.config import FitConfig
from sedscale.sed.estimates import ModelTable, safe_log10
from sedscale.sed.fitter import Block, KernelOptions, KernelResult, ModelSet, Observations
from sedscale.sed.blas import single_threaded_blas
from sedscale.sed.filters import load_filters
from sedscale.sed.grid import (ModelGrid, build_grid, build_lattice_grid, known_z_cells,
                               lattice_coordinates, photoz_nodes)
from sedscale.sed.limits import run_kernel_with_limits
from sedscale.sed.mw_extinction import deredden
from sedscale.sed.photoz import (PhotozOptions, photoz_blocks, photoz_model_sets, pz_percentiles,
                                 summarize_pz)
from sedscale.sed.posterior import SUFFIXES

#: Extensive grid quantities and the names their log10 estimates carry (contract names).
EXTENSIVE_NAMES = {"mstar": "logmstar", "sfr100": "logsfr", "sfr10": "logsfr10", "ldust": "ldust",
                   "lagn_ir": "loglagn_ir"}


@dataclass
class FitResult:
    """Per-source fit outputs (all arrays of length N, in the photometry's row order).

    ``estimates[name] = (mean, std)`` — likelihood-weighted over all models (and redshifts in
    photo-z mode) — for every grid parameter (``age``, ``tau``, ``av``, ``metallicity``,
    ``age_mw`` [Gyr], ``frac_agn``, …) and ``logmstar`` (log10 M☉, surviving mass), ``logsfr``
    (log10 M☉/yr over 100 Myr), ``logsfr10`` (10 Myr), ``ssfr`` (log10 sSFR [1/yr], 100 Myr),
    ``ldust`` (log10 L_dust [L☉]); ``z`` too in photo-z mode.
    """

    source_id: np.ndarray
    filters: tuple[str, ...]
    estimates: dict[str, tuple[np.ndarray, np.ndarray]]
    chi2_best: np.ndarray  # χ² of the best model (no prior / normalisation terms)
    chi2_red: np.ndarray  # chi2_best / dof
    dof: np.ndarray  # max(n_bands − n_free, 1); n_free = 1 (normalisation), 2 in photo-z mode
    n_bands: np.ndarray  # bands observed (finite flux and error > 0)
    n_good_models: np.ndarray  # models within Δχ² (KernelOptions.delta_chi2_good) of the best
    residual_sigma: np.ndarray  # (N, B) (f − f_best) / σ_eff, NaN where not observed; ≤ 0 for a limit
    best_flux: np.ndarray  # (N, B) µJy
    best_index: np.ndarray  # model index in the grid (−1 = not fitted)
    redshift: np.ndarray  # input redshift, or z_phot in photo-z mode
    config_hash: str
    photoz: bool = False
    z_phot: np.ndarray | None = None  # the photo-z point estimate: median of P(z)
    z_phot_err: np.ndarray | None = None  # half the central 68% interval
    z_best: np.ndarray | None = None  # mode of P(z)
    z_mean: np.ndarray | None = None
    z_median: np.ndarray | None = None
    z_lo68: np.ndarray | None = None
    z_hi68: np.ndarray | None = None
    pz: np.ndarray | None = None  # (N, Z) on z_grid
    z_grid: np.ndarray | None = None
    fitted: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # a fit was made
    #: quantity (``logmstar``, ``logsfr``, ``av``, ``z_phot``) → percentile suffix (``p025``, ``p16``,
    #: ``p50``, ``p84``, ``p975``; :data:`sedscale.results.PERCENTILES`) → (N,) values
    percentiles: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    axes: dict[str, list[float]] = field(default_factory=dict)  # the config's grid axes (edge checks)

    def __len__(self) -> int:
        return int(self.source_id.shape[0])

    def mean(self, name: str) -> np.ndarray:
        return self.estimates[name][0]

    def std(self, name: str) -> np.ndarray:
        return self.estimates[name][1]


def model_table(intensive: dict[str, np.ndarray], extensive: dict[str, np.ndarray]) -> ModelTable:
    """The quantities averaged per source: every intensive parameter, the sSFR (a ratio, hence
    intensive) and the log10 of every extensive quantity."""
    inten = {k: np.asarray(v, np.float64) for k, v in intensive.items()}
    if "mstar" in extensive and "sfr100" in extensive:
        inten["ssfr"] = safe_log10(extensive["sfr100"]) - safe_log10(extensive["mstar"])
    ext = {k: v for k, v in extensive.items() if k in EXTENSIVE_NAMES}
    return ModelTable.from_dicts(inten, ext, EXTENSIVE_NAMES)


def fit_photometry(phot: Photometry, config: FitConfig, *, photoz: bool = False,
                   cache_dir: Path | None = None, options: KernelOptions | None = None,
                   photoz_options: PhotozOptions | None = None, xp: ModuleType = np) -> FitResult:
    """Fit every source of ``phot`` with the grid of ``config`` (see the module docstring).

    BLAS runs single-threaded throughout (grid builds, GEMMs of the array path, P(z) sums): a
    multi-threaded GEMM splits its sums by thread count, and the last bits of the grids and
    estimates must not depend on the worker's ``OPENBLAS_NUM_THREADS``."""
    opts = options or KernelOptions()
    phot = deredden(phot)  # Milky Way E(B−V) (sedscale.sed.mw_extinction); upper limits: sed.limits
    obs = Observations(np.asarray(phot.flux, np.float64), np.asarray(phot.error, np.float64),
                       config.error_floor)
    with single_threaded_blas():
        if photoz:
            return _fit_photoz(phot, config, obs, cache_dir, opts,
                               photoz_options or PhotozOptions(), xp)
        return _fit_known_z(phot, config, obs, cache_dir, opts, xp)


def _fit_photoz(phot: Photometry, config: FitConfig, obs: Observations, cache_dir: Path | None,
                opts: KernelOptions, popts: PhotozOptions, xp: ModuleType) -> FitResult:
    """Every source against the photo-z grid (:mod:`sedscale.sed.photoz`)."""
    if popts.error_floor is not None:  # photo-z mode's own systematic floor (docs/FITTER.md)
        obs = dataclasses.replace(obs, floor=popts.error_floor)
    grid = build_grid(config, phot.filters, photoz_nodes(config), cache_dir=cache_dir)
    table = model_table({**grid.intensive}, grid.extensive)
    pivots = np.array([f.pivot for f in load_filters(list(phot.filters))])
    blocks = photoz_blocks(obs.flux, obs.error, grid.flux, grid.valid, grid.redshifts, pivots,
                           popts, config.cosmology, _cached_sets(grid))
    kopts = dataclasses.replace(opts, n_free=opts.n_free + 1)
    res = run_kernel_with_limits(obs, blocks, table, kopts, xp, phot.limits)
    summ = summarize_pz(res.block_prob, grid.redshifts)
    est = dict(res.estimates)
    est["z"] = (summ.z_mean, np.sqrt(np.maximum(summ.pz @ grid.redshifts**2 - summ.z_mean**2, 0)))
    pct = {**res.percentiles, "z_phot": pz_percentiles(summ.pz, grid.redshifts)}
    return dataclasses.replace(
        _result(phot, res, est, config, summ.z_median, res.n_bands > 0, pct), photoz=True,
        z_phot=summ.z_median, z_phot_err=0.5 * (summ.z_hi68 - summ.z_lo68), z_best=summ.z_best,
        z_mean=summ.z_mean, z_median=summ.z_median, z_lo68=summ.z_lo68, z_hi68=summ.z_hi68,
        pz=summ.pz, z_grid=grid.redshifts)


def _fit_known_z(phot: Photometry, config: FitConfig, obs: Observations, cache_dir: Path | None,
                 opts: KernelOptions, xp: ModuleType) -> FitResult:
    """Each source between the two lattice nodes of its own cell (:func:`lattice_coordinates`).

    The cell and the interpolation weight come from the source's redshift alone, and the node
    fluxes do not depend on which other nodes were built with them, so a source's result does
    not depend on the other sources of the call (tests/sed/test_partition_independence.py)."""
    n, b = phot.flux.shape
    z = np.asarray(phot.redshift, np.float64)
    cell, frac = lattice_coordinates(config, z)
    ok = (cell >= 0) & (np.sum(obs.observed, axis=1) > 0)
    out = _empty(n, b)
    est: Estimates = {}
    pct: dict[str, np.ndarray] = {}
    if ok.any():
        grid = build_lattice_grid(config, phot.filters, z[ok], cache_dir=cache_dir)
        grid_cells = known_z_cells(config, z[ok])  # the grid's nodes, in order
        table = model_table(grid.intensive, grid.extensive)
        for k in np.unique(cell[ok]):
            rows = np.flatnonzero(ok & (cell == k))
            lo = int(np.searchsorted(grid_cells, k))  # exact: integers; node k + 1 is lo + 1
            idx = np.flatnonzero(grid.valid[lo] & grid.valid[lo + 1])
            ms = ModelSet(np.stack([grid.flux[lo][idx], grid.flux[lo + 1][idx]]), idx)
            t = frac[rows]
            block = Block(ms, mix=np.column_stack([1.0 - t, t]))
            sub = Observations(obs.flux[rows], obs.error[rows], obs.floor)
            _scatter(out, est, pct, rows, run_kernel_with_limits(sub, [block], table, opts, xp, phot.limits[rows]))
    res_all = KernelResult(estimates=est, n_pairs=0, block_prob=np.zeros((n, 1)), percentiles=pct,
                           **out)
    return _result(phot, res_all, est, config, z, ok, pct)


#: ``name → (mean, std)`` per source.
Estimates = dict[str, tuple[np.ndarray, np.ndarray]]

_SETS_CACHE: dict[str, list[ModelSet]] = {}


def _cached_sets(grid: ModelGrid) -> list[ModelSet]:
    """The photo-z model sets of ``grid``, kept for the last few grids (they are reused)."""
    key = grid.cache_key or grid.grid_hash
    if key not in _SETS_CACHE:
        if len(_SETS_CACHE) > 4:
            _SETS_CACHE.clear()
        _SETS_CACHE[key] = photoz_model_sets(grid.flux, grid.valid)
    return _SETS_CACHE[key]


#: The per-source arrays of :class:`KernelResult` that a known-z fit gathers cell by cell.
_PER_SOURCE = ("chi2_best", "best_block", "best_model", "log_s_best", "best_flux",
               "residual_sigma", "n_good", "n_bands", "dof", "chi2_red")


def _empty(n: int, b: int) -> dict[str, np.ndarray]:
    """:data:`_PER_SOURCE` for ``n`` sources not fitted (yet)."""
    return dict(chi2_best=np.full(n, np.nan), best_block=np.full(n, -1),
                best_model=np.full(n, -1), log_s_best=np.full(n, np.nan),
                best_flux=np.full((n, b), np.nan), residual_sigma=np.full((n, b), np.nan),
                n_good=np.zeros(n, np.int64), n_bands=np.zeros(n, np.int64),
                dof=np.ones(n, np.int64), chi2_red=np.full(n, np.nan))


def _scatter(out: dict[str, np.ndarray], est: Estimates, pct: dict[str, np.ndarray],
             rows: np.ndarray, res: KernelResult) -> None:
    """Copy one cell's kernel result into the rows ``rows`` of ``out``, ``est`` and ``pct``."""
    n = out["chi2_best"].shape[0]
    for name, values in res.percentiles.items():
        pct.setdefault(name, np.full((n, values.shape[1]), np.nan))[rows] = values
    for name, (mean, std) in res.estimates.items():
        if name not in est:
            est[name] = (np.full(n, np.nan), np.full(n, np.nan))
        est[name][0][rows] = mean
        est[name][1][rows] = std
    for key in _PER_SOURCE:
        out[key][rows] = getattr(res, key)


def _result(phot: Photometry, res: KernelResult, est: Estimates, config: FitConfig,
            redshift: np.ndarray, fitted: np.ndarray, pct: dict[str, np.ndarray]) -> FitResult:
    """The :class:`FitResult` of a kernel result (photo-z fits add their fields to it);
    ``pct`` name → (N, 5) percentiles becomes :attr:`FitResult.percentiles`."""
    observed = np.isfinite(phot.flux) & np.isfinite(phot.error) & (phot.error > 0)
    return FitResult(source_id=np.asarray(phot.source_id), filters=tuple(phot.filters),
                     estimates=est, chi2_best=res.chi2_best, chi2_red=res.chi2_red, dof=res.dof,
                     n_bands=np.sum(observed, axis=1), n_good_models=res.n_good,
                     residual_sigma=res.residual_sigma, best_flux=res.best_flux,
                     best_index=res.best_model, redshift=np.asarray(redshift, np.float64),
                     config_hash=config.hash(), fitted=fitted, axes=config.axes(),
                     percentiles={name: dict(zip(SUFFIXES, values.T)) for name, values in pct.items()})
