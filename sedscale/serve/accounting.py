"""GPU-seconds a node's LLM service held and used, and who used them.

Definitions (DESIGN.md: "GPU-hours are measured, not guessed"):

* **allocated** = wall time the service held its devices × devices held
  (``instances × tensor_parallel_size``), restarts included — a device waiting for a restart is
  still held.
* **busy** = per instance, the time with at least one request in flight × that instance's devices.
  Method: *derived from request intervals*. The router calls :meth:`Accountant.request_started` /
  :meth:`~Accountant.request_finished` around every request; an instance is busy from the moment
  its in-flight count goes 0 → 1 until it returns to 0 — the exact union of the request intervals,
  counted in O(1) per request with no sampling error. It includes the few milliseconds of HTTP
  and queueing around the engine's work, so it is an upper bound on engine time; it can never
  exceed allocated. Traffic that bypasses this router is invisible to it: when several processes
  share a node's instances, use :class:`~sedscale.serve.service.LLMService`'s sampled figure
  (``vllm:num_requests_running`` polled from ``/metrics``) instead.
* **attribution**: a window's busy and allocated GPU-seconds are split over the sources that sent
  requests in it in proportion to their tokens (prompt + completion). A "source" here is any label
  the caller attaches to a request; serve/ knows nothing of what it names.

On a CPU-only site ``devices = 0``: every GPU-second figure is 0 by construction (the CPU time is
real but is not GPU time); the busy *seconds* are still reported.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Hashable, Mapping

from sedscale.tokens import TokenCounts


def _count(value: object) -> int:
    """A token count of a parsed JSON reply (a number, or a numeric string), 0 when absent."""
    return int(value) if value and isinstance(value, (int, float, str)) else 0


def counts_from_usage(usage: Mapping[str, object] | None) -> TokenCounts:
    """One request's tokens from an OpenAI-style ``usage`` mapping (the router's parsed reply body;
    ``prompt_tokens_details.cached_tokens`` optional); a reply without one counts as a request."""
    if not usage:
        return TokenCounts(requests=1)
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    return TokenCounts(
        prompt=_count(usage.get("prompt_tokens")),
        completion=_count(usage.get("completion_tokens")),
        cached=_count(cached),
        requests=1,
    )


@dataclass(frozen=True)
class AccountingSnapshot:
    """Cumulative figures at one moment; subtract two to get a window (e.g. one partition)."""

    at: float
    wall_s: float
    devices: int
    allocated_gpu_s: float
    busy_s: tuple[float, ...]  # per instance, seconds with ≥ 1 request in flight
    busy_gpu_s: float
    tokens: TokenCounts
    tokens_by_source: dict[Hashable, TokenCounts] = field(default_factory=dict)

    def __sub__(self, earlier: "AccountingSnapshot") -> "AccountingSnapshot":
        by_source = {
            key: counts.minus(earlier.tokens_by_source.get(key, TokenCounts()))
            for key, counts in self.tokens_by_source.items()
        }
        return AccountingSnapshot(
            at=self.at,
            wall_s=self.wall_s - earlier.wall_s,
            devices=self.devices,
            allocated_gpu_s=self.allocated_gpu_s - earlier.allocated_gpu_s,
            busy_s=tuple(a - b for a, b in zip(self.busy_s, earlier.busy_s)),
            busy_gpu_s=self.busy_gpu_s - earlier.busy_gpu_s,
            tokens=self.tokens.minus(earlier.tokens),
            tokens_by_source={k: v for k, v in by_source.items() if v.requests},
        )

    def attribute(self) -> dict[Hashable, "SourceShare"]:
        """This window's GPU-seconds split over its sources by token share."""
        return attribute(self.busy_gpu_s, self.allocated_gpu_s, self.tokens_by_source)


@dataclass(frozen=True)
class SourceShare:
    """One source's part of a window."""

    tokens: TokenCounts
    weight: float
    busy_gpu_s: float
    allocated_gpu_s: float


def attribute(
    busy_gpu_s: float, allocated_gpu_s: float, tokens_by_source: Mapping[Hashable, TokenCounts]
) -> dict[Hashable, SourceShare]:
    """Split GPU-seconds over sources in proportion to prompt + completion tokens.

    Shares sum to the inputs (up to rounding). With no tokens at all nothing is attributed: idle
    allocated time belongs to the node, not to any source.
    """
    total = sum(c.total for c in tokens_by_source.values())
    shares: dict[Hashable, SourceShare] = {}
    for key, counts in tokens_by_source.items():
        weight = counts.total / total if total else 0.0
        shares[key] = SourceShare(counts, weight, busy_gpu_s * weight, allocated_gpu_s * weight)
    return shares


class Accountant:
    """Thread-safe running totals for one node's service (fed by the router)."""

    def __init__(
        self,
        n_instances: int,
        devices_per_instance: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.n_instances = n_instances
        self.devices_per_instance = devices_per_instance
        self._clock = clock
        self._lock = threading.Lock()
        self._started_at = clock()
        self._stopped_at: float | None = None
        self._in_flight = [0] * n_instances
        self._busy_since: list[float | None] = [None] * n_instances
        self._busy_total = [0.0] * n_instances
        self._tokens = TokenCounts()
        self._by_source: dict[Hashable, TokenCounts] = {}

    @property
    def devices(self) -> int:
        """Devices the service holds (0 on CPU)."""
        return self.n_instances * self.devices_per_instance

    def request_started(self, instance: int) -> None:
        """A request was sent to ``instance``."""
        with self._lock:
            if self._in_flight[instance] == 0:
                self._busy_since[instance] = self._clock()
            self._in_flight[instance] += 1

    def request_finished(
        self, instance: int, usage: Mapping[str, object] | None = None, source: Hashable | None = None
    ) -> None:
        """The request to ``instance`` ended (answered, failed or retried elsewhere)."""
        with self._lock:
            self._in_flight[instance] -= 1
            if self._in_flight[instance] == 0:
                since = self._busy_since[instance]
                if since is not None:
                    self._busy_total[instance] += self._clock() - since
                self._busy_since[instance] = None
            if usage is not None:
                counts = counts_from_usage(usage)
                self._tokens.add(counts)
                if source is not None:
                    self._by_source.setdefault(source, TokenCounts()).add(counts)

    def stop(self) -> None:
        """Freeze wall time (the devices are released)."""
        with self._lock:
            if self._stopped_at is None:
                self._stopped_at = self._clock()

    def snapshot(self) -> AccountingSnapshot:
        """Cumulative figures now (open busy intervals counted up to now)."""
        with self._lock:
            now = self._clock() if self._stopped_at is None else self._stopped_at
            busy = tuple(
                total + (now - since if since is not None else 0.0)
                for total, since in zip(self._busy_total, self._busy_since)
            )
            wall = now - self._started_at
            return AccountingSnapshot(
                at=now,
                wall_s=wall,
                devices=self.devices,
                allocated_gpu_s=wall * self.devices,
                busy_s=busy,
                busy_gpu_s=sum(busy) * self.devices_per_instance,
                tokens=TokenCounts(**vars(self._tokens)),
                tokens_by_source={k: TokenCounts(**vars(v)) for k, v in self._by_source.items()},
            )
