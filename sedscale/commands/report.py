"""``sedscale report``: a campaign's accounting, GPU-hours per source and the 10^9 projection."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer


def report(
    campaign: Path = typer.Argument(..., help="The campaign directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    as_html: bool = typer.Option(False, "--html", help="Write DIR/report/index.html and print its path."),
    site: Optional[List[str]] = typer.Option(None, "--site",
                                             help="Sites to project to (repeatable; default frontier)."),
    nodes: int = typer.Option(1000, "--nodes", min=1, help="Nodes of the projection on the named sites."),
    sources: float = typer.Option(1e9, "--sources", help="Catalog size of the projection."),
    verify: str = typer.Option("size", "--verify", help="How committed partitions are checked: size | checksum | none."),
) -> None:
    """Report what a campaign fitted and spent, and project the cost of 10^9 sources."""
    import json

    from sedscale.campaign.resume import parse_verify
    from sedscale.report.campaign_data import load_campaign
    from sedscale.report.summary import build_report

    data = load_campaign(campaign, verify=parse_verify(verify))
    rep = build_report(campaign, sites=tuple(site or ("frontier",)), nodes=nodes, sources=sources, data=data)
    if as_html:
        from sedscale.report.html import write_html

        path = write_html(data, rep, data.root / "report")
        typer.echo(str(path), err=as_json)  # with --json too, stdout stays one JSON object
    if as_json:
        typer.echo(json.dumps(rep, indent=2, default=str))
    if not (as_html or as_json):
        _print_report(rep)


def _print_report(rep: dict[str, Any]) -> None:
    """The report as a two-column table: the figures a user reads first, then the projection."""
    from rich.table import Table

    from sedscale.commands._common import make_console

    t = Table(title=f"{rep['name']} ({rep['site']}, policy {rep['policy']})", show_header=False)
    t.add_column("what", overflow="fold")
    t.add_column("value", overflow="fold")
    t.add_row("sources", f"{rep['sources_total']:,}: fitted {rep['sources_fitted']:,}, quarantined "
              f"{rep['sources_quarantined']:,}, failed {rep['sources_failed']:,}")
    t.add_row("agent sources", f"{rep['agent_sources']:,} ({rep['llm_calls']:,} LLM calls)")
    t.add_row("tokens / source", f"{rep['tokens_per_source']:,.1f}")
    t.add_row("GPU-hours allocated / busy", f"{rep['gpu_hours_allocated']:.4g} / {rep['gpu_hours_busy']:.4g}")
    t.add_row("GPU-hours / source", f"{rep['gpu_hours_per_source']:.3g}")
    t.add_row("node-hours", f"{rep['node_hours']:.4g} ({rep['allocation']['basis']})")
    t.add_row("", rep["gpu_note"])
    fb = rep["per_policy"]["fallbacks_by_reason"] or {}
    t.add_row("agent fallbacks", ", ".join(f"{k} {v:,}" for k, v in fb.items()) or "none")
    b = rep["time"]["breakdown"]["seconds"]
    t.add_row("where the time went", ", ".join(f"{k} {v:,.1f} s" for k, v in b.items() if v > 0) or "-")
    t.add_row("wall", f"{rep['wall_seconds']:,.1f} s, {rep['sources_per_second'] or 0:,.1f} sources/s")
    for label, text in _projection_rows(rep):
        t.add_row(label, text)
    make_console().print(t)


def _projection_rows(rep: dict[str, Any]) -> list[tuple[str, str]]:
    """One row per projected site (or its error), then the seed's reference points."""
    rows = []
    for p in rep["projection"]["sites"]:
        if "error" in p:
            rows.append((f"projection {p['site']}", p["error"]))
            continue
        rows.append((f"{rep['projection']['sources']:.0e} on {p['label']}",
                     f"{p['node_hours']:,.0f} node-h, {p['wall_days']:,.2f} days on {p['nodes']} node(s), "
                     f"{p['gpu_hours_allocated']:,.0f} GPU-h ({p['gpu_hours_per_source']:.2e}/source), "
                     f"{p['tokens_total']:.3g} tokens"))
    ref = rep["projection"]["reference_points"]
    rows.append(("seed references", f"GPT-4o: {ref['gpt4o']['tokens_per_source']:.0e} tokens, "
                 f"~{ref['gpt4o']['usd_per_source']:.0f} USD per source; 70B on 4 H100: "
                 f"{ref['llama70b_4xh100']['gpu_minutes_per_source']:.0f} GPU-min per source"))
    return rows


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to the root app."""
    app.command("report")(report)
