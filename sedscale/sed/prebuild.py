"""Build a configuration's grids and compile the kernel once, before a campaign needs them.

Why: every worker that starts a campaign needs the triage grid's lattice blocks for its own
partition's redshifts. Built on demand, the first partition of every worker builds them at once
(the same blocks, in parallel, on every node), and that work sits between the campaign's start and
its first commit. Built ahead — on a login node, in ``scripts/install.sh`` for the README demo, in
as many processes as there are cores — they land in the shared grid cache
(:mod:`sedscale.cache_dirs`) where every worker then only reads them. The grids are the same
bits whoever builds them (a node's fluxes do not depend on the nodes built with it, nor on the
process: single-threaded BLAS), so preparing never changes a result; it only moves the cost.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from sedscale.sed.config import FitConfig
from sedscale.sed.grid import (LATTICE_BLOCK, build_grid, build_lattice_block, is_cached, lattice_block_nodes,
                               photoz_nodes)


@dataclass(frozen=True)
class PrebuildReport:
    """What :func:`prebuild` did: blocks built and already cached, photo-z grid, kernel, seconds."""

    blocks_built: int
    blocks_cached: int
    photoz_grid: str  # "built" | "cached" | "not needed"
    kernel_seconds: float | None
    seconds: float

    @property
    def nodes_built(self) -> int:
        return self.blocks_built * LATTICE_BLOCK


def default_workers() -> int:
    """Processes for :func:`prebuild`: the cores this process may use, at most 8 (each holds a
    prepared configuration, a few hundred MB)."""
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _build_block(config_json: str, filters: tuple[str, ...], block: int, cache_dir: str) -> int:
    build_lattice_block(FitConfig.model_validate_json(config_json), filters, block, Path(cache_dir))
    return block


def _build_photoz(config_json: str, filters: tuple[str, ...], cache_dir: str) -> None:
    config = FitConfig.model_validate_json(config_json)
    build_grid(config, filters, photoz_nodes(config), Path(cache_dir))


def _compile_kernel() -> float:
    from sedscale.sed.warmup import compile_production_signatures

    t0 = time.perf_counter()
    compile_production_signatures()
    return time.perf_counter() - t0


def prebuild(config: FitConfig, filters: Sequence[str], blocks: np.ndarray, cache_dir: Path, *,
             photoz: bool = False, kernel: bool = True, workers: int | None = None,
             on_progress: Callable[[int, int], None] | None = None) -> PrebuildReport:
    """Build the known-z lattice ``blocks`` (and, with ``photoz``, the photo-z grid) of ``config``
    in ``filters`` into ``cache_dir``, and compile the kernel (``kernel``), in ``workers``
    processes. Blocks whose file is already in ``cache_dir`` are skipped. ``on_progress(done, total)`` after each job."""
    t0 = time.perf_counter()
    filters = tuple(filters)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    todo = [int(b) for b in blocks if not is_cached(config, filters, lattice_block_nodes(config, int(b)), cache_dir, in_memory=False)]
    pz_cached = photoz and is_cached(config, filters, photoz_nodes(config), cache_dir, in_memory=False)
    pz_todo = photoz and not pz_cached
    total = len(todo) + int(pz_todo) + int(kernel)
    done = 0
    kernel_seconds: float | None = None
    text = config.model_dump_json()
    with ProcessPoolExecutor(max_workers=max(1, workers or default_workers()),
                             mp_context=get_context("spawn")) as pool:
        compile_job: Future | None = None
        jobs: list[Future] = []
        if kernel:  # first: the longest single job (tens of seconds on a cold numba cache)
            compile_job = pool.submit(_compile_kernel)
            jobs.append(compile_job)
        if pz_todo:
            jobs.append(pool.submit(_build_photoz, text, filters, str(cache_dir)))
        jobs += [pool.submit(_build_block, text, filters, b, str(cache_dir)) for b in todo]
        try:
            for job in as_completed(jobs):
                value = job.result()  # a failed build raises here, naming its error
                if job is compile_job:
                    kernel_seconds = float(value)
                done += 1
                if on_progress is not None:
                    on_progress(done, total)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # report the error now, not after every queued block
            raise
    return PrebuildReport(blocks_built=len(todo), blocks_cached=len(blocks) - len(todo),
                          photoz_grid="built" if pz_todo else ("cached" if pz_cached else "not needed"),
                          kernel_seconds=kernel_seconds, seconds=time.perf_counter() - t0)

