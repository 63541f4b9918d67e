"""``sedscale submit``: plan a campaign from a catalog and run it to completion in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from sedscale.commands._help import CATALOG_HELP

if TYPE_CHECKING:
    from sedscale.campaign.paths import CampaignPaths


def register(app: typer.Typer) -> None:
    @app.command("submit")
    def submit(
        catalog: List[str] = typer.Argument(..., help=CATALOG_HELP),
        site: str = typer.Option("local", "--site", help="Site config name or YAML file."),
        workflow: Optional[str] = typer.Option(None, "--workflow", help="Workflow name or YAML file (default: default)."),
        profile: Optional[str] = typer.Option(None, "--profile", help="Catalog profile (overrides the workflow's)."),
        campaign: Optional[Path] = typer.Option(None, "--campaign", help="Campaign directory (default checkpoints/<catalog>-<workflow>)."),
        rows_per_partition: Optional[int] = typer.Option(None, "--rows-per-partition", min=1, help="Rows per partition (overrides the workflow's)."),
        policy: Optional[str] = typer.Option(None, "--policy", help="none | rules | llm (overrides the workflow's)."),
        llm_url: Optional[str] = typer.Option(None, "--llm-url", help="OpenAI-compatible base URL for --policy llm."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes (default: the site's)."),
        min_bands: Optional[int] = typer.Option(None, "--min-bands", min=1, help="Usable bands a source needs (overrides the workflow's)."),
        detach: bool = typer.Option(False, "--detach", help="Plan here, then run the driver in the background "
                                    "(pid file and log in the campaign directory) and return; follow it with `status`."),
    ) -> None:
        """Plan partitions, freeze the inputs in a campaign directory, and fit every row.

        Exits 0 once every row is fitted, quarantined or failed with a reason. An existing
        campaign directory is refused: continue it with `sedscale resume DIR`.
        """
        from sedscale.campaign.create import create_campaign, refuse_existing
        from sedscale.campaign.paths import CampaignPaths, default_campaign_dir
        from sedscale.campaign.workflow import load_workflow, workflow_from_dict
        from sedscale.commands._campaign_ui import print_summary, progress_runner
        from sedscale.commands._common import make_console
        from sedscale.driver import run_campaign
        from sedscale.engines.compute_env import check_submittable
        from sedscale.engines.site import load_site

        console = make_console(stderr=True)  # whole lines when piped
        site_cfg = load_site(site)
        check_submittable(site_cfg)  # account, venv, scheduler tools: before anything is created
        wf = load_workflow(workflow).with_min_bands(min_bands)
        overrides = {k: v for k, v in {"profile": profile, "rows_per_partition": rows_per_partition,
                                       "policy": policy, "llm_url": llm_url}.items() if v is not None}
        if overrides:
            wf = workflow_from_dict(wf.model_dump() | overrides, f"workflow {wf.name!r} with command-line overrides")
        root = campaign or default_campaign_dir(catalog[0], wf.name)
        refuse_existing(root)
        with console.status("planning partitions and indexing duplicate ids ..."):
            paths = create_campaign(root, list(catalog), workflow=wf, site=site_cfg, profile_spec=wf.profile,
                                    rows_per_partition=wf.rows_per_partition)
        console.print(f"campaign [bold]{paths.root}[/] on site {site_cfg.name!r} ({site_cfg.engine})")
        if detach:
            _detach(CampaignPaths.at(paths.root), site, workers)
            return
        progress, on_event = progress_runner(console)
        with progress:
            report = run_campaign(paths.root, site_cfg, on_event=on_event, command="submit", workers=workers)
        print_summary(console, str(paths.root))
        if report.partitions_left:
            from sedscale.errors import CampaignError

            raise CampaignError(f"{paths.root}: {report.partitions_left} partition(s) not committed; "
                                f"run `sedscale resume {paths.root}`")
        typer.echo(str(paths.root))


def _detach(paths: "CampaignPaths", site: str, workers: Optional[int]) -> None:
    """Start ``sedscale resume ROOT`` as a session leader that outlives this shell; write its pid
    to ``state/driver.pid`` and log to ``ROOT/driver.log``. A driver that dies later is recovered
    by ``sedscale resume ROOT`` (finished partitions kept, its batch jobs cancelled by id, its
    local processes stopped by pid and start time)."""
    import os
    import subprocess
    import sys

    from sedscale.fsutil import atomic_write

    root = paths.root
    site_arg = str(Path(site).resolve()) if Path(site).suffix in (".yaml", ".yml") else site
    cmd = [sys.executable, "-m", "sedscale", "resume", str(root), "--site", site_arg]
    if workers:
        cmd += ["--workers", str(workers)]
    env = os.environ | {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    with open(root / "driver.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=os.getcwd(), env=env, close_fds=True)
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(paths.driver_pid, f"{proc.pid}\n".encode(), paths.state_dir)
    typer.echo(f"driver pid {proc.pid}; log {root / 'driver.log'}; follow with `sedscale status {root}`",
               err=True)
    typer.echo(str(root))
