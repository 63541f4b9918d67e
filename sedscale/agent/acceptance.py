"""The acceptance test: is a source's fit good enough, or does it need the agent?

Applied to the triage fit (every source) and after every agent step. A fit passes when its reduced
χ² is at most ``chi2_red_max`` with at least ``min_dof`` degrees of freedom, no band's residual
exceeds ``max_abs_residual`` σ, and at least ``min_good_models`` models lie within Δχ² of the
best (the fitter's ``n_good_models``). Only the acceptance test sets a source's ``accepted`` flag:
a policy's ``accept`` action ends its search but never marks it accepted.

Fits are ordered by :meth:`AcceptanceTest.better`: accepted beats not accepted, then lower reduced
χ². The agent keeps the best fit in that order, the triage fit included, so its result is never
worse than triage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field


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
    out = []
    for i in (range(n) if indices is None else (int(j) for j in indices)):
        out.append(
            SourceFit(
                chi2_red=float(chi2_red[i]),
                chi2_best=float(chi2_best[i]) if chi2_best is not None else float("nan"),
                dof=int(dof[i]) if dof is not None else 0,
                n_good=int(n_good[i]) if n_good is not None else 1,
                residual=resid[i].copy(),
                best_flux=(best_flux[i].copy() if best_flux is not None else np.full(resid.shape[1], np.nan)),
                estimates={k: (float(m[i]), float(s[i])) for k, (m, s) in estimates.items()},
                extra={k: float(v[i]) for k, v in extras.items()},
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
        masks["any"] = np.sum(np.stack([m.astype(np.int64) for m in masks.values()]), axis=0)
        return masks

    def agent_can_help(self, fit: SourceFit) -> bool:
        """False for sources no configuration change can fix (no fit at all, too few bands)."""
        fails = self.failures(fit)
        return bool(fails) and "no_fit" not in fails and "few_dof" not in fails

    def better(self, a: SourceFit, b: SourceFit) -> bool:
        """True when ``a`` is better than ``b`` by a margin: newly accepted, or χ²_red lower by
        more than ``min_gain`` (relative) at equal acceptance."""
        pa, pb = self.passes(a), self.passes(b)
        if pa != pb:
            return pa
        if not math.isfinite(a.chi2_red):
            return False
        if not math.isfinite(b.chi2_red):
            return True
        return a.chi2_red < b.chi2_red * (1.0 - self.min_gain)
