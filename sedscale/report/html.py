"""The campaign report as one self-contained HTML page (plots are embedded base64 PNGs).

The page ends with a gallery of source SEDs (:mod:`sedscale.report.gallery`).

No external assets, no scripts from the network: the page opens offline on a login node. A tiny
inline script sets ``document.title`` to ``"report: <decoded images>/<images>"`` once the page has
loaded, which is what the headless-browser test reads back.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sedscale.fsutil import atomic_write
from sedscale.report.accounting import throughput_series
from sedscale.report.campaign_data import CampaignData
from sedscale.report.gallery import gallery_section
from sedscale.report.provenance import provenance_html

PLOT_NAMES = ("throughput", "chi2", "tokens", "parameters", "gpu_hours", "time")

#: (breakdown key, label, colour) of the "where the time went" plot, in task order.
TIME_PARTS = (
    ("read", "read rows", "C2"),
    ("llm_service_start", "LLM service start", "C4"),
    ("triage_fit", "triage fit", "C0"),
    ("fit_table_unsplit", "fit (not split)", "C0"),
    ("agent_llm_wait", "agent: LLM wait", "C3"),
    ("agent_refit", "agent: re-fit", "C9"),
    ("agent_other", "agent: other", "C1"),
    ("validate_and_results", "validate + results", "C5"),
    ("commit", "commit", "C6"),
    ("tasks_without_summary", "tasks w/o summary", "C8"),
    ("scheduling_idle", "scheduling / idle", "C7"),
)


def _png(draw: Callable[[Any], None], *, size: tuple[float, float] = (6.0, 3.6)) -> str:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=size, dpi=90)
    try:
        draw(fig)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _col(data: CampaignData, name: str) -> np.ndarray:
    t = data.results
    if name not in t.column_names or t.num_rows == 0:
        return np.zeros(0)
    return np.asarray(t.column(name).to_numpy(zero_copy_only=False), dtype=float)


@dataclass
class _PlotData:
    """The campaign and its report, with the masks every plot selects sources by."""

    data: CampaignData
    rep: dict[str, Any]
    fitted: np.ndarray
    agent: np.ndarray
    calls: np.ndarray

    @classmethod
    def of(cls, data: CampaignData, rep: dict[str, Any]) -> _PlotData:
        status = np.asarray(data.results.column("status").to_pylist() if data.results.num_rows else [], dtype=object)
        steps = np.nan_to_num(_col(data, "agent_steps"))
        calls = np.nan_to_num(_col(data, "llm_calls"))
        return cls(data, rep, status == "fitted", (steps > 0) | (calls > 0), calls)


def _draw_throughput(pd: _PlotData, fig: Any) -> None:
    ax = fig.add_subplot(111)
    pts = throughput_series(pd.data)
    if len(pts) < 2:
        return _empty(ax, "no committed partitions")
    t, n = np.array(pts).T
    ax.step(t, n, where="post")
    ax.set_xlabel("seconds since the first run started")
    ax.set_ylabel("rows committed")
    ax.set_title(f"throughput: {pd.rep['sources_per_second'] or 0:,.1f} sources/s over the wall time")


def _draw_chi2(pd: _PlotData, fig: Any) -> None:
    ax = fig.add_subplot(111)
    c = _col(pd.data, "chi2_red")
    good = pd.fitted & np.isfinite(c) & (c > 0) if c.size else np.zeros(0, bool)
    if not good.any():
        return _empty(ax, "no fitted sources")
    bins = np.logspace(np.log10(c[good].min()), np.log10(c[good].max()) + 1e-9, 40)
    ax.hist(c[good & ~pd.agent], bins=bins, histtype="step", label="accepted by triage (no agent)")
    if (good & pd.agent).any():
        ax.hist(c[good & pd.agent], bins=bins, histtype="step", label="after the agent (entered the loop)")
    ax.set_xscale("log")
    ax.set_xlabel("reduced chi2 (final fit)")
    ax.set_ylabel("sources")
    ax.legend(fontsize=8)
    ax.set_title("reduced chi2; triage chi2 of agent sources is not recorded", fontsize=9)


def _draw_tokens(pd: _PlotData, fig: Any) -> None:
    ax = fig.add_subplot(111)
    tot = np.nan_to_num(_col(pd.data, "tokens_prompt")) + np.nan_to_num(_col(pd.data, "tokens_completion"))
    sel = pd.calls > 0
    if not sel.any():
        return _empty(ax, f"no LLM calls in this campaign (policy {pd.rep['policy']}):\n"
                          f"{pd.rep['agent_sources']} agent sources, 0 tokens")
    ax.hist(tot[sel], bins=30)
    ax.set_xlabel("prompt + completion tokens per agent source")
    ax.set_ylabel("sources")
    ax.set_title(f"median {np.median(tot[sel]):,.0f} tokens")


def _draw_parameters(pd: _PlotData, fig: Any) -> None:
    cols = [("logmstar", "log M* [Msun]"), ("logsfr", "log SFR [Msun/yr]"), ("av", "A_V [mag]"), ("redshift", "z")]
    for i, (name, label) in enumerate(cols):
        ax = fig.add_subplot(2, 2, i + 1)
        x = _col(pd.data, name)
        x = x[pd.fitted & np.isfinite(x)] if x.size else x
        if x.size == 0:
            _empty(ax, f"no {name}")
            continue
        ax.hist(x, bins=30)
        ax.set_xlabel(label, fontsize=8)
        ax.tick_params(labelsize=7)


def _gpu_bars(rep: dict[str, Any]) -> tuple[list[str], list[float], list[str]]:
    """(labels, GPU-hours per source, colours): this run, the projected sites with GPUs, the seed's 70B."""
    labels = ["this run\nallocated", "this run\nbusy"]
    values = [rep["gpu_hours_per_source"], rep["gpu_hours_busy_per_source"]]
    colors = ["C0", "C0"]
    for p in rep["projection"]["sites"]:
        if "gpu_hours_per_source" in p and p.get("gpus_per_node"):
            labels.append(f"{p['site']}\nprojected")
            values.append(p["gpu_hours_per_source"])
            colors.append("C1")
    labels.append("70B on 4 H100\n(seed ref.)")
    values.append(rep["projection"]["reference_points"]["llama70b_4xh100"]["gpu_hours_per_source"])
    colors.append("C2")
    return labels, values, colors


def _draw_gpu_hours(pd: _PlotData, fig: Any) -> None:
    ax = fig.add_subplot(111)
    labels, values, colors = _gpu_bars(pd.rep)
    vals = np.array(values, dtype=float)
    floor = 1e-9
    ax.bar(range(len(vals)), np.maximum(vals, floor), color=colors)
    for i, v in enumerate(vals):
        ax.text(i, max(v, floor) * 1.3, "0 (no GPU)" if v == 0 else f"{v:.2e}", ha="center", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(vals)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("GPU-hours per source")
    ax.set_ylim(floor / 2, max(vals.max(), floor) * 10)


def _draw_time(pd: _PlotData, fig: Any) -> None:
    ax = fig.add_subplot(111)
    t = pd.rep["time"]
    b = t["breakdown"]["seconds"]
    parts = [(label, b.get(key, 0.0), color) for key, label, color in TIME_PARTS]
    parts = [p for p in parts if p[1] > 0 or p[0] in ("triage fit", "commit")]
    if sum(p[1] for p in parts) <= 0:
        return _empty(ax, "no time recorded")
    ax.barh([p[0] for p in parts][::-1], [p[1] for p in parts][::-1], color=[p[2] for p in parts][::-1])
    ax.set_xlabel("worker-seconds (task time summed over workers)")
    ax.tick_params(labelsize=7)
    ax.set_title(f"wall {t['wall_seconds']:.1f} s, task {t['task_seconds']:.1f} s, {t['workers_seen']} worker(s); "
                 f"{t['breakdown']['partitions_with_summary']} partition summaries", fontsize=8)


#: (name, caption, draw, figure size) of every plot, in page order (names: :data:`PLOT_NAMES`).
_PLOTS: tuple[tuple[str, str, Callable[[_PlotData, Any], None], tuple[float, float]], ...] = (
    ("throughput", "Throughput over time (done-marker commit times)", _draw_throughput, (6.0, 3.6)),
    ("chi2", "Reduced χ² before / after the agent", _draw_chi2, (6.0, 3.6)),
    ("tokens", "Tokens per agent source", _draw_tokens, (6.0, 3.6)),
    ("parameters", "Parameter distributions of fitted sources", _draw_parameters, (6.0, 4.8)),
    ("gpu_hours", "GPU-hours per source (allocated / busy, projection, reference)", _draw_gpu_hours, (6.0, 3.6)),
    ("time", "Where the time went", _draw_time, (6.0, 3.6)),
)


def _plots(data: CampaignData, rep: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Every plot as (caption, base64 PNG) by name."""
    pd = _PlotData.of(data, rep)
    return {name: (caption, _png(partial(draw, pd), size=size)) for name, caption, draw, size in _PLOTS}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1e5 or abs(v) < 1e-3:
            return f"{v:.3g}"
        return f"{v:,.3f}".rstrip("0").rstrip(".")
    if isinstance(v, int):
        return f"{v:,}"
    return html.escape(str(v))


def _table(rows: list[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in rows) + "</table>"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:0.9em}
th{background:#f4f4f4;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;border:1px solid #ddd;padding:0.5em}
figcaption{font-size:0.85em;color:#555}
.gallery figure{max-width:340px}
.gallery img{max-width:100%}
.note{background:#fff8e0;border-left:4px solid #e0b000;padding:0.5em 1em}
"""

_SCRIPT = """
var __errors = 0;
window.addEventListener('error', function () { __errors++; }, true);
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }
  document.title = 'report: ' + ok + '/' + imgs.length + ' images, ' + __errors + ' errors';
});
"""


def _summary_table(rep: dict[str, Any]) -> str:
    return _table([
        ("sources total", rep["sources_total"]), ("fitted", rep["sources_fitted"]),
        ("quarantined", rep["sources_quarantined"]), ("failed", rep["sources_failed"]),
        ("agent sources", rep["agent_sources"]), ("LLM calls", rep["llm_calls"]),
        ("tokens per source", rep["tokens_per_source"]), ("tokens per agent source", rep["tokens_per_agent_source"]),
        ("GPU-hours allocated", rep["gpu_hours_allocated"]), ("GPU-hours busy", rep["gpu_hours_busy"]),
        ("GPU-hours per source", rep["gpu_hours_per_source"]), ("node-hours", rep["node_hours"]),
        ("CPU-hours allocated", rep["cpu_hours_allocated"]), ("wall seconds", rep["wall_seconds"]),
        ("sources per second", rep["sources_per_second"] or 0.0),
        ("accepted before agent", rep["acceptance"]["accepted_before_agent"]),
        ("accepted after agent", rep["acceptance"]["accepted_after_agent"]),
    ])


def _acceptance_table(acc: dict[str, Any]) -> str:
    return _table([
        ("fitted", acc["fitted"]), ("accepted by the triage fit (no agent)", acc["accepted_before_agent"]),
        ("accepted after the agent (all)", acc["accepted_after_agent"]),
        ("triage fit failed the test (task summaries)", acc.get("triage_failed", 0)),
        ("of those, accepted after the agent (task summaries)", acc.get("agent_accepted", 0)),
    ])


def _row(values: tuple[Any, ...]) -> str:
    return "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in values) + "</tr>"


def _allocation_table(alloc: dict[str, Any]) -> str:
    rows = "".join(_row((r["run_id"] or "?", r["site"], r["scheduler"], r["nodes"], r["nodes_seen"], r["wall_seconds"],
                         r["node_hours"], r["gpu_hours_allocated"], r["basis"])) for r in alloc["runs"])
    return ("<table><tr><th>run</th><th>site</th><th>scheduler</th><th>nodes</th><th>nodes seen</th>"
            "<th>wall s</th><th>node-hours</th><th>GPU-hours allocated</th><th>basis</th></tr>" + rows + "</table>")


def _attribution_table(ga: dict[str, Any]) -> str:
    rows = "".join(_row((h["host"], h["services"], h["devices_per_node"], h["busy_instance_s"], h["busy_gpu_s"],
                         h["tokens"], h["attributed_gpu_s"])) for h in ga["hosts"])
    return ("<table><tr><th>host</th><th>LLM services</th><th>devices</th><th>busy instance-s</th>"
            "<th>busy GPU-s</th><th>tokens of its sources</th><th>attributed GPU-s</th></tr>"
            + (rows or "<tr><td colspan=7>(no node LLM accounting)</td></tr>") + "</table>"
            f"<p>{html.escape(ga['note'])}</p>")


def _fixed_costs_table(rep: dict[str, Any]) -> str:
    """One-off costs apart from the per-source cost, and the steady-state rate left once they are out."""
    fc = rep.get("fixed_costs") or {}
    return _table([
        ("engine start (s, driver run start to first task start, summed over runs)", fc.get("engine_start_s", 0.0)),
        ("kernel warm-up: compile or cache load (worker-s)", fc.get("kernel_warmup_s", 0.0)),
        ("grid builds into the cache (worker-s)", fc.get("grid_build_s", 0.0)),
        ("grid loads from the cache (worker-s)", fc.get("grid_load_s", 0.0)),
        ("uncached grid builds for a few sources' nodes (worker-s, kept in the per-source cost)", fc.get("grid_build_uncached_s", 0.0)),
        ("one-off seconds per node (projection input)", fc.get("per_node_s", 0.0)),
        ("sources per second over the wall time", rep.get("sources_per_second") or 0.0),
        ("steady-state sources per second", rep.get("steady_state_sources_per_second") or 0.0),
        ("steady-state sources per worker-second", rep.get("steady_state_sources_per_worker_second") or 0.0),
    ])


def _projection_table(sites: list[dict[str, Any]]) -> str:
    rows = []
    for p in sites:
        if "error" in p:
            rows.append(f"<tr><td>{html.escape(p['site'])}</td><td colspan=8>{html.escape(p['error'])}</td></tr>")
            continue
        rows.append(_row((p["label"], p["nodes"], p["node_hours"], p.get("fixed_node_hours", 0.0), p["wall_days"],
                          p["gpu_hours_allocated"],
                          p["gpu_hours_per_source"], p["tokens_total"], p["basis"]["decode_tokens_per_second_per_gpu"])))
    return ("<table><tr><th>site</th><th>nodes</th><th>node-hours</th><th>of which one-off</th><th>wall days</th>"
            "<th>GPU-hours</th>"
            "<th>GPU-h / source</th><th>tokens</th><th>decode rate basis</th></tr>" + "".join(rows) + "</table>")


def _projection_basis(sites: list[dict[str, Any]]) -> str:
    return "".join(
        f"<li><b>{html.escape(p['label'])}</b><ul>"
        + "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in p.get("basis", {}).items())
        + "</ul></li>" for p in sites if "basis" in p)


def _references_table(ref: dict[str, Any]) -> str:
    return _table([
        ("GPT-4o tokens per source (seed)", ref["gpt4o"]["tokens_per_source"]),
        ("GPT-4o USD per source (seed)", ref["gpt4o"]["usd_per_source"]),
        ("GPT-4o USD for the projected sources", ref["gpt4o"]["usd_total"]),
        ("70B on 4 H100: GPU-minutes per source (seed)", ref["llama70b_4xh100"]["gpu_minutes_per_source"]),
        ("70B on 4 H100: GPU-days for the projected sources", ref["llama70b_4xh100"]["gpu_days_total"]),
    ])


def _figures(plots: dict[str, tuple[str, str]]) -> str:
    return "".join(
        f'<figure id="plot-{name}"><img alt="{html.escape(cap)}" src="data:image/png;base64,{b64}">'
        f"<figcaption>{html.escape(cap)}</figcaption></figure>" for name, (cap, b64) in plots.items())


def _provenance(rep: dict[str, Any]) -> str:
    """The campaign's provenance table, or a line saying an older sedscale recorded none."""
    prov = rep.get("provenance")
    if not prov:
        return "<p>No provenance record (campaign made by an older sedscale).</p>"
    return provenance_html(prov)


def render_html(data: CampaignData, rep: dict[str, Any]) -> str:
    """The whole page: header, one section per part of the report, the plots, the raw JSON."""
    pp = rep["per_policy"]
    alloc = rep["allocation"]
    tb = rep["time"]["breakdown"]
    projection = rep["projection"]
    reasons = _table(sorted(rep["quarantine_reasons"].items()) or [("(none)", 0)])
    fallbacks = _table(sorted((pp.get("fallbacks_by_reason") or {}).items()) or [("(none)", 0)])
    time_table = _table([(label, tb["seconds"].get(key, 0.0)) for key, label, _ in TIME_PARTS])
    ga = rep.get("gpu_attribution") or {"hosts": [], "note": ""}
    raw = html.escape(json.dumps(rep, indent=1, default=str))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>report: loading</title>
<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>
<h1>sedscale campaign report: {html.escape(rep['name'])}</h1>
<p>{html.escape(rep['campaign'])} · site <b>{html.escape(rep['site'])}</b> · policy <b>{html.escape(rep['policy'])}</b>
 · {rep['partitions_committed']}/{rep['partitions_total']} partitions committed{'' if rep['complete'] else ' (incomplete)'}</p>
<p class="note">{html.escape(rep['gpu_note'])}</p>
<h2>Summary</h2>{_summary_table(rep)}
<h2>Quarantine reasons</h2>{reasons}
<h2>Acceptance before / after the agent</h2>{_acceptance_table(rep["acceptance"])}
<h2>Agent fallbacks by reason</h2>{fallbacks}<p>{html.escape(pp.get("fallbacks_note", ""))}</p>
<h2>Allocation (node-hours, GPU-hours)</h2>{_allocation_table(alloc)}<p>{html.escape(alloc["basis"])}</p>
<h2>GPU-seconds attributed per node</h2>{_attribution_table(ga)}
<h2>Where the time went ({html.escape(tb["unit"])})</h2>{time_table}<p>{html.escape(tb["note"])}</p>
<h2 id="fixed-costs">Fixed costs and the steady-state rate</h2>{_fixed_costs_table(rep)}
<p>{html.escape(rep.get("steady_state_note", ""))}. {html.escape((rep.get("fixed_costs") or {}).get("basis", ""))}</p>
<h2>Projection to {projection['sources']:.3g} sources</h2>{_projection_table(projection["sites"])}
<p>Inputs and their basis (measured on this machine vs assumed):</p><ul>{_projection_basis(projection["sites"])}</ul>
<h3>Reference points of the seed (not measured here)</h3>{_references_table(projection["reference_points"])}
<h2 id="provenance">Provenance</h2>{_provenance(rep)}
<h2>Plots</h2><div class="plots">{_figures(_plots(data, rep))}</div>
<h2 id="gallery">Gallery: SEDs of a few sources</h2>
<p>Drawn as <code>sedscale show</code> draws them: photometry (S/N &lt; 3 as 3σ upper limits), the
best-fit model, residuals in σ and, where the results carry it, the log M* posterior.</p>
{gallery_section(data)}
<details><summary>report JSON</summary><pre>{raw}</pre></details>
</body></html>
"""


def write_html(data: CampaignData, rep: dict[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` atomically (a reader never sees half a page) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    atomic_write(path, render_html(data, rep).encode("utf-8"))
    return path
