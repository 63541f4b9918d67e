"""Where a source's randomness comes from: the campaign seed, its source id and the step.

Nothing else goes in — not the partition id, the partition's size or order, the node or the
retry — so a source decides the same wherever and beside whomever it runs (issue 13). Two
draws are made here: the seed of one step's decision (:func:`source_seed`) and whether a
source is admitted to the loop under a ``max_agent_fraction`` below 1 (:func:`admitted`).
"""

from __future__ import annotations

import numpy as np

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
#: Keeps the admission hash apart from any other use of (seed, source id).
_ADMISSION_SALT = np.uint64(0x5EDC_A1E0_AD41_7700)


def source_seed(seed: int, source_id: int, step: int) -> np.random.SeedSequence:
    """The seed of one source's step: a function of (campaign seed, source id, step) only."""
    return np.random.SeedSequence([int(seed) & _MASK32, int(source_id) & _MASK64, int(step)])


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over a uint64 array (wrapping arithmetic): a fast, well-mixed hash."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def unit_hash(seed: int, source_ids: np.ndarray) -> np.ndarray:
    """A uniform number in [0, 1) per source id, a pure function of (seed, source id).

    Vectorised (a partition may hold 10^5 triage failures); only the top 53 bits are used, so
    every value is an exact double.
    """
    ids = np.asarray(source_ids).astype(np.int64).view(np.uint64)
    key = _splitmix64(np.array([int(seed) & _MASK64], dtype=np.uint64) ^ _ADMISSION_SALT)
    mixed = _splitmix64(ids ^ key)
    return (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53


def admitted(seed: int, source_ids: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean per source: may it enter the agent loop under ``max_agent_fraction = fraction``?

    ``fraction >= 1`` admits every source and ``fraction <= 0`` none; in between each source is
    admitted with that probability, decided by :func:`unit_hash` alone.
    """
    ids = np.asarray(source_ids)
    if fraction >= 1.0:
        return np.ones(ids.shape, dtype=bool)
    return unit_hash(seed, ids) < float(fraction)
