"""``sedscale export``: a campaign's results, one row per input row, as Parquet, HATS or FITS;
with ``--trail``, the agent's trail (one row per agent step) as Parquet."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        campaign: Path = typer.Argument(..., help="The campaign directory."),
        output: Path = typer.Option(..., "-o", "--output",
                                    help="File (parquet, fits) or new directory (hats) to write."),
        format: str = typer.Option("parquet", "--format", help="parquet | hats | fits"),
        verify: str = typer.Option("checksum", "--verify", help="checksum | size | none"),
        trail: bool = typer.Option(False, "--trail", help="write the agent's trail instead: one row per agent "
                                   "step of every agent source of the committed partitions (Parquet)"),
    ) -> None:
        """Write the results in input order, each partition checked against its done-marker.

        ``parquet`` (default): one file, units in the field metadata. ``hats``: a HATS catalog
        (a directory) for lsdb, partitioned like a HATS input, else by position; needs ra/dec in
        the profile. ``fits``: one binary table, units in TUNIT. Refuses (exit 4) while any
        partition is uncommitted or does not check out. ``gpu_seconds`` is attributed from each
        node's LLM busy time by tokens (docs/REPORT.md); the line after the row count says where
        the GPU-seconds came from, or why they are 0. ``--trail``: the agent's steps (action,
        reason, chi2 before/after, tokens) of the committed partitions, sorted by (source_id,
        step), as one Parquet file (docs/CAMPAIGNS.md).
        """
        if trail:
            _export_trail(campaign, output, format)
            return
        from sedscale.campaign.attribution import build_attribution
        from sedscale.campaign.export import export_campaign, parse_export_format
        from sedscale.campaign.meta import read_meta
        from sedscale.campaign.paths import CampaignPaths
        from sedscale.campaign.resume import parse_verify
        from sedscale.campaign.state import load_markers

        mode = parse_verify(verify)
        kind = parse_export_format(format)
        paths = CampaignPaths.at(campaign)
        meta = read_meta(paths)
        attribution = build_attribution(paths, load_markers(paths).values(), meta)
        rows = export_campaign(campaign, output, format=kind, verify=mode, attribution=attribution)
        typer.echo(f"{rows} rows -> {output} ({kind})")
        typer.echo(f"gpu_seconds: {attribution.note}")


def _export_trail(campaign: Path, output: Path, format: str) -> None:
    """``export --trail``: Parquet only (the trail is a small side table, not the results)."""
    from sedscale.campaign.export_trail import export_trail
    from sedscale.errors import ConfigError

    if format != "parquet":
        raise ConfigError(f"--trail writes Parquet only, not --format {format}")
    rows = export_trail(campaign, output)
    typer.echo(f"{rows} agent steps -> {output} (trail)")
