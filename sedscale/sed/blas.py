"""One BLAS thread while the SED layer computes: the same bits whatever the worker's thread count.

Why: a multi-threaded GEMM (OpenBLAS, MKL) splits its work — and with it the order of some
floating-point sums — by the number of threads. The same grid built with
``OPENBLAS_NUM_THREADS=1`` and ``=2`` differed in the last bits (7e-6 dex in log M*, 1.3e-4 in
log SFR after the fit), and grids are cached on disk by a key that cannot know the thread count,
so a campaign whose workers differ in threads mixed both. Inside :func:`single_threaded_blas`
every BLAS and OpenMP pool of the process runs one thread, so a grid or a fit has one result per
machine type. The numba kernel is single-threaded already.

The limit is process-wide (thread pools are), so overlapping uses from several threads share
one limit: it is set when the first enters and restored when the last leaves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from threadpoolctl import ThreadpoolController


class _Limit(Protocol):
    """What ``ThreadpoolController.limit`` returns (its class is private to threadpoolctl)."""

    def restore_original_limits(self) -> None: ...


class _SingleThreadScope:
    """Counts the threads inside :func:`single_threaded_blas`; holds the limit while any is."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._controller: ThreadpoolController | None = None
        self._limiter: _Limit | None = None

    def enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                if self._controller is None:  # the scan of loaded libraries costs ~ms: once
                    self._controller = ThreadpoolController()
                self._limiter = self._controller.limit(limits=1)
            self._depth += 1

    def leave(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._limiter is not None:
                self._limiter.restore_original_limits()
                self._limiter = None


_SCOPE = _SingleThreadScope()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the body with every BLAS/OpenMP pool limited to one thread (re-entrant)."""
    _SCOPE.enter()
    try:
        yield
    finally:
        _SCOPE.leave()
