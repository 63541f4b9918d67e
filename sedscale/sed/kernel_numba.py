"""Fused CPU kernel: χ², window, weights and weighted sums in one pass, no GEMM round trip.

Why it looks like this
----------------------
The straightforward kernel is two GEMMs (A = Σ w f m, C = Σ w m²) followed by a pass over the
N×M outputs. With 8–17 bands as inner dimension those GEMMs are bound by writing their outputs,
and the pass after them by per-pair scalar work (exact χ², one ``exp``, one ``log``, the sums).
Here every source is swept over fixed tiles of ``TILE`` models, with the model features stored
band-major (``(K, M)``, contiguous over models) so every inner loop runs over models and
vectorises (AVX2/AVX-512, ``fastmath``):

1. A and C of four sources (sharing every model load) against one tile, float32, into
   cache-resident buffers;
2. gain q = A²/C (0 where A ≤ 0), its maximum → the source's running best χ² = const − q;
3. weights L = exp((q − q_ref)/2) where χ² is within ``screen`` of the best, 0 elsewhere — a
   polynomial exp (no libm call, so it vectorises); sums of L, of L·(p − c) and L·(p − c)² for
   every intensive quantity, and of L⁺·v, L⁺·v² with v = log10 s + x − c for every extensive one
   (a polynomial log10 on the float32 bit pattern). Tile partial sums are float32 (≤ ``TILE``
   terms), the running sums float64, and every quantity is *centred* on the pilot's best model
   (c) so the variances do not cancel catastrophically;
4. pairs within ``window`` (≥ ``delta``) of the running best are listed — source, column and χ²
   — for the final "good models" count and the posterior percentiles' post-pass
   (:mod:`sedscale.sed.posterior`); listing them changes none of the sums.

When a source's best improves, its sums are rescaled by exp(−Δ/2) (online log-sum-exp), exactly
as before. Rows whose Σ(f/σ)² is large (``exact`` — high S/N, where float32 χ² is not good
enough) take the scalar path instead: the float32 A, C only screen (with a rounding margin), and
candidates get their χ² from float64 features.

Determinism: each source's arithmetic depends only on its own features and the fixed model tiles
(``TILE`` does not depend on how many sources are fitted together), so results are bit-identical
whatever the partition size, order or grouping; the kernel is single-threaded.

numba is optional: without it the array path (:mod:`sedscale.sed.screen`,
:mod:`sedscale.sed.estimates`) is used — same estimates to ~1e-5, slower.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba as _nb

    from sedscale.sed.kernel_cache import describe_cache, own_cache

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    _nb = None
    HAVE_NUMBA = False

#: Models per tile: fixed (never derived from the number of sources) so results do not depend on
#: the partitioning. 512 measured best (256–2048 tried): the tile's model features (≤ 32 KiB for
#: 8 bands), table columns and per-source buffers stay in L1/L2 while the per-tile costs (calls,
#: horizontal reductions) are spread over enough models.
TILE = 512

_F = np.float32
_HALF = _F(0.5)
_INV32 = _F(1.0 / 32.0)
_C2, _C3, _C4, _C5, _C6, _C7 = (_F(1 / 2), _F(1 / 6), _F(1 / 24), _F(1 / 120), _F(1 / 720),
                                _F(1 / 5040))
_ONE = _F(1.0)
_TINY32 = _F(1e-30)  # C starts here: a model that is zero in every observed band gives q = 0
_ZERO = _F(0.0)
_SQRT2 = _F(math.sqrt(2.0))
_LN2 = _F(math.log(2.0))
_LOG10E = _F(1.0 / math.log(10.0))
_L3, _L5, _L7 = _F(1 / 3), _F(1 / 5), _F(1 / 7)
_LOG10E64 = 1.0 / math.log(10.0)

#: fast-math flags of :func:`scan_block` and everything inlined into it: reordering (``reassoc``)
#: lets the float32 tile sums vectorise, ``contract`` forms FMAs. No ``nnan``/``ninf``: the
#: float64 bookkeeping meets infinite references (a source without a pilot model) and tests them.
SCAN_FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp", "afn"})


def _entry_point(**kw):
    """numba.njit, cached in sedscale's own numba cache (:mod:`sedscale.sed.kernel_cache`), for
    a function Python calls; the identity without numba (the module still imports)."""
    if not HAVE_NUMBA:  # pragma: no cover
        return lambda f: f
    return lambda f: own_cache(_nb.njit(nogil=True, error_model="numpy", **kw)(f))


def _exact():
    """numba.njit without fast-math flags, for the float64 bookkeeping the entry points call.

    Such a function is compiled into a library of its own and again into each caller (see
    :func:`_helper`), but without fast-math LLVM may not reorder or contract its arithmetic: every
    copy computes the same IEEE-754 bits, so it need not be inlined."""
    if not HAVE_NUMBA:  # pragma: no cover
        return lambda f: f
    return _nb.njit(nogil=True, error_model="numpy")


def _helper():
    """A fast-math function called only from :func:`scan_block`, inlined into it by numba.

    Why inlined: numba compiles a called function into a library of its own *and* a second,
    re-optimised copy into each caller's object code (a weak symbol). A process that compiles
    the kernel has the callee's own library in the JIT engine first, and the linker binds the
    caller's calls to it; a process that loads the caller from the cache runs the caller's copy.
    With fast-math the two copies are different machine code (reductions reordered and FMAs
    formed differently after the re-optimisation), so results differed by ~1e-7 between
    compiling and loading processes. Inlined at numba's IR level, the function exists only inside
    its caller: one machine code whichever way it got into the process. Its fast-math flags are
    the caller's (:data:`SCAN_FASTMATH`)."""
    if not HAVE_NUMBA:  # pragma: no cover
        return lambda f: f
    return _nb.njit(nogil=True, error_model="numpy", inline="always")


# --------------------------------------------------------------------------------------------
# vectorisable float32 inner loops (inlined into scan_block: its fast-math flags apply)
# --------------------------------------------------------------------------------------------


@_helper()
def _dot_tile4(feat, i0, mt, j0, w, out, init):  # pragma: no cover
    """out[s, :w] = init + Σ_k feat[i0+s, k] · mt[k, j0:j0+w] for four sources s (float32).

    Four sources share every model load and four features are added per pass over ``out``
    (callers pad K to a multiple of 4 and the sources to a multiple of 4 with zeros), so the
    loop is bound by the FMAs, not by loads and stores. Each source's sums are formed by the
    same operations whichever sources share its block: results do not depend on grouping."""
    o0 = out[0]
    o1 = out[1]
    o2 = out[2]
    o3 = out[3]
    for j in range(w):
        o0[j] = init
        o1[j] = init
        o2[j] = init
        o3[j] = init
    for k in range(0, feat.shape[1], 4):
        r0 = mt[k, j0 : j0 + w]  # 1-D views: unit stride, no wrap-around → vector loads
        r1 = mt[k + 1, j0 : j0 + w]
        r2 = mt[k + 2, j0 : j0 + w]
        r3 = mt[k + 3, j0 : j0 + w]
        a0, a1, a2, a3 = feat[i0, k], feat[i0, k + 1], feat[i0, k + 2], feat[i0, k + 3]
        b0, b1, b2, b3 = feat[i0 + 1, k], feat[i0 + 1, k + 1], feat[i0 + 1, k + 2], feat[i0 + 1, k + 3]
        c0, c1, c2, c3 = feat[i0 + 2, k], feat[i0 + 2, k + 1], feat[i0 + 2, k + 2], feat[i0 + 2, k + 3]
        d0, d1, d2, d3 = feat[i0 + 3, k], feat[i0 + 3, k + 1], feat[i0 + 3, k + 2], feat[i0 + 3, k + 3]
        for j in range(w):
            m0 = r0[j]
            m1 = r1[j]
            m2 = r2[j]
            m3 = r3[j]
            o0[j] += (a0 * m0 + a1 * m1) + (a2 * m2 + a3 * m3)
            o1[j] += (b0 * m0 + b1 * m1) + (b2 * m2 + b3 * m3)
            o2[j] += (c0 * m0 + c1 * m1) + (c2 * m2 + c3 * m3)
            o3[j] += (d0 * m0 + d1 * m1) + (d2 * m2 + d3 * m3)


@_exact()
def _argmax(q_buf, w):  # pragma: no cover
    """First index of the largest gain (scalar; only run when a source's best improves)."""
    jb = 0
    for j in range(1, w):
        if q_buf[j] > q_buf[jb]:
            jb = j
    return jb


@_helper()
def _window_exp(e, lo1):  # pragma: no cover
    """exp(e) in float32 for the Δχ² window: (1 + x + … + x⁷/7!)^32 with x = max(e, lo1)/32
    (relative error < 3e-6; the clamp keeps excluded models finite). Inlined into both callers
    so their loops still vectorise."""
    x = (e if e > lo1 else lo1) * _INV32
    p = _ONE + x * (_ONE + x * (_C2 + x * (_C3 + x * (_C4 + x * (_C5 + x * (_C6 + x * _C7))))))
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p * p


@_helper()
def _weights(a_buf, c_buf, s_buf, q_buf, l_buf, lp_buf, w, q_ref, half_screen,
             half_near):  # pragma: no cover
    """From A and C: s = A/C (1 where A ≤ 0, a log placeholder), gain q = s·A (0 where A ≤ 0),
    L = exp((q − q_ref)/2) inside the window else 0, L⁺ = L where A > 0. Returns Σ L, Σ L⁺ and
    the numbers of pairs inside, near (within half_near: to be listed) and above q_ref (the best
    improved).

    exp by (Taylor₇(x/32))³² on x ∈ [−half_screen−1, 0]: relative error < 3e-6, no libm call."""
    lo = -half_screen
    lo1 = lo - _ONE
    s0 = _ZERO
    s0p = _ZERO
    cnt = _ZERO  # float32 counters (exact below 2^24): int64 ones stop the float vectorisation
    near = _ZERO
    up = _ZERO
    for j in range(w):
        a = a_buf[j]
        sv = a / c_buf[j]
        pos = a > _ZERO
        s_buf[j] = sv if pos else _ONE
        q = sv * a if pos else _ZERO
        q_buf[j] = q
        e = _HALF * (q - q_ref)
        inside = e >= lo
        p = _window_exp(e, lo1)  # unconditionally, as a select: keeps the loop vectorised
        lw = p if inside else _ZERO
        lp = lw if pos else _ZERO
        l_buf[j] = lw
        lp_buf[j] = lp
        s0 += lw
        s0p += lp
        cnt += _ONE if inside else _ZERO
        near += _ONE if e >= -half_near else _ZERO
        up += _ONE if e > _ZERO else _ZERO
    return s0, s0p, int(cnt), int(near), int(up)


@_helper()
def _reweight(q_buf, a_buf, l_buf, lp_buf, w, q_ref, half_screen, half_near):  # pragma: no cover
    """:func:`_weights` again from the stored gains, after the reference moved."""
    lo = -half_screen
    lo1 = lo - _ONE
    s0 = _ZERO
    s0p = _ZERO
    cnt = _ZERO
    near = _ZERO
    for j in range(w):
        e = _HALF * (q_buf[j] - q_ref)
        inside = e >= lo
        p = _window_exp(e, lo1)  # unconditionally, as a select: keeps the loop vectorised
        lw = p if inside else _ZERO
        lp = lw if a_buf[j] > _ZERO else _ZERO
        l_buf[j] = lw
        lp_buf[j] = lp
        s0 += lw
        s0p += lp
        cnt += _ONE if inside else _ZERO
        near += _ONE if e >= -half_near else _ZERO
    return s0, s0p, int(cnt), int(near), 0


@_helper()
def _moments(l_buf, tab, j0, w, center, out1, out2):  # pragma: no cover
    """out1[k] = Σ L (p − c_k), out2[k] = Σ L (p − c_k)² over one tile (float32 partials)."""
    for k in range(tab.shape[0]):
        c = center[k]
        row = tab[k, j0 : j0 + w]
        s1 = _ZERO
        s2 = _ZERO
        for j in range(w):
            d = row[j] - c
            ld = l_buf[j] * d
            s1 += ld
            s2 += ld * d
        out1[k] = s1
        out2[k] = s2


@_helper()
def _log10_shifted(s_bits, mant_bits, mant, expo, y_buf, w, shift):  # pragma: no cover
    """y = log10(s) + shift for positive float32 s, from its bit pattern (vectorised).

    ``s_bits`` is s viewed as int32, ``mant_bits``/``mant`` one scratch buffer seen as int32 and
    float32, ``expo`` int32 scratch. log(m) for m ∈ [√½, √2) by the atanh series to r⁷ (|error| <
    4e-8, below float32 rounding)."""
    for j in range(w):  # integer-only loop (int32 buffers keep it vectorised)
        b = s_bits[j]
        expo[j] = (b >> 23) - 127
        mant_bits[j] = (b & 0x007FFFFF) | 0x3F800000
    for j in range(w):
        m = mant[j]
        big = m > _SQRT2
        m = m * _HALF if big else m
        ex = _F(expo[j]) + (_ONE if big else _ZERO)
        r = (m - _ONE) / (m + _ONE)
        r2 = r * r
        ln_m = _F(2.0) * r * (_ONE + r2 * (_L3 + r2 * (_L5 + r2 * _L7)))  # |r| < 0.172: < 4e-8
        y_buf[j] = (ex * _LN2 + ln_m) * _LOG10E + shift


# --------------------------------------------------------------------------------------------
# per-source bookkeeping (scalar, float64)
# --------------------------------------------------------------------------------------------


@_exact()
def _rescale(i, f, s0, s0p, s1, s2, e1, e2, bw):  # pragma: no cover
    """Multiply every running sum of source i by f (its reference χ² moved down)."""
    s0[i] *= f
    s0p[i] *= f
    for k in range(s1.shape[1]):
        s1[i, k] *= f
        s2[i, k] *= f
    for k in range(e1.shape[1]):
        e1[i, k] *= f
        e2[i, k] *= f
    for k in range(bw.shape[1]):
        bw[i, k] *= f


@_exact()
def _recentre(i, col, s, log_u_i, mi, tab_int, tab_ext, log_k, c_int, c_ext, cl, s0, s1, s2, s0p,
              e1, e2):  # pragma: no cover
    """Move source i's centre to its new best model (column ``col``, normalisation ``s``).

    The float32 tile sums need small |p − c|: centring on a poor pilot model (χ² far above the
    best) leaves |p − c| of several dex and float32 variances wrong by ~1e-5. The float64 running
    sums are shifted exactly: Σ L (p − c') = Σ L (p − c) + (c − c') Σ L, and likewise for Σ L (·)²."""
    for k in range(tab_int.shape[1]):
        new = tab_int[mi, k]
        d = c_int[i, k] - new
        s2[i, k] += 2.0 * d * s1[i, k] + d * d * s0[i]
        s1[i, k] += d * s0[i]
        c_int[i, k] = new
    cl_new = math.log(s) * _LOG10E64 + log_u_i if s > 0 else cl[i]
    for k in range(tab_ext.shape[1]):
        new = tab_ext[mi, k] - log_k[col]
        d = (cl[i] + c_ext[i, k]) - (cl_new + new)
        e2[i, k] += 2.0 * d * e1[i, k] + d * d * s0p[i]
        e1[i, k] += d * s0p[i]
        c_ext[i, k] = new
    cl[i] = cl_new


@_exact()
def _exact_ac(lin64, quad64, i, mlin64, mquad64, col):  # pragma: no cover
    a = 0.0
    c = 0.0
    for k in range(lin64.shape[1]):
        a += lin64[i, k] * mlin64[col, k]
    for k in range(quad64.shape[1]):
        c += quad64[i, k] * mquad64[col, k]
    return a, c


@_exact()
def _reserve(near_i, near_c, near_j, n_near, extra):  # pragma: no cover
    """Room for ``extra`` more near pairs (the buffers double when full)."""
    if n_near + extra <= near_i.shape[0]:
        return near_i, near_c, near_j
    cap = max(2 * near_i.shape[0], n_near + extra)
    ni = np.empty(cap, np.int64)
    nc = np.empty(cap)
    nj = np.empty(cap, np.int64)
    ni[:n_near] = near_i[:n_near]
    nc[:n_near] = near_c[:n_near]
    nj[:n_near] = near_j[:n_near]
    return ni, nc, nj


@_helper()
def _collect_near(q_buf, w, lo, i, const_i, col0, near_i, near_c, near_j,
                  n_near):  # pragma: no cover
    """Write (i, χ² = const − q, column col0 + j) for every pair j of the tile with q ≥ lo from
    ``n_near`` on (the caller reserved room for ``w``); returns the new count. Chunks of 16 whose largest gain is
    below ``lo`` are skipped (near pairs are a few per cent of a tile)."""
    full = w - w % 16
    for c0 in range(0, full, 16):
        m = q_buf[c0]
        for j in range(c0 + 1, c0 + 16):
            v = q_buf[j]
            m = v if v > m else m
        if m >= lo:
            for j in range(c0, c0 + 16):
                if q_buf[j] >= lo:
                    near_i[n_near] = i
                    near_c[n_near] = const_i - np.float64(q_buf[j])
                    near_j[n_near] = col0 + j
                    n_near += 1
    for j in range(full, w):
        if q_buf[j] >= lo:
            near_i[n_near] = i
            near_c[n_near] = const_i - np.float64(q_buf[j])
            near_j[n_near] = col0 + j
            n_near += 1
    return n_near


@_entry_point()
def pilot_block(lin64, quad64, const, mlin64, mquad64, start, step, blk, ref, best_blk,
                best_col, best_s):  # pragma: no cover
    """Exact (float64) χ² of every ``step``-th model: seeds each source's best χ² and centre."""
    for i in range(const.shape[0]):
        for col in range(start, mlin64.shape[0], step):
            a, c = _exact_ac(lin64, quad64, i, mlin64, mquad64, col)
            s = a / c if a > 0 else 0.0
            chi = const[i] - s * a
            if chi < ref[i]:
                ref[i] = chi
                best_blk[i] = blk
                best_col[i] = col
                best_s[i] = s


# --------------------------------------------------------------------------------------------
# the scan of one block (all tiles, all sources of a row group)
# --------------------------------------------------------------------------------------------


@_entry_point(fastmath=set(SCAN_FASTMATH))
def scan_block(lin32, quad32, lin64, quad64, const, margin, exact, log_u, mlin_t, mquad_t,
               mlin64, mquad64, tint, text, tab_int, tab_ext, model_index, log_k, goff, blk,
               screen, window, c_int, c_ext, cl, ref, s0, s1, s2, s0p, e1, e2, bw, best_col, best_s,
               near_i, near_c, near_j, counts):  # pragma: no cover
    """Every source of the group against every model of one block (see the module docstring).

    ``log_u[i]`` = log10 u_i (this block's source scale); ``cl`` (n,) the centre of log10 s;
    ``tint``/``text`` (P/E, Mb) float32 are the block's table columns (``text`` with −log10 k
    folded in), ``c_int``/``c_ext`` (n, P/E) the centres. Pairs within ``window`` of the running
    best are listed in ``near_i``/``near_c``/``near_j`` (source, χ², global column ``goff`` + j).
    ``counts`` = [listed pairs, pairs]. Returns the (possibly grown) near-pair buffers."""
    n = const.shape[0]
    mb = mlin_t.shape[1]
    n_int = tint.shape[0]
    n_ext = text.shape[0]
    a_blk = np.empty((4, TILE), np.float32)
    c_blk = np.empty((4, TILE), np.float32)
    s_buf = np.empty(TILE, np.float32)
    q_buf = np.empty(TILE, np.float32)
    l_buf = np.empty(TILE, np.float32)
    lp_buf = np.empty(TILE, np.float32)
    y_buf = np.empty(TILE, np.float32)
    expo = np.empty(TILE, np.int32)
    mant = np.empty(TILE, np.float32)
    mant_bits = mant.view(np.int32)
    s_bits = s_buf.view(np.int32)
    t1 = np.empty(max(n_int, n_ext), np.float32)
    t2 = np.empty(max(n_int, n_ext), np.float32)
    ci32 = np.empty(max(n_int, 1), np.float32)
    ce32 = np.empty(max(n_ext, 1), np.float32)
    half_screen = np.float32(0.5 * screen)
    half_window = np.float32(0.5 * window)
    n_near = counts[0]
    n_pairs = counts[1]
    for j0 in range(0, mb, TILE):
        w = min(TILE, mb - j0)
        for i0 in range(0, n, 4):
            _dot_tile4(lin32, i0, mlin_t, j0, w, a_blk, _ZERO)
            _dot_tile4(quad32, i0, mquad_t, j0, w, c_blk, _TINY32)
            for i in range(i0, min(i0 + 4, n)):
                a_buf = a_blk[i - i0]
                c_buf = c_blk[i - i0]
                if exact[i]:  # high S/N: float64 χ² for the candidates, one by one
                    near_i, near_c, near_j, n_near, n_pairs = _exact_row(
                        i, j0, w, a_buf, c_buf, lin64, quad64, const, margin, log_u, mlin64,
                        mquad64, tab_int, tab_ext, model_index, log_k, goff, blk, screen, window,
                        c_int, c_ext, cl, ref, s0, s1, s2, s0p, e1, e2, bw, best_col, best_s,
                        near_i, near_c, near_j, n_near, n_pairs)
                    continue
                if not math.isfinite(ref[i]):  # no pilot model (fastmath below needs a finite ref)
                    a64, c64 = _exact_ac(lin64, quad64, i, mlin64, mquad64, j0)
                    ref[i] = const[i] - (a64 * a64 / c64 if a64 > 0 else 0.0)
                    best_col[i] = goff + j0
                    best_s[i] = a64 / c64 if a64 > 0 else 0.0
                q_ref = np.float32(const[i] - ref[i])
                w0, w0p, cnt, near, up = _weights(a_buf, c_buf, s_buf, q_buf, l_buf, lp_buf, w,
                                                  q_ref, half_screen, half_window)
                if up > 0:  # the tile holds a better model: move the reference, redo the weights
                    jb = _argmax(q_buf, w)
                    chi_t = const[i] - np.float64(q_buf[jb])
                    _rescale(i, math.exp(-0.5 * (ref[i] - chi_t)), s0, s0p, s1, s2, e1, e2, bw)
                    ref[i] = chi_t
                    a64, c64 = _exact_ac(lin64, quad64, i, mlin64, mquad64, j0 + jb)
                    best_col[i] = goff + j0 + jb
                    best_s[i] = a64 / c64 if a64 > 0 else 0.0
                    _recentre(i, j0 + jb, best_s[i], log_u[i], model_index[j0 + jb], tab_int,
                              tab_ext, log_k, c_int, c_ext, cl, s0, s1, s2, s0p, e1, e2)
                    q_ref = np.float32(const[i] - ref[i])
                    w0, w0p, cnt, near, up = _reweight(q_buf, a_buf, l_buf, lp_buf, w, q_ref,
                                                       half_screen, half_window)
                if cnt == 0:
                    continue
                n_pairs += cnt
                s0[i] += w0
                bw[i, blk] += w0
                for k in range(n_int):
                    ci32[k] = np.float32(c_int[i, k])
                _moments(l_buf, tint, j0, w, ci32, t1, t2)
                for k in range(n_int):
                    s1[i, k] += t1[k]
                    s2[i, k] += t2[k]
                if w0p > 0:
                    s0p[i] += w0p
                    _log10_shifted(s_bits, mant_bits, mant, expo, y_buf, w,
                                   np.float32(log_u[i] - cl[i]))
                    for k in range(n_ext):
                        ce32[k] = np.float32(c_ext[i, k])
                    _moments_ext(lp_buf, y_buf, text, j0, w, ce32, t1, t2)
                    for k in range(n_ext):
                        e1[i, k] += t1[k]
                        e2[i, k] += t2[k]
                if near > 0:
                    if n_near + w > near_i.shape[0]:
                        near_i, near_c, near_j = _reserve(near_i, near_c, near_j, n_near, w)
                    n_near = _collect_near(q_buf, w, q_ref - 2 * half_window, i, const[i],
                                           goff + j0, near_i, near_c, near_j, n_near)
    counts[0] = n_near
    counts[1] = n_pairs
    return near_i, near_c, near_j


@_helper()
def _moments_ext(lp_buf, y_buf, text, j0, w, center, out1, out2):  # pragma: no cover
    """Σ L⁺ v and Σ L⁺ v², v = y + x − c, for every extensive column (float32 partials)."""
    for k in range(text.shape[0]):
        c = center[k]
        row = text[k, j0 : j0 + w]
        s1 = _ZERO
        s2 = _ZERO
        for j in range(w):
            v = y_buf[j] + (row[j] - c)
            lv = lp_buf[j] * v
            s1 += lv
            s2 += lv * v
        out1[k] = s1
        out2[k] = s2


@_exact()
def _exact_row(i, j0, w, a_buf, c_buf, lin64, quad64, const, margin, log_u, mlin64, mquad64,
               tab_int, tab_ext, model_index, log_k, goff, blk, screen, window, c_int, c_ext, cl,
               ref, s0, s1, s2, s0p, e1, e2, bw, best_col, best_s, near_i, near_c, near_j, n_near,
               n_pairs):  # pragma: no cover
    """High-S/N source: float32 A, C only screen (with a rounding margin); candidates get their
    χ² from float64 features and are accumulated one by one (float64)."""
    t32 = np.float32(const[i] - (ref[i] + screen + margin[i]))
    for j in range(w):
        av = a_buf[j]
        if t32 > 0 and not (av > 0 and av * av >= t32 * c_buf[j]):
            continue
        col = j0 + j
        a, c = _exact_ac(lin64, quad64, i, mlin64, mquad64, col)
        if a > 0:
            s = a / c
            chi = const[i] - s * a
        else:
            s = 0.0
            chi = const[i]
        if chi > ref[i] + screen:
            continue
        if chi < ref[i]:
            _rescale(i, math.exp(-0.5 * (ref[i] - chi)), s0, s0p, s1, s2, e1, e2, bw)
            ref[i] = chi
            best_col[i] = goff + col
            best_s[i] = s
            _recentre(i, col, s, log_u[i], model_index[col], tab_int, tab_ext, log_k, c_int,
                      c_ext, cl, s0, s1, s2, s0p, e1, e2)
            t32 = np.float32(const[i] - (chi + screen + margin[i]))
        lw = math.exp(-0.5 * (chi - ref[i]))
        n_pairs += 1
        s0[i] += lw
        bw[i, blk] += lw
        mi = model_index[col]
        for k in range(tab_int.shape[1]):
            d = tab_int[mi, k] - c_int[i, k]
            s1[i, k] += lw * d
            s2[i, k] += lw * d * d
        if s > 0:
            y = math.log(s) * _LOG10E64 + log_u[i] - cl[i] - log_k[col]
            s0p[i] += lw
            for k in range(tab_ext.shape[1]):
                v = y + tab_ext[mi, k] - c_ext[i, k]
                e1[i, k] += lw * v
                e2[i, k] += lw * v * v
        if chi <= ref[i] + window:
            near_i, near_c, near_j = _reserve(near_i, near_c, near_j, n_near, 1)
            near_i[n_near] = i
            near_c[n_near] = chi
            near_j[n_near] = goff + col
            n_near += 1
    return near_i, near_c, near_j, n_near, n_pairs


def kernel_provenance() -> dict[str, object]:
    """Which machine code this process runs: the kernel's cache directory and key, and per entry
    point how many signatures were loaded from that cache or compiled here (numba's statistics).
    For the partition summary, so a result can be traced to the code that produced it."""
    if not HAVE_NUMBA:  # pragma: no cover
        return {"numba": None}
    return describe_cache([pilot_block, scan_block])


class FusedState:
    """Running (centred) sums of one row group for :func:`scan_block`, all float64.

    Sums are relative to ``ref`` (each source's running best χ²) and centred on ``c_int`` /
    ``c_ext`` (the pilot's best model); :meth:`moments` undoes the centring."""

    def __init__(self, n: int, n_int: int, n_ext: int, n_blocks: int, ref: np.ndarray,
                 c_int: np.ndarray, c_ext: np.ndarray, cl: np.ndarray):
        self.ref = ref.astype(np.float64).copy()
        self.cl = np.ascontiguousarray(cl, np.float64).copy()
        self.c_int = np.ascontiguousarray(c_int, np.float64).copy()
        self.c_ext = np.ascontiguousarray(c_ext, np.float64).copy()
        self.s0 = np.zeros(n)
        self.s1 = np.zeros((n, n_int))
        self.s2 = np.zeros((n, n_int))
        self.s0p = np.zeros(n)
        self.e1 = np.zeros((n, n_ext))
        self.e2 = np.zeros((n, n_ext))
        self.bw = np.zeros((n, n_blocks))
        self.best_col = np.full(n, -1, dtype=np.int64)
        self.best_s = np.zeros(n)
        self._ni = np.empty(max(1024, 4 * n), np.int64)
        self._nc = np.empty(max(1024, 4 * n))
        self._nj = np.empty(max(1024, 4 * n), np.int64)
        self._count = np.zeros(2, np.int64)

    @property
    def n_pairs(self) -> int:
        return int(self._count[1])

    def scan(self, lin32, quad32, lin64, quad64, const, margin, exact, log_u, mlin_t, mquad_t,
             mlin64, mquad64, tint, text, tab_int, tab_ext, model_index, log_k, goff, blk,
             screen, window) -> None:
        """One block (all its tiles) for every source of the group; pairs within ``window`` of
        the running best are listed (:meth:`n_within`, :meth:`listed`)."""
        self._ni, self._nc, self._nj = scan_block(
            lin32, quad32, lin64, quad64, const, margin, exact, log_u, mlin_t, mquad_t,
            mlin64, mquad64, tint, text, tab_int, tab_ext, model_index, log_k, int(goff),
            int(blk), float(screen), float(window), self.c_int, self.c_ext, self.cl, self.ref,
            self.s0, self.s1, self.s2, self.s0p, self.e1, self.e2, self.bw, self.best_col,
            self.best_s, self._ni, self._nc, self._nj, self._count)

    def n_within(self, delta: float) -> np.ndarray:
        """Models within ``delta`` of each source's final best χ²."""
        cnt = int(self._count[0])
        r, c = self._ni[:cnt], self._nc[:cnt]
        ok = c <= self.ref[r] + delta
        return np.bincount(r[ok], minlength=self.s0.size)

    def listed(self, window: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The listed pairs within ``window`` of each source's final best χ²: (source, global
        column, float32-precision χ²). Every such pair was listed: the running best only falls."""
        cnt = int(self._count[0])
        r, c, j = self._ni[:cnt], self._nc[:cnt], self._nj[:cnt]
        ok = c <= self.ref[r] + window
        return r[ok], j[ok], c[ok]

    def moments(self) -> tuple[np.ndarray, ...]:
        """Uncentred sums (Σ L p, Σ L p², Σ L⁺ X, Σ L⁺ X²) in float64."""
        ext_center = self.cl[:, None] + self.c_ext
        c, s0, s1, s2 = self.c_int, self.s0[:, None], self.s1, self.s2
        int1 = s1 + c * s0
        int2 = s2 + 2.0 * c * s1 + c * c * s0
        x, p0, e1, e2 = ext_center, self.s0p[:, None], self.e1, self.e2
        ext1 = e1 + x * p0
        ext2 = e2 + 2.0 * x * e1 + x * x * p0
        return int1, int2, ext1, ext2
