"""The acceptance test: is a source's fit good enough, or does it need the agent?

Applied to the triage fit (every source) and after every agent step. A fit passes when its reduced
χ² is at most ``chi2_red_max`` with at least ``min_dof`` degrees of freedom, no band's residual
exceeds ``max_abs_residual`` σ, and at least ``min_good_models`` models lie within Δχ² of the
best (the fitter's ``n_good_models``), and — ``edge_check`` — no estimate of an :data:`EDGE_PARAMS`
grid parameter lies in the top cell of its value list while its physical bound
(:data:`~sedscale.sed.config.PARAMETER_BOUNDS`) reaches higher (reason ``edge:<name>``): a
posterior piled against the grid's end means the grid, not the source, set the answer (issue 17:
dusty sources with true A_V > 3 fitted at the default ceiling of 3 with χ² ≈ 0.7 and A_V a
magnitude too low). Only the acceptance test sets a source's ``accepted`` flag:
a policy's ``accept`` action ends its search but never marks it accepted.

Fits are ordered by :meth:`AcceptanceTest.better`: accepted beats not accepted (unless the rejected
one fails only the edge check and has the lower χ²), then lower reduced χ². The agent keeps the best fit in that order, the triage fit included, so its result is never
worse than triage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from sedscale.sed.config import PARAMETER_BOUNDS

#: Grid parameters whose value list the agent can widen upward (estimate name → config key).
EDGE_PARAMS: dict[str, str] = {"av": "dust_attenuation.av", "frac_agn": "agn.frac_agn",
                               "av_agn": "agn.av_agn", "logu": "nebular.logu"}


def edge_threshold(name: str, values: list[float]) -> float | None:
    """The estimate of ``name`` at or above which it sits in the top cell of ``values`` (the
    midpoint of the two largest), or None when the axis cannot be at an edge: a single value
    (the fit explored nothing), or its largest value already at the physical maximum."""
    if name not in EDGE_PARAMS or len(values) < 2:
        return None
    top = sorted(values)[-2:]
    if top[1] >= PARAMETER_BOUNDS[EDGE_PARAMS[name]].max:
        return None
    return 0.5 * (top[0] + top[1])


def edge_params(axes: dict[str, list[float]], estimates: dict[str, tuple[float, float]]) -> list[str]:
    """The :data:`EDGE_PARAMS` whose estimate lies in the top cell of its grid axis (sorted)."""
    out = []
    for name in sorted(EDGE_PARAMS):
        limit = edge_threshold(name, axes.get(name, []))
        est = estimates.get(name)
        if limit is not None and est is not None and math.isfinite(est[0]) and est[0] >= limit:
            out.append(name)
    return out


@dataclass(frozen=True)
class SourceFit:
    """One source's result under one configuration (a row of a ``FitResult``)."""

    chi2_red: float
    chi2_best: float
    dof: int
    n_good: int
    residual: np.ndarray  # (B,) σ; NaN where not observed
    best_flux: np.ndarray  # (B,) µJy
    estimates: dict[str, tuple[float, float]]
    #: photo-z outputs (z_best, z_mean, ...), ``best_model`` (grid index) and the posterior
    #: percentiles ``<q>_<p>`` where the fit reports them (:func:`per_source_extras`)
    extra: dict[str, float] = field(default_factory=dict)
    #: :data:`EDGE_PARAMS` whose estimate sits in the top cell of the fit's grid axis (:func:`edge_params`)
    edges: tuple[str, ...] = ()

    @property
    def max_abs_residual(self) -> float:
        r = self.residual[np.isfinite(self.residual)]
        return float(np.max(np.abs(r))) if r.size else 0.0


class FitRows(Protocol):
    """What the agent reads from a fit of N sources: :class:`sedscale.sed.api.FitResult` is one.

    Only these two arrays are required; ``chi2_best``, ``dof``, ``n_good_models``, ``best_flux``,
    ``estimates`` and the :data:`PHOTOZ_FIELDS` are read when present (test fitters omit some).
    """

    @property
    def chi2_red(self) -> np.ndarray: ...

    @property
    def residual_sigma(self) -> np.ndarray: ...


#: Per-source arrays of a FitResult copied into a :class:`SourceFit` ``extra`` when present.
PHOTOZ_FIELDS = ("z_best", "z_mean", "z_lo68", "z_hi68", "z_phot", "z_phot_err")


def per_source_extras(result: FitRows) -> dict[str, np.ndarray]:
    """The per-source arrays of a fit carried in :attr:`SourceFit.extra`: the
    :data:`PHOTOZ_FIELDS`, ``best_model`` (``FitResult.best_index``) and every posterior
    percentile as ``<quantity>_<suffix>`` (``FitResult.percentiles``) — so a source the agent
    refits reports its own best model and percentiles, not the triage fit's."""
    out = {k: np.asarray(v) for k in PHOTOZ_FIELDS if (v := getattr(result, k, None)) is not None}
    best = getattr(result, "best_index", None)
    if best is not None:
        out["best_model"] = np.asarray(best)
    by_quantity: dict[str, dict[str, np.ndarray]] = getattr(result, "percentiles", None) or {}
    for quantity, by_suffix in by_quantity.items():
        for suffix, values in by_suffix.items():
            out[f"{quantity}_{suffix}"] = np.asarray(values)
    return out


def _arr(result: FitRows, name: str) -> np.ndarray | None:
    value = getattr(result, name, None)
    return None if value is None else np.asarray(value)


def source_fits(result: FitRows, indices: np.ndarray | None = None) -> list[SourceFit]:
    """Split a ``FitResult`` (docs/INTERNAL-CONTRACTS.md) into one :class:`SourceFit` per source
    (only the sources at ``indices`` when given, in that order)."""
    chi2_red = np.asarray(result.chi2_red, dtype=np.float64)
    n = chi2_red.shape[0]
    chi2_best = _arr(result, "chi2_best")
    dof = _arr(result, "dof")
    n_good = _arr(result, "n_good_models")
    resid = np.asarray(result.residual_sigma, dtype=np.float64)
    best_flux = _arr(result, "best_flux")
    estimates = getattr(result, "estimates", {}) or {}
    extras = per_source_extras(result)
    axes: dict[str, list[float]] = getattr(result, "axes", None) or {}
    out = []
    for i in (range(n) if indices is None else (int(j) for j in indices)):
        est = {k: (float(m[i]), float(s[i])) for k, (m, s) in estimates.items()}
        out.append(
            SourceFit(
                chi2_red=float(chi2_red[i]),
                chi2_best=float(chi2_best[i]) if chi2_best is not None else float("nan"),
                dof=int(dof[i]) if dof is not None else 0,
                n_good=int(n_good[i]) if n_good is not None else 1,
                residual=resid[i].copy(),
                best_flux=(best_flux[i].copy() if best_flux is not None else np.full(resid.shape[1], np.nan)),
                estimates=est,
                extra={k: float(v[i]) for k, v in extras.items()},
                edges=tuple(edge_params(axes, est)) if axes else (),
            )
        )
    return out


class AcceptanceTest(BaseModel):
    """Thresholds of the acceptance test (a workflow's ``agent.acceptance`` section)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    chi2_red_max: float = Field(default=2.0, gt=0, description="Largest acceptable reduced χ².")
    min_dof: int = Field(default=1, ge=0, description="Fewer degrees of freedom cannot be judged (reason few_dof).")
    max_abs_residual: float = Field(default=3.0, gt=0, description="No band may be off by more than this many σ.",
                                    validation_alias=AliasChoices("max_abs_residual", "band_sigma_max"))
    min_good_models: int = Field(default=1, ge=1, description="Models within Δχ² of the best (fitter's n_good_models).")
    min_gain: float = Field(default=0.05, ge=0, lt=1, description="Relative χ²_red drop that counts as an improvement.")
    edge_check: bool = Field(default=True, description="Reject a fit whose A_V / frac_agn / av_agn / logU estimate "
                             "lies in the top cell of its grid axis while the physical bound is higher (reason edge:<name>).")

    def failures(self, fit: SourceFit) -> list[str]:
        """Reason codes why ``fit`` fails (empty when it passes)."""
        if not math.isfinite(fit.chi2_red):
            return ["no_fit"]
        reasons = []
        if fit.dof < self.min_dof:
            reasons.append("few_dof")
        if fit.chi2_red > self.chi2_red_max:
            reasons.append("chi2_red")
        if fit.max_abs_residual > self.max_abs_residual:
            reasons.append("residual")
        if fit.n_good < self.min_good_models:
            reasons.append("few_good_models")
        if self.edge_check:
            reasons.extend(f"edge:{name}" for name in fit.edges)
        return reasons

    def passes(self, fit: SourceFit) -> bool:
        return not self.failures(fit)

    def passes_array(self, result: FitRows) -> np.ndarray:
        """:meth:`passes` of every source of a ``FitResult`` at once (boolean array)."""
        return self.triage_arrays(result)[0]

    def helpable_array(self, result: FitRows) -> np.ndarray:
        """:meth:`agent_can_help` of every source of a ``FitResult`` at once (boolean array)."""
        return self.triage_arrays(result)[1]

    def triage_arrays(self, result: FitRows) -> tuple[np.ndarray, np.ndarray]:
        """(:meth:`passes_array`, :meth:`helpable_array`) from one pass over the result."""
        m = self._failure_masks(result)
        return m["any"] == 0, (m["any"] > 0) & ~m["no_fit"] & ~m["few_dof"]

    def _failure_masks(self, result: FitRows) -> dict[str, np.ndarray]:
        """Per-reason boolean masks mirroring :meth:`failures` (with :func:`source_fits`'
        defaults for absent fields), and ``any``: the number of reasons per source. Per-source
        objects for every row of a 10^5-row partition cost seconds; these cost milliseconds."""
        chi2 = np.asarray(result.chi2_red, dtype=np.float64)
        n = chi2.shape[0]
        dof, n_good = _arr(result, "dof"), _arr(result, "n_good_models")
        dof = np.zeros(n, dtype=np.int64) if dof is None else dof.astype(np.int64)
        n_good = np.ones(n, dtype=np.int64) if n_good is None else n_good.astype(np.int64)
        resid = np.abs(np.asarray(result.residual_sigma, dtype=np.float64))
        worst = np.max(np.where(np.isfinite(resid), resid, 0.0), axis=1) if resid.size else np.zeros(n)
        finite = np.isfinite(chi2)
        masks = {"no_fit": ~finite}
        with np.errstate(invalid="ignore"):
            masks["few_dof"] = finite & (dof < self.min_dof)
            masks["chi2_red"] = finite & (chi2 > self.chi2_red_max)
            masks["residual"] = finite & (worst > self.max_abs_residual)
            masks["few_good_models"] = finite & (n_good < self.min_good_models)
            if self.edge_check:
                masks.update(_edge_masks(result, finite))
        masks["any"] = np.sum(np.stack([m.astype(np.int64) for m in masks.values()]), axis=0)
        return masks

    def edge_reasons(self, result: FitRows) -> dict[str, np.ndarray]:
        """``edge:<name>`` → boolean mask of the sources the edge check rejects (all sources at once)."""
        return _edge_masks(result, np.isfinite(np.asarray(result.chi2_red, dtype=np.float64))) if self.edge_check else {}

    def _edge_only_lower(self, rejected: SourceFit, accepted: SourceFit) -> bool:
        """True when ``rejected`` fails only the edge check and fits better (lower χ²_red) than
        ``accepted``: then χ² decides, not acceptance — a fit that leaves the grid's top cell by
        fitting worse (a narrower list, another law) is no improvement, and the agent's result
        must never be worse than triage's."""
        fails = self.failures(rejected)
        return bool(fails) and all(f.startswith("edge:") for f in fails) and rejected.chi2_red < accepted.chi2_red

    def agent_can_help(self, fit: SourceFit) -> bool:
        """False for sources no configuration change can fix (no fit at all, too few bands)."""
        fails = self.failures(fit)
        return bool(fails) and "no_fit" not in fails and "few_dof" not in fails

    def better(self, a: SourceFit, b: SourceFit) -> bool:
        """True when ``a`` is better than ``b`` by a margin: newly accepted, or χ²_red lower by
        more than ``min_gain`` (relative) at equal acceptance."""
        pa, pb = self.passes(a), self.passes(b)
        if pa != pb and not self._edge_only_lower(b if pa else a, a if pa else b):
            return pa
        if not math.isfinite(a.chi2_red):
            return False
        if not math.isfinite(b.chi2_red):
            return True
        return a.chi2_red < b.chi2_red * (1.0 - self.min_gain)


def _edge_masks(result: FitRows, finite: np.ndarray) -> dict[str, np.ndarray]:
    """``edge:<name>`` → mask of the fitted sources whose estimate lies at the top of the axis
    (the array form of :func:`edge_params`; a result without ``axes`` has no edges)."""
    axes: dict[str, list[float]] = getattr(result, "axes", None) or {}
    estimates = getattr(result, "estimates", {}) or {}
    out = {}
    for name in sorted(EDGE_PARAMS):
        limit = edge_threshold(name, axes.get(name, []))
        if limit is None or name not in estimates:
            continue
        mean = np.asarray(estimates[name][0], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            out[f"edge:{name}"] = finite & np.isfinite(mean) & (mean >= limit)
    return out
