"""``sedscale fit``: an in-process fit of a small catalog — no engine, no campaign.

It runs the same per-table function a campaign task runs (:func:`sedscale.fitting.fit_table`),
with options built the same way (:meth:`sedscale.fitting.FitOptions.from_workflow`), chunk by
chunk with a progress bar, and writes the results contract (DESIGN.md section 4) to one Parquet
file, atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, cast

import typer

from sedscale.commands._help import CATALOG_HELP

from sedscale.errors import EXIT_CODES_HELP

if TYPE_CHECKING:
    import pyarrow as pa

    from sedscale.agent.policy import PolicyName
    from sedscale.campaign.workflow import Workflow
    from sedscale.catalog.profiles import CatalogProfile
    from sedscale.catalog.source import CatalogSource
    from sedscale.fitting import FitOptions


def default_cache_dir() -> Path:
    """Where model grids are cached between runs: the cache campaigns share too
    (:func:`sedscale.cache_dirs.grid_cache_dir`: ``$SEDSCALE_CACHE_DIR/grids`` or
    ``~/.cache/sedscale/grids``)."""
    from sedscale.cache_dirs import grid_cache_dir

    return grid_cache_dir()


def fit(
    catalog: List[str] = typer.Argument(..., help=CATALOG_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="results Parquet file to write"),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="generic | euclid-q1 | euclid-q1-irsa | roman | roman-generic | FILE.yaml (default: the workflow's)"),
    workflow: Optional[str] = typer.Option(None, "--workflow", "-w", help="shipped workflow name or YAML file (default: default)"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="a FitConfig YAML replacing the workflow's fit section"),
    photoz: Optional[bool] = typer.Option(None, "--photoz/--no-photoz", help="fit the redshift where the catalog has none"),
    ignore_redshift: bool = typer.Option(False, "--ignore-redshift", help="photo-z for every row, the catalog's redshifts ignored (implies --photoz; to score photo-z against them)"),
    policy: Optional[str] = typer.Option(None, "--policy", help="none | rules | llm (default: the workflow's)"),
    llm_url: Optional[str] = typer.Option(None, "--llm-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1"),
    llm_model: Optional[str] = typer.Option(None, "--llm-model", help="model name (default: the first the server lists)"),
    min_bands: Optional[int] = typer.Option(None, "--min-bands", min=1, help="usable bands a source needs (default: the workflow's, 3)"),
    chunk_rows: int = typer.Option(5_000, "--chunk-rows", help="rows fitted per call (memory vs. overhead)"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="model-grid cache (default: $SEDSCALE_CACHE_DIR/grids or ~/.cache/sedscale/grids, shared with campaigns)"),
) -> None:
    """Fit every row of a small catalog in this process and write the results contract."""
    import time

    from sedscale.campaign.workflow import load_workflow
    from sedscale.catalog.catalog_input import catalog_arg, open_for_profile

    wf = load_workflow(workflow).with_min_bands(min_bands)
    policy_name = _policy_name(policy)
    source, prof = open_for_profile(catalog_arg(catalog), profile or wf.profile)
    options = _fit_options(wf, config=config, photoz=photoz, policy=policy_name, llm_url=llm_url,
                           llm_model=llm_model, cache_dir=cache_dir or default_cache_dir(),
                           ignore_redshift=ignore_redshift)
    t0 = time.perf_counter()
    results = _fit_catalog(source, prof, options, chunk_rows)
    _write_atomically(results, output)
    _print_counts(results, output, time.perf_counter() - t0)


def _policy_name(value: Optional[str]) -> Optional[PolicyName]:
    """``--policy`` checked against the policy names (None: the workflow's)."""
    from sedscale.agent.policy import POLICY_NAMES
    from sedscale.errors import ConfigError

    if value is not None and value not in POLICY_NAMES:
        raise ConfigError(f"--policy {value!r}: use {', '.join(POLICY_NAMES[:-1])} or {POLICY_NAMES[-1]}")
    return cast("Optional[PolicyName]", value)


def _fit_options(wf: Workflow, *, config: Optional[Path], photoz: Optional[bool], policy: Optional[PolicyName],
                 llm_url: Optional[str], llm_model: Optional[str], cache_dir: Path,
                 ignore_redshift: bool = False) -> FitOptions:
    """The workflow's options with the command line's replacements; the cache folder created."""
    from sedscale.agent.endpoint import LLMEndpoint
    from sedscale.errors import ConfigError
    from sedscale.fitting import FitOptions
    from sedscale.sed.config import FitConfig

    url = llm_url or wf.llm_url
    if (policy or wf.policy) == "llm" and not url:
        raise ConfigError("--policy llm needs --llm-url (an OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1)")
    options = FitOptions.from_workflow(
        wf, cache_dir=cache_dir, fit_config=FitConfig.from_yaml(config) if config is not None else None,
        photoz=photoz, policy=policy, llm=LLMEndpoint.at_url(url, llm_model or wf.llm_model) if url else None,
        ignore_redshift=ignore_redshift)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return options


def _fit_catalog(source: CatalogSource, profile: CatalogProfile, options: FitOptions, chunk_rows: int) -> pa.Table:
    """Every row of ``source``, fitted ``chunk_rows`` at a time behind a progress bar.

    The chunks share one knowledge base that starts empty: an in-process fit learns only from
    its own catalog.
    """
    import time

    import pyarrow as pa

    from sedscale.agent import KnowledgeBase
    from sedscale.catalog.duplicates import find_duplicate_ids
    from sedscale.catalog.plan import plan_partitions
    from sedscale.catalog.read import read_partition
    from sedscale.commands._common import progress_bar
    from sedscale.fitting import fit_table
    from sedscale.results import RESULTS_SCHEMA

    duplicates = find_duplicate_ids(source, profile.id)
    knowledge = KnowledgeBase()
    tables: list[pa.Table] = []
    done = 0
    t0 = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task("fitting", total=source.num_rows, rate="")
        for part in plan_partitions(source, chunk_rows):
            table = read_partition(part, profile.columns(), profile.optional_columns())
            dups = duplicates.rows_in(part.file_index, part.row_start, part.row_stop)
            out = fit_table(table, profile, options, partition_id=part.partition_id,
                            duplicate_rows=dups, row_offset=part.row_start, knowledge=knowledge)
            tables.append(out.table)
            done += out.table.num_rows
            bar.update(task, advance=table.num_rows,
                       rate=f"{done / max(time.perf_counter() - t0, 1e-9):,.0f} sources/s")
    return pa.concat_tables(tables).cast(RESULTS_SCHEMA)


def _write_atomically(table: pa.Table, path: Path) -> None:
    """``table`` as Parquet at ``path``: the old file or the complete new one, never a torn one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sedscale.fsutil import atomic_write

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, sink.getvalue().to_pybytes())


def _print_counts(results: pa.Table, output: Path, seconds: float) -> None:
    """One line on stderr: rows by status, accepted fits, time."""
    from sedscale.commands._common import err_console
    from sedscale.results import STATUS_FAILED, STATUS_FITTED, STATUS_QUARANTINED

    status = results.column("status").to_pylist()
    counts = {s: status.count(s) for s in (STATUS_FITTED, STATUS_QUARANTINED, STATUS_FAILED)}
    accepted = sum(1 for a in results.column("accepted").to_pylist() if a)
    err_console.print(
        f"{results.num_rows:,} rows -> {output}: {counts[STATUS_FITTED]:,} fitted "
        f"({accepted:,} accepted), {counts[STATUS_QUARANTINED]:,} quarantined, {counts[STATUS_FAILED]:,} failed "
        f"in {seconds:.1f} s"
    )


def register(app: typer.Typer) -> None:
    app.command(epilog=EXIT_CODES_HELP)(fit)
