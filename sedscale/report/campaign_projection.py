"""A campaign's cost projected to 10^9 sources: the measured rates, each target site, the seed's references.

Why apart from the report's other sections: this is the one place where assumptions enter (decode
rates of sites we could not run on, the LLM policy's tokens when a campaign made no LLM calls);
every assumed input is labelled with its basis here, next to the measured ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from sedscale.report.accounting import SiteView, fixed_costs, site_dict, steady_state, workers_seen
from sedscale.report.campaign_data import CampaignData, SourceColumns, finite_or_none
from sedscale.report.projection import (
    ASSUMED_8B_TOKENS_PER_SECOND_H100,
    REFERENCE_70B_GPU_MINUTES_PER_SOURCE,
    REFERENCE_GPT4O_TOKENS_PER_SOURCE,
    REFERENCE_GPT4O_USD_PER_SOURCE,
    MeasuredRates,
    SiteCapacity,
    project,
)

#: Per-device decode rates assumed for sites we could not run on (tokens/s, 8B model, high
#: concurrency). H100: the published vLLM figure. An MI250X GCD is taken as a quarter of it and an
#: A100 as half; a PVC tile as a quarter. These are assumptions and are labelled as such.
ASSUMED_DECODE_RATE_PER_GPU = {
    "nvidia-h100": ASSUMED_8B_TOKENS_PER_SECOND_H100,
    "amd": ASSUMED_8B_TOKENS_PER_SECOND_H100 / 4,
    "nvidia": ASSUMED_8B_TOKENS_PER_SECOND_H100 / 2,
    "intel": ASSUMED_8B_TOKENS_PER_SECOND_H100 / 4,
}

#: When the campaign made no LLM calls (rules / none policy), the LLM policy's per-agent-source
#: token figures from docs/AGENT.md's benchmark (94 calls for 41 agent sources, 1,304 prompt and
#: 36 completion tokens per call) stand in, labelled as an assumption.
ASSUMED_PROMPT_TOKENS_PER_AGENT_SOURCE = 94 * 1304 / 41
ASSUMED_COMPLETION_TOKENS_PER_AGENT_SOURCE = 94 * 36 / 41


@dataclass
class ProjectionInputs:
    """The rates a projection scales up, with the basis of each (measured or assumed)."""

    rates: MeasuredRates
    fit_rate_measured: bool
    fit_basis: str
    agent_basis: str
    token_basis: str


def site_capacity(site: SiteView, *, name: str, measured_rate: Optional[float]) -> SiteCapacity:
    """A site's cores, GPUs and decode rate per GPU (measured, or the labelled assumption)."""
    gpus = site.gpus_per_node
    kind = str(site.gpu_kind or "none")
    if gpus == 0:
        return SiteCapacity(name, site.cores_per_node, 0, 0.0, "no GPU on this site")
    if measured_rate:
        return SiteCapacity(name, site.cores_per_node, gpus, measured_rate, "measured")
    rate = ASSUMED_DECODE_RATE_PER_GPU.get(kind, ASSUMED_8B_TOKENS_PER_SECOND_H100 / 4)
    src = (f"assumption: {rate:,.0f} output tok/s per {kind} device for an 8B model "
           f"(published H100 figure {ASSUMED_8B_TOKENS_PER_SECOND_H100:,.0f} tok/s"
           + ("" if kind == "nvidia-h100" else f", scaled for {kind}") + ")")
    return SiteCapacity(name, site.cores_per_node, gpus, rate, src)


def measured_inputs(data: CampaignData, cols: SourceColumns, site: SiteView, policy: str) -> ProjectionInputs:
    """Fit rate per core, agent fraction and tokens per agent source, as this campaign measured them."""
    n, n_agent, n_fit = cols.n, cols.n_agent, cols.n_fitted
    task_seconds = float(sum(m.elapsed_s for m in data.markers))
    fixed = fixed_costs(data, workers_seen(data))
    fit_rate_core = steady_state(n, task_seconds, fixed)["per_worker_second"]
    tok = cols.token_totals()
    tokens_measured = tok.requests > 0
    if tokens_measured and n_agent:
        prompt_per, completion_per, token_basis = tok.prompt / n_agent, tok.completion / n_agent, "measured"
    else:
        prompt_per = ASSUMED_PROMPT_TOKENS_PER_AGENT_SOURCE
        completion_per = ASSUMED_COMPLETION_TOKENS_PER_AGENT_SOURCE
        token_basis = ("assumption: this campaign made no LLM calls (policy " + policy + "); tokens per "
                       "agent source of the llm policy from docs/AGENT.md's benchmark (94 calls / 41 sources, "
                       "1,304 prompt + 36 completion tokens per call)")
    rates = MeasuredRates(
        fit_sources_per_core_second=fit_rate_core or 1.0,
        agent_fraction=(n_agent / n_fit) if n_fit else 0.0,
        completion_tokens_per_agent_source=completion_per,
        prompt_tokens_per_agent_source=prompt_per,
        busy_gpu_seconds_per_source=(float(cols.gpu_s.sum()) / n) if (site.gpus_per_node and n) else None,
        prefix_cache_hit_fraction=(tok.cached / tok.prompt) if tok.prompt else None,
        fixed_seconds_per_node=float(fixed["per_node_s"]),
    )
    fit_basis = (f"measured on this machine, steady state: {n} rows / ({task_seconds:.1f} task-seconds - "
                 f"{fixed['in_task_s']:.1f} s of kernel warm-up and grid builds/loads)"
                 + (" (task time includes waiting for the LLM server: an upper bound on the fit cost)"
                    if tokens_measured else "")
                 if fit_rate_core else "unknown (no committed tasks): 1 source/s/core assumed")
    return ProjectionInputs(rates, bool(fit_rate_core), fit_basis,
                            f"measured: {n_agent} of {n_fit} fitted sources entered the agent loop", token_basis)


def _target_sites(site: SiteView, sites: tuple[str, ...], nodes: int
                  ) -> tuple[list[tuple[str, SiteView, int]], list[dict[str, Any]]]:
    """(label, site, nodes) to project to — the campaign's own site on 1 node first — and an error
    entry for each named site whose config cannot be loaded (a missing one must not sink the report)."""
    from sedscale.engines.site import load_site

    targets: list[tuple[str, SiteView, int]] = [(site.name + " (campaign site)", site, 1)]
    errors: list[dict[str, Any]] = []
    for name in sites:
        if name == site.name:
            continue
        try:
            targets.append((name, SiteView(site_dict(load_site(name))), nodes))
        except Exception as exc:  # noqa: BLE001 - reported in the projection instead
            errors.append({"site": name, "error": str(exc)})
    return targets, errors


def _site_projection(inputs: ProjectionInputs, label: str, site: SiteView, n_nodes: int,
                     sources: float) -> dict[str, Any]:
    """One target site's projection with the basis of every input."""
    cap = site_capacity(site, name=site.name, measured_rate=None)
    p = project(inputs.rates, cap, sources=sources, nodes=n_nodes).as_dict()
    p["label"] = label
    p["cores_per_node"] = site.cores_per_node
    p["gpus_per_node"] = site.gpus_per_node
    p["basis"]["fit_sources_per_core_second"] = inputs.fit_basis
    p["basis"]["agent_fraction"] = inputs.agent_basis
    p["basis"]["tokens_per_agent_source"] = inputs.token_basis
    p["basis"]["fixed_seconds_per_node"] = (f"measured: {inputs.rates.fixed_seconds_per_node:.1f} s of one-offs "
                                            "(engine start, kernel warm-up, grid builds and loads) per node, "
                                            "paid once by each node")
    if site.gpus_per_node == 0:
        p["note"] = "no GPU on this site: LLM work cannot run here; node-hours are the fit only"
    return p


def reference_points(sources: float) -> dict[str, Any]:
    """The seed's GPT-4o and 70B-on-4-H100 figures for the same number of sources (not measured here)."""
    return {
        "gpt4o": {"tokens_per_source": REFERENCE_GPT4O_TOKENS_PER_SOURCE,
                  "usd_per_source": REFERENCE_GPT4O_USD_PER_SOURCE,
                  "tokens_total": REFERENCE_GPT4O_TOKENS_PER_SOURCE * sources,
                  "usd_total": REFERENCE_GPT4O_USD_PER_SOURCE * sources},
        "llama70b_4xh100": {"gpu_minutes_per_source": REFERENCE_70B_GPU_MINUTES_PER_SOURCE,
                            "gpu_hours_per_source": REFERENCE_70B_GPU_MINUTES_PER_SOURCE / 60,
                            "gpu_days_total": sources * REFERENCE_70B_GPU_MINUTES_PER_SOURCE / 60 / 24},
        "basis": "the seed's reference points (not measured here)",
    }


def build_projection(data: CampaignData, cols: SourceColumns, site: SiteView, policy: str, *,
                     sites: tuple[str, ...], nodes: int, sources: float) -> dict[str, Any]:
    """The report's ``projection`` section: inputs, one entry per site (errors first), references."""
    inputs = measured_inputs(data, cols, site, policy)
    rates = inputs.rates
    targets, projections = _target_sites(site, sites, nodes)
    projections += [_site_projection(inputs, label, sv, n_nodes, sources) for label, sv, n_nodes in targets]
    return {
        "sources": sources,
        "inputs": {
            "fit_sources_per_core_second": (finite_or_none(rates.fit_sources_per_core_second)
                                            if inputs.fit_rate_measured else None),
            "agent_fraction": rates.agent_fraction,
            "prompt_tokens_per_agent_source": rates.prompt_tokens_per_agent_source,
            "completion_tokens_per_agent_source": rates.completion_tokens_per_agent_source,
            "tokens_basis": "measured" if inputs.token_basis == "measured" else "assumption",
            "busy_gpu_seconds_per_source": rates.busy_gpu_seconds_per_source,
            "prefix_cache_hit_fraction": rates.prefix_cache_hit_fraction,
            "fixed_seconds_per_node": rates.fixed_seconds_per_node,
        },
        "sites": projections,
        "reference_points": reference_points(sources),
    }
