"""A numba cache for the fused kernel that sedscale owns, and what this process runs from it.

Why: numba's default cache lives beside the source (``sedscale/sed/__pycache__``), so two
installs of one checkout (two virtual environments, two numba versions) overwrite each other's
entries, and a process cannot tell whether it runs code it compiled or code it loaded. The
kernel's bits no longer depend on that (:func:`sedscale.sed.kernel_numba._helper` removed the
cause), but a cache shared between installs still costs recompiles and hides what ran.

So the kernel's entry points get a cache locator of their own, used for them only (the user's
other numba code keeps numba's defaults): ``$SEDSCALE_CACHE_DIR/numba/<key>/``, by default
``~/.cache/sedscale/numba/<key>/`` (``$XDG_CACHE_HOME`` honoured), where the key hashes the
kernel's source, numba's version, Python's version and the CPU target as numba sees it — two
installs never write the same directory. :func:`describe_cache` reports, from numba's own
cache statistics, whether each entry point was loaded or compiled, for the partition summary.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from numba.core.caching import (CacheImpl, CompileResultCacheImpl, FunctionCache, _CacheLocator,
                                _SourceFileBackedLocatorMixin)

from sedscale import cache_dirs

if TYPE_CHECKING:
    from numba.core.dispatcher import Dispatcher

log = logging.getLogger(__name__)

#: Overrides the root of sedscale's caches (the kernel's lives in its ``numba/`` folder).
CACHE_DIR_ENV = cache_dirs.CACHE_DIR_ENV


def cache_root() -> Path:
    """Where sedscale keeps its numba caches: ``numba/`` under :func:`sedscale.cache_dirs.cache_root`
    (``$SEDSCALE_CACHE_DIR`` or the user cache), beside the shared grid cache."""
    return cache_dirs.cache_root() / "numba"


def cache_key(source: Path) -> str:
    """What the cached machine code depends on: the source file, numba, Python, the CPU target."""
    import numba
    from numba.core.registry import cpu_target

    digest = hashlib.sha256(source.read_bytes())
    digest.update(repr((numba.__version__, tuple(sys.version_info[:3]),
                        cpu_target.target_context.codegen().magic_tuple())).encode())
    return digest.hexdigest()[:16]


class KernelCacheLocator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """numba cache locator for sedscale's kernel: ``cache_root()/<cache_key(source)>``."""

    def __init__(self, py_func: Callable[..., object], py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(cache_root() / cache_key(Path(py_file)))

    def get_cache_path(self) -> str:
        return self._cache_path


class _KernelCacheImpl(CompileResultCacheImpl):
    # numba's own locators only when ours is unusable (an unwritable cache root): the bits do not
    # depend on compile vs load, so sharing a directory then costs recompiles, not results
    _locator_classes = [KernelCacheLocator, *CacheImpl._locator_classes]


class _KernelFunctionCache(FunctionCache):
    _impl_class = _KernelCacheImpl


_WARMUP_LOCK = threading.Lock()
_WARMUP_SECONDS = [0.0]
_IN_COMPILE = threading.local()


def kernel_warmup_seconds() -> float:
    """Seconds this process has spent so far making the kernel callable — compiling a signature or
    loading it from the numba cache — a one-off per process that the report keeps apart from the
    per-source cost (a warm process adds nothing)."""
    with _WARMUP_LOCK:
        return _WARMUP_SECONDS[0]


def _timed_compile(dispatcher: Dispatcher) -> None:
    """Count the time ``dispatcher.compile`` (numba's compile-or-load of one signature) takes in
    :func:`kernel_warmup_seconds`; a compile nested in another (one entry point calling another)
    is counted once, by the outer one."""
    inner = dispatcher.compile

    def compile(sig: object) -> object:
        if getattr(_IN_COMPILE, "active", False):
            return inner(sig)
        _IN_COMPILE.active = True
        t0 = time.perf_counter()
        try:
            return inner(sig)
        finally:
            _IN_COMPILE.active = False
            with _WARMUP_LOCK:
                _WARMUP_SECONDS[0] += time.perf_counter() - t0

    dispatcher.compile = compile


def own_cache(dispatcher: Dispatcher) -> Dispatcher:
    """Cache ``dispatcher`` (an ``njit(cache=True)`` function) in sedscale's directory, and time
    its compiles and cache loads (:func:`kernel_warmup_seconds`)."""
    dispatcher._cache = _KernelFunctionCache(dispatcher.py_func)
    _timed_compile(dispatcher)
    path = Path(dispatcher._cache._cache_path)
    if cache_root() not in path.parents:
        log.warning("sedscale's numba cache %s is not writable; %s is cached in %s instead",
                    cache_root(), dispatcher.__name__, path)
    return dispatcher


def describe_cache(dispatchers: list[Dispatcher]) -> dict[str, object]:
    """Where the kernel is cached and, per entry point, how many signatures this process loaded
    from that cache (numba's ``cache_hits``) and how many it compiled (``cache_misses``)."""
    import numba

    entries: dict[str, dict[str, object]] = {}
    for disp in dispatchers:
        loaded = int(sum(disp.stats.cache_hits.values()))
        compiled = int(sum(disp.stats.cache_misses.values()))
        origin = ("unused" if not loaded + compiled else "cache" if not compiled
                  else "compiled" if not loaded else "mixed")
        entries[disp.__name__] = {"loaded": loaded, "compiled": compiled, "origin": origin}
    first = dispatchers[0]
    return {"cache_dir": str(first.stats.cache_path),
            "cache_key": cache_key(Path(first.py_func.__code__.co_filename)),
            "numba": numba.__version__, "entry_points": entries}
