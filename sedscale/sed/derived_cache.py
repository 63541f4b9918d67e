"""Arrays derived once from shipped data files (the resampled BC03 grid, filter curves), kept in
the grid cache so a new process loads them instead of re-deriving them.

Why: every worker process used to spend ~1.2 s reading and resampling the BC03 FITS grids and
~1.3 s reading nine filter curves through speclite/astropy before its first fit, on the critical
path of a campaign's first commit. The derivation is deterministic, so a verified copy (the grid
store's checksummed, atomically written ``.npz``) gives the same bits. The key covers the source
file or library version and the sed layer's code (:func:`~sedscale.sed.grid_store.code_digest`).
A cache that cannot be written (a read-only home on a compute node) only costs the derivation.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sedscale.cache_dirs import grid_cache_dir
from sedscale.sed.grid_store import code_digest, read_arrays, write_arrays

log = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]


def derived_path(kind: str, key: str) -> Path:
    """Where the arrays of ``kind`` for ``key`` (plus the sed code's digest) are kept."""
    digest = hashlib.sha256(f"{kind};{key};code={code_digest()}".encode()).hexdigest()[:32]
    return grid_cache_dir() / "derived" / f"{kind}-{digest}.npz"


def cached_arrays(kind: str, key: str, build: Callable[[], Arrays]) -> Arrays:
    """The arrays ``build()`` returns, from the cache when a verified copy is there."""
    path = derived_path(kind, key)
    arrays = read_arrays(path)
    if arrays is not None:
        return arrays
    arrays = build()
    try:
        write_arrays(path, arrays)
    except OSError as exc:  # a read-only or full cache: derive again next time
        log.info("derived arrays %s not cached at %s: %s", kind, path, exc)
    return arrays
