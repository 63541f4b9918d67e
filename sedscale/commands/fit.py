"""``sedscale fit``: an in-process fit of a small catalog — no engine, no campaign.

It runs the same per-table function a campaign task runs (:func:`sedscale.fitting.fit_table`),
chunk by chunk with a progress bar, and writes the results contract
(DESIGN.md section 4) to one Parquet file, atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from sedscale.errors import EXIT_CODES_HELP


def default_cache_dir() -> Path:
    """Where model grids are cached between runs: $SEDSCALE_CACHE_DIR or ~/.cache/sedscale/grids."""
    import os

    root = os.environ.get("SEDSCALE_CACHE_DIR")
    if root:
        return Path(root)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "sedscale" / "grids"


def fit(
    catalog: List[str] = typer.Argument(..., help="Parquet file(s), a directory or a glob."),
    output: Path = typer.Option(..., "--output", "-o", help="results Parquet file to write"),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="generic | euclid-q1 | roman | FILE.yaml (default: the workflow's)"),
    workflow: Optional[str] = typer.Option(None, "--workflow", "-w", help="shipped workflow name or YAML file (default: default)"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="a FitConfig YAML replacing the workflow's fit section"),
    photoz: Optional[bool] = typer.Option(None, "--photoz/--no-photoz", help="fit the redshift where the catalog has none"),
    policy: Optional[str] = typer.Option(None, "--policy", help="none | rules | llm (default: the workflow's)"),
    llm_url: Optional[str] = typer.Option(None, "--llm-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1"),
    llm_model: Optional[str] = typer.Option(None, "--llm-model", help="model name (default: the first the server lists)"),
    chunk_rows: int = typer.Option(5_000, "--chunk-rows", help="rows fitted per call (memory vs. overhead)"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="model-grid cache (default: $SEDSCALE_CACHE_DIR or ~/.cache/sedscale/grids)"),
) -> None:
    """Fit every row of a small catalog in this process and write the results contract."""
    import time

    import pyarrow as pa

    from sedscale.campaign.workflow import load_workflow
    from sedscale.catalog.duplicates import find_duplicate_ids
    from sedscale.catalog.plan import plan_partitions
    from sedscale.catalog.profiles import load_profile
    from sedscale.catalog.read import read_partition
    from sedscale.catalog.source import open_catalog
    from sedscale.commands._common import err_console, progress_bar
    from sedscale.errors import ConfigError
    from sedscale.fitting import FitOptions, fit_table
    from sedscale.results import RESULTS_SCHEMA, STATUS_FAILED, STATUS_FITTED, STATUS_QUARANTINED
    from sedscale.sed.config import FitConfig

    wf = load_workflow(workflow)
    if policy is not None and policy not in ("none", "rules", "llm"):
        raise ConfigError(f"--policy {policy!r}: use none, rules or llm")
    source = open_catalog(catalog if len(catalog) > 1 else catalog[0])
    prof = load_profile(profile or wf.profile, source.schema, source=str(source.paths[0]))
    fit_config = FitConfig.from_yaml(config) if config is not None else wf.fit_config()
    use_photoz = wf.photoz if photoz is None else photoz
    rules = wf.validation_rules()
    if photoz is not None:
        rules = rules.model_copy(update={"require_redshift": not use_photoz})
    options = FitOptions(
        fit_config=fit_config,
        rules=rules,
        acceptance=wf.acceptance,
        photoz=use_photoz,
        policy=policy or wf.policy,
        budgets=wf.budgets,
        llm_url=llm_url or wf.llm_url,
        llm_model=llm_model or wf.llm_model,
        cache_dir=cache_dir or default_cache_dir(),
    )
    if options.policy == "llm" and not options.llm_url:
        raise ConfigError("--policy llm needs --llm-url (an OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1)")
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    duplicates = find_duplicate_ids(source, prof.id)
    manifest = plan_partitions(source, chunk_rows).to_pylist()
    from sedscale.agent import KnowledgeBase

    knowledge = KnowledgeBase()  # in-process fits start from an empty knowledge base
    tables: list[pa.Table] = []
    t0 = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task("fitting", total=source.num_rows, rate="")
        for part in manifest:
            table = read_partition(part, prof.columns())
            dups = duplicates.rows_in(part["file_index"], part["row_start"], part["row_stop"])
            out = fit_table(table, prof, options, partition_id=part["partition_id"],
                            duplicate_rows=dups, row_offset=part["row_start"], knowledge=knowledge)
            tables.append(out.table)
            done = sum(t.num_rows for t in tables)
            bar.update(task, advance=table.num_rows,
                       rate=f"{done / max(time.perf_counter() - t0, 1e-9):,.0f} sources/s")
    results = pa.concat_tables(tables).cast(RESULTS_SCHEMA)
    output.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(results, output)
    status = results.column("status").to_pylist()
    counts = {s: status.count(s) for s in (STATUS_FITTED, STATUS_QUARANTINED, STATUS_FAILED)}
    accepted = sum(1 for a in results.column("accepted").to_pylist() if a)
    err_console.print(
        f"{results.num_rows:,} rows -> {output}: {counts[STATUS_FITTED]:,} fitted "
        f"({accepted:,} accepted), {counts[STATUS_QUARANTINED]:,} quarantined, {counts[STATUS_FAILED]:,} failed "
        f"in {time.perf_counter() - t0:.1f} s"
    )


def _write_atomically(table, path: Path) -> None:
    import os

    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def register(app: typer.Typer) -> None:
    app.command(epilog=EXIT_CODES_HELP)(fit)
