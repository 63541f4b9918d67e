"""Likelihood-weighted moments from the (source, model) pairs that survive the screening.

The kernel (:mod:`sedscale.sed.fitter`) hands over, for one group of sources, every pair whose
χ² lies within ``screen_chi2`` of that source's best: its χ² and normalisation in float64. This
module turns them into per-source sums ``Σ L``, ``Σ L p``, ``Σ L p²`` with
``L = exp(-(χ² - χ²_min)/2)``, as sparse-matrix products (one C++ loop over the pairs), and the
sums into means and standard deviations. No N×M matrix is ever formed.

*Intensive* model properties (age, A_V, ...) are averaged as they are; *extensive* ones (stellar
mass, SFR, L_dust per unit normalisation) as ``log10(s · x_j)`` with ``s`` the pair's best-fit
normalisation. Pairs whose normalisation was clipped at zero (the model only fits a negative
flux) carry no information on extensive quantities and are left out of those averages (their
intensive parameters still count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

#: log10 of per-unit-normalisation quantities is never below this (a per-M☉ SFR of 1e-20 /yr is
#: "dead" for every purpose); see :func:`grid_log10` for zeros.
LOG_FLOOR = -20.0


def safe_log10(x: np.ndarray, floor: float = LOG_FLOOR) -> np.ndarray:
    """log10 clamped at ``floor`` (zero or negative inputs map to the floor)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(np.asarray(x, dtype=np.float64))
    return np.where(np.isfinite(out) & (out > floor), out, floor)


def grid_log10(x: np.ndarray) -> np.ndarray:
    """log10 of a per-model extensive quantity; zeros (e.g. L_dust of dust-free models) are put
    one dex below the smallest positive value of the grid (and never below :data:`LOG_FLOOR`),
    so a handful of "zero" models cannot drag a log-average by tens of dex."""
    x = np.asarray(x, dtype=np.float64)
    pos = x[x > 0]
    floor = max(LOG_FLOOR, float(np.log10(pos.min())) - 1.0) if pos.size else LOG_FLOOR
    return safe_log10(x, floor)


@dataclass(frozen=True)
class ModelTable:
    """Per-model quantities to average: ``intensive`` (M, P) as is, ``log_extensive`` (M, E) as
    log10 per unit normalisation (log10 s is added per pair)."""

    intensive_names: tuple[str, ...]
    intensive: np.ndarray  # (M, P) float64
    extensive_names: tuple[str, ...]
    log_extensive: np.ndarray  # (M, E) float64

    @classmethod
    def from_dicts(cls, intensive: dict[str, np.ndarray], extensive: dict[str, np.ndarray],
                   extensive_names: dict[str, str] | None = None) -> ModelTable:
        """Build from name → (M,) arrays; ``extensive_names`` renames (e.g. mstar → logmstar)."""
        ren = extensive_names or {}
        first = next(iter({**intensive, **extensive}.values()))
        m = len(first)
        ip = (np.column_stack([np.asarray(v, np.float64) for v in intensive.values()])
              if intensive else np.zeros((m, 0)))
        ep = (np.column_stack([grid_log10(v) for v in extensive.values()])
              if extensive else np.zeros((m, 0)))
        return cls(tuple(intensive), ip, tuple(ren.get(k, k) for k in extensive), ep)

    @property
    def n_models(self) -> int:
        return int(self.intensive.shape[0])

    def design(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Right-hand sides of the sparse products: [1, p, p²], [1, x, x²] and [1, x]."""
        p, x = self.intensive, self.log_extensive
        one = np.ones((p.shape[0], 1))
        return (np.ascontiguousarray(np.hstack([one, p, p * p])),
                np.ascontiguousarray(np.hstack([one, x, x * x])),
                np.ascontiguousarray(np.hstack([one, x])))


@dataclass
class Moments:
    """Per-source sums for one group of sources, and what they turn into."""

    w0: np.ndarray  # Σ L
    int1: np.ndarray  # Σ L p         (n, P)
    int2: np.ndarray  # Σ L p²
    w0_pos: np.ndarray  # Σ L over pairs with s > 0
    ext1: np.ndarray  # Σ L (log s + x)   (n, E)
    ext2: np.ndarray  # Σ L (log s + x)²
    block_weight: np.ndarray  # (n, n_blocks) Σ L per block (marginal P(z) in photo-z mode)

    def estimates(self, table: ModelTable) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """name → (mean, std) for every intensive and extensive quantity."""
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            for k, name in enumerate(table.intensive_names):
                out[name] = _mean_std(self.int1[:, k], self.int2[:, k], self.w0)
            for k, name in enumerate(table.extensive_names):
                out[name] = _mean_std(self.ext1[:, k], self.ext2[:, k], self.w0_pos)
        return out


def accumulate(n: int, table: ModelTable, design: tuple[np.ndarray, ...], n_blocks: int,
               rows: np.ndarray, model: np.ndarray, block: np.ndarray, chi2: np.ndarray,
               log_s: np.ndarray, pos: np.ndarray, ref: np.ndarray) -> Moments:
    """Weighted sums over pairs (any order) with weights relative to ``ref`` (n,)."""
    order = np.argsort(rows, kind="stable")
    rows, model, block = rows[order], model[order], block[order]
    chi2, log_s, pos = chi2[order], log_s[order], pos[order]
    lw = np.exp(-0.5 * (chi2 - ref[rows]))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
    shape = (n, table.n_models)
    d_int, d_pos, d_ls = design
    lwp = np.where(pos, lw, 0.0)
    ls = np.where(pos, log_s, 0.0)
    s_all = sp.csr_array((lw, model, indptr), shape=shape) @ d_int
    s_pos = sp.csr_array((lwp, model, indptr), shape=shape) @ d_pos
    s_ls = sp.csr_array((lwp * ls, model, indptr), shape=shape) @ d_ls
    sum_ls2 = np.bincount(rows, weights=lwp * ls * ls, minlength=n)
    p, e = table.intensive.shape[1], table.log_extensive.shape[1]
    # Σ L⁺ (ls + x) = Σ L⁺ ls + Σ L⁺ x;   Σ L⁺ (ls + x)² = Σ L⁺ ls² + 2 Σ (L⁺ ls) x + Σ L⁺ x²
    ext1 = s_ls[:, :1] + s_pos[:, 1 : 1 + e]
    ext2 = sum_ls2[:, None] + 2.0 * s_ls[:, 1 : 1 + e] + s_pos[:, 1 + e : 1 + 2 * e]
    bw = np.bincount(rows * n_blocks + block, weights=lw, minlength=n * n_blocks).reshape(n, n_blocks)
    return Moments(w0=s_all[:, 0], int1=s_all[:, 1 : 1 + p], int2=s_all[:, 1 + p : 1 + 2 * p],
                   w0_pos=s_pos[:, 0], ext1=ext1, ext2=ext2, block_weight=bw)


def _mean_std(s1: np.ndarray, s2: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = s1 / w
    var = s2 / w - mean * mean
    return mean, np.sqrt(np.maximum(var, 0.0))


def as_numpy(x: Any) -> np.ndarray:
    """Bring an array of any backend to host numpy (CuPy ``.get()``, torch ``.cpu().numpy()``)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):
        return x.get()
    if hasattr(x, "cpu"):
        return x.cpu().numpy()
    return np.asarray(x)
