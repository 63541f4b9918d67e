"""The posterior post-pass's two hot loops, compiled: each listed pair's normalisation fit, and
per-source weighted quantiles.

Why compiled: in numpy the post-pass cost ~10× the χ² kernel's scan (a Python loop over sources
for the pairs' A and C, a per-source histogram array of ``bins`` cells for the quantiles), which
took the kernel from ~30,000 to ~3,000 sources/s at 10^4 models. These loops are plain float64
arithmetic in a fixed order, without fast-math flags, so a process that compiles them and one
that loads them from sedscale's numba cache compute the same bits (see
:mod:`sedscale.sed.kernel_numba` on why fast-math would break that). Without numba the numpy
versions in :mod:`sedscale.sed.posterior` / :mod:`sedscale.sed.fitter` run instead.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

try:
    import numba as _nb

    from sedscale.sed.kernel_cache import own_cache

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    _nb = None
    HAVE_NUMBA = False


def _compiled(f: Callable[..., Any]) -> Callable[..., Any]:
    """numba.njit (no fast-math), cached in sedscale's own numba cache; None without numba."""
    if not HAVE_NUMBA:  # pragma: no cover
        return f
    compiled: Callable[..., Any] = own_cache(_nb.njit(nogil=True, error_model="numpy", cache=True)(f))
    return compiled


@_compiled
def pair_fits(lin64, quad64, feat_lin, feat_quad, model_row, source_row, a_out, c_out):  # pragma: no cover
    """A = lin64[j]·feat_lin[i], C = quad64[j]·feat_quad[i] for each pair (j, i), in place."""
    nb_lin = lin64.shape[1]
    nb_quad = quad64.shape[1]
    for p in range(model_row.size):
        j = model_row[p]
        i = source_row[p]
        a = 0.0
        for b in range(nb_lin):
            a += lin64[j, b] * feat_lin[i, b]
        c = 0.0
        for b in range(nb_quad):
            c += quad64[j, b] * feat_quad[i, b]
        a_out[p] = a
        c_out[p] = c


@_compiled
def segment_quantiles(starts, stops, values, weights, levels, bins, out):  # pragma: no cover
    """For each segment [starts[s], stops[s]) of (values, weights) — one source's samples —
    the weighted quantiles at ``levels``, written to out[s, :]: the samples are binned over the
    segment's [min, max] into ``bins`` cells and the CDF inverted with linear interpolation inside
    a cell (the numpy version's method; O(samples + bins) per source, no sort)."""
    hist = np.zeros(bins)
    for s in range(starts.size):
        lo_i, hi_i = starts[s], stops[s]
        lo, hi, total = np.inf, -np.inf, 0.0
        for p in range(lo_i, hi_i):
            v = values[p]
            if weights[p] > 0.0 and np.isfinite(v):
                lo = min(lo, v)
                hi = max(hi, v)
                total += weights[p]
        if not total > 0.0:
            continue
        width = hi - lo
        if width <= 0.0:
            for k in range(levels.size):
                out[s, k] = lo
            continue
        scale = bins / width
        hist[:] = 0.0
        for p in range(lo_i, hi_i):
            v = values[p]
            if weights[p] > 0.0 and np.isfinite(v):
                k = min(int((v - lo) * scale), bins - 1)
                hist[k] += weights[p]
        _invert(hist, total, lo, width, bins, levels, out, s)


@_compiled
def _invert(hist, total, lo, width, bins, levels, out, s):  # pragma: no cover
    """Quantiles of one source's histogram (cells of ``width / bins`` from ``lo``)."""
    level_i = 0
    cum = 0.0
    for b in range(bins):
        mass = hist[b] / total
        while level_i < levels.size and cum + mass >= levels[level_i]:
            frac = (levels[level_i] - cum) / mass if mass > 0.0 else 0.0
            out[s, level_i] = lo + (b + min(max(frac, 0.0), 1.0)) / bins * width
            level_i += 1
        cum += mass
    while level_i < levels.size:  # rounding left the top level unreached: the last edge
        out[s, level_i] = lo + width
        level_i += 1


@_compiled
def order_by_source(rows, col, n):  # pragma: no cover
    """The permutation that sorts pairs by (source, column) — ``np.lexsort((col, rows))`` — in
    O(pairs): a stable counting sort by source. The kernel lists a source's pairs in increasing
    column order (tiles in model order), so the result equals lexsort's; ``ok`` is False when
    that does not hold (the caller then sorts)."""
    counts = np.zeros(n + 1, np.int64)
    for p in range(rows.size):
        counts[rows[p] + 1] += 1
    for s in range(n):
        counts[s + 1] += counts[s]
    order = np.empty(rows.size, np.int64)
    last = np.full(n, -1, np.int64)
    ok = True
    for p in range(rows.size):
        r = rows[p]
        order[counts[r]] = p
        counts[r] += 1
        if col[p] < last[r]:
            ok = False
        last[r] = col[p]
    return order, ok
