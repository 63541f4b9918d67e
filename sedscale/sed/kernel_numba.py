"""Fused candidate scan for the CPU: test, exact χ² and weighted sums in one pass per tile.

After the two float32 GEMMs of a tile (A and C, n × w), :func:`scan_tile` walks the tile once.
A pair is a candidate when ``max(A,0)² ≥ t·C`` with t the source's current threshold; only then
does it compute the float64 χ² (from the float32 A, C, or from float64 features for rows flagged
``exact``), and, if within ``screen`` of the best, add ``L = exp(-(χ² − ref)/2)`` times every
model quantity into the source's running sums. When a source's best χ² improves, its sums are
rescaled by ``exp(-(ref_old − ref_new)/2)`` (an online log-sum-exp), so each pair is touched once
and no pair list is ever built. This is the same arithmetic as the array path
(:mod:`sedscale.sed.screen` + :mod:`sedscale.sed.estimates`), which the tests compare it with.

numba is optional: without it the array path is used (several times slower at high candidate
densities, same results).
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba as _nb

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    _nb = None
    HAVE_NUMBA = False


def _scan(a_t, c_t, col0, goff, blk, const, margin, exact, lin64, quad64, mlin64, mquad64,
          model_index, log_k, log_u, tab_int, tab_ext, screen, delta,
          ref, s0, s1, s2, s0p, e1, e2, bw, best_col, best_s, near_i, near_c, n_near):  # pragma: no cover
    n, w = a_t.shape
    n_int = tab_int.shape[1]
    n_ext = tab_ext.shape[1]
    n_blk = bw.shape[1]
    k1 = lin64.shape[1]
    k2 = quad64.shape[1]
    cap = near_i.shape[0]
    idx = np.empty(w, np.int64)
    for i in range(n):
        t = const[i] - (ref[i] + screen + margin[i])
        t32 = np.float32(t)
        if t32 > 0:
            # 1) branch-free, vectorised count: most rows have no candidate in a tile
            hits = 0
            for j in range(w):
                av = a_t[i, j]
                hits += (av > 0) & (av * av >= t32 * c_t[i, j])
            if hits == 0:
                continue
            # 2) branch-free compaction of the candidates' columns (no mispredicted branches)
            k = 0
            for j in range(w):
                av = a_t[i, j]
                idx[k] = j
                k += (av > 0) & (av * av >= t32 * c_t[i, j])
        else:  # every pair can matter (a faint source): all columns
            k = w
            for j in range(w):
                idx[j] = j
        for m in range(k):
            j = idx[m]
            av = a_t[i, j]
            col = col0 + j
            if exact[i]:
                a = 0.0
                c = 0.0
                for k in range(k1):
                    a += lin64[i, k] * mlin64[col, k]
                for k in range(k2):
                    c += quad64[i, k] * mquad64[col, k]
            else:
                a = np.float64(av)
                c = np.float64(c_t[i, j])
            if a > 0:
                s = a / c
                chi = const[i] - s * a
            else:
                s = 0.0
                chi = const[i]
            if chi > ref[i] + screen:
                continue
            if chi < ref[i]:
                if s0[i] > 0:
                    f = math.exp(-0.5 * (ref[i] - chi))
                    s0[i] *= f
                    s0p[i] *= f
                    for k in range(n_int):
                        s1[i, k] *= f
                        s2[i, k] *= f
                    for k in range(n_ext):
                        e1[i, k] *= f
                        e2[i, k] *= f
                    for k in range(n_blk):
                        bw[i, k] *= f
                ref[i] = chi
                best_col[i] = goff + col
                best_s[i] = s
                t = const[i] - (chi + screen + margin[i])
                t32 = np.float32(t)
            lw = math.exp(-0.5 * (chi - ref[i]))
            n_near[1] += 1
            s0[i] += lw
            bw[i, blk] += lw
            mi = model_index[col]
            for k in range(n_int):
                v = tab_int[mi, k]
                s1[i, k] += lw * v
                s2[i, k] += lw * v * v
            if s > 0:
                ls = math.log(s) * 0.4342944819032518 + log_u[i] - log_k[col]
                s0p[i] += lw
                for k in range(n_ext):
                    x = tab_ext[mi, k] + ls
                    e1[i, k] += lw * x
                    e2[i, k] += lw * x * x
            if chi <= ref[i] + delta:
                if n_near[0] < cap:
                    near_i[n_near[0]] = i
                    near_c[n_near[0]] = chi
                n_near[0] += 1


if HAVE_NUMBA:
    scan_tile = _nb.njit(cache=True, nogil=True)(_scan)
else:  # pragma: no cover
    scan_tile = None


class FusedState:
    """Running sums of one row group for :func:`scan_tile` (all float64, relative to ``ref``)."""

    def __init__(self, n: int, n_int: int, n_ext: int, n_blocks: int, ref: np.ndarray):
        self.ref = ref.astype(np.float64).copy()
        self.s0 = np.zeros(n)
        self.s1 = np.zeros((n, n_int))
        self.s2 = np.zeros((n, n_int))
        self.s0p = np.zeros(n)
        self.e1 = np.zeros((n, n_ext))
        self.e2 = np.zeros((n, n_ext))
        self.bw = np.zeros((n, n_blocks))
        self.best_col = np.full(n, -1, dtype=np.int64)
        self.best_s = np.zeros(n)
        self.near_i: list[np.ndarray] = []
        self.near_c: list[np.ndarray] = []
        cap = 1 << 16
        self._ni = np.empty(cap, np.int64)
        self._nc = np.empty(cap)
        self._count = np.zeros(2, np.int64)
        self.n_pairs = 0

    def scan(self, a_t, c_t, col0, goff, blk, const, margin, exact, lin64, quad64, mlin64,
             mquad64, model_index, log_k, log_u, tab_int, tab_ext, screen, delta) -> None:
        """One tile; pairs within ``delta`` of the running best are kept for the final count."""
        if self._ni.size < a_t.size:
            self._ni = np.empty(a_t.size, np.int64)
            self._nc = np.empty(a_t.size)
        self._count[:] = 0
        scan_tile(a_t, c_t, col0, goff, blk, const, margin, exact, lin64, quad64, mlin64, mquad64,
                  model_index, log_k, log_u, tab_int, tab_ext, float(screen), float(delta),
                  self.ref, self.s0, self.s1, self.s2, self.s0p, self.e1, self.e2, self.bw,
                  self.best_col, self.best_s, self._ni, self._nc, self._count)
        cnt = int(self._count[0])
        self.n_pairs += int(self._count[1])
        if cnt:
            self.near_i.append(self._ni[:cnt].copy())
            self.near_c.append(self._nc[:cnt].copy())

    def n_within(self, delta: float) -> np.ndarray:
        n = self.s0.size
        if not self.near_i:
            return np.zeros(n, np.int64)
        r = np.concatenate(self.near_i)
        c = np.concatenate(self.near_c)
        ok = c <= self.ref[r] + delta
        return np.bincount(r[ok], minlength=n)
