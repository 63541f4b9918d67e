"""``sedscale status``: partitions done / pending / failed, sources/s and ETA of a campaign."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        campaign: Path = typer.Argument(..., help="The campaign directory."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        verify: str = typer.Option("size", "--verify", help="How done partitions are checked: size | checksum | none."),
    ) -> None:
        """Show a campaign's progress (reads done-markers only; safe while it runs)."""
        import json

        from sedscale.campaign.resume import parse_verify
        from sedscale.campaign.status import campaign_status

        st = campaign_status(str(campaign), verify=parse_verify(verify))
        if as_json:
            typer.echo(json.dumps(st.to_dict(), indent=2, default=str))
            return
        from rich.table import Table

        from sedscale.commands._common import make_console

        def fmt_s(x: float | None) -> str:
            if x is None:
                return "-"
            h, rem = divmod(int(x), 3600)
            return f"{h}:{rem // 60:02d}:{rem % 60:02d}"

        t = Table(title=f"{st.name} ({'running' if st.running else 'idle'})", show_header=False)
        t.add_column("what", overflow="fold")
        t.add_column("value", overflow="fold")
        t.add_row("partitions", f"{st.partitions_done} done, {st.partitions_failed} failed, "
                  f"{st.partitions_pending} pending of {st.partitions_total}")
        t.add_row("rows", f"{st.rows_committed:,} of {st.rows_total:,} committed")
        t.add_row("sources", f"{st.sources_fitted:,} fitted, {st.sources_quarantined:,} quarantined, "
                  f"{st.sources_failed:,} failed")
        t.add_row("sources/s", "-" if st.sources_per_second is None else f"{st.sources_per_second:,.1f}")
        t.add_row("ETA", fmt_s(st.eta_seconds))
        t.add_row("runs", str(st.runs))
        for pid, reason in st.failed_reasons.items():
            t.add_row(f"failed p{pid}", reason)
        make_console().print(t)
