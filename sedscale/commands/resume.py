"""``sedscale resume``: finish what a crash or a walltime left of a campaign."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("resume")
    def resume(
        campaign: Path = typer.Argument(..., help="The campaign directory."),
        site: Optional[str] = typer.Option(None, "--site", help="Site config (default: the one it was submitted with)."),
        verify: str = typer.Option("checksum", "--verify", help="How done partitions are checked: checksum | size | none."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes (default: the site's)."),
    ) -> None:
        """Recompute only the partitions not committed (missing, torn or corrupt, or failed).

        Refuses (exit 4) when the catalog changed since submit or another driver is running.
        """
        from sedscale.campaign.meta import read_meta
        from sedscale.campaign.paths import CampaignPaths
        from sedscale.campaign.resume import parse_verify
        from sedscale.commands._campaign_ui import print_summary, progress_runner
        from sedscale.commands._common import make_console
        from sedscale.driver import run_campaign
        from sedscale.engines.site import load_site, site_from_dict

        mode = parse_verify(verify)
        console = make_console(stderr=True)  # whole lines when piped
        paths = CampaignPaths.at(campaign)
        meta = read_meta(paths)
        site_cfg = load_site(site) if site else site_from_dict(meta.site, f"{paths.campaign_json}: site")
        progress, on_event = progress_runner(console)
        with progress:
            report = run_campaign(paths.root, site_cfg, on_event=on_event, verify=mode,
                                  command="resume", workers=workers)
        plan = report.plan
        if plan is not None and plan.corrupt:
            console.print(f"[yellow]recomputed {len(plan.corrupt)} partition(s) whose files did not match "
                          "their done-marker")
        print_summary(console, str(paths.root))
        if report.partitions_left:
            from sedscale.errors import CampaignError

            raise CampaignError(f"{paths.root}: {report.partitions_left} partition(s) still not committed")
