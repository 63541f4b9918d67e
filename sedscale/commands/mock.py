"""``sedscale mock``: write a mock Euclid or Roman catalog with known truth (generic profile)."""

from __future__ import annotations

from pathlib import Path

import typer


def mock(
    out: Path = typer.Argument(..., help="output Parquet file"),
    survey: str = typer.Option("euclid", "--survey", help="euclid | roman"),
    n: int = typer.Option(1000, "--n", min=1, help="number of sources"),
    seed: int = typer.Option(0, "--seed", help="random seed (same seed, same catalog)"),
    hard_fraction: float = typer.Option(
        0.0, "--hard-fraction", min=0.0, max=1.0,
        help="share of hard sources (agn, strong_lines, very_dusty, lrd; flagged in truth_class)",
    ),
    ground: bool = typer.Option(True, "--ground/--no-ground", help="add ground-based LSST-like u…z(y) bands"),
    depth_offset: float = typer.Option(0.0, "--depth-offset", help="mag added to every 5σ depth (>0 deeper)"),
) -> None:
    """Draw N galaxies from realistic distributions, compute their photometry with sedscale's
    physics and add noise from the survey's 5σ depths (see docs/PHYSICS.md for the numbers).

    Columns: source_id, flux_<band>, fluxerr_<band> (µJy), redshift, truth_* and truth_class.
    """
    import time

    import pyarrow.parquet as pq

    from sedscale.commands._common import ChunkProgress, err_console
    from sedscale.errors import InputError
    from sedscale.sed.mock import DEPTHS_5SIGMA, is_survey, make_mock

    if not is_survey(survey):
        raise InputError(f"--survey: {survey!r} is not one of {', '.join(DEPTHS_5SIGMA)}")
    t0 = time.perf_counter()
    with ChunkProgress("mock photometry", n, unit="sources") as progress:
        # the first chunk waits for the model grids (BC03, nebular, dust, IGM, filters): say so
        progress.phase(f"drawing {n:,} {survey} sources; loading the model grids for the first chunk")
        table = make_mock(survey, n, seed, hard_fraction=hard_fraction,
                          ground=ground, depth_offset=depth_offset, progress=progress.advance)
        progress.phase(f"writing {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    err_console.print(f"wrote {n:,} {survey} mock sources to {out} in {time.perf_counter() - t0:.1f} s")


def register(app: typer.Typer) -> None:
    app.command("mock")(mock)
