"""The χ² kernel: N sources against M models in float32, without N×M arrays, exact where it matters.

Why it looks like this
----------------------
With weights w = 1/σ² and a free normalisation s per (source, model) pair, the best s and the χ²
are analytic::

    A = Σ_b w f m,   C = Σ_b w m²,   s = A / C,   χ² = Σ_b w f² − A² / C

so the whole N×M problem is two matrix products with a thin inner dimension (the bands). On the
CPU (numba present, numpy backend) the fused kernel of :mod:`sedscale.sed.kernel_numba` computes
A and C itself in float32 from band-major model tiles, and in the same sweep the window
(``screen_chi2`` of the source's best, default 30: relative weight e^-15), the weights and the
weighted sums — never an N×M array, no GEMM output round trip; every source's numbers depend only
on its own data, so results do not depend on the partitioning. High-S/N rows (Σ(f/σ)² >
``exact_fsum``) get float64 χ² for their candidates. Elsewhere (CuPy/PyTorch ``xp``, or no numba)
the array path does float32 GEMMs on model tiles that stay in cache, keeps *candidates* —
pairs whose χ² can lie within ``screen_chi2`` of the best, plus a margin that covers float32
rounding, tested as ``max(A,0)² ≥ t·C`` — and accumulates them with sparse products
(:mod:`sedscale.sed.screen`, :mod:`sedscale.sed.estimates`). Both agree with a float64
brute-force fit to ≲ 5e-4 dex (docs/FITTER.md).

Conventions (documented in docs/FITTER.md)
------------------------------------------
* Missing bands (NaN flux or error, or error ≤ 0) get weight 0.
* Systematic floor: σ_eff² = σ² + (floor·|f|)², plus a template-error term in photo-z mode.
* Non-detections are measured flux ± error (negative fluxes allowed) — the statistically complete
  choice when the flux is measured; upper-limit likelihoods (Sawicki 2012) are not used.
* Negative normalisations are clipped: a model with A ≤ 0 gets s = 0 and χ² = Σ w f² (the
  "no source" fit); such pairs count for intensive parameters but not for masses/SFRs.
* Linear interpolation between two redshift nodes is exact through the same GEMMs: the source
  side carries the interpolation weights (K grows from B to 2B and 3B), see :class:`Block` (``mix``).

Backend: ``xp`` is the array namespace for the GEMMs and the screening of the array path (numpy
by default; CuPy should work as a drop-in — untested here, there is no GPU on the development
machines). The float64 refinement and the sums run on the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Sequence, TypeAlias

import numpy as np

from sedscale.sed.estimates import ModelTable, Moments, accumulate
from sedscale.sed.kernel_numba import HAVE_NUMBA, FusedState, pilot_block
from sedscale.sed.posterior import LEVELS, Candidates, percentiles
from sedscale.sed.posterior_numba import HAVE_NUMBA as HAVE_NUMBA_POSTERIOR
from sedscale.sed.posterior_numba import order_by_source, pair_fits
from sedscale.sed.screen import screen_block

#: An array of the backend module ``xp`` (numpy, or cupy on a GPU): no static type spans both.
XpArray: TypeAlias = Any

#: Added to every C = Σ w m² so a model that is zero in every observed band gives q = 0, not NaN.
_TINY = 1e-30


@dataclass(frozen=True)
class KernelOptions:
    """Tuning knobs; the defaults are what the benchmark measures."""

    screen_chi2: float = 30.0  # pairs beyond best χ² + this get weight 0 (relative weight < 3e-7)
    delta_chi2_good: float = 4.0  # "good models": within this of the best χ²
    rows_per_group: int = 512  # sources screened together (candidates are kept per group)
    tile_elements: int = 1 << 17  # GEMM tile (rows × models): 512 KiB float32, stays in L2
    pilot_fraction: float = 1 / 32  # share of the models evaluated first to seed the best χ²
    use_numba: bool = True  # fused numba scan when numba is importable (numpy backend only)
    # rows with Σ(f/σ)² above this get χ² from float64 features (0: all); below it float32 χ²
    # is good to ~1e-7·Σ(f/σ)² ≤ 1e-3 (weights to 5e-4, estimates to ~1e-4 dex)
    exact_fsum: float = 1e4
    n_free: int = 1  # free parameters subtracted from the number of bands for the dof
    # pairs within this Δχ² of the best are kept for the posterior percentiles (sedscale.sed.
    # posterior); a model beyond it weighs < e^-10 of the best. 0: no percentiles
    posterior_chi2: float = 20.0
    posterior_names: tuple[str, ...] = ("logmstar", "logsfr", "av")  # quantities with percentiles

    def __post_init__(self) -> None:
        if not 0 <= self.delta_chi2_good <= self.screen_chi2:
            raise ValueError("need 0 <= delta_chi2_good <= screen_chi2")
        if not 0 <= self.posterior_chi2 <= self.screen_chi2:
            raise ValueError("need 0 <= posterior_chi2 <= screen_chi2")

    @property
    def listing_chi2(self) -> float:
        """The Δχ² window of the pairs the kernel lists (good-model count and percentiles)."""
        return max(self.delta_chi2_good, self.posterior_chi2)


@dataclass(frozen=True)
class ModelSet:
    """The model side of one block: R flux arrays (R = 1, or 2 for redshift interpolation).

    Models are rescaled by ``k_j`` = their largest band flux so float32 never under- or
    overflows (fluxes per M☉ at high z are ~1e-12 µJy); ``log_k`` undoes it for the masses.
    """

    flux: np.ndarray  # (R, Mb, B) float32/64, µJy per unit normalisation
    model_index: np.ndarray  # (Mb,) int64, row in the ModelTable
    log_k: np.ndarray = field(init=False)
    lin64: np.ndarray = field(init=False)  # (Mb, R·B)
    quad64: np.ndarray = field(init=False)  # (Mb, R(R+1)/2·B + 1)

    def __post_init__(self) -> None:
        f = np.asarray(self.flux, dtype=np.float64)
        if f.ndim == 2:
            f = f[None]
        r, mb, _ = f.shape
        k = np.max(np.abs(f), axis=(0, 2))
        k = np.where(np.isfinite(k) & (k > 0), k, 1.0)
        m = np.nan_to_num(f / k[None, :, None])
        if mb >= ORDER_MIN_MODELS:  # similar shapes side by side: see shape_order
            order = shape_order(m[0])
            f, m, k = f[:, order], m[:, order], k[order]
            object.__setattr__(self, "model_index", np.asarray(self.model_index)[order])
        lin = np.concatenate([m[i] for i in range(r)], axis=1)
        quad = [m[i] * m[j] for i in range(r) for j in range(i, r)]
        quad.append(np.ones((mb, 1)))
        object.__setattr__(self, "flux", f.astype(np.float32) if f.dtype != np.float32 else f)
        object.__setattr__(self, "log_k", np.log10(k))
        object.__setattr__(self, "lin64", lin)
        object.__setattr__(self, "quad64", np.concatenate(quad, axis=1))

    @property
    def n_models(self) -> int:
        return int(self.lin64.shape[0])

    def transposed32(self, xp: ModuleType = np) -> tuple[XpArray, XpArray]:
        """float32, transposed (K, M), contiguous features for the GEMMs (cached per backend)."""
        cache = self.__dict__.setdefault("_t32", {})
        key = getattr(xp, "__name__", str(id(xp)))
        if key not in cache:
            cache[key] = (xp.asarray(np.ascontiguousarray(self.lin64.T, dtype=np.float32)),
                          xp.asarray(np.ascontiguousarray(self.quad64.T, dtype=np.float32)))
        return cache[key]

    def padded32(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transposed32` for the fused kernel: without the constant row of C (the kernel
        starts C at the tiny constant) and zero rows appended so K is a multiple of 4."""
        cache = self.__dict__.setdefault("_t32", {})
        if "padded" not in cache:
            lin_t, quad_t = self.transposed32()
            cache["padded"] = (_pad_rows(lin_t), _pad_rows(quad_t[:-1]))
        return cache["padded"]

    @property
    def n_mix(self) -> int:
        return int(self.flux.shape[0])


#: Model sets at least this large are stored in :func:`shape_order` (smaller ones fit in a few
#: of the fused kernel's tiles, where the order does not matter).
ORDER_MIN_MODELS = 2048


def shape_order(scaled: np.ndarray) -> np.ndarray:
    """A stable order of models (rows of ``scaled``, (Mb, B) fluxes over their largest band) that
    puts similar SED shapes next to each other: by the slope of log flux against band number.

    Why: a source's Δχ² window holds a few per cent of the models, but in grid order they are
    scattered over half of the kernel's tiles, and every tile holding one pays the full pass of
    weighted sums. Sorted by this slope (≈ the first principal component of the grid's colours)
    the window falls in about a quarter as many tiles (physics grid, 10^5 models: 55% → 13%).
    The key is elementwise and BLAS-free, and rounded to 1e-9 so that a last-bit difference of
    ``log10`` between CPU types (SVML vs libm) cannot swap two models; the order is the same on
    every run and node of a machine type. The sort is stable, so identical SEDs keep their grid
    order (ties still go to the first).
    """
    lg = np.log10(np.clip(scaled, 1e-6, None))
    x = np.arange(lg.shape[1], dtype=np.float64)
    x -= x.mean()
    key = np.round((lg * x).sum(axis=1), 9)
    return np.argsort(key, kind="stable")


def _pad_rows(x: np.ndarray) -> np.ndarray:
    """Zero rows up to a multiple of 4 (float32, C-contiguous)."""
    k = -(-x.shape[0] // 4) * 4
    out = np.zeros((k,) + x.shape[1:], np.float32)
    out[: x.shape[0]] = x
    return out


def _pad_both(x: np.ndarray) -> np.ndarray:
    """Source features (n, K) zero-padded to multiples of 4 in both axes (fused kernel blocks)."""
    out = np.zeros((-(-x.shape[0] // 4) * 4, -(-x.shape[1] // 4) * 4), np.float32)
    out[: x.shape[0], : x.shape[1]] = x
    return out


@dataclass(frozen=True)
class Block:
    """Sources (all N) against one :class:`ModelSet`, with this block's error model.

    ``sigma_extra`` (B,) is a fractional error added in quadrature on top of the floor (the
    photo-z template error at this redshift); ``mix`` (N, R) are the interpolation weights
    between the model set's R flux arrays; ``penalty`` (N,) is added to χ² (−2 ln prior);
    ``log_norm`` adds Σ ln σ_eff² (the Gaussian normalisation) when σ_eff varies between blocks.
    """

    models: ModelSet
    sigma_extra: np.ndarray | None = None
    mix: np.ndarray | None = None
    penalty: np.ndarray | None = None
    log_norm: bool = False


@dataclass(frozen=True)
class Observations:
    """Observed fluxes and errors (N, B) in µJy, NaN = not observed, and the systematic floor."""

    flux: np.ndarray
    error: np.ndarray
    floor: float = 0.0

    @property
    def observed(self) -> np.ndarray:
        return np.isfinite(self.flux) & np.isfinite(self.error) & (self.error > 0)

    def sigma_eff(self, rows: slice | np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """σ_eff (n, B) with the floor (and ``extra``) in quadrature; inf where not observed."""
        f = self.flux[rows]
        e = self.error[rows]
        frac2 = self.floor**2 + (0.0 if extra is None else np.asarray(extra, np.float64) ** 2)
        with np.errstate(invalid="ignore"):
            s2 = e * e + frac2 * f * f
        obs = np.isfinite(f) & np.isfinite(e) & (e > 0)
        return np.where(obs, np.sqrt(np.where(obs, s2, 1.0)), np.inf)


@dataclass
class _Features:
    """Source side of one block for one row group (float64 and float32 copies)."""

    lin: np.ndarray
    quad: np.ndarray
    const: np.ndarray  # χ²_eff = const − q
    fsum: np.ndarray  # Σ w f² (scale of float32 rounding)
    log_u: np.ndarray
    lin32: XpArray = None
    quad32: XpArray = None


def _features(obs: Observations, block: Block, rows: slice, xp: ModuleType) -> _Features:
    sig = obs.sigma_eff(rows, block.sigma_extra)
    f = np.nan_to_num(obs.flux[rows])
    obs_mask = np.isfinite(sig)
    # per-source scale u = smallest σ: keeps w̃ ≤ 1 and the products in float32's comfortable range
    u = np.min(np.where(obs_mask, sig, np.inf), axis=1)
    u = np.where(np.isfinite(u) & (u > 0), u, 1.0)
    w = np.where(obs_mask, (u[:, None] / np.where(obs_mask, sig, 1.0)) ** 2, 0.0)
    ft = f / u[:, None]
    wf = w * ft
    fsum = np.sum(wf * ft, axis=1)
    n, r = f.shape[0], block.models.n_mix
    mix = np.ones((n, 1)) if block.mix is None else np.asarray(block.mix[rows], np.float64)
    lin = np.concatenate([mix[:, i : i + 1] * wf for i in range(r)], axis=1)
    quad = [(mix[:, i] * mix[:, j] * (1.0 if i == j else 2.0))[:, None] * w
            for i in range(r) for j in range(i, r)]
    quad.append(np.full((n, 1), _TINY))
    const = fsum.copy()
    if block.penalty is not None:
        const += block.penalty[rows]
    if block.log_norm:
        const += np.sum(np.where(obs_mask, 2.0 * np.log(np.where(obs_mask, sig, 1.0)), 0.0), axis=1)
    feat = _Features(lin, np.concatenate(quad, axis=1), const, fsum, np.log10(u))
    feat.lin32 = xp.asarray(feat.lin.astype(np.float32))
    feat.quad32 = xp.asarray(feat.quad.astype(np.float32))
    return feat


@dataclass
class KernelResult:
    """Per-source outputs of :func:`run_kernel` (host numpy arrays)."""

    estimates: dict[str, tuple[np.ndarray, np.ndarray]]
    chi2_best: np.ndarray  # plain χ² of the best model (no prior / normalisation terms)
    best_block: np.ndarray
    best_model: np.ndarray  # row in the ModelTable
    log_s_best: np.ndarray  # log10 normalisation of the best model
    best_flux: np.ndarray  # (N, B) µJy
    residual_sigma: np.ndarray  # (N, B) (f − best)/σ_eff; NaN where not observed
    n_good: np.ndarray
    n_bands: np.ndarray
    dof: np.ndarray
    chi2_red: np.ndarray
    block_prob: np.ndarray  # (N, n_blocks) marginal weight of each block, normalised
    n_pairs: int = 0  # pairs accumulated (diagnostic: the screening's selectivity)
    #: name → (N, 5) posterior percentiles at :data:`sedscale.sed.posterior.LEVELS`
    percentiles: dict[str, np.ndarray] = field(default_factory=dict)
    #: (N,) share of the likelihood weight inside the posterior window (diagnostic, ≈ 1)
    window_mass: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _pilot(blocks: Sequence[Block], feats: list[_Features], fraction: float, n: int) -> np.ndarray:
    """Exact χ² minimum over an evenly strided subset of each block's models (float64).

    It seeds the screening threshold, so the first tiles do not hand over all their pairs; the
    true minimum can only be lower, so nothing that matters is lost."""
    best = np.full(n, np.inf)
    step = max(1, int(round(1.0 / max(fraction, 1e-9))))
    for b, ft in zip(blocks, feats):
        sub = slice(step // 2 if b.models.n_models > step // 2 else 0, None, step)
        a = ft.lin @ b.models.lin64[sub].T
        c = ft.quad @ b.models.quad64[sub].T
        q = np.where(a > 0, a * a / c, 0.0)
        best = np.minimum(best, ft.const - q.max(axis=1))
    return best


class _Candidates:
    """Pairs handed over by the screening of one row group (lists of per-tile arrays)."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.col: list[np.ndarray] = []  # global column (block offset + model within block)
        self.chi2: list[np.ndarray] = []
        self.s: list[np.ndarray] = []

    def add(self, rows: np.ndarray, col: np.ndarray, chi2: np.ndarray, s: np.ndarray) -> None:
        self.rows.append(rows)
        self.col.append(col)
        self.chi2.append(chi2)
        self.s.append(s)

    def arrays(self) -> tuple[np.ndarray, ...]:
        if not self.rows:
            z = np.zeros(0)
            return z.astype(np.int64), z.astype(np.int64), z, z
        return tuple(np.concatenate(x) for x in (self.rows, self.col, self.chi2, self.s))


def run_kernel(obs: Observations, blocks: Sequence[Block], table: ModelTable,
               options: KernelOptions = KernelOptions(), xp: ModuleType = np) -> KernelResult:
    """Fit every source against every model of every block; see the module docstring."""
    n_src, n_band = obs.flux.shape
    sizes = [b.models.n_models for b in blocks]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    block_of = np.repeat(np.arange(len(blocks)), sizes)
    group = max(1, min(options.rows_per_group, n_src))
    fused = options.use_numba and HAVE_NUMBA and xp is np
    full_table = table
    table, constants = _drop_constant_columns(table)
    parts: list[dict] = []
    n_pairs = 0
    tables = _block_tables(blocks, table) if fused else None
    for r0 in range(0, n_src, group):
        rs = slice(r0, min(r0 + group, n_src))
        n = rs.stop - rs.start
        feats = [_features(obs, b, rs, xp) for b in blocks]
        fmax = np.max(np.stack([ft.fsum for ft in feats]), axis=0)
        margin = 2e-5 * fmax + 1e-3
        exact_rows = fmax > options.exact_fsum
        if fused:
            out = _group_fused(blocks, feats, table, options, xp, n, None, margin, exact_rows,
                               offsets, block_of, tables)
        else:
            best = _pilot(blocks, feats, options.pilot_fraction, n)
            out = _group_array(blocks, feats, table, options, xp, n, best, margin, exact_rows,
                               offsets, block_of, tables)
        n_pairs += out.n_pairs
        pct = ({} if out.candidates is None
               else percentiles(out.candidates, table, options.posterior_names))
        parts.append(_finish(obs, blocks, rs, out, pct, table, options, offsets, block_of))
    res = _concat(parts, n_src, n_band, len(blocks), n_pairs, table)
    for name, value in constants.items():  # a parameter the grid does not vary: exact, std 0
        ok = np.isfinite(res.estimates[table.intensive_names[0]][0]) if table.intensive_names \
            else res.n_bands > 0
        res.estimates[name] = (np.where(ok, value, np.nan), np.where(ok, 0.0, np.nan))
        if name in options.posterior_names and options.posterior_chi2 > 0:
            res.percentiles[name] = np.where(ok[:, None], value, np.nan) * np.ones(LEVELS.size)
    res.estimates = {k: res.estimates[k] for k in full_table.intensive_names + full_table.extensive_names}
    return res


def _drop_constant_columns(table: ModelTable) -> tuple[ModelTable, dict[str, float]]:
    """Intensive columns that are the same for every model need no per-pair work (the reduced
    table is cached on the table, so model sets can keep their per-table caches)."""
    hit = table.__dict__.get("_reduced")
    if hit is None:
        hit = table.__dict__["_reduced"] = _reduce_table(table)
    return hit


def _reduce_table(table: ModelTable) -> tuple[ModelTable, dict[str, float]]:
    p = table.intensive
    if p.shape[0] == 0 or p.shape[1] == 0:
        return table, {}
    const = np.all(p == p[:1], axis=0)
    if not const.any() or const.all():
        return table, {}
    keep = ~const
    names = tuple(n for n, k in zip(table.intensive_names, keep) if k)
    values = {n: float(p[0, j]) for j, n in enumerate(table.intensive_names) if const[j]}
    return ModelTable(names, np.ascontiguousarray(p[:, keep]), table.extensive_names,
                      table.log_extensive), values


@dataclass
class _GroupOut:
    """One row group's kernel sums, best models and listed candidates."""

    moments: Moments
    best_col: np.ndarray  # global column of the best model (−1: none)
    best_s: np.ndarray  # its normalisation (scaled units)
    n_good: np.ndarray
    n_pairs: int
    candidates: Candidates | None  # pairs within the posterior window (None: no percentiles)
    window_mass: np.ndarray  # share of Σ L inside the window


def _candidates(blocks: Sequence[Block], feats: list[_Features], n: int, rows: np.ndarray,
                col: np.ndarray, offsets: np.ndarray, block_of: np.ndarray) -> Candidates:
    """The listed pairs, sorted by source, with their exact (float64) χ², normalisation fit and
    scale.

    A and C are recomputed from the float64 features, so the posterior does not inherit the
    float32 rounding of the screening: per (block, source), one small matrix–vector product over
    that source's listed models (a gather of both sides per pair cost 6× more)."""
    ok = False
    if HAVE_NUMBA_POSTERIOR and rows.size:
        order, ok = order_by_source(rows.astype(np.int64), col.astype(np.int64), n)
    if not ok:
        order = np.lexsort((col, rows))
    rows, col = rows[order], col[order]
    blk = block_of[col]
    a, c, const = np.empty(rows.size), np.empty(rows.size), np.empty(rows.size)
    scale, model = np.empty(rows.size), np.empty(rows.size, np.int64)
    if HAVE_NUMBA_POSTERIOR:  # one compiled pass over each block's pairs (the loop below cost 10x the scan)
        for bi in np.unique(blk):
            sel = np.flatnonzero(blk == bi)
            ms, ft = blocks[int(bi)].models, feats[int(bi)]
            j, i = col[sel] - offsets[bi], rows[sel]
            a_b, c_b = np.empty(sel.size), np.empty(sel.size)
            pair_fits(ms.lin64, ms.quad64, np.ascontiguousarray(ft.lin, np.float64),
                      np.ascontiguousarray(ft.quad, np.float64), j, i, a_b, c_b)
            a[sel], c[sel] = a_b, c_b
            const[sel], scale[sel], model[sel] = ft.const[i], ft.log_u[i] - ms.log_k[j], ms.model_index[j]
    else:  # pragma: no cover - numba missing
        bounds = np.flatnonzero(np.diff(rows * len(blocks) + blk)) + 1
        for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [rows.size]])):
            if lo == hi:
                continue
            bi, src = int(blk[lo]), int(rows[lo])
            ms, ft = blocks[bi].models, feats[bi]
            jj = col[lo:hi] - offsets[bi]
            a[lo:hi] = ms.lin64[jj] @ ft.lin[src]
            c[lo:hi] = ms.quad64[jj] @ ft.quad[src]
            const[lo:hi] = ft.const[src]
            scale[lo:hi] = ft.log_u[src] - ms.log_k[jj]
            model[lo:hi] = ms.model_index[jj]
    gain = np.where(a > 0, a * a / c, 0.0)
    return Candidates(n, rows, model, const - gain, a / c, 1.0 / np.sqrt(c), scale)


def _group_fused(blocks: Sequence[Block], feats: list[_Features], table: ModelTable,
                 options: KernelOptions, xp: ModuleType, n: int, best: np.ndarray | None,
                 margin: np.ndarray, exact_rows: np.ndarray, offsets: np.ndarray,
                 block_of: np.ndarray, block_tables: list | None = None) -> _GroupOut:
    """One row group with the fused numba kernel (:mod:`sedscale.sed.kernel_numba`).

    Every step is per source (pilot, centres, scan), so a source's numbers do not depend on
    which other sources share its group."""
    # the dense scan needs the pilot only as a first reference and centre: 8× sparser is enough
    ref, pb_blk, pb_col, pb_s = _pilot_fused(blocks, feats, options.pilot_fraction / 8, n)
    c_int, c_ext, cl = _centres(blocks, feats, table, n, pb_blk, pb_col, pb_s)
    st = FusedState(n, table.intensive.shape[1], table.log_extensive.shape[1], len(blocks),
                    ref + margin, c_int, c_ext, cl)
    tables = block_tables if block_tables is not None else _block_tables(blocks, table)
    for bi, (b, ft) in enumerate(zip(blocks, feats)):
        ms = b.models
        lin_t, quad_t = ms.padded32()
        tint, text = tables[bi]
        lin32, quad32 = _pad_both(ft.lin32), _pad_both(ft.quad32[:, :-1])  # C starts at tiny
        st.scan(lin32, quad32, ft.lin, ft.quad, ft.const, margin, exact_rows,
                ft.log_u, lin_t, quad_t, ms.lin64, ms.quad64, tint, text, table.intensive,
                table.log_extensive, ms.model_index, ms.log_k, offsets[bi], bi,
                options.screen_chi2, options.listing_chi2)
    int1, int2, ext1, ext2 = st.moments()
    mom = Moments(w0=st.s0, int1=int1, int2=int2, w0_pos=st.s0p, ext1=ext1, ext2=ext2,
                  block_weight=st.bw)
    cand, mass = None, np.full(n, np.nan)
    if options.posterior_chi2 > 0:
        rows, col, chi2 = st.listed(options.posterior_chi2)
        cand = _candidates(blocks, feats, n, rows, col, offsets, block_of)
        inside = np.bincount(rows, weights=np.exp(-0.5 * (chi2 - st.ref[rows])), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            mass = inside / st.s0
    return _GroupOut(mom, st.best_col, st.best_s, st.n_within(options.delta_chi2_good),
                     st.n_pairs, cand, mass)


def _block_tables(blocks: Sequence[Block], table: ModelTable) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per block, the table columns of its models as float32 (P, Mb) and (E, Mb) — contiguous
    over models so the fused kernel's sums vectorise; −log10 k is folded into the extensive ones.
    Cached on the model set for the last table it was used with (grids are reused)."""
    out = []
    for b in blocks:
        cache = b.models.__dict__.setdefault("_tables", [None, None])
        if cache[0] is not table:
            mi = b.models.model_index
            tint = np.ascontiguousarray(table.intensive[mi].T, dtype=np.float32)
            text = np.ascontiguousarray((table.log_extensive[mi] - b.models.log_k[:, None]).T,
                                        dtype=np.float32)
            cache[:] = [table, (tint, text)]
        out.append(cache[1])
    return out


def _pilot_fused(blocks: Sequence[Block], feats: list[_Features], fraction: float,
                 n: int) -> tuple[np.ndarray, ...]:
    """Per-source exact χ² over every ``1/fraction``-th model (numba, row by row)."""
    ref = np.full(n, np.inf)
    pb_blk = np.full(n, -1, np.int64)
    pb_col = np.full(n, -1, np.int64)
    pb_s = np.zeros(n)
    step = max(1, int(round(1.0 / max(fraction, 1e-9))))
    for bi, (b, ft) in enumerate(zip(blocks, feats)):
        nm = b.models.n_models
        start = step // 2 if nm > step // 2 else 0
        pilot_block(ft.lin, ft.quad, ft.const, b.models.lin64, b.models.quad64, start, step, bi,
                    ref, pb_blk, pb_col, pb_s)
    return ref, pb_blk, pb_col, pb_s


def _centres(blocks: Sequence[Block], feats: list[_Features], table: ModelTable, n: int,
             pb_blk: np.ndarray, pb_col: np.ndarray, pb_s: np.ndarray) -> tuple[np.ndarray, ...]:
    """The pilot's best model per source: the point every sum is centred on (float32 partial
    sums of (p − c) keep their precision where Σ p² − (Σ p)² would not)."""
    c_int = np.zeros((n, table.intensive.shape[1]))
    c_ext = np.zeros((n, table.log_extensive.shape[1]))
    cl = np.zeros(n)
    for bi, (b, ft) in enumerate(zip(blocks, feats)):
        sel = np.flatnonzero(pb_blk == bi)
        if sel.size == 0:
            continue
        col = pb_col[sel]
        mi = b.models.model_index[col]
        c_int[sel] = table.intensive[mi]
        c_ext[sel] = table.log_extensive[mi] - b.models.log_k[col][:, None]
        s = pb_s[sel]
        with np.errstate(divide="ignore"):
            cl[sel] = np.where(s > 0, np.log10(np.where(s > 0, s, 1.0)), 0.0) + ft.log_u[sel]
    return c_int, c_ext, cl


def _group_array(blocks: Sequence[Block], feats: list[_Features], table: ModelTable,
                 options: KernelOptions, xp: ModuleType, n: int, best: np.ndarray,
                 margin: np.ndarray, exact_rows: np.ndarray, offsets: np.ndarray,
                 block_of: np.ndarray, block_tables: list | None = None) -> _GroupOut:
    """One row group with array operations only (any ``xp``): screen, then accumulate pairs."""
    model_index = np.concatenate([b.models.model_index for b in blocks]).astype(np.int64)
    log_k = np.concatenate([b.models.log_k for b in blocks])
    cand = _Candidates()
    for bi, (b, ft) in enumerate(zip(blocks, feats)):
        lin_t, quad_t = b.models.transposed32(xp)
        i, j, a64, c64, exact = screen_block(ft.lin32, ft.quad, lin_t, quad_t, ft.const, best,
                                             margin, options.screen_chi2, xp,
                                             options.tile_elements)
        if i.size == 0:
            continue
        need = exact | exact_rows[i]
        if need.any():
            ii, jj = i[need], j[need]
            a64[need] = np.einsum("pk,pk->p", ft.lin[ii], b.models.lin64[jj])
            c64[need] = np.einsum("pk,pk->p", ft.quad[ii], b.models.quad64[jj])
        pos = a64 > 0
        sc = np.where(pos, a64 / np.where(pos, c64, 1.0), 0.0)
        chi2 = ft.const[i] - sc * a64
        cand.add(i, offsets[bi] + j, chi2, sc)
    rows, col, chi2, sc = cand.arrays()
    best = np.full(n, np.inf)  # exact minimum over the candidates (the pilot's is an upper bound)
    np.minimum.at(best, rows, chi2)
    keep = chi2 <= best[rows] + options.screen_chi2
    rows, col, chi2, sc = rows[keep], col[keep], chi2[keep], sc[keep]
    log_u = np.stack([ft.log_u for ft in feats])  # (n_blocks, n)
    pos = sc > 0
    with np.errstate(divide="ignore"):
        log_s = np.where(pos, np.log10(np.where(pos, sc, 1.0)) + log_u[block_of[col], rows]
                         - log_k[col], 0.0)
    mom = accumulate(n, table, table.design(), len(blocks), rows, model_index[col],
                     block_of[col], chi2, log_s, pos, best)
    at_min = chi2 <= best[rows]
    bcol = np.full(n, -1, dtype=np.int64)
    bs = np.zeros(n)
    bcol[rows[at_min][::-1]] = col[at_min][::-1]
    bs[rows[at_min][::-1]] = sc[at_min][::-1]
    n_good = np.bincount(rows[chi2 <= best[rows] + options.delta_chi2_good], minlength=n)
    listed, mass = None, np.full(n, np.nan)
    if options.posterior_chi2 > 0:
        win = chi2 <= best[rows] + options.posterior_chi2
        listed = _candidates(blocks, feats, n, rows[win], col[win], offsets, block_of)
        lw = np.exp(-0.5 * (chi2 - best[rows]))
        with np.errstate(invalid="ignore", divide="ignore"):
            mass = (np.bincount(rows[win], weights=lw[win], minlength=n)
                    / np.bincount(rows, weights=lw, minlength=n))
    return _GroupOut(mom, bcol, bs, n_good, int(rows.size), listed, mass)


def _finish(obs: Observations, blocks: Sequence[Block], rs: slice, out: _GroupOut,
            pct: dict[str, np.ndarray], table: ModelTable, options: KernelOptions,
            offsets: np.ndarray, block_of: np.ndarray) -> dict:
    """One row group's per-source arrays (the fields of :class:`KernelResult`)."""
    mom, bcol, bs = out.moments, out.best_col, out.best_s
    n = rs.stop - rs.start
    n_band = obs.flux.shape[1]
    best_flux = np.full((n, n_band), np.nan)
    resid = np.full((n, n_band), np.nan)
    best_model = np.full(n, -1, dtype=np.int64)
    best_block = np.where(bcol >= 0, block_of[np.maximum(bcol, 0)], -1)
    log_s = np.full(n, np.nan)
    for bi, b in enumerate(blocks):
        sel = np.flatnonzero(best_block == bi)
        if sel.size == 0:
            continue
        rows = np.arange(rs.start, rs.stop)[sel]
        j = bcol[sel] - offsets[bi]
        ms = b.models
        mix = np.ones((sel.size, 1)) if b.mix is None else np.asarray(b.mix[rows], np.float64)
        flux = np.einsum("pr,rpb->pb", mix, ms.flux[:, j, :].astype(np.float64))
        sig = obs.sigma_eff(rows, b.sigma_extra)
        u = np.min(np.where(np.isfinite(sig), sig, np.inf), axis=1)
        u = np.where(np.isfinite(u) & (u > 0), u, 1.0)
        s_phys = bs[sel] * u / 10 ** ms.log_k[j]
        best_flux[sel] = s_phys[:, None] * flux
        with np.errstate(invalid="ignore"):
            resid[sel] = np.where(np.isfinite(sig), (obs.flux[rows] - best_flux[sel]) / sig, np.nan)
        best_model[sel] = ms.model_index[j]
        with np.errstate(divide="ignore"):
            log_s[sel] = np.where(s_phys > 0, np.log10(np.maximum(s_phys, 1e-300)), -np.inf)
    n_bands = np.sum(obs.observed[rs], axis=1)
    chi2 = np.nansum(resid * resid, axis=1)
    dof = np.maximum(n_bands - options.n_free, 1)
    est = mom.estimates(table)
    bad = n_bands == 0
    _undetected_estimates(est, pct, table)
    for values in (*(v for pair in est.values() for v in pair), *pct.values(), out.window_mass):
        values[bad] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        block_prob = mom.block_weight / mom.w0[:, None]
    return dict(estimates=est, chi2_best=np.where(bad, np.nan, chi2), best_block=best_block,
                best_model=best_model, log_s_best=log_s, best_flux=best_flux,
                residual_sigma=resid, n_good=out.n_good, n_bands=n_bands, dof=dof,
                chi2_red=np.where(bad, np.nan, chi2 / dof), block_prob=block_prob,
                percentiles=pct, window_mass=out.window_mass)


def _undetected_estimates(est: dict[str, tuple[np.ndarray, np.ndarray]],
                          pct: dict[str, np.ndarray], table: ModelTable) -> None:
    """A source whose every model has normalisation ≤ 0 has no mean of log10(s·x) over s > 0;
    its extensive estimates become the posterior median and half the 16–84% width (the
    normalisation's likelihood truncated at 0, :mod:`sedscale.sed.posterior`), so an undetected
    source is fitted with an upper limit (its p975) instead of failing."""
    for name in table.extensive_names:
        if name not in pct:
            continue
        mean, std = est[name]
        q = pct[name]
        use = ~np.isfinite(mean) & np.isfinite(q[:, 2])
        mean[use] = q[use, 2]
        std[use] = 0.5 * (q[use, 3] - q[use, 1])


def _concat(parts: list[dict], n_src: int, n_band: int, n_blocks: int, n_pairs: int,
            table: ModelTable) -> KernelResult:
    if not parts:
        names = table.intensive_names + table.extensive_names
        empty = np.zeros(0)
        return KernelResult({k: (empty, empty) for k in names}, empty, np.zeros(0, np.int64),
                            np.zeros(0, np.int64), empty, np.zeros((0, n_band)),
                            np.zeros((0, n_band)), np.zeros(0, np.int64), np.zeros(0, np.int64),
                            np.zeros(0, np.int64), empty, np.zeros((0, n_blocks)), 0)
    out: dict = {}
    for key in parts[0]:
        if key == "percentiles":
            out[key] = {name: np.concatenate([p[key][name] for p in parts])
                        for name in parts[0][key]}
        elif key == "estimates":
            out[key] = {name: (np.concatenate([p[key][name][0] for p in parts]),
                               np.concatenate([p[key][name][1] for p in parts]))
                        for name in parts[0][key]}
        else:
            out[key] = np.concatenate([p[key] for p in parts])
    return KernelResult(n_pairs=n_pairs, **out)


# --------------------------------------------------------------------------------------------
# convenience entry points
# --------------------------------------------------------------------------------------------


def fit_single_redshift(flux: np.ndarray, error: np.ndarray, model_flux: np.ndarray,
                        table: ModelTable, *, floor: float = 0.0,
                        options: KernelOptions = KernelOptions(), xp: ModuleType = np) -> KernelResult:
    """All N sources against one (M, B) model set (one redshift node): the benchmark's case."""
    ms = ModelSet(np.asarray(model_flux)[None], np.arange(model_flux.shape[0]))
    return run_kernel(Observations(flux, error, floor), [Block(ms)], table, options, xp)


def fit_reference(flux: np.ndarray, error: np.ndarray, model_flux: np.ndarray, table: ModelTable,
                  *, floor: float = 0.0, delta_chi2_good: float = 4.0) -> dict[str, np.ndarray]:
    """The straightforward float64 fit: full N×M matrices, exp everywhere.

    Same conventions as the kernel (clipped normalisation, extensive averages over s > 0); used
    as the reference by the tests and the benchmark. Memory is O(N·M): small problems only.
    """
    obs = Observations(flux, error, floor)
    sig = obs.sigma_eff(slice(None))
    w = np.where(np.isfinite(sig), 1.0 / np.where(np.isfinite(sig), sig, 1.0) ** 2, 0.0)
    f = np.nan_to_num(flux)
    m = np.asarray(model_flux, np.float64)
    a = (w * f) @ m.T
    c = (w @ (m * m).T) + 1e-300
    s = np.maximum(a / c, 0.0)
    chi2 = np.sum(w * f * f, axis=1)[:, None] - s * a
    best = np.argmin(chi2, axis=1)
    cmin = chi2[np.arange(len(best)), best]
    lw = np.exp(-0.5 * (chi2 - cmin[:, None]))
    out: dict[str, np.ndarray] = {"chi2_best": cmin, "best_model": best,
                                  "s_best": s[np.arange(len(best)), best],
                                  "n_good": np.sum(chi2 <= cmin[:, None] + delta_chi2_good, axis=1)}
    w0 = lw.sum(axis=1)
    for k, name in enumerate(table.intensive_names):
        p = table.intensive[:, k]
        mean = lw @ p / w0
        out[name] = mean
        out[name + "_std"] = np.sqrt(np.maximum(lw @ (p * p) / w0 - mean**2, 0.0))
    lwp = np.where(s > 0, lw, 0.0)
    ls = np.log10(np.where(s > 0, s, 1.0))
    w0p = lwp.sum(axis=1)
    for k, name in enumerate(table.extensive_names):
        x = ls + table.log_extensive[:, k][None, :]
        mean = np.sum(lwp * x, axis=1) / w0p
        out[name] = mean
        out[name + "_std"] = np.sqrt(np.maximum(np.sum(lwp * x * x, axis=1) / w0p - mean**2, 0.0))
    return out
