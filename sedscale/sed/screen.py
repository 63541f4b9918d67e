"""Screening: which (source, model) pairs can matter, in as few passes over N×M as possible.

A pair is a *candidate* when its χ² can lie within ``screen`` of its source's best, i.e. when
its gain q = A²/C reaches t = const − (χ²_best + screen + margin). Per model tile this is

1. ``A = lin @ lin_t`` and ``C' = (t·quad) @ quad_t`` — two float32 GEMMs with the threshold
   folded into the second one's source side, so the test needs no division and no extra pass;
2. ``A·A ≥ C'`` — one multiply and one compare;
3. rows of the boolean tile are checked eight bytes at a time, and ``nonzero`` runs only on the
   rows that hold a candidate (``nonzero`` over a whole tile costs more than the GEMMs).

The best χ² of each source (``best``, float64) is updated after every tile from its candidates,
so the threshold tightens as the scan goes. Pairs with A < 0 (normalisation clipped to 0, χ² =
const) may pass when t ≤ 0 — they are then genuine candidates — or, rarely, as sign-blind false
positives that the caller's exact χ² removes. Rows with t ≤ 0 have C' = 0 and their C is
recomputed exactly by the caller (flag ``exact``).

Everything here uses the array namespace ``xp`` (numpy by default; CuPy and PyTorch's numpy API
are the intended drop-ins — untested, there is no GPU on the development machines).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from sedscale.sed.estimates import as_numpy


def screen_block(lin32, quad64: np.ndarray, lin_t, quad_t, const: np.ndarray, best: np.ndarray,
                 margin: np.ndarray, screen: float, xp: ModuleType = np,
                 tile_elements: int = 1 << 17) -> tuple[np.ndarray, ...]:
    """Candidates of one row group (n sources) against one model set.

    ``lin32`` (n, K1) float32 in ``xp``; ``quad64`` (n, K2) float64 host; ``lin_t`` (K1, M) and
    ``quad_t`` (K2, M) float32 in ``xp``. Returns host arrays (rows, cols, A, C, exact) with A and
    C as float64 (C = C'/t, NaN where t ≤ 0) and ``best`` updated in place.
    """
    n, m = lin32.shape[0], lin_t.shape[1]
    per = max(64, (tile_elements // max(n, 1)) // 64 * 64)
    outs: list[tuple[np.ndarray, ...]] = []
    for j0 in range(0, m, per):
        j1 = min(j0 + per, m)
        w = j1 - j0
        t = const - (best + screen + margin)
        tpos = np.maximum(t, 0.0)
        quad_s = xp.asarray((quad64 * tpos[:, None]).astype(np.float32))
        av = xp.matmul(lin32, lin_t[:, j0:j1])
        cv = xp.matmul(quad_s, quad_t[:, j0:j1])
        aa = xp.multiply(av, av)
        mask = aa >= cv
        flat = _flat_candidates(mask, n, w, xp)
        if flat.size == 0:
            continue
        i, j = np.divmod(flat, w)
        a = as_numpy(av.reshape(-1)[flat]).astype(np.float64)
        cs = as_numpy(cv.reshape(-1)[flat]).astype(np.float64)
        ti = t[i]
        ok = ti > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(ok, cs / np.where(ok, ti, 1.0), np.nan)
        # tighten the threshold with this tile's candidates (rows come sorted)
        good = ok & (a > 0)
        if good.any():
            chi = const[i[good]] - a[good] * a[good] / c[good]
            np.minimum.at(best, i[good], chi)
        outs.append((i, j + j0, a, c, ~ok))
    if not outs:
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0), np.zeros(0), np.zeros(0, bool)
    return tuple(np.concatenate(x) for x in zip(*outs))


def _flat_candidates(mask, n: int, w: int, xp: ModuleType) -> np.ndarray:
    """Flat indices of True in an (n, w) boolean tile, skipping all-False rows cheaply."""
    if xp is np and w % 8 == 0 and mask.flags.c_contiguous:
        rows = np.flatnonzero(mask.view(np.uint64).reshape(n, w // 8).any(axis=1))
        if rows.size == 0:
            return np.zeros(0, np.int64)
        if rows.size * 4 < n:
            r, c = np.nonzero(mask[rows])
            return rows[r] * w + c
    return as_numpy(xp.flatnonzero(mask))
