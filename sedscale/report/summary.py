"""A campaign's accounting: what it fitted, what it spent, and what 10^9 sources would cost.

Inputs, all read-only (safe while nothing runs; a running campaign is reported as it stands):

* the committed results (the same rows ``sedscale export`` writes; read partition by partition
  from the store, trusting only partitions whose done-marker verifies);
* the done-markers (``committed_at``, the task's ``elapsed_s``, ``host``/``pid``);
* the run records ``state/runs/*.json`` (``started_at``, ``finished_at`` of each driver run);
* ``campaign.json`` (site shape, workflow, policy).

* the per-partition task summaries ``summaries/partition-*.json`` (fallbacks by reason, agent
  counts, where the task's time went), trusted only when written by the run that committed;
* the per-node LLM accounting ``llm/<host>/accounting*.json`` (busy GPU-seconds, attributed to
  sources by tokens: :mod:`sedscale.campaign.attribution`).

Wall time is the sum over driver runs of ``finished_at - started_at`` (a run that never recorded its
end — killed — counts up to its last commit). Node-hours: 1 node for a local run; for a Slurm/PBS
run ``max_blocks × nodes_per_block`` nodes for the run's wall time — an upper bound, since block
start/end times are not recorded. GPU-hours *allocated* = the site's ``gpus_per_node`` × node-hours;
GPU-hours *busy* = the sum of the per-source ``gpu_seconds`` attributed from the nodes' LLM busy
time. A CPU-only site allocates no GPU: both are 0 and ``gpu_note`` says so. Nothing here invents a GPU figure for a machine that had none; GPU costs
for other sites come only from the projection, whose assumed inputs are labelled.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from sedscale.report.projection import (
    ASSUMED_8B_TOKENS_PER_SECOND_H100,
    REFERENCE_70B_GPU_MINUTES_PER_SOURCE,
    REFERENCE_GPT4O_TOKENS_PER_SOURCE,
    REFERENCE_GPT4O_USD_PER_SOURCE,
    MeasuredRates,
    SiteCapacity,
    project,
)

REPORT_VERSION = 1
PROJECTION_SOURCES = 1e9

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

_TOKEN_COLS = ("tokens_prompt", "tokens_cached", "tokens_completion")


@dataclass
class CampaignData:
    """Everything a report reads from a campaign directory."""

    root: Path
    name: str
    meta: Any
    results: pa.Table
    markers: list[Any]  # DoneMarker of every committed partition
    runs: list[Any]  # RunRecord
    partitions_total: int
    partitions_pending: list[int] = field(default_factory=list)
    knowledge_files: int = 0
    attribution: Any = None  # sedscale.campaign.attribution.GpuAttribution
    summaries: dict[int, dict] = field(default_factory=dict)  # partition -> task summary (committing run's)
    summaries_stale: int = 0  # summaries of a run that did not commit the partition (ignored)


def load_campaign(root: str | Path, *, verify: str = "size") -> CampaignData:
    """Read a campaign's committed results, markers, run records, task summaries and node LLM
    accounting (never writes); ``gpu_seconds`` attributed as ``sedscale export`` does."""
    from sedscale.campaign.attribution import build_attribution
    from sedscale.campaign.manifest import partition_sizes
    from sedscale.campaign.meta import read_meta
    from sedscale.campaign.paths import CampaignPaths
    from sedscale.campaign.resume import plan_resume
    from sedscale.campaign.status import read_runs
    from sedscale.campaign.store import ResultsReader
    from sedscale.results import RESULTS_SCHEMA

    paths = CampaignPaths.at(root)
    meta = read_meta(paths)
    plan = plan_resume(paths, meta.n_partitions, verify=verify)  # type: ignore[arg-type]
    sizes = partition_sizes(paths)
    committed = sorted(plan.done + plan.failed)
    markers = [plan.markers[p] for p in committed]
    attribution = build_attribution(paths, markers, meta)
    tables = []
    if committed:
        reader = ResultsReader(paths.results_zarr)
        for pid in committed:
            tables.append(attribution.apply(pid, reader.read_partition(pid, sizes[pid])))
    results = pa.concat_tables(tables) if tables else RESULTS_SCHEMA.empty_table()
    summaries, stale = read_summaries(paths, markers)
    knowledge = paths.root / "knowledge"
    return CampaignData(
        root=paths.root, name=meta.name, meta=meta, results=results,
        markers=markers, runs=read_runs(paths),
        partitions_total=meta.n_partitions,
        partitions_pending=sorted(plan.pending + list(plan.corrupt)),
        knowledge_files=sum(1 for _ in knowledge.rglob("*.json")) if knowledge.is_dir() else 0,
        attribution=attribution, summaries=summaries, summaries_stale=stale,
    )


def read_summaries(paths: Any, markers: list[Any]) -> tuple[dict[int, dict], int]:
    """The task summary of each committed partition, when written by the run that committed it
    (a summary left by an attempt that never committed describes other work: counted as stale)."""
    import json

    out: dict[int, dict] = {}
    stale = 0
    for m in markers:
        if m.kind != "done":
            continue
        try:
            doc = json.loads(paths.partition_summary(m.partition_id).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        if doc.get("run_id") is not None and m.run_id and doc.get("run_id") != m.run_id:
            stale += 1
            continue
        out[m.partition_id] = doc
    return out, stale


def _col(t: pa.Table, name: str, dtype: Any = float) -> np.ndarray:
    if name not in t.column_names:
        return np.zeros(t.num_rows, dtype=dtype)
    arr = t.column(name).to_numpy(zero_copy_only=False)
    if dtype is float:
        return np.asarray(arr, dtype=float)
    return np.nan_to_num(np.asarray(arr, dtype=float)).astype(dtype)


def _finite(x: float | None) -> Optional[float]:
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def _reason_code(reason: Optional[str]) -> str:
    if not reason:
        return "unknown"
    return reason.split(":", 1)[0].strip() or "unknown"


def wall_time(data: CampaignData) -> dict[str, Any]:
    """Wall seconds of every driver run, from run records and the markers' commit times."""
    last_commit: dict[str, float] = {}
    for m in data.markers:
        last_commit[m.run_id] = max(last_commit.get(m.run_id, 0.0), m.committed_at)
    runs = []
    total = 0.0
    for r in data.runs:
        end = r.finished_at if r.finished_at else last_commit.get(r.run_id)
        secs = max(0.0, end - r.started_at) if end else 0.0
        total += secs
        runs.append({"run_id": r.run_id, "command": r.command, "engine": r.engine, "site": r.site,
                     "host": r.host, "started_at": r.started_at, "finished_at": r.finished_at,
                     "wall_seconds": secs, "end_source": "run record" if r.finished_at else
                     ("last commit (run did not record its end)" if end else "none")})
    if not data.runs and data.markers:  # no run records at all: commit span plus the first task
        first = min(m.committed_at - m.elapsed_s for m in data.markers)
        total = max(m.committed_at for m in data.markers) - first
    return {"wall_seconds": total, "runs": runs}


def throughput_series(data: CampaignData) -> list[tuple[float, int]]:
    """(seconds since the first run started, rows committed so far), one point per commit."""
    if not data.markers:
        return []
    t0 = min([r.started_at for r in data.runs] or [min(m.committed_at - m.elapsed_s for m in data.markers)])
    pts = sorted((m.committed_at - t0, m.n_rows) for m in data.markers)
    out, acc = [(0.0, 0)], 0
    for t, n in pts:
        acc += n
        out.append((t, acc))
    return out


def _run_site(meta_site: dict[str, Any], run_site: str) -> tuple[dict[str, Any], str]:
    """The site config a run used: the campaign's (``campaign.json``) when the names agree, else
    the named site loaded now (a resume on another site), else the campaign's with a note."""
    if not run_site or run_site == meta_site.get("name"):
        return meta_site, "campaign.json"
    try:
        from sedscale.engines.site import load_site

        return _site_dict(load_site(run_site)), f"site '{run_site}' loaded now (run record names it)"
    except Exception:  # noqa: BLE001 - a site config gone since the run must not sink the report
        return meta_site, f"site '{run_site}' not loadable now: campaign.json's site used"


def allocation(data: CampaignData, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Nodes, node-hours, allocated GPU- and CPU-hours per driver run.

    Local run: 1 node for its wall time. Slurm/PBS run: the engine keeps up to ``max_blocks``
    blocks of ``nodes_per_block`` nodes; block start/end times are not recorded (the job-id file
    is cleared when the engine shuts down), so the figure is ``max_blocks × nodes_per_block × run
    wall time`` — an upper bound (queue wait and blocks never started are counted). ``nodes_seen``
    (distinct hosts that committed a partition in the run) is a lower bound on the nodes held.
    """
    meta_site = dict(data.meta.site or {})
    if not runs and data.markers:  # no run records: one pseudo-run on the campaign's site
        runs = [{"run_id": None, "site": meta_site.get("name", "?"), "wall_seconds": wall_time(data)["wall_seconds"]}]
    out = []
    node_s = gpu_s = cpu_s = 0.0
    upper = False
    for r in runs:
        site, site_source = _run_site(meta_site, r.get("site") or "")
        sv = _SiteView(site)
        sched = str(site.get("scheduler") or "local")
        wall = float(r.get("wall_seconds") or 0.0)
        seen = {m.host for m in data.markers if m.host and (r.get("run_id") is None or m.run_id == r.get("run_id"))}
        if sched == "local":
            nodes, blocks, per_block = 1, 1, 1
            basis = "local run: 1 node for the run's wall time"
        else:
            so = site.get("scheduler_options") or {}
            per_block = int(so.get("nodes_per_block") or 1)
            blocks = int(so.get("max_blocks") or 1)
            nodes = blocks * per_block
            upper = True
            basis = (f"upper bound: {sched} run, max_blocks {blocks} x nodes_per_block {per_block} nodes held for "
                     "the run's whole wall time (block start/end times are not recorded)")
        node_s += nodes * wall
        gpu_s += sv.gpus_per_node * nodes * wall
        cpu_s += sv.cores_per_node * nodes * wall
        out.append({"run_id": r.get("run_id"), "site": sv.name, "site_config": site_source, "scheduler": sched,
                    "blocks": blocks, "nodes_per_block": per_block, "nodes": nodes, "nodes_seen": len(seen),
                    "gpus_per_node": sv.gpus_per_node, "cores_per_node": sv.cores_per_node, "wall_seconds": wall,
                    "node_hours": nodes * wall / 3600.0, "gpu_hours_allocated": sv.gpus_per_node * nodes * wall / 3600.0,
                    "upper_bound": sched != "local", "basis": basis})
    return {"node_hours": node_s / 3600.0, "gpu_hours_allocated": gpu_s / 3600.0, "cpu_hours_allocated": cpu_s / 3600.0,
            "nodes": max((r["nodes"] for r in out), default=1), "upper_bound": upper, "runs": out,
            "basis": ("upper bound (HPC blocks: max_blocks x nodes_per_block x run wall time)" if upper
                      else "measured: 1 node x wall time of each local run")}


def time_breakdown(data: CampaignData, wall: float, workers: int) -> dict[str, Any]:
    """Where the task time went, in worker-seconds, from the partitions' task summaries.

    Per committed partition with a summary: ``read`` (rows from the catalog), ``llm_service_start``
    (reaching / starting the node's LLM service), ``triage_fit``, the agent's ``agent_llm_wait``
    and ``agent_refit`` (wall seconds in which some source waited on the LLM / re-fitted; the two
    overlap, so when they add up to more than the agent's wall time both are scaled down to fill
    it — the raw sums and the overlap are in ``agent_raw``) and the rest of the agent (``agent_other``), ``validate_and_results``
    (fit_table minus triage fit and agent), ``commit`` (task elapsed minus all of that: summary
    write and the atomic commit). ``tasks_without_summary``: task time of committed partitions
    with no usable summary. ``scheduling_idle`` = wall × workers − task time: planning, engine
    start-up, scheduling and idle workers.
    """
    b = dict.fromkeys(("read", "llm_service_start", "triage_fit", "agent_llm_wait", "agent_refit", "agent_other",
                       "validate_and_results", "fit_table_unsplit", "commit", "tasks_without_summary"), 0.0)
    raw = dict.fromkeys(("agent_s", "llm_wait_s", "refit_s", "overlap_s"), 0.0)
    for m in data.markers:
        doc = data.summaries.get(m.partition_id)
        if doc is None:
            b["tasks_without_summary"] += float(m.elapsed_s)
            continue
        tm = doc.get("timings") or {}
        read, llm, ft = (float(tm.get(k, 0.0) or 0.0) for k in ("read_s", "llm_service_s", "fit_table_s"))
        b["read"] += read
        b["llm_service_start"] += llm
        if "triage_fit_s" in doc:
            tri, ag = float(doc.get("triage_fit_s") or 0.0), float(doc.get("agent_s") or 0.0)
            wait, refit = float(doc.get("llm_wait_s") or 0.0), float(doc.get("refit_s") or 0.0)
            b["triage_fit"] += tri
            raw["agent_s"] += ag
            raw["llm_wait_s"] += wait
            raw["refit_s"] += refit
            raw["overlap_s"] += max(0.0, wait + refit - ag)
            f = min(1.0, ag / (wait + refit)) if wait + refit > 0 else 1.0  # LLM wait and re-fits overlap
            b["agent_llm_wait"] += wait * f
            b["agent_refit"] += refit * f
            b["agent_other"] += max(0.0, ag - (wait + refit) * f)
            b["validate_and_results"] += max(0.0, ft - tri - ag)
        else:  # a summary written before fit_table recorded its split
            b["fit_table_unsplit"] += ft
        b["commit"] += max(0.0, float(m.elapsed_s) - read - llm - ft)
    task = float(sum(m.elapsed_s for m in data.markers))
    b["scheduling_idle"] = max(0.0, wall * workers - task)
    return {"unit": "worker-seconds", "seconds": b, "agent_raw": raw,
            "partitions_with_summary": len(data.summaries),
            "partitions_without_summary": sum(1 for m in data.markers if m.partition_id not in data.summaries),
            "summaries_stale": data.summaries_stale,
            "llm_wait_recorded": any("llm_wait_s" in d for d in data.summaries.values()),
            "note": ("task-summed seconds (parallel workers add up); scheduling_idle = wall x workers seen - task "
                     "time (planning, engine start-up, scheduling, idle workers)")}


def summary_counts(data: CampaignData) -> dict[str, Any]:
    """Fallbacks by reason and the agent's counts summed over the partitions' task summaries."""
    fallbacks: Counter[str] = Counter()
    tot = {"triage_failed": 0, "agent_accepted": 0, "rows": 0, "fitted": 0, "quarantined": 0, "failed": 0}
    for doc in data.summaries.values():
        for reason, count in (doc.get("fallbacks") or {}).items():
            fallbacks[str(reason)] += int(count or 0)
        for k in tot:
            tot[k] += int(doc.get(k, 0) or 0)
    return {"fallbacks_by_reason": dict(sorted(fallbacks.items())), **tot}


def _site_capacity(site: Any, *, name: str, measured_rate: Optional[float]) -> SiteCapacity:
    gpus = int(getattr(site, "gpus_per_node", 0) or 0)
    kind = str(getattr(site, "gpu_kind", "none") or "none")
    if gpus == 0:
        return SiteCapacity(name, int(site.cores_per_node), 0, 0.0, "no GPU on this site")
    if measured_rate:
        return SiteCapacity(name, int(site.cores_per_node), gpus, measured_rate, "measured")
    rate = ASSUMED_DECODE_RATE_PER_GPU.get(kind, ASSUMED_8B_TOKENS_PER_SECOND_H100 / 4)
    src = (f"assumption: {rate:,.0f} output tok/s per {kind} device for an 8B model "
           f"(published H100 figure {ASSUMED_8B_TOKENS_PER_SECOND_H100:,.0f} tok/s"
           + ("" if kind == "nvidia-h100" else f", scaled for {kind}") + ")")
    return SiteCapacity(name, int(site.cores_per_node), gpus, rate, src)


def _site_dict(site: Any) -> dict[str, Any]:
    if hasattr(site, "model_dump"):
        return site.model_dump()
    return dict(site)


class _SiteView:
    def __init__(self, d: dict[str, Any]) -> None:
        self.name = d.get("name", "?")
        self.cores_per_node = int(d.get("cores_per_node") or 1)
        self.gpus_per_node = int(d.get("gpus_per_node") or 0)
        self.gpu_kind = d.get("gpu_kind", "none")


def build_report(root: str | Path, *, sites: tuple[str, ...] = ("frontier",), nodes: int = 1000,
                 sources: float = PROJECTION_SOURCES, data: CampaignData | None = None) -> dict[str, Any]:
    """The report of a campaign as one JSON-ready dict (DESIGN.md section 4 keys and more)."""
    data = data or load_campaign(root)
    t = data.results
    n = t.num_rows
    status = np.asarray(t.column("status").to_pylist() if n else [], dtype=object)
    fitted = status == "fitted"
    quarantined = status == "quarantined"
    failed = status == "failed"
    reasons = t.column("reason").to_pylist() if n else []
    steps = _col(t, "agent_steps", np.int64)
    calls = _col(t, "llm_calls", np.int64)
    tok = {c: _col(t, c, np.int64) for c in _TOKEN_COLS}
    gpu_s = np.nan_to_num(_col(t, "gpu_seconds"))
    fit_s = np.nan_to_num(_col(t, "fit_seconds"))
    accepted = _col(t, "accepted", np.int64).astype(bool) & fitted
    chi2 = _col(t, "chi2_red")
    agent = (steps > 0) | (calls > 0)
    llm_sources = calls > 0

    tokens_prompt = int(tok["tokens_prompt"].sum())
    tokens_cached = int(tok["tokens_cached"].sum())
    tokens_completion = int(tok["tokens_completion"].sum())
    tokens_total = tokens_prompt + tokens_completion
    n_agent = int(agent.sum())

    wt = wall_time(data)
    wall = wt["wall_seconds"]
    site = _SiteView(data.meta.site)
    workflow = data.meta.workflow or {}
    policy = str(workflow.get("policy", "?"))
    gpus = site.gpus_per_node
    alloc = allocation(data, wt["runs"])
    nodes_used = alloc["nodes"]
    gpu_alloc_h = alloc["gpu_hours_allocated"]
    gpu_busy_h = float(gpu_s.sum()) / 3600.0
    att = data.attribution
    att_note = att.note if att is not None else "no attribution (campaign data built without it)"
    if gpu_alloc_h == 0 and gpus == 0:
        gpu_note = (f"CPU-only run: site '{site.name}' has no GPU, so no GPU-hours were allocated or used; "
                    "GPU figures for other sites are projections (below), not measurements. "
                    f"Per-source GPU-seconds: {att_note}")
    else:
        gpu_note = (f"allocated = GPUs per node x nodes x wall time ({alloc['basis']}); "
                    "busy = sum of per-source gpu_seconds attributed by tokens from the nodes' LLM busy time: "
                    f"{att_note}")
    sums = summary_counts(data)

    task_seconds = float(sum(m.elapsed_s for m in data.markers))
    fit_seconds = float(fit_s.sum())
    hosts = {(m.host, m.pid) for m in data.markers}
    workers = max(1, len(hosts))
    code_counts = Counter(_reason_code(r) for r, q in zip(reasons, quarantined) if q)
    fail_counts = Counter(_reason_code(r) for r, f in zip(reasons, failed) if f)

    # acceptance before / after the agent: a source enters the agent loop only when its triage fit
    # failed the acceptance test (agent_steps > 0), so triage-accepted = accepted and never entered.
    acc_before = int((accepted & ~agent).sum())
    acc_after = int(accepted.sum())
    n_fit = int(fitted.sum())

    def stats(x: np.ndarray) -> dict[str, Optional[float]]:
        x = x[np.isfinite(x)]
        if x.size == 0:
            return {"n": 0, "median": None, "p16": None, "p84": None}
        p16, med, p84 = np.percentile(x, [16, 50, 84])
        return {"n": int(x.size), "median": float(med), "p16": float(p16), "p84": float(p84)}

    per_policy = {
        "policy": policy,
        "budgets": workflow.get("budgets"),
        "agent_sources": n_agent,
        "llm_sources": int(llm_sources.sum()),
        "agent_steps_total": int(steps.sum()),
        "agent_steps_per_agent_source": (float(steps.sum()) / n_agent) if n_agent else 0.0,
        "llm_calls_total": int(calls.sum()),
        "agent_accepted": int((accepted & agent).sum()),
        "agent_acceptance_fraction": _finite(float((accepted & agent).sum()) / n_agent) if n_agent else None,
        "knowledge_delta_files": data.knowledge_files,
        "fallbacks_by_reason": sums["fallbacks_by_reason"],
        "fallbacks_total": int(sum(sums["fallbacks_by_reason"].values())),
        "fallbacks_note": (f"summed over the task summaries of {len(data.summaries)} of {len(data.markers)} committed "
                           "partitions (summaries/partition-*.json)"),
    }

    # --- projection ---------------------------------------------------------------------------
    rows_committed = n
    fit_rate_core = (rows_committed / task_seconds) if task_seconds > 0 else None
    measured_tokens = int(calls.sum()) > 0
    if measured_tokens and n_agent:
        prompt_per = tokens_prompt / n_agent
        completion_per = tokens_completion / n_agent
        token_basis = "measured"
    else:
        prompt_per = ASSUMED_PROMPT_TOKENS_PER_AGENT_SOURCE
        completion_per = ASSUMED_COMPLETION_TOKENS_PER_AGENT_SOURCE
        token_basis = ("assumption: this campaign made no LLM calls (policy " + policy + "); tokens per "
                       "agent source of the llm policy from docs/AGENT.md's benchmark (94 calls / 41 sources, "
                       "1,304 prompt + 36 completion tokens per call)")
    agent_fraction = (n_agent / n_fit) if n_fit else 0.0
    rates = MeasuredRates(
        fit_sources_per_core_second=fit_rate_core or 1.0,
        agent_fraction=agent_fraction,
        completion_tokens_per_agent_source=completion_per,
        prompt_tokens_per_agent_source=prompt_per,
        busy_gpu_seconds_per_source=(float(gpu_s.sum()) / n) if (gpus and n) else None,
        prefix_cache_hit_fraction=(tokens_cached / tokens_prompt) if tokens_prompt else None,
    )
    projections = []
    targets: list[tuple[str, Any, int]] = [(site.name + " (campaign site)", site, 1)]
    for s in sites:
        if s == site.name:
            continue
        try:
            from sedscale.engines.site import load_site

            targets.append((s, _SiteView(_site_dict(load_site(s))), nodes))
        except Exception as exc:  # a missing site config must not sink the report
            projections.append({"site": s, "error": str(exc)})
    for label, sv, n_nodes in targets:
        cap = _site_capacity(sv, name=sv.name, measured_rate=None)
        p = project(rates, cap, sources=sources, nodes=n_nodes).as_dict()
        p["label"] = label
        p["cores_per_node"] = sv.cores_per_node
        p["gpus_per_node"] = sv.gpus_per_node
        p["basis"]["fit_sources_per_core_second"] = (
            f"measured on this machine: {rows_committed} rows / {task_seconds:.1f} task-seconds"
            + (" (task time includes waiting for the LLM server: an upper bound on the fit cost)"
               if measured_tokens else "")
            if fit_rate_core else "unknown (no committed tasks): 1 source/s/core assumed")
        p["basis"]["agent_fraction"] = f"measured: {n_agent} of {n_fit} fitted sources entered the agent loop"
        p["basis"]["tokens_per_agent_source"] = token_basis
        if sv.gpus_per_node == 0:
            p["note"] = "no GPU on this site: LLM work cannot run here; node-hours are the fit only"
        projections.append(p)
    projection = {
        "sources": sources,
        "inputs": {
            "fit_sources_per_core_second": _finite(rates.fit_sources_per_core_second) if fit_rate_core else None,
            "agent_fraction": agent_fraction,
            "prompt_tokens_per_agent_source": prompt_per,
            "completion_tokens_per_agent_source": completion_per,
            "tokens_basis": "measured" if token_basis == "measured" else "assumption",
            "busy_gpu_seconds_per_source": rates.busy_gpu_seconds_per_source,
            "prefix_cache_hit_fraction": rates.prefix_cache_hit_fraction,
        },
        "sites": projections,
        "reference_points": {
            "gpt4o": {"tokens_per_source": REFERENCE_GPT4O_TOKENS_PER_SOURCE,
                      "usd_per_source": REFERENCE_GPT4O_USD_PER_SOURCE,
                      "tokens_total": REFERENCE_GPT4O_TOKENS_PER_SOURCE * sources,
                      "usd_total": REFERENCE_GPT4O_USD_PER_SOURCE * sources},
            "llama70b_4xh100": {"gpu_minutes_per_source": REFERENCE_70B_GPU_MINUTES_PER_SOURCE,
                                "gpu_hours_per_source": REFERENCE_70B_GPU_MINUTES_PER_SOURCE / 60,
                                "gpu_days_total": sources * REFERENCE_70B_GPU_MINUTES_PER_SOURCE / 60 / 24},
            "basis": "the seed's reference points (not measured here)",
        },
    }

    return {
        "report_version": REPORT_VERSION,
        "campaign": str(data.root),
        "name": data.name,
        "site": site.name,
        "policy": policy,
        "complete": not data.partitions_pending,
        "partitions_total": data.partitions_total,
        "partitions_committed": len(data.markers),
        "partitions_pending": len(data.partitions_pending),
        "rows_total": int(data.meta.n_rows),
        "sources_total": n,
        "sources_fitted": n_fit,
        "sources_quarantined": int(quarantined.sum()),
        "sources_failed": int(failed.sum()),
        "quarantine_reasons": dict(sorted(code_counts.items())),
        "failure_reasons": dict(sorted(fail_counts.items())),
        "agent_sources": n_agent,
        "agent_steps": int(steps.sum()),
        "llm_calls": int(calls.sum()),
        "tokens_prompt": tokens_prompt,
        "tokens_cached": tokens_cached,
        "tokens_completion": tokens_completion,
        "tokens_total": tokens_total,
        "tokens_per_source": (tokens_total / n) if n else 0.0,
        "tokens_per_agent_source": (tokens_total / n_agent) if n_agent else 0.0,
        "gpu_seconds_busy": float(gpu_s.sum()),
        "gpu_attribution": att.as_dict() if att is not None else None,
        "gpu_hours_llm_services_allocated": (att.totals()["allocated_gpu_s"] / 3600.0) if att is not None else 0.0,
        "gpu_hours_allocated": gpu_alloc_h,
        "gpu_hours_busy": gpu_busy_h,
        "gpu_hours_per_source": (gpu_alloc_h / n) if n else 0.0,
        "gpu_hours_busy_per_source": (gpu_busy_h / n) if n else 0.0,
        "gpu_note": gpu_note,
        "gpus_per_node": gpus,
        "nodes": nodes_used,
        "node_hours": alloc["node_hours"],
        "cpu_hours_allocated": alloc["cpu_hours_allocated"],
        "allocation": alloc,
        "wall_seconds": wall,
        "sources_per_second": (n / wall) if wall > 0 else None,
        "runs": wt["runs"],
        "time": {
            "wall_seconds": wall,
            "task_seconds": task_seconds,
            "fit_seconds": fit_seconds,
            "task_other_seconds": max(0.0, task_seconds - fit_seconds),
            "workers_seen": workers,
            "driver_other_seconds": max(0.0, wall - task_seconds / workers),
            "breakdown": time_breakdown(data, wall, workers),
            "note": ("fit_seconds = the sum of the results' per-source fit_seconds (the triage fit only); "
                     "task_other = read, validate, agent, commit; driver_other = planning, engine start-up, "
                     "scheduling (wall minus task time per worker); breakdown: the same task time split by the "
                     "partitions' task summaries (read, LLM service start, triage fit, agent LLM wait, agent "
                     "re-fit, commit)."),
        },
        "acceptance": {
            "fitted": n_fit,
            "accepted_before_agent": acc_before,
            "accepted_after_agent": acc_after,
            "fraction_before_agent": (acc_before / n_fit) if n_fit else None,
            "fraction_after_agent": (acc_after / n_fit) if n_fit else None,
            "basis": "derived: a source enters the agent loop only when its triage fit failed the acceptance test",
            "triage_failed": sums["triage_failed"],
            "agent_accepted": sums["agent_accepted"],
            "summaries_basis": (f"recorded by the tasks: summed over {len(data.summaries)} partition summaries "
                                "(triage_failed = fitted sources whose triage fit failed the test and entered the "
                                "agent, or all such sources when no agent ran; agent_accepted = of those, accepted "
                                "after the agent)"),
        },
        "chi2_red": {"all": stats(chi2[fitted]), "triage_only": stats(chi2[fitted & ~agent]),
                     "agent": stats(chi2[fitted & agent])},
        "per_policy": per_policy,
        "projection": projection,
    }
