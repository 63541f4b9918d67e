"""Fitting one table of catalog rows end to end: validate → triage → agent → results contract.

The one algorithm both ``sedscale fit`` (in process) and campaign tasks (:mod:`sedscale.pipeline`)
run, so the two give the same rows for the same input. It touches no engine and no campaign
state. Everything a run needs besides the rows travels in :class:`FitOptions`; the agent's seeds
derive from ``partition_id`` and the source ids only, never from the worker or the retry.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from sedscale.results import RESULTS_SCHEMA, STATUS_FAILED, STATUS_FITTED, STATUS_QUARANTINED

POLICIES = ("none", "rules", "llm")


@dataclass(frozen=True)
class FitOptions:
    """What to fit with: grid configuration, validation rules, acceptance test, policy, budgets."""

    fit_config: Any  # sedscale.sed.config.FitConfig
    rules: Any  # sedscale.catalog.validate.ValidationRules
    acceptance: Any = None  # sedscale.agent.AcceptanceTest or a mapping of its fields
    photoz: bool = False
    policy: str = "rules"  # none | rules | llm
    budgets: Any = None  # sedscale.agent.AgentBudgets or a mapping (workflow BudgetSettings names)
    llm_url: Optional[str] = None
    llm_model: Optional[str] = None
    llm_client: Any = None  # an openai.AsyncOpenAI (e.g. the node's router client) instead of llm_url
    llm_client_factory: Any = None  # a callable returning one, called inside the agent's event loop
    cache_dir: Optional[Path] = None
    seed: int = 0


@dataclass
class TableOutcome:
    """The results rows plus what the campaign keeps beside them."""

    table: pa.Table
    knowledge_delta: Any = None  # sedscale.agent.KnowledgeBase of this table's agent steps
    summary: dict[str, Any] = field(default_factory=dict)


def acceptance_test(options: FitOptions) -> Any:
    """The :class:`sedscale.agent.AcceptanceTest` of the options (workflow names accepted)."""
    from sedscale.agent import AcceptanceTest

    acc = options.acceptance
    if acc is None:
        return AcceptanceTest()
    if isinstance(acc, AcceptanceTest):
        return acc
    data = acc.model_dump() if hasattr(acc, "model_dump") else dict(acc)
    data["min_good_models"] = max(1, int(data.get("min_good_models", 1)))
    return AcceptanceTest.model_validate(data)


def agent_budgets(options: FitOptions) -> Any:
    from sedscale.agent import AgentBudgets

    b = options.budgets
    if b is None:
        return AgentBudgets()
    if isinstance(b, AgentBudgets):
        return b
    data = b.model_dump() if hasattr(b, "model_dump") else dict(b)
    return AgentBudgets(
        max_steps=int(data.get("max_agent_steps", data.get("max_steps", 6))),
        max_tokens_per_source=int(data.get("max_tokens_per_source", 5000)),
        max_agent_fraction=float(data.get("max_agent_fraction", 1.0)),
    )


def make_policy(options: FitOptions, knowledge: Any, *, photoz: bool) -> Any:
    """The policy object for ``options.policy`` (None for ``none``)."""
    from sedscale.agent import LLMOptions, LLMPolicy, RulesPolicy

    if options.policy == "none":
        return None
    if options.policy == "rules":
        return RulesPolicy(knowledge)
    if options.policy == "llm":
        if options.llm_client is None and options.llm_client_factory is None and not options.llm_url:
            from sedscale.errors import ConfigError

            raise ConfigError("policy 'llm' needs --llm-url (an OpenAI-compatible base URL) or a site LLM service")
        routed = options.llm_client is not None or options.llm_client_factory is not None
        return LLMPolicy(client=options.llm_client, client_factory=options.llm_client_factory,
                         base_url=None if routed else options.llm_url,
                         api_key=os.environ.get("SEDSCALE_LLM_API_KEY"), model=options.llm_model,
                         options=LLMOptions(), knowledge=knowledge, photoz=photoz,
                         base_config=options.fit_config)
    raise ValueError(f"unknown policy {options.policy!r}: use one of {', '.join(POLICIES)}")


def empty_result_columns(n: int) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for f in RESULTS_SCHEMA:
        if pa.types.is_floating(f.type):
            cols[f.name] = np.full(n, np.nan)
        elif pa.types.is_integer(f.type):
            cols[f.name] = np.zeros(n, dtype=np.int64)
        elif pa.types.is_boolean(f.type):
            cols[f.name] = np.zeros(n, dtype=bool)
        else:
            cols[f.name] = np.full(n, None, dtype=object)
    return cols


def _triage_accepted(result: Any, test: Any) -> np.ndarray:
    return test.passes_array(result)


def fit_table(
    table: pa.Table,
    profile: Any,
    options: FitOptions,
    *,
    partition_id: int = 0,
    duplicate_rows: Optional[np.ndarray] = None,
    row_offset: int = 0,
    knowledge: Any = None,
) -> TableOutcome:
    """One table of catalog rows → its results (RESULTS_SCHEMA), one row per input row, in order.

    Quarantined rows carry the validation reason; a source the grid cannot fit at all is
    ``failed`` with a reason; every other row is ``fitted`` (``accepted`` says whether it passed
    the acceptance test, after the agent where a policy is set).
    """
    from sedscale.agent import KnowledgeBase, run_agent
    from sedscale.catalog.validate import validate_table
    from sedscale.sed.api import fit_photometry

    n = table.num_rows
    outcome = validate_table(table, profile, options.rules, duplicate_rows=duplicate_rows, row_offset=row_offset)
    cols = empty_result_columns(n)
    null_id = np.zeros(n, dtype=bool)
    status = np.full(n, None, dtype=object)
    test = acceptance_test(options)
    kb = knowledge if knowledge is not None else KnowledgeBase()
    delta = KnowledgeBase()
    summary: dict[str, Any] = {"triage_failed": 0, "agent_accepted": 0, "fallbacks": {},
                               "triage_fit_s": 0.0, "agent_s": 0.0, "llm_wait_s": 0.0, "refit_s": 0.0}

    q = outcome.quarantine
    if q.num_rows:
        qi = q.column("row_index").to_numpy()
        sid = q.column("source_id")
        cols["source_id"][qi] = sid.fill_null(0).to_numpy(zero_copy_only=False)
        null_id[qi] = sid.is_null().to_numpy(zero_copy_only=False)
        status[qi] = STATUS_QUARANTINED
        cols["reason"][qi] = [f"{r}: {m}" for r, m in zip(q.column("reason").to_pylist(), q.column("message").to_pylist())]

    phot = outcome.photometry
    known = np.isfinite(phot.redshift)
    groups = [(known, False)] + ([(~known, True)] if options.photoz else [])
    for mask, zmode in groups:
        if not mask.any():
            continue
        sub = phot.take(np.flatnonzero(mask))
        ri = sub.row_index
        t0 = time.perf_counter()
        res = fit_photometry(sub, options.fit_config, photoz=zmode, cache_dir=options.cache_dir)
        triage_s = time.perf_counter() - t0
        summary["triage_fit_s"] += triage_s
        cols["fit_seconds"][ri] = triage_s / len(sub)
        cols["source_id"][ri] = sub.source_id
        cols["n_bands"][ri] = sub.n_bands_observed
        fitted = np.asarray(res.fitted, bool) & np.isfinite(np.asarray(res.chi2_red, float))
        accepted = _triage_accepted(res, test)
        chi2 = np.asarray(res.chi2_red, float)
        est = {k: (np.asarray(m, float), np.asarray(s, float)) for k, (m, s) in res.estimates.items()}
        extra: dict[str, np.ndarray] = {}
        if zmode:
            extra = {"z_phot": np.asarray(res.z_phot, float), "z_phot_err": np.asarray(res.z_phot_err, float)}
        policy = make_policy(options, kb, photoz=zmode)
        if policy is not None and (~accepted & fitted).any():
            t_agent = time.perf_counter()
            agent = run_agent(sub, res, options.fit_config, policy, partition_id=partition_id,
                              budgets=agent_budgets(options), knowledge=kb, acceptance=test, photoz=zmode,
                              cache_dir=options.cache_dir, seed=options.seed)
            summary["agent_s"] += time.perf_counter() - t_agent
            acols = agent.columns()
            accepted = np.asarray(acols["accepted"], bool)
            chi2 = np.asarray(acols["chi2_red"], float)
            for name in ("logmstar", "logsfr", "av"):
                if name in acols:
                    est[name] = (np.asarray(acols[name], float), np.asarray(acols.get(f"{name}_err", est[name][1]), float))
            for name in ("agent_steps", "llm_calls", "tokens_prompt", "tokens_cached", "tokens_completion"):
                if name in acols:
                    cols[name][ri] = np.asarray(acols[name])
            if zmode:
                for key in ("z_phot", "z_phot_err"):
                    if key in agent.extra:
                        extra[key] = np.where(np.isfinite(agent.extra[key]), agent.extra[key], extra[key])
            if agent.knowledge_delta is not None:
                delta = KnowledgeBase.merge(delta, agent.knowledge_delta)
            s = agent.summary()
            summary["triage_failed"] += int(s.get("triage_failed", 0))
            summary["agent_accepted"] += int(s.get("agent_accepted", 0))
            for reason, count in (s.get("fallbacks") or {}).items():
                summary["fallbacks"][reason] = summary["fallbacks"].get(reason, 0) + int(count)
            summary["llm_wait_s"] += float(s.get("llm_wait_s", 0.0) or 0.0)
            summary["refit_s"] += float(s.get("refit_s", 0.0) or 0.0)
        else:
            summary["triage_failed"] += int(np.sum(~accepted & fitted))
        cols["chi2_red"][ri] = chi2
        for name in ("logmstar", "logsfr"):
            if name in est:
                cols[name][ri], cols[f"{name}_err"][ri] = est[name]
        if "av" in est:
            cols["av"][ri] = est["av"][0]
        if zmode:
            cols["z_phot"][ri], cols["z_phot_err"][ri] = extra["z_phot"], extra["z_phot_err"]
            cols["redshift"][ri] = extra["z_phot"]
        else:
            cols["redshift"][ri] = sub.redshift
        has_mass = np.isfinite(cols["logmstar"][ri])
        ok = fitted & has_mass
        status[ri] = np.where(ok, STATUS_FITTED, STATUS_FAILED)
        cols["reason"][ri[~fitted]] = "fit_failed: no model of the grid fits this source (chi2 not finite)"
        cols["reason"][ri[fitted & ~has_mass]] = (
            "fit_failed: every model's best normalisation is <= 0 (no significant flux: the source is "
            "not detected in the fitted bands)")
        cols["accepted"][ri] = accepted & ok
    cols["status"] = status
    cols["gpu_seconds"][:] = 0.0  # attributed by the campaign from the node's LLM service, if any
    fitted_rows = status == STATUS_FITTED
    masks = {name: ~fitted_rows for name in ("redshift", "logmstar", "logmstar_err", "logsfr", "logsfr_err",
                                             "av", "chi2_red", "accepted", "n_bands", "fit_seconds")}
    for name in ("z_phot", "z_phot_err"):
        masks[name] = ~fitted_rows | np.isnan(cols[name].astype(float))
    masks["source_id"] = null_id
    arrays = [pa.array(cols[f.name], type=f.type, mask=masks.get(f.name)) for f in RESULTS_SCHEMA]
    summary.update({"rows": n, "quarantined": int(np.sum(status == STATUS_QUARANTINED)),
                    "fitted": int(np.sum(fitted_rows)), "failed": int(np.sum(status == STATUS_FAILED))})
    return TableOutcome(pa.Table.from_arrays(arrays, schema=RESULTS_SCHEMA), delta, summary)
