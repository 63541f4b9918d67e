"""What the agent hands back for one table of sources: :class:`AgentOutcome`, and its assembly.

Every source of the table has a row — the triage fit's, overwritten by the agent's best fit for
each source it took — so the caller writes one results row per input row whatever happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from sedscale.agent.acceptance import AcceptanceTest, FitRows, SourceFit, per_source_extras
from sedscale.agent.accounting import SourceAccounting, accounting_columns, summarize
from sedscale.agent.knowledge import KnowledgeBase
from sedscale.agent.state import Attempt
from sedscale.agent.trail import StepRecord, kept_policy, trail_table
from sedscale.sed.config import FitConfig

#: One decision of a source: (step, who decided, action brief, why the LLM's was not used).
DecisionRecord = tuple[int, str, str, str]


@dataclass
class AgentOutcome:
    """Per-source final results for all N sources (triage rows passed through)."""

    source_id: np.ndarray  # (N,)
    entered: np.ndarray  # (N,) bool: went through the agent loop
    triage_accepted: np.ndarray  # (N,) bool
    accepted: np.ndarray  # (N,) bool: the final fit passes the acceptance test
    chi2_red: np.ndarray  # (N,)
    triage_chi2_red: np.ndarray  # (N,)
    dof: np.ndarray  # (N,)
    chi2_best: np.ndarray  # (N,)
    estimates: dict[str, tuple[np.ndarray, np.ndarray]]  # name → (mean, std), (N,) each
    residual_sigma: np.ndarray  # (N, B)
    best_flux: np.ndarray  # (N, B)
    #: per-source outputs of the final fits besides the estimates: photo-z (z_best, z_mean, ...),
    #: ``best_model`` (grid index, −1 none) and the posterior percentiles ``<q>_<p>``
    extra: dict[str, np.ndarray]
    config_hash: list[str]  # (N,) hash of the final configuration
    configs: dict[str, FitConfig]  # hash → configuration, every final one
    stop_reason: list[str]  # (N,)
    accounting: list[SourceAccounting]  # (N,)
    history: dict[int, list[Attempt]]  # source_id → attempts (agent sources only)
    decisions: dict[int, list[DecisionRecord]]  # source_id → decisions (agent sources only)
    knowledge_delta: KnowledgeBase  # what this run learnt: merged for later campaigns / epochs
    steps: dict[int, list[StepRecord]] = field(default_factory=dict)  # source_id → trail records (agent sources)
    overhead: dict[str, int] = field(default_factory=dict)  # LLM warm-up tokens, not per source
    seconds: dict[str, float] = field(default_factory=dict)  # total, llm_wait, refit, overlap (unions); policy, fit (sums)

    def columns(self) -> dict[str, np.ndarray]:
        """Arrays for the results table (DESIGN.md §4 names where they exist)."""
        out: dict[str, np.ndarray] = {"accepted": self.accepted, "chi2_red": self.chi2_red}
        for name in ("logmstar", "logsfr", "av"):
            if name in self.estimates:
                out[name], out[f"{name}_err"] = self.estimates[name]
        out.update(accounting_columns(self.accounting))
        return out

    def policies(self) -> np.ndarray:
        """(N,) ``none`` | ``rules`` | ``llm``: what each source's final fit came from
        (:func:`sedscale.agent.trail.kept_policy`; ``none`` for every source the loop did not take)."""
        return np.array([kept_policy(self.steps.get(int(sid), [])) for sid in self.source_id], dtype=object)

    def trail(self) -> pa.Table:
        """One row per agent step of every source that entered the loop (TRAIL_SCHEMA), sorted by
        (source_id, step)."""
        return trail_table(r for records in self.steps.values() for r in records)

    def summary(self) -> dict[str, object]:
        """Totals for the partition's report. Besides the accounting totals: ``llm_wait_s`` (wall
        seconds in which some source waited on the policy / LLM), ``refit_s`` (wall seconds in
        which an agent re-fit ran), ``overlap_s`` (both at once) and ``agent_wall_s`` — wall-clock
        unions, not sums over sources, so they can be set beside the partition's wall time."""
        s = summarize(self.accounting)
        ent = self.entered
        sec = self.seconds
        s.update({
            "llm_wait_s": float(sec.get("llm_wait", 0.0)),
            "refit_s": float(sec.get("refit", 0.0)),
            "overlap_s": float(sec.get("overlap", 0.0)),
            "agent_wall_s": float(sec.get("total", 0.0)),
            "sources": int(self.source_id.size),
            "triage_failed": int(np.sum(ent)),
            "agent_accepted": int(np.sum(self.accepted & ent)),
            "acceptance_fraction": float(np.mean(self.accepted[ent])) if ent.any() else float("nan"),
            "seconds": dict(self.seconds),
            "overhead": dict(self.overhead),
        })
        return s


@dataclass
class AgentResult:
    """One source's search as the run leaves it: its best fit and configuration, and its records."""

    best: SourceFit
    config: FitConfig
    accounting: SourceAccounting
    history: list[Attempt]
    decisions: list[DecisionRecord]
    steps: list[StepRecord] = field(default_factory=list)


def _triage_column(triage: FitRows, name: str, n: int, fill: float, dtype: type) -> np.ndarray:
    value = getattr(triage, name, None)
    return np.full(n, fill, dtype=dtype) if value is None else np.array(value, dtype=dtype)


def _estimates(triage: FitRows, n: int, results: dict[int, AgentResult]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The triage estimates, overwritten per agent source (NaN where a fit lacks a quantity)."""
    tri = getattr(triage, "estimates", {}) or {}
    names = sorted(set(tri) | {k for r in results.values() for k in r.best.estimates})
    out = {k: (np.array(tri[k][0], dtype=np.float64), np.array(tri[k][1], dtype=np.float64))
           if k in tri else (np.full(n, np.nan), np.full(n, np.nan)) for k in names}
    for i, r in results.items():
        for k in names:
            out[k][0][i], out[k][1][i] = r.best.estimates.get(k, (np.nan, np.nan))
    return out


def _extras(triage: FitRows, n: int, results: dict[int, AgentResult]) -> dict[str, np.ndarray]:
    """The per-source extras (:func:`per_source_extras`), overwritten per agent source; a
    ``best_model`` no fit reported is −1."""
    tri = {k: np.asarray(v, dtype=np.float64) for k, v in per_source_extras(triage).items()}
    names = sorted(set(tri) | {k for r in results.values() for k in r.best.extra})
    out = {k: tri[k].copy() if k in tri else np.full(n, np.nan) for k in names}
    for i, r in results.items():
        for k in names:
            out[k][i] = r.best.extra.get(k, np.nan)
    if "best_model" in out:
        out["best_model"] = np.where(np.isfinite(out["best_model"]), out["best_model"], -1.0)
    return out


def assemble_outcome(source_id: np.ndarray, n_bands: int, triage: FitRows, config: FitConfig,
                     results: dict[int, AgentResult], stop: list[str], entered: np.ndarray,
                     triage_ok: np.ndarray, acceptance: AcceptanceTest,
                     knowledge_delta: KnowledgeBase) -> AgentOutcome:
    """The outcome arrays: the triage fit's rows, overwritten by the agent's best fit of each
    source it took (``results``, by row index)."""
    n = int(np.asarray(source_id).size)
    triage_chi2 = np.asarray(triage.chi2_red, dtype=np.float64)
    chi2 = triage_chi2.copy()
    dof = _triage_column(triage, "dof", n, 0, np.int64)
    chi2_best = _triage_column(triage, "chi2_best", n, np.nan, np.float64)
    residual = np.array(triage.residual_sigma, dtype=np.float64).reshape(n, n_bands)
    best_flux = _triage_column(triage, "best_flux", n * n_bands, np.nan, np.float64).reshape(n, n_bands)
    accepted = triage_ok.copy()
    hashes = [config.hash()] * n
    accounting = [SourceAccounting(stop_reason=r) for r in stop]
    for i, r in results.items():
        f = r.best
        chi2[i], dof[i], chi2_best[i] = f.chi2_red, f.dof, f.chi2_best
        residual[i], best_flux[i] = f.residual, f.best_flux
        accepted[i] = acceptance.passes(f)
        hashes[i] = r.config.hash()
        r.accounting.stop_reason = r.accounting.stop_reason or stop[i]
        accounting[i] = r.accounting
    configs = {config.hash(): config} | {r.config.hash(): r.config for r in results.values()}
    ids = np.asarray(source_id)
    taken = sorted(results)
    return AgentOutcome(
        source_id=ids.copy(), entered=entered, triage_accepted=triage_ok, accepted=accepted,
        chi2_red=chi2, triage_chi2_red=triage_chi2, dof=dof, chi2_best=chi2_best,
        estimates=_estimates(triage, n, results), residual_sigma=residual, best_flux=best_flux,
        extra=_extras(triage, n, results), config_hash=hashes,
        configs={h: configs[h] for h in sorted(set(hashes))}, stop_reason=list(stop), accounting=accounting,
        history={int(ids[i]): list(results[i].history) for i in taken},
        decisions={int(ids[i]): list(results[i].decisions) for i in taken},
        knowledge_delta=knowledge_delta,
        steps={int(ids[i]): list(results[i].steps) for i in taken},
    )
