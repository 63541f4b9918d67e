"""The agent's re-fits: queued (source, configuration) jobs fitted in worker threads, grouped.

A free worker takes the oldest job and the queued jobs of the same configuration hash (up to
``max_group``; None: all), so sources that asked for the same configuration while earlier fits
ran share one vectorized call (and one prepared configuration); the others stay queued and may
gain members meanwhile. The cap keeps the policy fed: a re-fit costs per source (its own redshift
nodes), so one call for 40 sources would hold all 40 back from their next LLM request for its
whole duration and send them at once (a burst, then an idle server); in calls of a few sources
they return to the policy in a steady stream.

Grouping depends on timing, so it must never change a number: the fitter works row by row and
its grids do not depend on which sources share a call (the SED layer's contract, docs/FITTER.md);
tests/agent/test_partition_independence.py holds the agent to it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from sedscale.agent.acceptance import FitRows, SourceFit, source_fits
from sedscale.agent.clocks import AgentClocks
from sedscale.catalog.photometry import Photometry
from sedscale.sed.config import FitConfig


class FitFunction(Protocol):
    """The signature of :func:`sedscale.sed.api.fit_photometry` the agent calls."""

    def __call__(self, phot: Photometry, config: FitConfig, *, photoz: bool = False,
                  cache_dir: Path | None = None) -> FitRows: ...


def default_fit() -> FitFunction:
    """:func:`sedscale.sed.api.fit_photometry` (imported on first use: the agent's import stays light)."""
    from sedscale.sed.api import fit_photometry

    return fit_photometry


@dataclass(frozen=True)
class FitAnswer:
    """One source's share of a re-fit call: its fit (None when the call failed), the error text,
    and its share of the call's seconds."""

    fit: SourceFit | None
    error: str
    seconds: float


@dataclass
class _FitJob:
    index: int
    config: FitConfig
    future: asyncio.Future[FitAnswer]


class FitRunner:
    """Fits queued jobs in ``workers`` threads, grouped by configuration (module docstring).

    ``overlap`` False: phases — no fit starts while some source waits on the policy (the loop
    waits in turn for :attr:`fitting` to reach 0 before asking the policy); :attr:`changed` is set
    whenever a policy call or a fit ends.
    """

    def __init__(self, fit_fn: FitFunction, phot: Photometry, *, photoz: bool, cache_dir: Path | None,
                 clocks: AgentClocks, workers: int = 1, overlap: bool = True, max_group: int | None = 8) -> None:
        if workers < 1:
            raise ValueError("fit_workers must be >= 1")
        if max_group is not None and max_group < 1:
            raise ValueError("fit_group must be >= 1")
        self.max_group = max_group
        self.overlap = overlap
        self.changed = asyncio.Event()
        self.fitting = 0  # groups taken from the queue and not finished
        self.fit_fn, self.phot, self.photoz, self.cache_dir = fit_fn, phot, photoz, cache_dir
        self.clocks = clocks
        self.queue: list[_FitJob] = []
        self.wake = asyncio.Event()
        self.slots = asyncio.Semaphore(workers)
        self.tasks: set[asyncio.Task[None]] = set()
        self.seconds = 0.0  # summed fit-call durations (= the refit union with one worker)

    async def fit(self, index: int, config: FitConfig) -> FitAnswer:
        """Queue source ``index`` under ``config`` and wait for its share of a fit call."""
        job = _FitJob(index, config, asyncio.get_running_loop().create_future())
        self.queue.append(job)
        self.wake.set()
        return await job.future

    async def run(self) -> None:
        """Dispatch forever (cancelled by the loop when every source has stopped)."""
        try:
            while True:
                await self.slots.acquire()
                await self._wait_for_work()
                group = self._take_group()
                self.fitting += 1
                task = asyncio.create_task(self._fit_group(group))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        finally:
            for task in list(self.tasks):
                task.cancel()

    async def _wait_for_work(self) -> None:
        """Until a job is queued (and, in phases, no source waits on the policy)."""
        while not self.queue or (not self.overlap and self.clocks.llm.running):
            self.wake.clear()
            self.changed.clear()
            waits = {asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(self.changed.wait())}
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in pending:
                w.cancel()

    def _take_group(self) -> list[_FitJob]:
        """The oldest job and queued jobs of its configuration (at most ``max_group``)."""
        h = self.queue[0].config.hash()
        group = [j for j in self.queue if j.config.hash() == h][: self.max_group]
        taken = {id(j) for j in group}
        self.queue = [j for j in self.queue if id(j) not in taken]
        return group

    async def _fit_group(self, group: list[_FitJob]) -> None:
        idx = np.array([j.index for j in group], dtype=np.int64)
        t0 = time.perf_counter()
        try:
            with self.clocks.span(self.clocks.fit):
                result = await asyncio.to_thread(self.fit_fn, self.phot.take(idx), group[0].config,
                                                 photoz=self.photoz, cache_dir=self.cache_dir)
            fits: list[SourceFit | None] = list(source_fits(result))
            if len(fits) != len(group):
                raise RuntimeError(f"the fit returned {len(fits)} rows for {len(group)} sources")
            error = ""
        except Exception as exc:  # noqa: BLE001 — one bad configuration must not sink the partition
            fits = [None] * len(group)
            error = f"fit_error: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
        finally:
            self.fitting -= 1
            self.slots.release()
            self.changed.set()
        dt = time.perf_counter() - t0
        self.seconds += dt
        for job, f in zip(group, fits):
            if not job.future.done():
                job.future.set_result(FitAnswer(f, error, dt / len(group)))
