"""A campaign's report: what it fitted, what it spent, and what 10^9 sources would cost.

The report is built section by section (one small function each, in the order of its JSON keys)
from :mod:`sedscale.report.campaign_data` (what is read), :mod:`sedscale.report.accounting`
(time and allocation) and :mod:`sedscale.report.campaign_projection` (the 10^9 projection).

Wall time is the sum over driver runs of ``finished_at - started_at`` (a run that never recorded its
end — killed — counts up to its last commit). Node-hours: 1 node for a local run; for a Slurm/PBS
run ``max_blocks × nodes_per_block`` nodes for the run's wall time — an upper bound, since block
start/end times are not recorded. GPU-hours *allocated* = the site's ``gpus_per_node`` × node-hours;
GPU-hours *busy* = the sum of the per-source ``gpu_seconds`` attributed from the nodes' LLM busy
time. A CPU-only site allocates no GPU: both are 0 and ``gpu_note`` says so. Nothing here invents
a GPU figure for a machine that had none; GPU costs for other sites come only from the
projection, whose assumed inputs are labelled.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Optional

import numpy as np

from sedscale.campaign.paths import CampaignPaths
from sedscale.report.accounting import (
    SiteView,
    allocation,
    fixed_costs,
    steady_state,
    summary_counts,
    time_breakdown,
    wall_time,
    workers_seen,
)
from sedscale.report.campaign_data import (
    CampaignData,
    SourceColumns,
    finite_or_none,
    load_campaign,
    reason_code,
)
from sedscale.report.campaign_projection import build_projection
from sedscale.report.provenance import load_provenance

REPORT_VERSION = 1
PROJECTION_SOURCES = 1e9


def _per(total: float, count: int) -> float:
    return (total / count) if count else 0.0


def _stats(x: np.ndarray) -> dict[str, Optional[float]]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"n": 0, "median": None, "p16": None, "p84": None}
    p16, med, p84 = np.percentile(x, [16, 50, 84])
    return {"n": int(x.size), "median": float(med), "p16": float(p16), "p84": float(p84)}


def _header_section(data: CampaignData, site: SiteView, policy: str) -> dict[str, Any]:
    """What the campaign is and how far it got (partitions)."""
    return {
        "report_version": REPORT_VERSION, "campaign": str(data.root), "name": data.name, "site": site.name,
        "policy": policy, "complete": not data.partitions_pending, "partitions_total": data.partitions_total,
        "partitions_committed": len(data.markers), "partitions_pending": len(data.partitions_pending),
        "rows_total": int(data.meta.n_rows),
    }


def _outcome_section(cols: SourceColumns) -> dict[str, Any]:
    """Sources by outcome, and the reason codes of the quarantined and the failed."""
    quarantine = Counter(reason_code(r) for r, q in zip(cols.reasons, cols.quarantined) if q)
    failure = Counter(reason_code(r) for r, f in zip(cols.reasons, cols.failed) if f)
    return {
        "sources_total": cols.n, "sources_fitted": cols.n_fitted,
        "sources_quarantined": int(cols.quarantined.sum()), "sources_failed": int(cols.failed.sum()),
        "quarantine_reasons": dict(sorted(quarantine.items())), "failure_reasons": dict(sorted(failure.items())),
    }


def _token_section(cols: SourceColumns) -> dict[str, Any]:
    """The agent's work and the tokens it spent, in total and per (agent) source."""
    tok = cols.token_totals()
    return {
        "agent_sources": cols.n_agent, "agent_steps": int(cols.steps.sum()), "llm_calls": tok.requests,
        "tokens_prompt": tok.prompt, "tokens_cached": tok.cached, "tokens_completion": tok.completion,
        "tokens_total": tok.total, "tokens_per_source": _per(tok.total, cols.n),
        "tokens_per_agent_source": _per(tok.total, cols.n_agent),
    }


def _gpu_note(data: CampaignData, site: SiteView, alloc: dict[str, Any]) -> str:
    """How the GPU figures were obtained (or why a CPU-only run has none)."""
    att = data.attribution
    att_note = att.note if att is not None else "no attribution (campaign data built without it)"
    if alloc["gpu_hours_allocated"] == 0 and site.gpus_per_node == 0:
        return (f"CPU-only run: site '{site.name}' has no GPU, so no GPU-hours were allocated or used; "
                "GPU figures for other sites are projections (below), not measurements. "
                f"Per-source GPU-seconds: {att_note}")
    return (f"allocated = GPUs per node x nodes x wall time ({alloc['basis']}); "
            "busy = sum of per-source gpu_seconds attributed by tokens from the nodes' LLM busy time: "
            f"{att_note}")


def _gpu_section(data: CampaignData, cols: SourceColumns, site: SiteView, alloc: dict[str, Any]) -> dict[str, Any]:
    """GPU-seconds busy (attributed), GPU- and node-hours allocated, per source."""
    att = data.attribution
    busy_s = float(cols.gpu_s.sum())
    alloc_h = alloc["gpu_hours_allocated"]
    return {
        "gpu_seconds_busy": busy_s,
        "gpu_attribution": att.as_dict() if att is not None else None,
        "gpu_hours_llm_services_allocated": (att.totals()["allocated_gpu_s"] / 3600.0) if att is not None else 0.0,
        "gpu_hours_allocated": alloc_h, "gpu_hours_busy": busy_s / 3600.0,
        "gpu_hours_per_source": _per(alloc_h, cols.n), "gpu_hours_busy_per_source": _per(busy_s / 3600.0, cols.n),
        "gpu_note": _gpu_note(data, site, alloc), "gpus_per_node": site.gpus_per_node,
        "nodes": alloc["nodes"], "node_hours": alloc["node_hours"],
        "cpu_hours_allocated": alloc["cpu_hours_allocated"], "allocation": alloc,
    }


def _workers_seen(data: CampaignData) -> int:
    return workers_seen(data)


def _time_section(data: CampaignData, cols: SourceColumns, wall: float) -> dict[str, Any]:
    """Wall, task and fit seconds, and where the task time went."""
    task_seconds = float(sum(m.elapsed_s for m in data.markers))
    fit_seconds = float(cols.fit_s.sum())
    workers = _workers_seen(data)
    return {
        "wall_seconds": wall, "task_seconds": task_seconds, "fit_seconds": fit_seconds,
        "task_other_seconds": max(0.0, task_seconds - fit_seconds), "workers_seen": workers,
        "driver_other_seconds": max(0.0, wall - task_seconds / workers),
        "breakdown": time_breakdown(data, wall, workers),
        "note": ("fit_seconds = the sum of the results' per-source fit_seconds (the triage fit only); "
                 "task_other = read, validate, agent, commit; driver_other = planning, engine start-up, "
                 "scheduling (wall minus task time per worker); breakdown: the same task time split by the "
                 "partitions' task summaries (read, LLM service start, triage fit, agent LLM wait, agent "
                 "re-fit, commit)."),
    }


def _fixed_cost_section(data: CampaignData, cols: SourceColumns) -> dict[str, Any]:
    """One-off costs (engine start, kernel warm-up, grid builds and loads) apart from the per-source
    cost, and the steady-state rate that remains (:func:`sedscale.report.accounting.steady_state`)."""
    fixed = fixed_costs(data, _workers_seen(data))
    rate = steady_state(cols.n, float(sum(m.elapsed_s for m in data.markers)), fixed)
    return {
        "fixed_costs": fixed,
        "steady_state_sources_per_second": rate["per_second"],
        "steady_state_sources_per_worker_second": rate["per_worker_second"],
        "steady_state_note": ("sources / (worker busy seconds - in-task fixed costs), busy = the sum of the "
                              "committed tasks' elapsed seconds, in-task fixed = kernel_warmup_s + grid_build_s + "
                              "grid_load_s; per second = per worker-second x workers seen (engine start, "
                              "scheduling and idle workers excluded)"),
    }


def _acceptance_section(data: CampaignData, cols: SourceColumns, sums: dict[str, Any]) -> dict[str, Any]:
    """Acceptance before and after the agent: derived from the results, and as the tasks recorded it.

    A source enters the agent loop only when its triage fit failed the acceptance test
    (agent_steps > 0), so triage-accepted = accepted and never entered.
    """
    before = int((cols.accepted & ~cols.agent).sum())
    after = int(cols.accepted.sum())
    n_fit = cols.n_fitted
    return {
        "fitted": n_fit, "accepted_before_agent": before, "accepted_after_agent": after,
        "fraction_before_agent": (before / n_fit) if n_fit else None,
        "fraction_after_agent": (after / n_fit) if n_fit else None,
        "basis": "derived: a source enters the agent loop only when its triage fit failed the acceptance test",
        "triage_failed": sums["triage_failed"], "agent_accepted": sums["agent_accepted"],
        "summaries_basis": (f"recorded by the tasks: summed over {len(data.summaries)} partition summaries "
                            "(triage_failed = fitted sources whose triage fit failed the test and entered the "
                            "agent, or all such sources when no agent ran; agent_accepted = of those, accepted "
                            "after the agent)"),
    }


def _chi2_section(cols: SourceColumns) -> dict[str, Any]:
    """Reduced chi2 of the fitted sources: all, those the triage fit settled, those the agent re-fitted."""
    fitted, agent = cols.fitted, cols.agent
    return {"all": _stats(cols.chi2[fitted]), "triage_only": _stats(cols.chi2[fitted & ~agent]),
            "agent": _stats(cols.chi2[fitted & agent])}


def _per_policy_section(data: CampaignData, cols: SourceColumns, policy: str, sums: dict[str, Any]) -> dict[str, Any]:
    """What the agent policy did: sources, steps, calls, acceptance, knowledge and fallbacks."""
    n_agent = cols.n_agent
    agent_accepted = int((cols.accepted & cols.agent).sum())
    return {
        "policy": policy,
        "budgets": (data.meta.workflow or {}).get("budgets"),
        "agent_sources": n_agent,
        "llm_sources": int((cols.calls > 0).sum()),
        "agent_steps_total": int(cols.steps.sum()),
        "agent_steps_per_agent_source": _per(float(cols.steps.sum()), n_agent),
        "llm_calls_total": int(cols.calls.sum()),
        "agent_accepted": agent_accepted,
        "agent_acceptance_fraction": finite_or_none(float(agent_accepted) / n_agent) if n_agent else None,
        "knowledge_delta_files": data.knowledge_files,
        "fallbacks_by_reason": sums["fallbacks_by_reason"],
        "fallbacks_total": int(sum(sums["fallbacks_by_reason"].values())),
        "fallbacks_note": (f"summed over the task summaries of {len(data.summaries)} of {len(data.markers)} committed "
                           "partitions (summaries/partition-*.json)"),
    }


def build_report(root: str | Path, *, sites: tuple[str, ...] = ("frontier",), nodes: int = 1000,
                 sources: float = PROJECTION_SOURCES, data: CampaignData | None = None) -> dict[str, Any]:
    """The report of a campaign as one JSON-ready dict (DESIGN.md section 4 keys and more).

    Built section by section, in the order of its keys: what and how far, outcomes, agent and
    tokens, GPU and allocation, wall time, time breakdown, fixed costs and the steady-state rate,
    acceptance, chi2, policy, projection, provenance (what produced the results, recorded once).
    """
    data = data or load_campaign(root)
    cols = SourceColumns.of(data.results)
    wt = wall_time(data)
    wall = wt["wall_seconds"]
    site = SiteView(data.meta.site)
    policy = str((data.meta.workflow or {}).get("policy", "?"))
    alloc = allocation(data, wt["runs"])
    sums = summary_counts(data)
    return {
        **_header_section(data, site, policy),
        **_outcome_section(cols),
        **_token_section(cols),
        **_gpu_section(data, cols, site, alloc),
        "wall_seconds": wall,
        "sources_per_second": (cols.n / wall) if wall > 0 else None,
        "runs": wt["runs"],
        "time": _time_section(data, cols, wall),
        **_fixed_cost_section(data, cols),
        "acceptance": _acceptance_section(data, cols, sums),
        "chi2_red": _chi2_section(cols),
        "per_policy": _per_policy_section(data, cols, policy, sums),
        "projection": build_projection(data, cols, site, policy, sites=sites, nodes=nodes, sources=sources),
        "provenance": load_provenance(CampaignPaths.at(data.root)),
    }
