"""Where a partition's agent time went: wall-clock unions of policy waits, fits, and either.

With hundreds of sources in flight a plain sum of durations would count the same second hundreds
of times; these clocks count a second once however many sources spend it, so the figures can be
set beside the partition's wall time.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator


class BusyClock:
    """Wall-clock union of the intervals in which at least one of many overlapping activities runs."""

    def __init__(self) -> None:
        self.running = 0
        self.since = 0.0
        self.total = 0.0

    def enter(self) -> None:
        """One more activity started (the clock runs while any does)."""
        if self.running == 0:
            self.since = time.perf_counter()
        self.running += 1

    def leave(self) -> None:
        """One activity ended."""
        self.running -= 1
        if self.running == 0:
            self.total += time.perf_counter() - self.since


class AgentClocks:
    """The union clocks of one run: ``llm`` (some source waits on the policy), ``fit`` (some re-fit
    runs) and ``either``; their overlap is ``llm + fit - either``."""

    def __init__(self) -> None:
        self.llm, self.fit, self.either = BusyClock(), BusyClock(), BusyClock()

    @contextlib.contextmanager
    def span(self, which: BusyClock) -> Iterator[None]:
        """Count the enclosed block on ``which`` and on ``either``."""
        which.enter()
        self.either.enter()
        try:
            yield
        finally:
            which.leave()
            self.either.leave()

    @property
    def overlap(self) -> float:
        """Seconds in which a fit ran while some source waited on the policy."""
        return max(0.0, self.llm.total + self.fit.total - self.either.total)
