"""The one-off costs of a fitting process, as counters a task reads before and after its work.

Why: the first partition a worker runs pays for making the kernel callable (compile, or load
from sedscale's numba cache) and for every model grid it builds or loads; later partitions on
the same worker pay nothing for either. A throughput that mixes them with the per-source cost
projects a warm-up of seconds into node-hours at 10^9 sources, so each task records what it
spent on them (``timings`` of the partition summary) and the report subtracts it.

Counters are process-wide (:func:`sedscale.sed.kernel_cache.kernel_warmup_seconds`,
:func:`sedscale.sed.builder.grid_build_seconds`, :mod:`sedscale.sed.grid_store`'s load and
write seconds); a task running beside others in one process (threaded workers) may see some of
its neighbours' warm-up too.
"""

from __future__ import annotations

from sedscale.sed.builder import grid_build_seconds, one_off_grid_build_seconds
from sedscale.sed.grid_store import grid_load_seconds, grid_write_seconds
from sedscale.sed.kernel_cache import kernel_warmup_seconds

#: The one-off costs among the ``timings`` keys a partition summary gets, in seconds.
FIXED_COST_KEYS = ("kernel_warmup_s", "grid_build_s", "grid_load_s")
#: Recorded beside them: grids built for one source and never cached, a per-source cost.
ONE_OFF_BUILD_KEY = "grid_build_uncached_s"


def fixed_cost_counters() -> dict[str, float]:
    """This process's one-off seconds so far — kernel compile/load, builds of cached grids (with
    the cache file write), grid loads from the cache — and its uncached grid builds."""
    return {"kernel_warmup_s": kernel_warmup_seconds(),
            "grid_build_s": grid_build_seconds() + grid_write_seconds(),
            "grid_load_s": grid_load_seconds(), ONE_OFF_BUILD_KEY: one_off_grid_build_seconds()}


def fixed_costs_since(start: dict[str, float]) -> dict[str, float]:
    """The seconds of each counter spent since ``start`` (a :func:`fixed_cost_counters` reading)."""
    now = fixed_cost_counters()
    return {key: max(0.0, now[key] - start.get(key, 0.0)) for key in now}
