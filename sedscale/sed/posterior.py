"""Posterior percentiles from the candidate models of each source: the post-pass of the kernel.

Why a post-pass
---------------
The kernel (:mod:`sedscale.sed.fitter`) reduces every (source, model) pair to running moments —
enough for means and standard deviations, not for percentiles. It also lists the pairs within
``posterior_chi2`` of each source's best χ² (the *window*, default Δχ² = 20: a model outside it
weighs less than e^-10 of the best). Their weights L = exp(−(χ² − χ²_min)/2), normalised per
source, are the same likelihood weights the moments use, so the percentiles here and the means
of the estimates describe one distribution (the tests compare the window's weighted mean with the
kernel's, docs/FITTER.md "Estimators and percentiles").

What each quantity's distribution is
------------------------------------
* **Grid parameters** (``av``, ``age``, …, *intensive*): each model carries its grid value; the
  weight of a grid value is spread uniformly over its cell (half-way to its neighbours), as P(z)
  is, so percentiles are not quantised to the grid steps.
* **Extensive quantities** (``logmstar``, ``logsfr``): log10 a + x_j with a the normalisation and
  x_j the model's log quantity per unit normalisation. Given the model, the likelihood of a is
  Gaussian — mean â = A/C (the unclipped linear fit, negative for a model that only fits a
  negative flux), σ_a = C^-1/2 — and the prior on a is flat for a ≥ 0 (a galaxy has no negative
  mass). Each pair's truncated Gaussian is represented by equal-weight quantile nodes, so a source
  whose every model has â ≤ 0 (not detected) still has a proper mass posterior: its p975 is the
  97.5% upper limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtri, ndtri_exp

from sedscale.results import PERCENTILES
from sedscale.sed.estimates import ModelTable
from sedscale.sed.posterior_numba import HAVE_NUMBA, segment_quantiles

#: The percentile levels (fractions), in the order of :data:`sedscale.results.PERCENTILES`.
LEVELS = np.array(list(PERCENTILES.values())) / 100.0
#: Percentile suffixes in the same order.
SUFFIXES = tuple(PERCENTILES)

#: Grid parameters with more distinct values than this are treated as continuous (no cells).
MAX_CELLS = 256
#: Normalisation nodes per source ≈ this / its number of candidates, within the bounds below:
#: a source with few candidates gets a finely resolved normalisation likelihood, one with very
#: many (a broad posterior, where each model's own spread matters little) few nodes per model.
NODE_BUDGET = 1024
MIN_NODES, MAX_NODES = 1, 64


@dataclass(frozen=True)
class Candidates:
    """The listed pairs of one group of ``n`` sources (sorted by source), all (P,) arrays in
    float64 precision.

    ``a_hat``/``sigma`` are the normalisation's fit in the kernel's scaled units; ``log_scale``
    (log10 u − log10 k) turns them into physical units."""

    n: int
    rows: np.ndarray  # source within the group
    model: np.ndarray  # row of the ModelTable
    chi2: np.ndarray  # exact χ² (with the block's prior / normalisation terms)
    a_hat: np.ndarray
    sigma: np.ndarray
    log_scale: np.ndarray

    def weights(self) -> np.ndarray:
        """L = exp(−(χ² − χ²_min)/2) per pair, normalised to sum 1 per source."""
        best = np.full(self.n, np.inf)
        np.minimum.at(best, self.rows, self.chi2)
        lw = np.exp(-0.5 * (self.chi2 - best[self.rows]))
        total = np.bincount(self.rows, weights=lw, minlength=self.n)
        return lw / total[self.rows]


def weighted_quantiles(rows: np.ndarray, values: np.ndarray, weights: np.ndarray, n: int,
                       levels: np.ndarray = LEVELS, bins: int = 2048) -> np.ndarray:
    """(n, L) quantiles of per-source weighted samples (``rows`` says whose), NaN without samples.

    Why a histogram and not a sort: a source's window holds up to thousands of pairs (times the
    normalisation nodes), and sorting them cost 20× the kernel's scan. Each source's samples are
    binned over its own range [min, max] (``bins`` bins, so the resolution is range/bins — e.g.
    0.001 dex for a 2-dex posterior) and the CDF is inverted with linear interpolation inside the
    bin: O(samples), no sort."""
    out = np.full((n, levels.size), np.nan)
    keep = np.isfinite(values) & (weights > 0)
    rows, values, weights = rows[keep], values[keep], weights[keep]
    if rows.size == 0:
        return out
    if np.any(np.diff(rows) < 0):  # the post-pass hands them sorted by source
        order = np.argsort(rows, kind="stable")
        rows, values, weights = rows[order], values[order], weights[order]
    starts = np.flatnonzero(np.concatenate([[True], np.diff(rows) > 0]))
    if HAVE_NUMBA:  # the same binning and inversion, one compiled pass (no n × bins array)
        stops = np.append(starts[1:], rows.size)
        found = np.full((starts.size, levels.size), np.nan)
        segment_quantiles(starts, stops, np.ascontiguousarray(values, np.float64),
                          np.ascontiguousarray(weights, np.float64), np.asarray(levels, np.float64), bins, found)
        out[rows[starts]] = found
        return out
    lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
    lo[rows[starts]] = np.minimum.reduceat(values, starts)
    hi[rows[starts]] = np.maximum.reduceat(values, starts)
    width = np.where(hi > lo, hi - lo, 0.0)
    scale = np.where(width > 0, bins / np.where(width > 0, width, 1.0), 0.0)
    k = np.minimum(((values - lo[rows]) * scale[rows]).astype(np.int64), bins - 1)
    hist = np.bincount(rows * bins + k, weights=weights, minlength=n * bins).reshape(n, bins)
    total = hist.sum(axis=1)
    present = np.flatnonzero(total > 0)
    hist = hist[present] / total[present, None]
    # source index + its CDF after each bin: non-decreasing over the flattened array, so one
    # searchsorted finds every (source, level) bin at once
    key = (np.arange(present.size)[:, None] + 0.999999 * np.cumsum(hist, axis=1)).ravel()
    for j, level in enumerate(levels):
        target = np.arange(present.size) + 0.999999 * level
        flat = np.minimum(np.searchsorted(key, target), (np.arange(present.size) + 1) * bins - 1)
        b = flat - np.arange(present.size) * bins
        before = np.where(b > 0, key[np.maximum(flat - 1, 0)], np.arange(present.size))
        mass = 0.999999 * hist.ravel()[flat]
        frac = np.clip((target - before) / np.where(mass > 0, mass, 1.0), 0.0, 1.0)
        out[present, j] = lo[present] + (b + frac) / bins * width[present]
    return out


def binned_quantiles(prob: np.ndarray, centres: np.ndarray,
                     levels: np.ndarray = LEVELS) -> np.ndarray:
    """(n, L) quantiles of distributions given as probabilities ``prob`` (n, U) on sorted
    ``centres`` (U,), each centre's probability spread uniformly over its cell (midpoints to the
    neighbours; the end cells stop at the end centres). NaN where a row has no probability."""
    c = np.asarray(centres, np.float64)
    edges = (np.concatenate([[c[0]], 0.5 * (c[1:] + c[:-1]), [c[-1]]]) if c.size > 1
             else np.array([c[0], c[0]]))
    p = np.asarray(prob, np.float64)
    total = p.sum(axis=1)
    out = np.full((p.shape[0], levels.size), np.nan)
    for i in np.flatnonzero(np.isfinite(total) & (total > 0)):
        cdf = np.concatenate([[0.0], np.cumsum(p[i]) / total[i]])
        out[i] = np.interp(levels, cdf, edges)
    return out


def normalisation_nodes(a_hat: np.ndarray, sigma: np.ndarray, u: np.ndarray,
                        z_plain: np.ndarray | None = None) -> np.ndarray:
    """Quantiles ``u`` ∈ (0, 1) of N(â, σ²) truncated to a ≥ 0 (flat prior on a ≥ 0), elementwise.

    From the upper tail, P(a > x | a ≥ 0) = Φ((â − x)/σ) / Φ(â/σ) = 1 − u, in log space
    (``log_ndtr``/``ndtri_exp``) so that â ≪ −σ (a model that only fits a negative flux: the
    nodes crowd towards 0 on a scale σ²/|â|) stays accurate. Where â > 8σ the truncation removes
    < 1e-15 of the mass and the plain Gaussian quantile â + σ Φ⁻¹(u) is used (no special
    function per pair; ``z_plain`` = Φ⁻¹(u) when the caller has it). Always > 0."""
    t = a_hat / sigma
    out = a_hat + sigma * (ndtri(u) if z_plain is None else z_plain)
    low = np.flatnonzero(t <= 8.0)
    if low.size:
        z = ndtri_exp(np.log1p(-u[low]) + log_ndtr(t[low]))
        out[low] = sigma[low] * (t[low] - z)
    return np.maximum(out, sigma * 1e-12)


#: Φ⁻¹((k + ½)/m) for every node count m ≤ MAX_NODES and node k < m (a lookup, not a call per node).
_NODE_Z = np.array([[ndtri((k + 0.5) / m) if k < m else 0.0 for k in range(MAX_NODES)]
                    for m in range(max(MAX_NODES, 1) + 1)])


def _node_layout(rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per node, the pair it belongs to, its level u and Φ⁻¹(u) (a pair gets ``NODE_BUDGET`` /
    its source's number of candidates nodes, within [MIN_NODES, MAX_NODES])."""
    per_source = np.bincount(rows, minlength=n)
    nodes = np.clip(NODE_BUDGET // np.maximum(per_source, 1), MIN_NODES, MAX_NODES)[rows]
    pair = np.repeat(np.arange(rows.size), nodes)
    first = np.cumsum(nodes) - nodes
    k = np.arange(pair.size) - first[pair]
    m = nodes[pair]
    return pair, (k + 0.5) / m, _NODE_Z[m, k]


@dataclass(frozen=True)
class _Nodes:
    """The normalisation nodes of every pair, shared by all extensive quantities."""

    pair: np.ndarray  # (Q,) the pair of each node
    log_a: np.ndarray  # (Q,) log10 of the node's normalisation in physical units (scale included)
    weight: np.ndarray  # (Q,) the pair's weight / its number of nodes


def _nodes(cand: Candidates, weights: np.ndarray) -> _Nodes:
    pair, u, z = _node_layout(cand.rows, cand.n)
    a = normalisation_nodes(cand.a_hat[pair], cand.sigma[pair], u, z)
    counts = np.bincount(pair, minlength=cand.rows.size)
    return _Nodes(pair, np.log10(a) + cand.log_scale[pair], weights[pair] / counts[pair])


def extensive_quantiles(cand: Candidates, nodes: _Nodes, log_per_unit: np.ndarray,
                        levels: np.ndarray = LEVELS) -> np.ndarray:
    """(n, L) quantiles of log10 a + x for one extensive column (``log_per_unit`` (M,) = x)."""
    value = nodes.log_a + log_per_unit[cand.model[nodes.pair]]
    return weighted_quantiles(cand.rows[nodes.pair], value, nodes.weight, cand.n, levels)


def intensive_quantiles(cand: Candidates, weights: np.ndarray, per_model: np.ndarray,
                        levels: np.ndarray = LEVELS) -> np.ndarray:
    """(n, L) quantiles of a grid parameter (``per_model`` (M,)), spread over its grid cells."""
    centres, inverse = np.unique(per_model, return_inverse=True)
    if centres.size > MAX_CELLS:
        return weighted_quantiles(cand.rows, per_model[cand.model], weights, cand.n, levels)
    cell = inverse[cand.model]
    prob = np.bincount(cand.rows * centres.size + cell, weights=weights,
                       minlength=cand.n * centres.size).reshape(cand.n, centres.size)
    return binned_quantiles(prob, centres, levels)


def percentiles(cand: Candidates, table: ModelTable,
                names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """name → (n, L) percentiles for every name of ``names`` the table has (a name it lacks is
    left out); rows without candidates are NaN."""
    weights = cand.weights()
    nodes = _nodes(cand, weights) if any(x in table.extensive_names for x in names) else None
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name in table.extensive_names and nodes is not None:
            col = table.log_extensive[:, table.extensive_names.index(name)]
            out[name] = extensive_quantiles(cand, nodes, col)
        elif name in table.intensive_names:
            col = table.intensive[:, table.intensive_names.index(name)]
            out[name] = intensive_quantiles(cand, weights, col)
    return out
