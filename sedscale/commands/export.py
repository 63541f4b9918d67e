"""``sedscale export``: a campaign's results as one Parquet file, one row per input row."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        campaign: Path = typer.Argument(..., help="The campaign directory."),
        output: Path = typer.Option(..., "-o", "--output", help="Parquet file to write."),
        verify: str = typer.Option("checksum", "--verify", help="checksum | size | none"),
    ) -> None:
        """Write the results in input order, each partition checked against its done-marker.

        Refuses (exit 4) while any partition is uncommitted or does not check out.
        """
        from sedscale.campaign.export import export_campaign

        rows = export_campaign(campaign, output, verify=verify)
        typer.echo(f"{rows} rows -> {output}")
