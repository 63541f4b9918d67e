"""What a report reads from a campaign directory, read once and never written.

Inputs, all read-only (safe while nothing runs; a running campaign is reported as it stands):

* the committed results (the same rows ``sedscale export`` writes; read partition by partition
  from the store, trusting only partitions whose done-marker verifies);
* the done-markers (``committed_at``, the task's ``elapsed_s``, ``host``/``pid``);
* the run records ``state/runs/*.json`` (``started_at``, ``finished_at`` of each driver run);
* ``campaign.json`` (site shape, workflow, policy);
* the per-partition task summaries ``summaries/partition-*.json`` (fallbacks by reason, agent
  counts, where the task's time went), trusted only when written by the run that committed;
* the per-node LLM accounting ``llm/<host>/accounting*.json`` (busy GPU-seconds, attributed to
  sources by tokens: :mod:`sedscale.campaign.attribution`).

:class:`SourceColumns` turns the results table into the per-source arrays every section uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pyarrow as pa

from sedscale.tokens import TOKEN_COLUMNS, TokenCounts

if TYPE_CHECKING:
    from sedscale.campaign.attribution import GpuAttribution
    from sedscale.campaign.meta import CampaignMeta
    from sedscale.campaign.paths import CampaignPaths
    from sedscale.campaign.resume import Verify
    from sedscale.campaign.state import DoneMarker
    from sedscale.campaign.status import RunRecord


@dataclass
class CampaignData:
    """Everything a report reads from a campaign directory."""

    root: Path
    name: str
    meta: CampaignMeta
    results: pa.Table
    markers: list[DoneMarker]  # of every committed partition
    runs: list[RunRecord]
    partitions_total: int
    partitions_pending: list[int] = field(default_factory=list)
    knowledge_files: int = 0
    attribution: GpuAttribution | None = None
    summaries: dict[int, dict[str, Any]] = field(default_factory=dict)  # partition -> task summary (committing run's)
    summaries_stale: int = 0  # summaries of a run that did not commit the partition (ignored)


def load_campaign(root: str | Path, *, verify: Verify = "size") -> CampaignData:
    """Read a campaign's committed results, markers, run records, task summaries and node LLM
    accounting (never writes); ``gpu_seconds`` attributed as ``sedscale export`` does."""
    from sedscale.campaign.attribution import build_attribution
    from sedscale.campaign.manifest import partition_sizes
    from sedscale.campaign.meta import read_meta
    from sedscale.campaign.paths import CampaignPaths
    from sedscale.campaign.resume import plan_resume
    from sedscale.campaign.status import read_runs
    from sedscale.campaign.store import ResultsReader
    from sedscale.results import RESULTS_SCHEMA

    paths = CampaignPaths.at(root)
    meta = read_meta(paths)
    plan = plan_resume(paths, meta.n_partitions, verify=verify)
    sizes = partition_sizes(paths)
    committed = sorted(plan.done + plan.failed)
    markers = [plan.markers[p] for p in committed]
    attribution = build_attribution(paths, markers, meta)
    tables = []
    if committed:
        reader = ResultsReader(paths.results_zarr)
        for pid in committed:
            tables.append(attribution.apply(pid, reader.read_partition(pid, sizes[pid])))
    results = pa.concat_tables(tables) if tables else RESULTS_SCHEMA.empty_table()
    summaries, stale = read_summaries(paths, markers)
    knowledge = paths.knowledge_dir
    return CampaignData(
        root=paths.root, name=meta.name, meta=meta, results=results,
        markers=markers, runs=read_runs(paths),
        partitions_total=meta.n_partitions,
        partitions_pending=sorted(plan.pending + list(plan.corrupt)),
        knowledge_files=sum(1 for _ in knowledge.rglob("*.json")) if knowledge.is_dir() else 0,
        attribution=attribution, summaries=summaries, summaries_stale=stale,
    )


def read_summaries(paths: CampaignPaths, markers: list[DoneMarker]) -> tuple[dict[int, dict[str, Any]], int]:
    """The task summary of each committed partition, when written by the run that committed it
    (a summary left by an attempt that never committed describes other work: counted as stale)."""
    import json

    out: dict[int, dict[str, Any]] = {}
    stale = 0
    for m in markers:
        if m.kind != "done":
            continue
        try:
            doc = json.loads(paths.partition_summary(m.partition_id).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        if doc.get("run_id") is not None and m.run_id and doc.get("run_id") != m.run_id:
            stale += 1
            continue
        out[m.partition_id] = doc
    return out, stale


def column_array(t: pa.Table, name: str, dtype: type = float) -> np.ndarray:
    """Column ``name`` as floats (NaN kept), or as ``dtype`` with NaN as 0; zeros when absent."""
    if name not in t.column_names:
        return np.zeros(t.num_rows, dtype=dtype)
    arr = t.column(name).to_numpy(zero_copy_only=False)
    values: np.ndarray = np.asarray(arr, dtype=float)
    if dtype is float:
        return values
    converted: np.ndarray = np.nan_to_num(values).astype(dtype)
    return converted


def finite_or_none(x: float | None) -> Optional[float]:
    """``x`` when it is a finite number, else None (JSON has no NaN)."""
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def reason_code(reason: Optional[str]) -> str:
    """The code of a ``"code: detail"`` reason (what reports count by)."""
    if not reason:
        return "unknown"
    return reason.split(":", 1)[0].strip() or "unknown"


@dataclass
class SourceColumns:
    """The per-source result columns a report reads, once, as arrays (absent columns read as 0).

    ``agent`` marks the sources that entered the agent loop (steps or LLM calls); ``tokens`` holds
    the :data:`sedscale.tokens.TOKEN_COLUMNS` arrays by column name.
    """

    n: int
    fitted: np.ndarray
    quarantined: np.ndarray
    failed: np.ndarray
    reasons: list[Optional[str]]
    steps: np.ndarray
    tokens: dict[str, np.ndarray]
    gpu_s: np.ndarray
    fit_s: np.ndarray
    accepted: np.ndarray
    chi2: np.ndarray

    @classmethod
    def of(cls, t: pa.Table) -> SourceColumns:
        n = t.num_rows
        status = np.asarray(t.column("status").to_pylist() if n else [], dtype=object)
        fitted = status == "fitted"
        return cls(
            n=n, fitted=fitted, quarantined=status == "quarantined", failed=status == "failed",
            reasons=t.column("reason").to_pylist() if n else [],
            steps=column_array(t, "agent_steps", np.int64),
            tokens={c: column_array(t, c, np.int64) for c in TOKEN_COLUMNS},
            gpu_s=np.nan_to_num(column_array(t, "gpu_seconds")), fit_s=np.nan_to_num(column_array(t, "fit_seconds")),
            accepted=column_array(t, "accepted", np.int64).astype(bool) & fitted, chi2=column_array(t, "chi2_red"),
        )

    @property
    def calls(self) -> np.ndarray:
        return self.tokens["llm_calls"]

    @property
    def agent(self) -> np.ndarray:
        return (self.steps > 0) | (self.calls > 0)

    @property
    def n_agent(self) -> int:
        return int(self.agent.sum())

    @property
    def n_fitted(self) -> int:
        return int(self.fitted.sum())

    def token_totals(self) -> TokenCounts:
        """The campaign's tokens and LLM calls summed over its sources."""
        return TokenCounts(prompt=int(self.tokens["tokens_prompt"].sum()),
                           completion=int(self.tokens["tokens_completion"].sum()),
                           cached=int(self.tokens["tokens_cached"].sum()), requests=int(self.calls.sum()))
