"""A background thread that calls ``record()`` every ``period`` seconds until stopped.

Why one base: the driver keeps two files in step with what its engine started — the batch job
ids (:mod:`sedscale.engines.jobs`) and the local processes (:mod:`sedscale.engines.processes`) —
so a later ``resume`` can stop exactly those. Only what is recorded differs.
"""

from __future__ import annotations

import threading


class PeriodicRecorder:
    """Subclasses implement :meth:`record`; :meth:`start` and :meth:`halt` run and end the thread."""

    def __init__(self, period: float, name: str) -> None:
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def record(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.record()

    def halt(self, join_timeout: float | None = None) -> None:
        """End the thread (waiting up to ``join_timeout`` seconds for it when given)."""
        self._stop.set()
        if join_timeout is not None:
            self._thread.join(timeout=join_timeout)
