"""``sedscale validate`` and ``sedscale plan``: check a catalog and plan its partitions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from sedscale.commands._help import CATALOG_HELP

from sedscale.errors import EXIT_CODES_HELP

if TYPE_CHECKING:
    from sedscale.catalog.scan import CatalogValidation


def validate(
    catalog: List[str] = typer.Argument(..., help=CATALOG_HELP),
    profile: str = typer.Option("generic", "--profile", "-p", help="generic | euclid-q1 | euclid-q1-irsa | roman | roman-generic | FILE.yaml (docs/PROFILES.md)"),
    min_bands: Optional[int] = typer.Option(None, min=1, help="usable bands a source needs (default: the workflow's, 3)"),
    require_redshift: Optional[bool] = typer.Option(None, help="quarantine rows without a redshift (default: unless the workflow fits photo-z)"),
    workflow: Optional[str] = typer.Option(None, "--workflow", "-w", help="the workflow whose validation rules apply (default: default)"),
    rows_per_partition: int = typer.Option(50_000, help="rows read at a time"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Count valid and quarantined rows, with a reason for each quarantined row.

    File-level faults (unreadable, empty, missing id or band columns, wrong types) exit 3 with a
    message naming the file and column.
    """
    import time

    from sedscale.catalog.catalog_input import catalog_arg, open_for_profile
    from sedscale.catalog.scan import validate_catalog
    from sedscale.campaign.workflow import load_workflow
    from sedscale.commands._common import print_json, progress_bar

    source, prof = open_for_profile(catalog_arg(catalog), profile)
    rules = load_workflow(workflow).with_min_bands(min_bands).validation_rules()  # the rules fit and submit use
    if require_redshift is not None:
        rules = rules.model_copy(update={"require_redshift": require_redshift})
    t0 = time.perf_counter()
    with progress_bar(transient=True) as bar:
        task = bar.add_task("validating", total=source.num_rows, rate="")

        def step(rows: int, _n: int) -> None:
            done = bar.tasks[0].completed + rows
            bar.update(task, advance=rows, rate=f"{done / max(time.perf_counter() - t0, 1e-9):,.0f} rows/s")

        result = validate_catalog(source, prof, rules, rows_per_partition=rows_per_partition, on_partition=step)
    if as_json:
        obj = result.as_json()
        obj["files"] = [str(p) for p in source.paths]
        obj["profile"] = prof.name
        obj["bands"] = list(prof.filters())
        print_json(obj)
        return
    _print_validation(result, n_files=len(source.files), profile_name=prof.name, n_bands=len(prof.bands))


def _print_validation(result: CatalogValidation, *, n_files: int, profile_name: str, n_bands: int) -> None:
    """The human summary of ``validate``: counts, then one table row per quarantine reason.

    Example messages are long; on a terminal their cells fold, on a pipe every row stays whole.
    """
    from rich.table import Table

    from sedscale.catalog.validate import REASONS
    from sedscale.commands._common import make_console

    console = make_console()
    console.print(
        f"[bold]{result.rows_total:,}[/] rows in {n_files} file(s), profile "
        f"[cyan]{profile_name}[/], {n_bands} bands: [green]{result.rows_valid:,} valid[/], "
        f"[yellow]{result.rows_quarantined:,} quarantined[/]"
    )
    if result.reasons:
        table = Table()
        for column in ("reason", "rows", "meaning", "example"):
            table.add_column(column, overflow="fold")
        for reason, count in sorted(result.reasons.items(), key=lambda kv: -kv[1]):
            table.add_row(reason, f"{count:,}", REASONS[reason], (result.samples.get(reason) or [""])[0])
        console.print(table)


def plan(
    catalog: List[str] = typer.Argument(..., help=CATALOG_HELP),
    rows_per_partition: int = typer.Option(50_000, "--rows-per-partition", "-n", help="target rows per partition"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write the manifest (Parquet) here"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON summary"),
) -> None:
    """Plan partitions from metadata only (Parquet footers, a HATS catalog's _metadata, FITS headers; no data is read)."""
    import time

    from sedscale.campaign.manifest import write_manifest
    from sedscale.catalog.catalog_input import catalog_arg
    from sedscale.catalog.plan import plan_partitions
    from sedscale.catalog.forms import open_catalog
    from sedscale.commands._common import print_json

    t0 = time.perf_counter()
    source = open_catalog(catalog_arg(catalog))
    manifest = plan_partitions(source, rows_per_partition)
    elapsed = time.perf_counter() - t0
    if output is not None:
        write_manifest(manifest, output)
    n_rows = [p.n_rows for p in manifest]
    summary = {
        "files": len(source.files),
        "rows": sum(n_rows),
        "partitions": len(manifest),
        "rows_per_partition_min": min(n_rows),
        "rows_per_partition_max": max(n_rows),
        "seconds": round(elapsed, 4),
        "manifest": str(output) if output else None,
    }
    if as_json:
        print_json(summary)
        return
    typer.echo(
        f"{summary['rows']:,} rows in {summary['files']} file(s) -> {summary['partitions']:,} partitions "
        f"({summary['rows_per_partition_min']:,}-{summary['rows_per_partition_max']:,} rows each), "
        f"planned in {elapsed:.3f} s" + (f"; manifest written to {output}" if output else "")
    )


def register(app: typer.Typer) -> None:
    app.command(epilog=EXIT_CODES_HELP)(validate)
    app.command(epilog=EXIT_CODES_HELP)(plan)
