"""The engine interface: map a partition task over partition ids, retry, report, shut down.

An engine only needs ``start``, ``submit`` (returning a :class:`concurrent.futures.Future`) and
``shutdown``; bounded submission, completion order and retries are shared here, so Parsl and
Dask behave the same and results cannot depend on the back end. Tasks are named by an import
reference (``"sedscale.pipeline:process_partition"``) and receive plain arguments (paths, ids,
run id) — never tables — so engines stay free of SED physics and task payloads stay tiny.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from sedscale.engines.jobs import JobRecorder
from sedscale.engines.processes import ProcessRecorder


def resolve_task(ref: str) -> Callable[..., Any]:
    """The function named by ``"package.module:function"``."""
    module, _, name = ref.partition(":")
    if not module or not name:
        raise ValueError(f"task reference {ref!r} is not 'module:function'")
    return getattr(importlib.import_module(module), name)


def run_task(ref: str, *args: Any) -> Any:
    """What workers execute: import the task by reference and call it (picklable by name)."""
    return resolve_task(ref)(*args)


THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def worker_thread_env(threads: int) -> dict[str, str]:
    """Thread counts pinned in every worker, by every engine.

    Why: BLAS (and numba) results depend on the thread count at the last-bit level (blocked
    summation order), and Dask's nanny pins 1 thread by default while Parsl pins none; pinning
    the same count everywhere makes results independent of the engine (and avoids
    oversubscribing cores that other workers use).
    """
    return {name: str(max(1, int(threads))) for name in THREAD_ENV_VARS}


def describe_exception(exc: BaseException) -> str:
    """One-line reason for a failed task: type and message (the first line, trimmed)."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:500]


@dataclass
class TaskOutcome:
    """The final word on one partition: its value, or the reason it failed after every retry."""

    partition_id: int
    ok: bool
    value: Any = None
    error: str = ""
    attempts: int = 1


@dataclass(frozen=True)
class RunFiles:
    """Where an engine records what it started, for a later driver to stop (paths handed in by
    the driver from ``CampaignPaths``): batch job ids (HPC sites) and local processes."""

    jobs: Optional[Path] = None
    processes: Optional[Path] = None


class Engine(ABC):
    """A started back end that runs task calls on workers."""

    name = "engine"
    scheduler = "local"
    run_files: RunFiles = RunFiles()
    #: variables the scheduler's commands need (a site's ``scheduler_options.environment``)
    scheduler_environment: dict[str, str] = {}
    _job_recorder: Optional[JobRecorder] = None
    _process_recorder: Optional[ProcessRecorder] = None

    def job_ids(self) -> list[str]:
        """Batch job ids this engine submitted (none for local engines)."""
        return []

    def process_roots(self) -> list[int]:
        """Pids of processes this engine started outside the driver's own process tree."""
        return []

    def _start_recorders(self) -> None:
        """Start recording job ids and local processes (called by ``start`` once workers exist)."""
        if self.run_files.processes is not None:
            self._process_recorder = ProcessRecorder(self.run_files.processes, self.process_roots)
            self._process_recorder.start()
        if self.run_files.jobs is not None and self.scheduler != "local":
            self._job_recorder = JobRecorder(self.run_files.jobs, self.scheduler, self.job_ids,
                                             environment=self.scheduler_environment)
            self._job_recorder.start()

    def _record_jobs_now(self) -> None:
        if self._job_recorder is not None:
            self._job_recorder.record()

    def _stop_recorders(self) -> None:
        """The engine shut its workers down: nothing is left for a later driver to stop."""
        if self._job_recorder is not None:
            self._job_recorder.stop(clean=True)
            self._job_recorder = None
        if self._process_recorder is not None:
            self._process_recorder.stop()
            self._process_recorder = None

    @property
    @abstractmethod
    def slots(self) -> int:
        """How many tasks run at once (workers)."""

    @abstractmethod
    def start(self) -> None:
        """Launch workers (blocks until the back end accepts tasks)."""

    @abstractmethod
    def submit(self, ref: str, *args: Any) -> Future:
        """Run ``run_task(ref, *args)`` on a worker."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop workers and release every resource; safe to call twice."""

    def __enter__(self) -> "Engine":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def map_partitions(
        self,
        ref: str,
        partition_ids: Iterable[int],
        args_for: Callable[[int], tuple[Any, ...]],
        *,
        retries: int = 2,
        in_flight: int | None = None,
        no_retry: tuple[type[BaseException], ...] = (),
        committed: Callable[[int], bool] | None = None,
    ) -> Iterator[TaskOutcome]:
        """Run ``ref(*args_for(pid))`` for each partition; yield outcomes as they complete.

        At most ``in_flight`` tasks are queued (default 4 per slot) so 10^5 partitions never sit
        in the engine at once. A task that raises is re-submitted up to ``retries`` times (unless
        its exception is in ``no_retry``); then its outcome carries the reason. ``committed(pid)``
        is asked first: a task whose worker was lost (node failure, ManagerLost, KilledWorker)
        after it committed its partition succeeded, and running it again would commit it twice.
        """
        limit = in_flight or max(4 * self.slots, 8)
        todo = iter(partition_ids)
        running: dict[Future, tuple[int, int]] = {}

        def launch(pid: int, attempt: int) -> None:
            running[self.submit(ref, *args_for(pid))] = (pid, attempt)

        for pid in todo:
            launch(pid, 1)
            if len(running) >= limit:
                break
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                pid, attempt = running.pop(fut)
                exc = fut.exception()
                if exc is None:
                    yield TaskOutcome(pid, True, fut.result(), attempts=attempt)
                elif committed is not None and committed(pid):
                    yield TaskOutcome(pid, True, None, attempts=attempt)
                elif attempt <= retries and not isinstance(exc, no_retry):
                    launch(pid, attempt + 1)
                else:
                    yield TaskOutcome(pid, False, error=describe_exception(exc), attempts=attempt)
            while len(running) < limit:
                nxt = next(todo, None)
                if nxt is None:
                    break
                launch(nxt, 1)

