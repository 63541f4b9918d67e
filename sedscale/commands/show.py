"""``sedscale show``: one source's SED from a finished campaign, drawn to a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def show(
    campaign: Path = typer.Argument(..., help="The campaign directory."),
    source_id: int = typer.Argument(..., help="The source's id (the catalog's id column)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="PNG to write (default: sed-<SOURCE_ID>.png here)."),
) -> None:
    """Draw a fitted source: photometry with errors and upper limits, the best-fit spectrum,
    residuals in σ and the log M* posterior (its percentiles), to a PNG whose path is printed.

    The photometry is read from the catalog through the campaign's profile; the model is rebuilt
    from the results' fit_config_id, best_model and redshift. Refuses (exit 4) an unfinished
    campaign, naming its partitions; an unknown id, or a quarantined or failed source (with its
    reason), exits 3 without a plot.
    """
    from sedscale.errors import InputError
    from sedscale.pipeline import campaign_context
    from sedscale.report.sed_figure import write_png
    from sedscale.report.source_sed import find_source, input_photometry, source_sed
    from sedscale.results import STATUS_FITTED

    ctx = campaign_context(str(campaign))
    partition, row_index, row = find_source(ctx, source_id)
    if row["status"] != STATUS_FITTED:
        raise InputError(f"source {source_id} was not fitted: it is {row['status']} ({row['reason']}); "
                         "nothing to draw")
    phot = input_photometry(ctx, partition, [row_index])
    sed = source_sed(ctx, row, phot, 0)
    path = write_png(sed, output or Path(f"sed-{source_id}.png"))
    typer.echo(str(path))
    if sed.model is None:
        typer.echo(f"note: drawn without a model: {sed.note}", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``show`` command to the root app."""
    app.command("show")(show)
