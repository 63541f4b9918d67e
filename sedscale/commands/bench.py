"""``sedscale bench``: the layer benchmarks at laptop sizes, one table (figure, target, ratio)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        names: Optional[List[str]] = typer.Argument(
            None, help="Benchmarks to run: plan fit campaign serve agent (default: plan fit campaign)."),
        run_all: bool = typer.Option(False, "--all", help="Also the LLM benchmarks (serve, agent; start vLLM)."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON to this file."),
        timeout: float = typer.Option(900.0, "--timeout", help="Seconds allowed per benchmark script."),
    ) -> None:
        """Run the benchmarks of every layer and print each figure beside its target."""
        import json

        from rich.table import Table

        from sedscale.commands._common import err_console, make_console
        from sedscale.errors import InputError
        from sedscale.report.bench import ALL, BENCHES, QUICK, run_benchmarks

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
