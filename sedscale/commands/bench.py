"""``sedscale bench``: the layer benchmarks at laptop sizes, one table (figure, target, ratio).

``sedscale bench agent-quality --catalog FILE.parquet`` is routed to the agent-quality benchmark
(:mod:`sedscale.report.agent_quality`) with its own options; there ``--json`` writes exactly the
issue-17 object.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        names: Optional[List[str]] = typer.Argument(
            None, help="Benchmarks to run: plan fit campaign serve agent (default: plan fit campaign), "
                       "or agent-quality alone (with --catalog)."),
        run_all: bool = typer.Option(False, "--all", help="Also the LLM benchmarks (serve, agent; start vLLM)."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON to this file."),
        timeout: float = typer.Option(900.0, "--timeout", help="Seconds allowed per benchmark script."),
        catalog: Optional[Path] = typer.Option(None, "--catalog", help="agent-quality: Parquet catalog with truth_* columns."),
        llm_url: Optional[str] = typer.Option(None, "--llm-url", help="agent-quality: OpenAI-compatible base URL (adds llm, llm_kb)."),
        llm_model: Optional[str] = typer.Option(None, "--llm-model", help="agent-quality: model name (default: the first listed)."),
        knowledge: Optional[Path] = typer.Option(None, "--knowledge", help="agent-quality: knowledge base JSON for rules_kb / llm_kb."),
        details: Optional[Path] = typer.Option(None, "--details", help="agent-quality: also write the ratios, per-class figures and targets here."),
        workflow: Optional[str] = typer.Option(None, "--workflow", "-w", help="agent-quality: workflow name or YAML (default: default)."),
        seed: int = typer.Option(0, "--seed", help="agent-quality: agent seed and the rules_kb half split."),
        exhaustive_changes: Optional[int] = typer.Option(
            None, "--exhaustive-changes", min=0,
            help="agent-quality: bound the exhaustive grid to the families at most N discrete choices (SFH family, "
                 "attenuation law, AGN mode) from the triage configuration (default: all 29 families)."),
    ) -> None:
        """Run the benchmarks of every layer and print each figure beside its target."""
        import json

        from rich.table import Table

        from sedscale.commands._common import err_console, make_console
        from sedscale.errors import InputError
        from sedscale.report.bench import AGENT_QUALITY, ALL, BENCHES, QUICK, run_benchmarks

        if names and AGENT_QUALITY in names:
            if len(names) > 1 or run_all:
                raise InputError(f"{AGENT_QUALITY} runs alone: sedscale bench {AGENT_QUALITY} --catalog FILE.parquet")
            if catalog is None:
                raise InputError(f"{AGENT_QUALITY} needs --catalog FILE.parquet (a catalog with truth_* columns)")
            run_agent_quality(catalog, json_out=json_out, details_out=details, llm_url=llm_url, llm_model=llm_model,
                              knowledge=knowledge, workflow=workflow, seed=seed,
                              exhaustive_changes=exhaustive_changes)
            return
        chosen = tuple(names) if names else (ALL if run_all else QUICK)
        unknown = [n for n in chosen if n not in BENCHES]
        if unknown:
            raise InputError(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
        res = run_benchmarks(chosen, timeout=timeout, progress=lambda n: err_console.print(f"running {n} ..."))
        t = Table(title=f"sedscale bench ({res['host']}, {res['cpus']} cpus, load {res['load_average_1min']:.1f})")
        for col in ("bench", "figure", "measured", "target", "ratio", "met", "s"):
            t.add_column(col, overflow="fold")
        for f in res["figures"]:
            meas = "-" if f["measured"] is None else f"{f['measured']:,.3g} {f['unit']}".strip()
            tgt = "-" if f["target"] is None else f"{f['direction']} {f['target']:,.3g}"
            ratio = "-" if f["ratio"] is None else f"{f['ratio']:.2f}"
            met = f["error"][:60] if f["error"] else ("yes" if f["met"] else "no")
            t.add_row(f["bench"], f["figure"], meas, tgt, ratio, met, f"{f['seconds']:.0f}")
        make_console().print(t)
        if json_out:
            json_out.write_text(json.dumps(res, indent=2))
            typer.echo(str(json_out))


def run_agent_quality(catalog: Path, *, json_out: Optional[Path], details_out: Optional[Path],
                      llm_url: Optional[str], llm_model: Optional[str], knowledge: Optional[Path],
                      workflow: Optional[str], seed: int, exhaustive_changes: Optional[int] = None) -> None:
    """``sedscale bench agent-quality``: every strategy on the catalog, a progress bar on stderr,
    the tables on stdout, OUT.json exactly the issue's object."""
    import json

    from rich.progress import TaskID

    from sedscale.agent import KnowledgeBase
    from sedscale.agent.endpoint import LLMEndpoint
    from sedscale.commands._common import make_console, progress_bar
    from sedscale.fsutil import atomic_write
    from sedscale.report.agent_quality import load_inputs, run_strategies
    from sedscale.report.agent_quality_summary import bench_object, details_object
    from sedscale.report.agent_quality_table import print_report

    inputs = load_inputs(catalog, workflow=workflow, seed=seed, exhaustive_changes=exhaustive_changes)
    endpoint = LLMEndpoint.at_url(llm_url, llm_model) if llm_url else None
    kb = KnowledgeBase.load(knowledge) if knowledge is not None else None
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def advance(name: str, done: int, total: int) -> None:
            """One bar per strategy, created on its first report."""
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total, rate="")
            bar.update(tasks[name], completed=done, total=total)

        runs = run_strategies(inputs, llm=endpoint, knowledge=kb, progress=advance)
    obj = bench_object(runs, inputs.truth)
    extra = details_object(runs, inputs.truth, obj)
    print_report(make_console(), obj, extra)
    for path, data in ((json_out, obj), (details_out, extra)):
        if path is not None:
            atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())
            typer.echo(str(path))
