"""The per-partition work of a campaign, as plain functions that engines only map.

:func:`process_partition` reads one partition's rows through the catalog layer, runs the
algorithm every fit shares (:func:`sedscale.fitting.fit_table`: validate → triage → agent →
results) and commits the rows atomically to the campaign store, with the partition's knowledge
delta beside them. Engines call it with plain arguments (campaign directory, partition id, run
id), never tables; the agent's seeds derive from (partition id, source id) only.
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import json
import os
import socket
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.agent import KnowledgeBase
from sedscale.agent.endpoint import LLMEndpoint
from sedscale import _testhooks
from sedscale.campaign.commit import commit_partition
from sedscale.campaign.manifest import manifest_row
from sedscale.campaign.meta import CampaignMeta, read_meta
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.workflow import Workflow
from sedscale.catalog.duplicates import DuplicateIndex
from sedscale.catalog.profiles import CatalogProfile
from sedscale.catalog.read import read_partition
from sedscale.fitting import FitOptions, TableSummary, fit_table
from sedscale.fsutil import atomic_write
from sedscale.results import failed_rows_table
from sedscale.sed.builder import release_prepared
from sedscale.sed.config import FitConfig
from sedscale.sed.fixed_costs import fixed_cost_counters, fixed_costs_since
from sedscale.sed.kernel_numba import kernel_provenance


@dataclass
class PartitionSummary:
    """What a task reports back to the driver (tiny; the rows are already committed)."""

    partition_id: int
    n_rows: int
    counts: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0


# --- I/O around it: one task of a campaign ----------------------------------------------------


@dataclass(frozen=True)
class CampaignContext:
    """Everything a task needs that is the same for every partition of a campaign."""

    paths: CampaignPaths
    meta: CampaignMeta
    profile: CatalogProfile
    workflow: Workflow
    options: FitOptions
    duplicates: DuplicateIndex | None


@lru_cache(maxsize=4)
def _context(root: str, meta_mtime_ns: int) -> CampaignContext:
    paths = CampaignPaths.at(root)
    meta = read_meta(paths)
    workflow = Workflow.model_validate(meta.workflow)
    duplicates = DuplicateIndex.read(paths.duplicates_index) if meta.has_duplicate_index else None
    options = FitOptions.from_workflow(workflow, cache_dir=meta.grid_cache_dir(paths))
    return CampaignContext(paths, meta, CatalogProfile.model_validate(meta.profile), workflow, options, duplicates)


def campaign_context(root: str) -> CampaignContext:
    """The cached per-process context of a campaign (re-read if campaign.json changes)."""
    paths = CampaignPaths.at(root)
    return _context(str(paths.root), paths.campaign_json.stat().st_mtime_ns)


def process_partition(campaign_dir: str, partition_id: int, run_id: Optional[str] = None) -> PartitionSummary:
    """Read, validate, fit and commit one partition of a campaign (what an engine maps)."""
    t0 = time.perf_counter()
    fixed_at_start = fixed_cost_counters()
    ctx = campaign_context(campaign_dir)
    _testhooks.in_task(partition_id)
    row = manifest_row(ctx.paths, partition_id)
    table = read_partition(row, ctx.profile.columns(), ctx.profile.optional_columns())
    dups = None
    if ctx.duplicates is not None:
        dups = ctx.duplicates.rows_in(row.file_index, row.row_start, row.row_stop)
    t_read = time.perf_counter()
    options = node_llm_options(ctx)
    t_llm = time.perf_counter()
    outcome = fit_table(table, ctx.profile, options, partition_id=partition_id, duplicate_rows=dups,
                        row_offset=row.row_start)
    t_fit = time.perf_counter()
    results = outcome.table
    if len(outcome.knowledge_delta):
        save_knowledge_delta(ctx.paths.knowledge_delta(partition_id), outcome.knowledge_delta)
    save_fit_configs(ctx.paths, outcome.configs)
    save_trail(ctx.paths.trail(partition_id), outcome.trail)
    timings = {"read_s": t_read - t0, "llm_service_s": t_llm - t_read, "fit_table_s": t_fit - t_llm,
               **fixed_costs_since(fixed_at_start)}
    save_partition_summary(ctx.paths.partition_summary(partition_id), outcome.summary, timings, run_id)
    marker = commit_partition(ctx.paths, partition_id, results, chunk_rows=ctx.meta.chunk_rows,
                              run_id=run_id, elapsed_s=time.perf_counter() - t0)
    del table, outcome, results
    release_freed_memory()
    return PartitionSummary(partition_id, marker.n_rows, marker.counts, marker.elapsed_s)


@lru_cache(maxsize=1)
def _libc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library is not glibc."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_freed_memory() -> None:
    """Give back what a finished partition freed, and drop what only it needed.

    Why: a worker runs hundreds of partitions. glibc and Arrow's allocator keep freed blocks, and
    the grid builder keeps its last prepared configurations (hundreds of MB for large ones); in
    one process over 8 100k-row partitions resident memory after each partition rose 1,037 →
    1,443 MB without this and 1,039 → 1,069 MB with ``malloc_trim(0)`` (the remedy Dask documents
    for the same symptom). The trim is a no-op where the C library is not glibc. It hands back
    only what is free: anything a process-wide cache still references (e.g. a caught exception,
    whose traceback pins the partition's frames) stays — see docs/CAMPAIGNS.md on the worker's
    high-water memory.
    """
    release_prepared()
    gc.collect()
    pa.default_memory_pool().release_unused()  # Arrow's allocator (mimalloc/jemalloc) keeps its own
    trim = _libc_malloc_trim()
    if trim is not None:
        trim(0)


def node_llm_options(ctx: CampaignContext) -> FitOptions:
    """The campaign's FitOptions, routed to this node's LLM service when the policy needs one.

    With ``policy: llm``, no ``llm_url`` and a site ``llm:`` section, the first task on a node
    starts the node's service (behind a node-local lock) and every worker on the node shares it
    (:func:`sedscale.serve.node.ensure_node_service`); otherwise the options are unchanged.
    """
    options = ctx.options
    site_llm = (ctx.meta.site or {}).get("llm")
    if options.policy != "llm" or options.llm is not None or not site_llm:
        return options
    # imported here: only campaigns that serve an LLM on their nodes load the serving layer
    from sedscale.serve.node import ensure_node_service
    from sedscale.serve.settings import LLMSettings

    node = ensure_node_service(LLMSettings.model_validate(site_llm), ctx.paths.llm_host_dir(socket.gethostname()),
                               ctx.paths.llm_stop_file)
    endpoint = LLMEndpoint.node_service(node.openai_client, ctx.workflow.llm_model or node.model)
    return dataclasses.replace(options, llm=endpoint)


def _json_bytes(data: Mapping[str, object]) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True, default=str).encode()


def save_partition_summary(path: Path, summary: TableSummary, timings: Mapping[str, float],
                           run_id: Optional[str]) -> Path:
    """What the task learnt besides the rows (fallbacks by reason, agent counts, where the time
    went), where it ran (``host``, ``pid``) and which machine code fitted it (``kernel``: loaded
    from sedscale's numba cache or compiled here, from numba's own cache statistics), as JSON
    beside the store; written before the commit, replaced on a rerun. Not fsync'ed into its
    directory: the commit that follows is."""
    record = {**summary.as_dict(), "timings": dict(timings), "host": socket.gethostname(), "pid": os.getpid(),
              "run_id": run_id, "kernel": kernel_provenance()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, _json_bytes(record), sync_dir=False)
    return path


def save_knowledge_delta(path: Path, delta: KnowledgeBase) -> Path:
    """The agent's knowledge gained in one partition, as readable JSON (merged order-independently
    by :meth:`sedscale.agent.KnowledgeBase.merge`); written before the commit, replaced on a rerun."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, _json_bytes(delta.to_dict()), sync_dir=False)
    return path


def save_trail(path: Path, trail: pa.Table) -> Path:
    """The agent's steps of one partition (``sedscale.agent.trail.TRAIL_SCHEMA``) as Parquet,
    written before the commit and replaced on a rerun. Written for every fitted partition, even
    with no rows (no source entered the loop, or policy ``none``), so ``export --trail`` can tell
    a partition without agent steps from one committed by a sedscale that kept no trail. Not
    fsync'ed into its directory: the commit that follows is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sink = pa.BufferOutputStream()
    pq.write_table(trail, sink)
    atomic_write(path, sink.getvalue().to_pybytes(), sync_dir=False)
    return path


def save_fit_configs(paths: CampaignPaths, configs: Mapping[str, FitConfig]) -> list[Path]:
    """Keep every configuration the partition's results name by ``fit_config_id``, as
    ``configs/<hash>.json`` (its canonical JSON, so the file's sha256 is its name), so a source's
    best model can be rebuilt later (``sedscale show``, the report's gallery).

    Content-addressed: a file already there holds the same bytes and is left alone, so tasks on
    many nodes may write the same configuration at once. Written before the commit, like the
    summaries; not fsync'ed into its directory (the commit that follows is)."""
    written = []
    for config_hash, config in sorted(configs.items()):
        path = paths.fit_config(config_hash)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, config.canonical_json().encode(), sync_dir=False)
        written.append(path)
    return written


def fail_partition(campaign_dir: str, partition_id: int, reason: str, run_id: Optional[str] = None) -> PartitionSummary:
    """Commit a partition whose task failed after every retry: its rows become ``failed``."""
    paths = CampaignPaths.at(campaign_dir)
    meta = read_meta(paths)
    row = manifest_row(paths, partition_id)
    n = row.n_rows
    try:
        id_col = str(meta.profile.get("id", "source_id"))
        ids = read_partition(row, [id_col]).column(0).combine_chunks()
        if len(ids) != n:
            raise ValueError("row count differs from the plan")
    except Exception:  # noqa: BLE001 - the ids are a courtesy; the rows must be accounted for
        ids = pa.nulls(n, pa.int64())
    table = failed_rows_table(ids, reason)
    marker = commit_partition(paths, partition_id, table, chunk_rows=meta.chunk_rows, run_id=run_id,
                              kind="failed", reason=reason)
    return PartitionSummary(partition_id, marker.n_rows, marker.counts, 0.0)
