"""What a catalog of 10^9 sources would cost, from a campaign's measured per-source figures.

Measured inputs come from a campaign on some machine (fit throughput per core, the fraction of
sources that needed the agent, tokens per agent source, busy GPU-seconds per source when a GPU
was used). Assumptions — above all the LLM decode rate per device on a site we did not run on —
are separate, named inputs, and every output says which inputs it rests on. Nothing here
is measured; it is arithmetic that a test checks by hand.

Model: fits are CPU work on every core of a node at the steady-state rate; agent replies are GPU
decode work on every device of the node; the two overlap (several partitions in flight per
node), so a node's time is the larger of the two, plus the one-off costs (engine start, kernel
warm-up, grid builds: ``fixed_seconds_per_node``) once on each node. Prompt prefill is treated as nearly free because the shared prefix is
served from vLLM's prefix cache (its measured hit rate is reported beside).
"""

from __future__ import annotations

from typing import Any

from dataclasses import asdict, dataclass, field

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0

#: The seed's reference points (DESIGN.md, NOTES-HPC.md), for side-by-side display.
REFERENCE_GPT4O_TOKENS_PER_SOURCE = 1.0e5
REFERENCE_GPT4O_USD_PER_SOURCE = 1.0
REFERENCE_70B_GPU_MINUTES_PER_SOURCE = 15.0  # Llama-3.1-70B on 4 H100 at ~100 tokens/s
#: Published (third-party) aggregate decode rate of Llama-3.1-8B bf16 on one H100 at high
#: concurrency — an assumption for sites we could not run on.
ASSUMED_8B_TOKENS_PER_SECOND_H100 = 12_500.0


@dataclass(frozen=True)
class MeasuredRates:
    """Per-source figures measured by a campaign."""

    fit_sources_per_core_second: float  # triage + agent fits, per CPU core
    agent_fraction: float  # share of sources that entered the agent loop
    completion_tokens_per_agent_source: float
    prompt_tokens_per_agent_source: float
    busy_gpu_seconds_per_source: float | None = None  # None on a CPU-only run
    prefix_cache_hit_fraction: float | None = None
    fixed_seconds_per_node: float = 0.0  # one-offs (engine start, kernel warm-up, grids), once per node


@dataclass(frozen=True)
class SiteCapacity:
    """A site's node shape and the LLM decode rate assumed per device there."""

    name: str
    cores_per_node: int
    gpus_per_node: int
    decode_tokens_per_second_per_gpu: float  # an assumption unless measured on that site
    decode_rate_source: str = "assumption"


@dataclass
class Projection:
    sources: float
    site: str
    nodes: int
    fit_node_hours: float
    llm_gpu_hours: float
    llm_node_hours: float
    node_hours: float
    gpu_hours_allocated: float
    wall_days: float
    tokens_total: float
    gpu_hours_per_source: float
    basis: dict[str, str] = field(default_factory=dict)
    fixed_node_hours: float = 0.0
    references: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reference_points(sources: float) -> dict[str, float]:
    """The seed's figures scaled to ``sources``: GPT-4o tokens and USD, 70B-on-H100 GPU-days."""
    return {
        "gpt4o_tokens": sources * REFERENCE_GPT4O_TOKENS_PER_SOURCE,
        "gpt4o_usd": sources * REFERENCE_GPT4O_USD_PER_SOURCE,
        "llama70b_4xh100_gpu_days": sources * REFERENCE_70B_GPU_MINUTES_PER_SOURCE / 60.0 / HOURS_PER_DAY,
    }


def project(rates: MeasuredRates, site: SiteCapacity, *, sources: float = 1e9, nodes: int = 1000) -> Projection:
    """Project node-hours, GPU-hours, wall-clock days on ``nodes`` nodes and tokens for ``sources``."""
    if rates.fit_sources_per_core_second <= 0:
        raise ValueError("fit_sources_per_core_second must be positive")
    fit_node_hours = sources / (rates.fit_sources_per_core_second * site.cores_per_node) / SECONDS_PER_HOUR
    agent_sources = sources * rates.agent_fraction
    completion = agent_sources * rates.completion_tokens_per_agent_source
    tokens_total = agent_sources * (rates.completion_tokens_per_agent_source + rates.prompt_tokens_per_agent_source)
    if site.gpus_per_node > 0 and completion > 0:
        llm_gpu_hours = completion / site.decode_tokens_per_second_per_gpu / SECONDS_PER_HOUR
        llm_node_hours = llm_gpu_hours / site.gpus_per_node
    else:
        llm_gpu_hours = llm_node_hours = 0.0
    fixed_node_hours = nodes * rates.fixed_seconds_per_node / SECONDS_PER_HOUR
    node_hours = max(fit_node_hours, llm_node_hours) + fixed_node_hours
    gpu_hours_allocated = node_hours * site.gpus_per_node
    wall_days = node_hours / nodes / HOURS_PER_DAY
    basis = {
        "fit_sources_per_core_second": "measured",
        "agent_fraction": "measured",
        "tokens_per_agent_source": "measured",
        "decode_tokens_per_second_per_gpu": site.decode_rate_source,
        "cores_per_node, gpus_per_node": f"site config {site.name}",
        "overlap of fit and LLM work": "assumption (several partitions in flight per node)",
        "fixed_seconds_per_node": "measured: one-off costs, paid once by each of the nodes",
    }
    return Projection(
        sources=sources,
        site=site.name,
        nodes=nodes,
        fit_node_hours=fit_node_hours,
        llm_gpu_hours=llm_gpu_hours,
        llm_node_hours=llm_node_hours,
        node_hours=node_hours,
        gpu_hours_allocated=gpu_hours_allocated,
        wall_days=wall_days,
        tokens_total=tokens_total,
        gpu_hours_per_source=gpu_hours_allocated / sources,
        basis=basis,
        references=reference_points(sources),
        fixed_node_hours=fixed_node_hours,
    )
