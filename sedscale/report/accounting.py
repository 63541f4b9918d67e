"""A campaign's time and allocation: wall time per run, node-, GPU- and CPU-hours, task time split.

Wall time is the sum over driver runs of ``finished_at - started_at`` (a run that never recorded its
end — killed — counts up to its last commit). Node-hours: 1 node for a local run; for a Slurm/PBS
run ``max_blocks × nodes_per_block`` nodes for the run's wall time — an upper bound, since block
start/end times are not recorded. GPU-hours *allocated* = the site's ``gpus_per_node`` × node-hours.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from pydantic import BaseModel

from sedscale.report.campaign_data import CampaignData


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

        return site_dict(load_site(run_site)), f"site '{run_site}' loaded now (run record names it)"
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
        sv = SiteView(site)
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


def site_dict(site: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """A site config (pydantic model or mapping) as the plain dict ``campaign.json`` stores."""
    if isinstance(site, BaseModel):
        return site.model_dump()
    return dict(site)


class SiteView:
    """The site figures a report needs, read leniently from a stored site dict (old campaigns too)."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.name = d.get("name", "?")
        self.cores_per_node = int(d.get("cores_per_node") or 1)
        self.gpus_per_node = int(d.get("gpus_per_node") or 0)
        self.gpu_kind = d.get("gpu_kind", "none")


def workers_seen(data: CampaignData) -> int:
    """Distinct worker processes (host, pid) that committed a partition (at least 1)."""
    return max(1, len({(m.host, m.pid) for m in data.markers}))


#: The in-task one-off costs a partition summary's ``timings`` records (sedscale.sed.fixed_costs).
IN_TASK_FIXED_KEYS = ("kernel_warmup_s", "grid_build_s", "grid_load_s")


def engine_start_seconds(data: CampaignData) -> dict[str, Any]:
    """Per driver run, seconds from the run's start to its first task's start (a task starts at
    its done-marker's ``committed_at − elapsed_s``): lock, planning, engine and worker start-up,
    worker imports. Runs that committed no partition have no figure."""
    first: dict[str, float] = {}
    for m in data.markers:
        if m.kind == "done" and m.run_id:
            start = m.committed_at - m.elapsed_s
            first[m.run_id] = min(first.get(m.run_id, start), start)
    per_run = {r.run_id: max(0.0, first[r.run_id] - r.started_at) for r in data.runs if r.run_id in first}
    return {"total_s": float(sum(per_run.values())), "runs": len(per_run), "per_run": per_run}


def fixed_costs(data: CampaignData, workers: int) -> dict[str, Any]:
    """The one-off costs of a campaign, apart from its per-source cost.

    ``engine_start_s``: summed over driver runs (:func:`engine_start_seconds`), wall seconds.
    ``kernel_warmup_s`` (compiling or loading the fused kernel), ``grid_build_s`` (building the
    grids that go into the grid cache, with their cache write) and ``grid_load_s`` (reading
    cached grids): worker-seconds summed over the committed partitions' task summaries; each
    is paid once per worker process (or once per configuration, for a shared cache), so a warm
    worker adds none. Grids built for a few sources' redshift nodes and never cached are
    per-source work and stay out (``grid_build_uncached_s``, for information). ``in_task_s`` = the three in-task
    figures, which :func:`steady_state` subtracts from the task time.
    """
    sums = dict.fromkeys((*IN_TASK_FIXED_KEYS, "grid_build_uncached_s"), 0.0)
    measured = 0
    for m in data.markers:
        tm = (data.summaries.get(m.partition_id) or {}).get("timings") or {}
        if "kernel_warmup_s" not in tm:
            continue  # a summary from before fixed costs were recorded
        measured += 1
        for key in sums:
            sums[key] += float(tm.get(key, 0.0) or 0.0)
    engine = engine_start_seconds(data)
    in_task = sum(sums[k] for k in IN_TASK_FIXED_KEYS)
    return {"engine_start_s": engine["total_s"], **sums, "in_task_s": in_task,
            "per_node_s": engine["total_s"] / max(engine["runs"], 1) + in_task / max(workers, 1),
            "engine_start_runs": engine["runs"], "partitions_measured": measured,
            "partitions_committed": len(data.markers), "workers_seen": workers,
            "basis": ("engine_start_s: wall seconds from each driver run's start to its first task's start, summed "
                      "over runs; kernel_warmup_s, grid_build_s (cached grids, incl. the cache write), grid_load_s: "
                      "worker-seconds from the task summaries; per_node_s = engine start per run + in-task fixed "
                      "worker-seconds / workers seen: the wall seconds one node of this shape spends on one-offs")}


def steady_state(n_sources: int, task_seconds: float, fixed: dict[str, Any]) -> dict[str, Any]:
    """Sources per worker-second once warm: ``n_sources / (Σ task elapsed − in-task fixed costs)``,
    and per second with every worker seen busy (× workers seen); None without task time."""
    busy = task_seconds - float(fixed["in_task_s"])
    if n_sources <= 0 or busy <= 0:
        return {"per_worker_second": None, "per_second": None, "busy_seconds": max(0.0, busy)}
    per_worker = n_sources / busy
    return {"per_worker_second": per_worker, "per_second": per_worker * int(fixed["workers_seen"]),
            "busy_seconds": busy}
