"""Upper limits in the likelihood (Sawicki 2012, eq. 8), exactly, for the few sources that have them.

Why a separate path
-------------------
The fused kernel (:mod:`sedscale.sed.fitter`) owes its speed to the Gaussian χ² being quadratic in
the normalisation s: best s and χ² are closed forms of two GEMMs. A band given as an upper limit
f_lim with 1σ width σ enters the likelihood as the probability that the model's flux s·m would
be measured below f_lim::

    −2 ln L_j = −2 ln{ √(π/2) σ_j [1 + erf((f_lim,j − s m_j) / (√2 σ_j))] }

which is not quadratic in s. Surveys flag few sources this way, so the sources with at least one
limit band are fitted here, in float64 numpy, against every model of every block, and the rest go
through the kernel untouched (:func:`run_kernel_with_limits`).

Conventions (docs/FITTER.md, "Faint sources, upper limits and calibrations")
---------------------------------------------------------------------------
* The χ² of a source is Σ_detected ((f − s m)/σ)² + Σ_limits −2 ln Φ((f_lim − s m)/σ), with Φ the
  standard normal CDF. Per limit band this is Sawicki's term plus the model-independent
  ln(2π σ_j²): every limit term is ≥ 0, tends to 0 for a model far below the limit and to the
  Gaussian χ² of (f_lim − s m)/σ for a model far above it, so ``chi2_best`` stays comparable.
* The best normalisation per model minimises that χ² over s ≥ 0 (clipped at 0 as in the kernel):
  the function is convex in s, its minimum lies in [0, max(A/C, 0)] (A, C of the detected bands:
  the limit terms only ever pull s down), and a Newton iteration kept inside that bracket
  (bisection when a step leaves it) finds it to 1e-12 relative.
* Weights, screening window, priors (``Block.penalty``), template error (``sigma_extra``), the
  Σ ln σ² term (``log_norm``), redshift interpolation (``mix``) and the estimates are the kernel's
  (:func:`sedscale.sed.estimates.accumulate`); percentiles are the kernel's post-pass
  (:mod:`sedscale.sed.posterior`) with each pair's likelihood in s approximated by a Gaussian
  at its peak (Laplace: mean s − χ²'/χ²'', width (χ²''/2)^-1/2, exact without limit bands).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Sequence

import numpy as np
from scipy.special import log_ndtr

from sedscale.sed.estimates import ModelTable, accumulate
from sedscale.sed.fitter import (Block, KernelOptions, KernelResult, Observations, _undetected_estimates,
                                 run_kernel)
from sedscale.sed.posterior import LEVELS, Candidates, percentiles

_LN_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
_NEWTON_STEPS = 60


def limit_chi2(flux: np.ndarray, sigma: np.ndarray, model: np.ndarray) -> np.ndarray:
    """−2 ln Φ((f_lim − model)/σ) per band: Sawicki's (2012) term plus ln(2π σ²)."""
    result: np.ndarray = -2.0 * log_ndtr((flux - model) / sigma)
    return result


@dataclass(frozen=True)
class NormalisationFit:
    """Per model (all (M,)): the best s ≥ 0, its χ², and the likelihood of s near its peak as a
    Gaussian N(a_hat, sigma²) (Laplace: a_hat = s − χ²'/χ²'', sigma = (χ²''/2)^-1/2 at the best
    s; for measured bands only this is the kernel's A/C and C^-1/2)."""

    s: np.ndarray
    chi2: np.ndarray
    a_hat: np.ndarray
    sigma: np.ndarray


def best_normalisation(flux: np.ndarray, sigma: np.ndarray, is_limit: np.ndarray,
                       models: np.ndarray) -> NormalisationFit:
    """The best s ≥ 0 and χ² of one source against ``models`` (M, B); bands with σ = inf are
    unused. See the module docstring for the bracket and the iteration."""
    det = np.isfinite(sigma) & ~is_limit
    lim = np.isfinite(sigma) & is_limit
    w = np.where(det, 1.0 / np.where(det, sigma, 1.0) ** 2, 0.0)
    f_det = np.where(det, flux, 0.0)
    a = models @ (w * f_det)
    c = models**2 @ w + 1e-300
    f_lim, s_lim, m_lim = flux[lim], sigma[lim], models[:, lim]

    def slope(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """χ²'(s) and χ²''(s) per model."""
        u = (f_lim[None, :] - s[:, None] * m_lim) / s_lim[None, :]
        mills = np.exp(-0.5 * u * u - _LN_SQRT_2PI - log_ndtr(u))  # φ(u)/Φ(u)
        k = m_lim / s_lim[None, :]
        grad = 2.0 * (s * c - a) + 2.0 * np.sum(k * mills, axis=1)
        curv = 2.0 * c + 2.0 * np.sum(k * k * (u * mills + mills * mills), axis=1)
        return grad, curv

    lo, hi = np.zeros_like(a), np.maximum(a / c, 0.0)
    s = 0.5 * hi
    for _ in range(_NEWTON_STEPS):
        grad, curv = slope(s)
        lo, hi = np.where(grad < 0, s, lo), np.where(grad > 0, s, hi)
        step = s - grad / curv
        new = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
        done = bool(np.all(np.abs(new - s) <= 1e-12 * np.maximum(hi, 1e-300)))
        s = new
        if done:
            break
    grad, curv = slope(s)
    chi2 = np.sum(w * (f_det[None, :] - s[:, None] * models) ** 2, axis=1)
    chi2 += np.sum(limit_chi2(f_lim[None, :], s_lim[None, :], s[:, None] * m_lim), axis=1)
    return NormalisationFit(s=s, chi2=chi2, a_hat=s - grad / curv, sigma=np.sqrt(2.0 / curv))


@dataclass
class _Pairs:
    """Every (model, block) pair of one source: total χ² (with prior terms), plain χ², s."""

    model: np.ndarray  # row in the ModelTable
    block: np.ndarray
    column: np.ndarray  # model's index within its block
    chi2: np.ndarray  # what the weights use: χ² + penalty (+ Σ ln σ² when log_norm)
    plain: np.ndarray  # χ² of the data alone
    s: np.ndarray  # physical normalisation (≥ 0)
    a_hat: np.ndarray  # the normalisation's Gaussian (Laplace) approximation, scaled units
    sigma: np.ndarray
    log_scale: np.ndarray  # log10 of physical / scaled normalisation


def _block_models(block: Block, row: int) -> np.ndarray:
    """The block's model fluxes (Mb, B) for source ``row`` (redshift mix applied)."""
    flux = np.asarray(block.models.flux, np.float64)
    if flux.ndim == 2:
        flux = flux[None]
    if block.mix is None:
        return flux[0]
    mixed: np.ndarray = np.einsum("r,rmb->mb", np.asarray(block.mix[row], np.float64), flux)
    return mixed


def _source_pairs(obs: Observations, blocks: Sequence[Block], row: int, is_limit: np.ndarray) -> _Pairs:
    """All pairs of source ``row``, each model rescaled by its largest flux while fitting s."""
    parts = []
    for bi, block in enumerate(blocks):
        models = _block_models(block, row)
        k = np.max(np.abs(models), axis=1)
        k = np.where(np.isfinite(k) & (k > 0), k, 1.0)
        sigma = obs.sigma_eff(np.array([row]), block.sigma_extra)[0]
        fit = best_normalisation(obs.flux[row], sigma, is_limit, np.nan_to_num(models / k[:, None]))
        total = fit.chi2.copy()
        if block.penalty is not None:
            total += float(block.penalty[row])
        if block.log_norm:  # the Gaussian normalisation of the measured bands; Φ needs none
            measured = np.isfinite(sigma) & ~is_limit
            total += float(np.sum(np.log(sigma[measured] ** 2)))
        parts.append((block.models.model_index, np.full(k.size, bi), np.arange(k.size), total, fit.chi2,
                      fit.s / k, fit.a_hat, fit.sigma, -np.log10(k)))
    return _Pairs(*(np.concatenate([p[i] for p in parts]) for i in range(9)))


def _percentiles(pairs: _Pairs, table: ModelTable, options: KernelOptions) -> dict[str, np.ndarray]:
    """name → (5,) posterior percentiles, by the kernel's post-pass (:mod:`sedscale.sed.posterior`)
    over the pairs within ``posterior_chi2`` of the best, each pair's normalisation its Laplace
    Gaussian truncated at 0."""
    if options.posterior_chi2 <= 0:
        return {}
    win = np.flatnonzero(pairs.chi2 <= pairs.chi2.min() + options.posterior_chi2)
    cand = Candidates(1, np.zeros(win.size, np.int64), pairs.model[win], pairs.chi2[win],
                      pairs.a_hat[win], pairs.sigma[win], pairs.log_scale[win])
    return {name: values[0] for name, values in percentiles(cand, table, options.posterior_names).items()}


@dataclass
class _SourceFit:
    """One source's fit on the exact path: the per-source values of :class:`KernelResult`."""

    estimates: dict[str, tuple[np.ndarray, np.ndarray]]  # name → (mean, std), length 1
    percentiles: dict[str, np.ndarray]  # name → (5,)
    chi2_best: float
    best_block: int
    best_model: int
    log_s_best: float
    best_flux: np.ndarray  # (B,)
    residual_sigma: np.ndarray  # (B,)
    n_good: int
    n_bands: int
    dof: int
    block_prob: np.ndarray  # (n_blocks,)


def limit_aware_residual(flux: np.ndarray, model: np.ndarray, sigma: np.ndarray, is_limit: np.ndarray) -> np.ndarray:
    """(f − model)/σ per band, NaN where not observed; for an upper-limit band only the model's
    excess *above* the limit counts (≤ 0), 0 where the model lies below it.

    Why: a model below an upper limit agrees with it — Sawicki's term −2 ln Φ((f_lim − m)/σ) → 0 —
    but (f_lim − m)/σ is large and positive, so the acceptance test's per-band |r| cut and the
    rules' "under-predicted" patterns would read a met limit as a missing flux."""
    with np.errstate(invalid="ignore"):
        resid = np.where(np.isfinite(sigma), (flux - model) / sigma, np.nan)
    return np.where(is_limit & np.isfinite(resid), np.minimum(resid, 0.0), resid)


def _fit_one(obs: Observations, blocks: Sequence[Block], row: int, is_limit: np.ndarray,
             table: ModelTable, options: KernelOptions) -> _SourceFit:
    """Source ``row`` against every pair; weights and estimates as the kernel's."""
    pairs = _source_pairs(obs, blocks, row, is_limit)
    best = int(np.argmin(pairs.chi2))
    keep = pairs.chi2 <= pairs.chi2[best] + options.screen_chi2
    pos = pairs.s[keep] > 0
    log_s = np.log10(np.where(pos, pairs.s[keep], 1.0))
    mom = accumulate(1, table, table.design(), len(blocks), np.zeros(int(keep.sum()), np.int64),
                     pairs.model[keep], pairs.block[keep], pairs.chi2[keep], log_s, pos,
                     pairs.chi2[best:best + 1])
    bi = int(pairs.block[best])
    sigma = obs.sigma_eff(np.array([row]), blocks[bi].sigma_extra)[0]
    best_flux = pairs.s[best] * _block_models(blocks[bi], row)[pairs.column[best]]
    resid = limit_aware_residual(obs.flux[row], best_flux, sigma, is_limit)
    n_bands = int(np.sum(np.isfinite(sigma)))
    estimates, pct = mom.estimates(table), _percentiles(pairs, table, options)
    _undetected_estimates(estimates, {k: v[None] for k, v in pct.items()}, table)  # only limits: as the kernel
    return _SourceFit(
        estimates=estimates, percentiles=pct,
        chi2_best=float(pairs.plain[best]), best_block=bi, best_model=int(pairs.model[best]),
        log_s_best=float(np.log10(pairs.s[best])) if pairs.s[best] > 0 else -np.inf,
        best_flux=best_flux, residual_sigma=resid,
        n_good=int(np.sum(pairs.chi2 <= pairs.chi2[best] + options.delta_chi2_good)),
        n_bands=n_bands, dof=max(n_bands - options.n_free, 1),
        block_prob=mom.block_weight[0] / mom.w0[0])



def _rows_of(blocks: Sequence[Block], rows: np.ndarray) -> list[Block]:
    """The blocks restricted to the sources ``rows`` (per-source mix and penalty sliced)."""
    return [dataclasses.replace(b, mix=None if b.mix is None else b.mix[rows],
                                penalty=None if b.penalty is None else b.penalty[rows]) for b in blocks]


def _spread(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """``values`` (one per row of ``rows``) placed in an n-row array; other rows NaN (or −1)."""
    fill: float = -1 if np.issubdtype(values.dtype, np.integer) else np.nan
    out = np.full((n,) + values.shape[1:], fill, dtype=values.dtype)
    out[rows] = values
    return out


def _widen(res: KernelResult, rows: np.ndarray, n: int) -> KernelResult:
    """The kernel's result for ``rows`` of n sources, every per-source array n rows long."""
    widened: dict[str, Any] = {}  # field name → its widened value (fields differ in type)
    for f in dataclasses.fields(res):
        value = getattr(res, f.name)
        if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == rows.size:
            widened[f.name] = _spread(value, rows, n)
        elif f.name == "estimates":
            widened[f.name] = {k: (_spread(m, rows, n), _spread(s, rows, n)) for k, (m, s) in value.items()}
        elif f.name == "percentiles":
            widened[f.name] = {k: _spread(v, rows, n) for k, v in value.items()}
    return dataclasses.replace(res, **widened)


def _put(res: KernelResult, row: int, fit: _SourceFit) -> None:
    """Write one exact-path source into row ``row`` of a widened result."""
    n = res.chi2_best.shape[0]
    for name, (mean, std) in fit.estimates.items():
        if name not in res.estimates:
            res.estimates[name] = (np.full(n, np.nan), np.full(n, np.nan))
        res.estimates[name][0][row], res.estimates[name][1][row] = mean[0], std[0]
    for name, values in fit.percentiles.items():
        res.percentiles.setdefault(name, np.full((n, LEVELS.size), np.nan))[row] = values
    for name in ("chi2_best", "best_block", "best_model", "log_s_best", "best_flux", "residual_sigma",
                 "n_good", "n_bands", "dof", "block_prob"):
        getattr(res, name)[row] = getattr(fit, name)
    res.chi2_red[row] = fit.chi2_best / fit.dof


def run_kernel_with_limits(obs: Observations, blocks: Sequence[Block], table: ModelTable,
                           options: KernelOptions, xp: ModuleType, is_limit: np.ndarray) -> KernelResult:
    """:func:`run_kernel`, except that the sources with an upper-limit band (``is_limit`` (N, B))
    are fitted on the exact path of this module; results are in the sources' order."""
    limited = np.any(is_limit, axis=1)
    if not limited.any():
        return run_kernel(obs, blocks, table, options, xp)
    plain_rows, limit_rows = np.flatnonzero(~limited), np.flatnonzero(limited)
    plain = run_kernel(Observations(obs.flux[plain_rows], obs.error[plain_rows], obs.floor),
                       _rows_of(blocks, plain_rows), table, options, xp)
    res = _widen(plain, plain_rows, obs.flux.shape[0])
    sub = Observations(obs.flux[limit_rows], obs.error[limit_rows], obs.floor)
    sub_blocks = _rows_of(blocks, limit_rows)
    for i, row in enumerate(limit_rows):
        _put(res, int(row), _fit_one(sub, sub_blocks, i, is_limit[row], table, options))
    return res
