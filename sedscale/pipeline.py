"""The per-partition work of a campaign, as plain functions that engines only map.

:func:`process_partition` reads one partition's rows through the catalog layer, runs the
algorithm every fit shares (:func:`sedscale.fitting.fit_table`: validate → triage → agent →
results) and commits the rows atomically to the campaign store, with the partition's knowledge
delta beside them. Engines call it with plain arguments (campaign directory, partition id, run
id), never tables; the agent's seeds derive from (partition id, source id) only.
"""

from __future__ import annotations

import ctypes
import gc
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from sedscale.fitting import empty_result_columns
from sedscale.results import RESULTS_SCHEMA, STATUS_FAILED


@dataclass
class PartitionSummary:
    """What a task reports back to the driver (tiny; the rows are already committed)."""

    partition_id: int
    n_rows: int
    counts: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0


# --- I/O around it: one task of a campaign ----------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """Everything a task needs that is the same for every partition of a campaign."""

    paths: Any
    meta: Any
    profile: Any
    workflow: Any
    options: Any  # sedscale.fitting.FitOptions
    duplicates: Any


@lru_cache(maxsize=4)
def _context(root: str, meta_mtime_ns: int) -> _Context:
    from sedscale.campaign.meta import read_meta
    from sedscale.campaign.paths import CampaignPaths
    from sedscale.campaign.workflow import Workflow
    from sedscale.catalog.duplicates import DuplicateIndex
    from sedscale.catalog.profiles import CatalogProfile

    from sedscale.fitting import FitOptions

    paths = CampaignPaths.at(root)
    meta = read_meta(paths)
    workflow = Workflow.model_validate(meta.workflow)
    duplicates = DuplicateIndex.read(paths.duplicates_index) if meta.has_duplicate_index else None
    options = FitOptions(
        fit_config=workflow.fit_config(), rules=workflow.validation_rules(), acceptance=workflow.acceptance,
        photoz=workflow.photoz, policy=workflow.policy, budgets=workflow.budgets, llm_url=workflow.llm_url,
        llm_model=workflow.llm_model, cache_dir=paths.cache_dir,
    )
    return _Context(paths, meta, CatalogProfile.model_validate(meta.profile), workflow, options, duplicates)


def campaign_context(root: str) -> _Context:
    """The cached per-process context of a campaign (re-read if campaign.json changes)."""
    from sedscale.campaign.paths import CampaignPaths

    paths = CampaignPaths.at(root)
    return _context(str(paths.root), paths.campaign_json.stat().st_mtime_ns)


def process_partition(campaign_dir: str, partition_id: int, run_id: Optional[str] = None) -> PartitionSummary:
    """Read, validate, fit and commit one partition of a campaign (what an engine maps)."""
    from sedscale.campaign import _testhooks
    from sedscale.campaign.commit import commit_partition
    from sedscale.campaign.manifest import manifest_row
    from sedscale.catalog.read import read_partition
    from sedscale.fitting import fit_table

    t0 = time.perf_counter()
    ctx = campaign_context(campaign_dir)
    _testhooks.in_task(partition_id)
    row = manifest_row(ctx.paths, partition_id)
    table = read_partition(row, ctx.profile.columns())
    dups = None
    if ctx.duplicates is not None:
        dups = ctx.duplicates.rows_in(int(row["file_index"]), int(row["row_start"]), int(row["row_stop"]))
    t_read = time.perf_counter()
    options = node_llm_options(ctx)
    t_llm = time.perf_counter()
    outcome = fit_table(table, ctx.profile, options, partition_id=partition_id, duplicate_rows=dups,
                        row_offset=int(row["row_start"]))
    t_fit = time.perf_counter()
    results = outcome.table
    if outcome.knowledge_delta is not None and len(outcome.knowledge_delta):
        save_knowledge_delta(ctx.paths.knowledge_delta(partition_id), outcome.knowledge_delta)
    timings = {"read_s": t_read - t0, "llm_service_s": t_llm - t_read, "fit_table_s": t_fit - t_llm}
    save_partition_summary(ctx.paths.partition_summary(partition_id), outcome.summary, timings, run_id)
    marker = commit_partition(ctx.paths, partition_id, results, chunk_rows=ctx.meta.chunk_rows,
                              run_id=run_id, elapsed_s=time.perf_counter() - t0)
    del table, outcome, results
    release_freed_memory()
    return PartitionSummary(partition_id, marker.n_rows, marker.counts, marker.elapsed_s)


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
    global _malloc_trim
    from sedscale.sed.builder import release_prepared

    release_prepared()
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    gc.collect()
    pa.default_memory_pool().release_unused()  # Arrow's allocator (mimalloc/jemalloc) keeps its own
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


def node_llm_options(ctx: _Context) -> Any:
    """The campaign's FitOptions, routed to this node's LLM service when the policy needs one.

    With ``policy: llm``, no ``llm_url`` and a site ``llm:`` section, the first task on a node
    starts the node's service (behind a node-local lock) and every worker on the node shares it
    (:func:`sedscale.serve.node.ensure_node_service`); otherwise the options are unchanged.
    """
    import dataclasses

    options = ctx.options
    site_llm = (ctx.meta.site or {}).get("llm")
    if options.policy != "llm" or options.llm_url or options.llm_client is not None or not site_llm:
        return options
    from sedscale.serve.node import ensure_node_service
    from sedscale.serve.settings import LLMSettings

    node = ensure_node_service(LLMSettings.model_validate(site_llm), ctx.paths.llm_dir)
    return dataclasses.replace(options, llm_client_factory=node.openai_client,
                               llm_model=options.llm_model or node.model)


def save_partition_summary(path: Path, summary: dict, timings: dict, run_id: Optional[str]) -> Path:
    """What the task learnt besides the rows (fallbacks by reason, agent counts, where the time
    went), as JSON beside the store; written before the commit, replaced on a rerun."""
    import os
    import socket

    record = {**summary, "timings": timings, "host": socket.gethostname(), "pid": os.getpid(), "run_id": run_id}
    return _write_json_durable(path, record)


def _write_json_durable(path: Path, data: Any) -> Path:
    """``data`` as readable JSON at ``path``, replaced atomically (the campaign's own atomic_write)."""
    import json

    from sedscale.fsutil import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True, default=str).encode(), sync_dir=False)
    return path


def save_knowledge_delta(path: Path, delta: Any) -> Path:
    """The agent's knowledge gained in one partition, as readable JSON (merged order-independently
    by :meth:`sedscale.agent.KnowledgeBase.merge`); written before the commit, replaced on a rerun."""
    return _write_json_durable(path, delta.to_dict())


def failed_rows_table(source_ids: pa.Array, reason: str) -> pa.Table:
    """Every row of a partition as ``failed`` with ``reason`` (ids kept where readable)."""
    n = len(source_ids)
    cols = empty_result_columns(n)
    cols["status"] = np.full(n, STATUS_FAILED, dtype=object)
    cols["reason"] = np.full(n, reason, dtype=object)
    cols["source_id"] = source_ids.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    masks = {f.name: np.ones(n, dtype=bool) for f in RESULTS_SCHEMA if pa.types.is_floating(f.type)}
    masks.update({"accepted": np.ones(n, bool), "n_bands": np.ones(n, bool),
                  "source_id": source_ids.is_null().to_numpy(zero_copy_only=False)})
    arrays = [pa.array(cols[f.name], type=f.type, mask=masks.get(f.name)) for f in RESULTS_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=RESULTS_SCHEMA)


def fail_partition(campaign_dir: str, partition_id: int, reason: str, run_id: Optional[str] = None) -> PartitionSummary:
    """Commit a partition whose task failed after every retry: its rows become ``failed``."""
    from sedscale.campaign.commit import commit_partition
    from sedscale.campaign.manifest import manifest_row
    from sedscale.campaign.meta import read_meta
    from sedscale.campaign.paths import CampaignPaths

    paths = CampaignPaths.at(campaign_dir)
    meta = read_meta(paths)
    row = manifest_row(paths, partition_id)
    n = int(row["n_rows"])
    try:
        from sedscale.catalog.read import read_partition

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
