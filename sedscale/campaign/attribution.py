"""GPU-seconds per source, attributed from each node's LLM busy time by tokens.

The per-node LLM service (:mod:`sedscale.serve.node`) writes ``CAMPAIGN/llm/<host>/accounting-<start>-<pid>.json`` (one per daemon)
every few seconds and when it stops: the node's allocated and *busy* device-seconds (busy = time
with a request running, sampled from vLLM's ``/metrics``, × devices per instance) and the token
counters of its servers. This module turns those node totals into a figure per source, at export
and report time (the committed partitions are never rewritten):

    gpu_seconds(source) = busy_gpu_s(host) × tokens(source) / tokens(all committed sources of host)

with ``tokens = tokens_prompt + tokens_completion`` and ``host`` the node that committed the
source's partition (its done-marker's ``host``). The busy time of a host is therefore spread over
exactly the sources fitted there, and sums back to it: prefix warm-up requests, retried attempts
and partitions recomputed after a crash cost busy time that lands on the sources that were kept.

Reading is tolerant: every ``llm/<dir>/accounting*.json`` counts (one per daemon start if the
service keeps them apart; a file may also hold a list of records), records are de-duplicated by
(host, daemon pid, start time), unreadable files are skipped and reported. Where no node
accounting exists — an external server (``--llm-url``), a policy without LLM calls, an old
campaign — nothing is invented: rows keep the ``gpu_seconds`` they were committed with (0 from
the pipeline) and :attr:`GpuAttribution.note` says why. On CPU devices the busy *GPU*-seconds are
0 by construction (devices = 0); the busy instance-seconds are still reported.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
import pyarrow as pa

from sedscale.campaign.paths import CampaignPaths

ACCOUNTING_GLOB = "accounting*.json"


@dataclass
class HostAccounting:
    """One node: its LLM services' accounting (all daemon starts) and its committed tokens."""

    host: str
    services: int = 0  # accounting records (daemon starts) found
    allocated_gpu_s: float = 0.0
    busy_gpu_s: float = 0.0
    busy_instance_s: float = 0.0
    devices_per_node: int = 0
    service_seconds: float = 0.0  # Σ (stopped_at or updated_at) − started_at
    running: int = 0  # records without stopped_at (a live or killed daemon)
    metrics_prompt_tokens: float = 0.0
    metrics_generation_tokens: float = 0.0
    metrics_requests: float = 0.0
    partitions: int = 0  # committed partitions of this host
    tokens: float = 0.0  # prompt + completion tokens of the committed sources of this host

    @property
    def gpu_s_per_token(self) -> float:
        return self.busy_gpu_s / self.tokens if self.tokens > 0 else 0.0

    @property
    def attributed_gpu_s(self) -> float:
        return self.busy_gpu_s if self.tokens > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host, "services": self.services, "running": self.running,
            "devices_per_node": self.devices_per_node, "service_seconds": self.service_seconds,
            "allocated_gpu_s": self.allocated_gpu_s, "busy_gpu_s": self.busy_gpu_s,
            "busy_instance_s": self.busy_instance_s, "partitions": self.partitions, "tokens": self.tokens,
            "metrics_tokens": self.metrics_prompt_tokens + self.metrics_generation_tokens,
            "metrics_requests": self.metrics_requests, "gpu_s_per_token": self.gpu_s_per_token,
            "attributed_gpu_s": self.attributed_gpu_s,
            "unattributed_gpu_s": self.busy_gpu_s - self.attributed_gpu_s,
        }


@dataclass
class GpuAttribution:
    """Node accounting joined with the committed partitions; applies per-source GPU-seconds."""

    hosts: dict[str, HostAccounting] = field(default_factory=dict)
    partition_host: dict[int, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def has_accounting(self) -> bool:
        return any(h.services for h in self.hosts.values())

    def rate(self, partition_id: int) -> Optional[float]:
        """GPU-seconds per token of the host that committed ``partition_id``; None when that
        host has no node accounting (keep the stored column)."""
        h = self.hosts.get(self.partition_host.get(partition_id, ""))
        if h is None or not h.services:
            return None
        return h.gpu_s_per_token

    def gpu_seconds(self, partition_id: int, table: pa.Table) -> Optional[np.ndarray]:
        rate = self.rate(partition_id)
        if rate is None:
            return None
        tokens = _tokens(table)
        return tokens * rate

    def apply(self, partition_id: int, table: pa.Table) -> pa.Table:
        """``table`` with ``gpu_seconds`` attributed (unchanged when the host has no accounting)."""
        values = self.gpu_seconds(partition_id, table)
        if values is None or "gpu_seconds" not in table.column_names:
            return table
        i = table.schema.get_field_index("gpu_seconds")
        return table.set_column(i, table.schema.field(i), pa.array(values, type=pa.float64()))

    def totals(self) -> dict[str, float]:
        hs = self.hosts.values()
        return {
            "allocated_gpu_s": sum(h.allocated_gpu_s for h in hs),
            "busy_gpu_s": sum(h.busy_gpu_s for h in hs),
            "busy_instance_s": sum(h.busy_instance_s for h in hs),
            "attributed_gpu_s": sum(h.attributed_gpu_s for h in hs),
            "unattributed_gpu_s": sum(h.busy_gpu_s - h.attributed_gpu_s for h in hs),
            "service_seconds": sum(h.service_seconds for h in hs),
        }

    def as_dict(self) -> dict[str, Any]:
        return {"method": "busy GPU-s of the node x source tokens / tokens of all committed sources of the node",
                "has_node_accounting": self.has_accounting, "note": self.note, **self.totals(),
                "hosts": [h.as_dict() for h in sorted(self.hosts.values(), key=lambda h: h.host)],
                "unreadable_files": self.unreadable}


def _tokens(table: pa.Table) -> np.ndarray:
    out = np.zeros(table.num_rows, dtype=float)
    for name in ("tokens_prompt", "tokens_completion"):
        if name in table.column_names:
            out += np.nan_to_num(np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=float))
    return out


def _num(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return 0.0
    return x if math.isfinite(x) else 0.0


def read_node_accounting(llm_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every accounting record under ``llm_dir`` (``<host>/accounting*.json``), de-duplicated;
    returns (records, unreadable file names). Each record gets ``host`` (the field, else the
    folder name)."""
    records: dict[tuple[str, Any, Any], dict[str, Any]] = {}
    unreadable: list[str] = []
    if not llm_dir.is_dir():
        return [], []
    for path in sorted(llm_dir.glob(f"*/{ACCOUNTING_GLOB}")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            unreadable.append(f"{path.relative_to(llm_dir)}: {exc}")
            continue
        for rec in doc if isinstance(doc, list) else [doc]:
            if not isinstance(rec, dict):
                unreadable.append(f"{path.relative_to(llm_dir)}: not an accounting record")
                continue
            rec = dict(rec)
            rec["host"] = str(rec.get("host") or path.parent.name)
            key = (rec["host"], rec.get("daemon_pid"), rec.get("started_at"))
            old = records.get(key)
            if old is None or _num(rec.get("updated_at")) >= _num(old.get("updated_at")):
                records[key] = rec  # the newest snapshot of the same daemon
    return list(records.values()), unreadable


def _policy_note(meta: Any) -> str:
    wf = getattr(meta, "workflow", None) or {}
    policy = str(wf.get("policy", "?"))
    if policy != "llm":
        return f"policy {policy}: no LLM calls, so no LLM GPU-seconds to attribute"
    if wf.get("llm_url"):
        return ("the LLM was an external server (llm_url / --llm-url): its busy time is not recorded in this "
                "campaign (no CAMPAIGN/llm/<host>/accounting-*.json), so per-source GPU-seconds are 0, not estimated")
    site_llm = (getattr(meta, "site", None) or {}).get("llm")
    if not site_llm:
        return "the site has no llm: section and no llm_url was given: no LLM service ran, no GPU-seconds"
    return ("no node LLM accounting found under CAMPAIGN/llm/<host>/ (the node service never started or wrote "
            "nothing): per-source GPU-seconds are 0, not estimated")


def build_attribution(paths: CampaignPaths, markers: Iterable[Any], meta: Any = None) -> GpuAttribution:
    """Join the node accounting with the committed partitions (``markers``: DoneMarker of each)."""
    records, unreadable = read_node_accounting(paths.llm_dir)
    att = GpuAttribution(unreadable=unreadable)
    for rec in records:
        h = att.hosts.setdefault(rec["host"], HostAccounting(rec["host"]))
        h.services += 1
        h.allocated_gpu_s += _num(rec.get("allocated_gpu_s"))
        h.busy_gpu_s += _num(rec.get("busy_gpu_s"))
        h.busy_instance_s += _num(rec.get("busy_instance_s"))
        h.devices_per_node = max(h.devices_per_node, int(_num(rec.get("devices_per_node"))))
        end = _num(rec.get("stopped_at")) or _num(rec.get("updated_at"))
        start = _num(rec.get("started_at"))
        if end and start:
            h.service_seconds += max(0.0, end - start)
        if rec.get("stopped_at") is None:
            h.running += 1
        m = rec.get("metrics") or {}
        h.metrics_prompt_tokens += _num(m.get("prompt_tokens"))
        h.metrics_generation_tokens += _num(m.get("generation_tokens"))
        h.metrics_requests += _num(m.get("requests"))
    for mk in markers:
        host = str(getattr(mk, "host", "") or "")
        att.partition_host[int(mk.partition_id)] = host
        extra = getattr(mk, "extra", None) or {}
        tokens = _num(extra.get("tokens_prompt")) + _num(extra.get("tokens_completion"))
        if host in att.hosts or tokens:
            h = att.hosts.setdefault(host, HostAccounting(host))
            h.partitions += 1
            h.tokens += tokens

    with_acc = [h for h in att.hosts.values() if h.services]
    without = sorted(h.host or "?" for h in att.hosts.values() if not h.services and h.tokens)
    if not with_acc:
        att.note = _policy_note(meta)
    else:
        devices = sum(h.devices_per_node for h in with_acc)
        busy = sum(h.busy_gpu_s for h in with_acc)
        if devices == 0:
            att.note = (f"node LLM services on {len(with_acc)} host(s) ran on CPU (0 devices): GPU-seconds are 0 "
                        f"by construction; busy instance-seconds {sum(h.busy_instance_s for h in with_acc):.1f}")
        else:
            done = sum(h.attributed_gpu_s for h in with_acc)
            att.note = (f"{done:.1f} of {busy:.1f} busy GPU-s of the node LLM services on {len(with_acc)} host(s) "
                        "attributed to sources by their share of prompt + completion tokens on the same host")
        idle = sorted(h.host for h in with_acc if h.busy_gpu_s > 0 and h.tokens <= 0)
        if idle:
            att.note += f"; busy time of {', '.join(idle)} has no committed tokens to land on (unattributed)"
    if without:
        att.note += (("; " if att.note else "") + f"host(s) {', '.join(without)} committed LLM tokens but have "
                     "no node accounting: their sources keep gpu_seconds as committed (0)")
    if unreadable:
        att.note += f"; {len(unreadable)} unreadable accounting file(s) skipped"
    return att
