"""The model grid handed to the fitter, and where it is built and cached.

A grid is the Cartesian product of a :class:`~sedscale.sed.config.FitConfig`'s parameter lists,
as band fluxes at a set of redshift nodes: ``flux[z, model, band]`` in µJy for 1 M☉ formed. It is
built once per (config, redshift nodes, filters, code version) and reused by every source that
asks for it — from memory within a process, from the cache directory across processes on a node.
Building is :mod:`sedscale.sed.builder`'s job; this module owns the container and the caches.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from sedscale._version import __version__
from sedscale.sed.blas import single_threaded_blas
from sedscale.sed.builder import build_arrays
from sedscale.sed.config import FitConfig
from sedscale.sed.filters import filter_identity
from sedscale.sed.grid_store import STORE_FORMAT, code_digest, read_arrays, write_arrays

#: Version of the grid physics; bump whenever a change alters any grid flux, so that on-disk
#: caches written by older code are never reused.
PHYSICS_VERSION = "3"  # 3: remnants through the Kroupa IMF (M* +0.01 dex at 10 Gyr); 2: float32 band GEMMs


@dataclass(frozen=True)
class ModelGrid:
    """Band fluxes of every model at every redshift node (docs/INTERNAL-CONTRACTS.md)."""

    filters: tuple[str, ...]  # B
    redshifts: np.ndarray  # (Z,) float64 redshift nodes
    flux: np.ndarray  # (Z, M, B) float32, µJy per 1 M☉ formed
    valid: np.ndarray  # (Z, M) bool; False where the model is older than the Universe at z
    intensive: dict[str, np.ndarray]  # (M,) parameters that do not scale with mass
    extensive: dict[str, np.ndarray]  # (M,) per 1 M☉ formed: mstar (surviving), sfr10, sfr100, ldust
    grid_hash: str  # FitConfig.grid_hash() of the configuration (the floor is not the grid's)
    cache_key: str = field(default="", compare=False)

    @property
    def n_models(self) -> int:
        return int(self.flux.shape[1])

    def at_redshift(self, z: float | np.ndarray) -> np.ndarray:
        """Fluxes interpolated linearly in log10(1+z) between the two bracketing nodes.

        For a scalar ``z`` returns (M, B); for an array of N redshifts (N, M, B). The error of this
        interpolation for the node spacing ``redshift.node_step`` is measured in
        tests/sed/test_grid.py and reported in docs/PHYSICS.md. Outside the node range the end
        node is used (no extrapolation).
        """
        zs = np.atleast_1d(np.asarray(z, dtype=np.float64))
        x = np.log10(1.0 + self.redshifts)
        xq = np.clip(np.log10(1.0 + zs), x[0], x[-1])
        if x.size == 1:
            out = np.broadcast_to(self.flux[0], (zs.size,) + self.flux.shape[1:]).copy()
        else:
            i = np.clip(np.searchsorted(x, xq, side="right") - 1, 0, x.size - 2)
            w = ((xq - x[i]) / (x[i + 1] - x[i])).astype(np.float32)[:, None, None]
            out = self.flux[i] * (1.0 - w) + self.flux[i + 1] * w
        return out[0] if np.ndim(z) == 0 else out


# --------------------------------------------------------------------------------------------
# redshift nodes
# --------------------------------------------------------------------------------------------


def photoz_nodes(config: FitConfig) -> np.ndarray:
    """The photo-z redshift grid: uniform in log10(1+z) from z_min to z_max (both included)."""
    r = config.redshift
    lo, hi = np.log10(1.0 + r.z_min), np.log10(1.0 + r.z_max)
    n = int(np.ceil((hi - lo) / r.dlog1pz)) + 1
    return 10 ** np.linspace(lo, hi, n) - 1.0


def lattice_coordinates(config: FitConfig, redshifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each redshift's lattice cell k and its place t ∈ [0, 1) between nodes k and k + 1.

    With u = log10(1+z) / node_step: k = ⌊u⌋, t = u − k. This one formula both chooses the
    nodes a grid is built on and places a source between them, so a source's cell and weights
    are a function of its own redshift only. (Locating it among the nodes of the partition's
    grid instead — a search over log10(1 + z_k), which rounds differently from k·node_step —
    put a source that sits on a node into the cell below or above depending on which other
    nodes the partition happened to need: a different model window, up to 0.1 dex in M*.)
    Unusable redshifts (NaN, negative) give k = −1, t = NaN.
    """
    z = np.asarray(redshifts, dtype=np.float64)
    usable = np.isfinite(z) & (z >= 0)
    u = np.log10(1.0 + np.where(usable, z, 0.0)) / config.redshift.node_step
    k = np.floor(u)
    return np.where(usable, k, -1).astype(np.int64), np.where(usable, u - k, np.nan)


def known_z_cells(config: FitConfig, redshifts: np.ndarray) -> np.ndarray:
    """Lattice indices k (node z_k: log10(1+z_k) = k·node_step) of the pairs of nodes that
    bracket the usable redshifts, sorted and unique."""
    k, _ = lattice_coordinates(config, redshifts)
    k = k[k >= 0]
    return np.unique(np.concatenate([k, k + 1]))


def lattice_nodes(config: FitConfig, cells: np.ndarray) -> np.ndarray:
    """Redshifts of lattice nodes (one formula, so a node has the same value in every grid)."""
    return 10 ** (np.asarray(cells, np.int64) * config.redshift.node_step) - 1.0


def known_z_nodes(config: FitConfig, redshifts: np.ndarray) -> np.ndarray:
    """Nodes for known-redshift fitting: the fixed lattice log10(1+z) = k·node_step, restricted
    to the pairs that bracket the catalog's redshifts (see :func:`build_lattice_grid` for how
    they are built and cached: in fixed blocks of the lattice, so partitions share them)."""
    cells = known_z_cells(config, redshifts)
    return lattice_nodes(config, cells) if cells.size else np.zeros(0)


#: Lattice nodes per cached block. A block is built whole when a fit needs several of its nodes,
#: so a campaign of small partitions builds every block once (memory cache, then disk cache).
LATTICE_BLOCK = 8

#: A fit that needs at most this many nodes of a block that is not cached builds only those
#: nodes: one source's bracketing pair. Agent re-fits (a few sources, each at its own redshift,
#: under a configuration nobody else uses) would otherwise build 8 nodes for every 2 they use.
#: A node's fluxes do not depend on which other nodes are built with it (each node is computed
#: on its own: tests/sed/test_lattice_cache.py), so results are bit-identical either way.
SPARSE_BLOCK_NODES = 2

#: ... unless the call as a whole needs at least this share of the nodes of the blocks it touches:
#: a partition's triage fit (hundreds of sources over the lattice), whose blocks the next
#: partitions and the next campaign of the same configuration need again. Building its sparse
#: blocks whole and caching them costs the first partition a few more nodes and spares every later
#: one (a repeated configuration builds nothing); an agent re-fit of a few sources stays sparse.
DENSE_CALL_FRACTION = 0.5

#: Number of grid builds (cache misses) in this process: lets tests prove reuse.
BUILD_COUNT = {"grids": 0, "nodes": 0}


def lattice_blocks(config: FitConfig, redshifts: np.ndarray) -> np.ndarray:
    """The lattice blocks (of :data:`LATTICE_BLOCK` nodes) that known-z fits of ``redshifts``
    read, sorted: what :func:`build_lattice_block` builds ahead of a campaign."""
    return np.unique(known_z_cells(config, redshifts) // LATTICE_BLOCK)


def lattice_block_nodes(config: FitConfig, block: int) -> np.ndarray:
    """The redshifts of lattice block ``block``: nodes ``block·8 … block·8 + 7``."""
    return lattice_nodes(config, np.arange(block * LATTICE_BLOCK, (block + 1) * LATTICE_BLOCK, dtype=np.int64))


def build_lattice_block(config: FitConfig, filters: Sequence[str], block: int,
                        cache_dir: Path | None = None) -> ModelGrid:
    """Lattice block ``block`` whole, cached like any grid."""
    return build_grid(config, filters, lattice_block_nodes(config, block), cache_dir)


def build_lattice_grid(config: FitConfig, filters: Sequence[str], redshifts: np.ndarray,
                       cache_dir: Path | None = None) -> ModelGrid:
    """The grid at the known-z lattice nodes bracketing ``redshifts``, assembled from cached
    blocks of :data:`LATTICE_BLOCK` consecutive nodes (each block: :func:`build_grid`; a block
    only one source needs is built for its nodes alone, unless the call is dense:
    :data:`SPARSE_BLOCK_NODES`, :data:`DENSE_CALL_FRACTION`)."""
    cells = known_z_cells(config, redshifts)
    if cells.size == 0:
        raise ValueError("no usable redshift")
    parts = []
    blocks = np.unique(cells // LATTICE_BLOCK)
    dense_call = cells.size >= DENSE_CALL_FRACTION * blocks.size * LATTICE_BLOCK
    for blk in blocks:
        block_cells = np.arange(blk * LATTICE_BLOCK, (blk + 1) * LATTICE_BLOCK, dtype=np.int64)
        needed = cells[cells // LATTICE_BLOCK == blk]
        block_nodes = lattice_block_nodes(config, int(blk))
        if (not dense_call and needed.size <= SPARSE_BLOCK_NODES
                and not is_cached(config, filters, block_nodes, cache_dir)):
            # not written to disk: one source's nodes under (mostly) a one-off configuration
            grid = build_grid(config, filters, lattice_nodes(config, needed), cache_dir, persist=False)
            parts.append((grid, np.arange(needed.size)))
            continue
        grid = build_lattice_block(config, filters, int(blk), cache_dir)
        take = np.flatnonzero(np.isin(block_cells, cells))
        parts.append((grid, take))
    first = parts[0][0]
    if len(parts) == 1 and parts[0][1].size == first.redshifts.size:
        return first
    return ModelGrid(filters=first.filters,
                     redshifts=np.concatenate([g.redshifts[t] for g, t in parts]),
                     flux=np.concatenate([g.flux[t] for g, t in parts]),
                     valid=np.concatenate([g.valid[t] for g, t in parts]),
                     intensive=first.intensive, extensive=first.extensive,
                     grid_hash=first.grid_hash)


# --------------------------------------------------------------------------------------------
# caches
# --------------------------------------------------------------------------------------------

_MEMORY_CACHE: OrderedDict[str, ModelGrid] = OrderedDict()
_MEMORY_LOCK = threading.Lock()
MEMORY_CACHE_BYTES = int(os.environ.get("SEDSCALE_GRID_MEMORY_BYTES", 2 * 1024**3))


def grid_cache_key(config: FitConfig, filters: Sequence[str], redshifts: np.ndarray) -> str:
    """sha256 over the config's grid hash (the floor left out: :meth:`FitConfig.grid_hash`) +
    redshift nodes + filter set (+ file contents) + code version (+ the cache file layout)."""
    h = hashlib.sha256()
    h.update(config.grid_hash().encode())
    h.update(np.ascontiguousarray(np.asarray(redshifts, dtype=np.float64)).tobytes())
    h.update(json.dumps([filter_identity(f) for f in filters]).encode())
    h.update(f"sedscale={__version__};physics={PHYSICS_VERSION};store={STORE_FORMAT};code={code_digest()}".encode())
    return h.hexdigest()


def clear_memory_cache(keep_config: str | None = None) -> None:
    """Forget every in-memory grid (tests; memory pressure) but those of the configuration whose
    :meth:`~sedscale.sed.config.FitConfig.grid_hash` is ``keep_config``."""
    with _MEMORY_LOCK:
        for key in [k for k, g in _MEMORY_CACHE.items() if keep_config is None or g.grid_hash != keep_config]:
            del _MEMORY_CACHE[key]


def _cache_slot(config: FitConfig, filters: tuple[str, ...], z: np.ndarray,
                cache_dir: Path | None) -> tuple[str, Path | None]:
    """The grid's cache key and its file in ``cache_dir`` (None without one)."""
    key = grid_cache_key(config, filters, z)
    return key, (Path(cache_dir) / f"grid-{key[:32]}.npz" if cache_dir is not None else None)


def is_cached(config: FitConfig, filters: Sequence[str], redshifts: np.ndarray, cache_dir: Path | None, *,
              in_memory: bool = True) -> bool:
    """Whether :func:`build_grid` would find this grid in memory or on disk (no build); with
    ``in_memory`` off, on disk only — what another process would find."""
    key, path = _cache_slot(config, tuple(filters), np.asarray(redshifts, dtype=np.float64).reshape(-1), cache_dir)
    if in_memory:
        with _MEMORY_LOCK:
            if key in _MEMORY_CACHE:
                return True
    return path is not None and path.exists()


def _remember(key: str, grid: ModelGrid) -> None:
    with _MEMORY_LOCK:
        _MEMORY_CACHE[key] = grid
        _MEMORY_CACHE.move_to_end(key)
        total = sum(g.flux.nbytes for g in _MEMORY_CACHE.values())
        while len(_MEMORY_CACHE) > 1 and total > MEMORY_CACHE_BYTES:
            _, old = _MEMORY_CACHE.popitem(last=False)
            total -= old.flux.nbytes


def _save(path: Path, grid: ModelGrid) -> None:
    """Write through :mod:`sedscale.sed.grid_store` (atomic, checksummed)."""
    arrays = {"flux": grid.flux, "valid": grid.valid, "redshifts": grid.redshifts}
    arrays.update({f"intensive__{k}": v for k, v in grid.intensive.items()})
    arrays.update({f"extensive__{k}": v for k, v in grid.extensive.items()})
    meta = json.dumps({"filters": list(grid.filters), "grid_hash": grid.grid_hash})
    arrays["__meta__"] = np.frombuffer(meta.encode(), dtype=np.uint8)
    write_arrays(path, arrays)


def _load(path: Path, key: str) -> ModelGrid | None:
    """The cached grid at ``path`` if it is there and passes its checksum, else None."""
    data = read_arrays(path)
    if data is None:
        return None
    meta = json.loads(bytes(data["__meta__"]).decode())
    return ModelGrid(
        filters=tuple(meta["filters"]),
        redshifts=data["redshifts"],
        flux=data["flux"],
        valid=data["valid"],
        intensive={k.split("__", 1)[1]: v for k, v in data.items() if k.startswith("intensive__")},
        extensive={k.split("__", 1)[1]: v for k, v in data.items() if k.startswith("extensive__")},
        grid_hash=meta["grid_hash"],
        cache_key=key,
    )


def build_grid(
    config: FitConfig,
    filters: Sequence[str],
    redshifts: np.ndarray | Sequence[float],
    cache_dir: Path | None = None,
    *,
    persist: bool = True,
) -> ModelGrid:
    """The model grid of ``config`` in ``filters`` at the redshift nodes ``redshifts``.

    Looks in the process memory cache, then in ``cache_dir`` (if given; a file that fails its
    checksum is removed and rebuilt), then builds (vectorized, single-threaded BLAS; see
    :mod:`sedscale.sed.builder`) and stores in both (on disk only if ``persist``; a failed
    write raises :class:`~sedscale.sed.grid_store.GridCacheWriteError`). Arrays of a cached
    grid are shared between callers: treat them as read-only.
    """
    filters = tuple(filters)
    z = np.asarray(redshifts, dtype=np.float64).reshape(-1)
    key, path = _cache_slot(config, filters, z, cache_dir)
    with _MEMORY_LOCK:
        hit = _MEMORY_CACHE.get(key)
        if hit is not None:
            _MEMORY_CACHE.move_to_end(key)
            return hit
    grid = _load(path, key) if path is not None else None
    if grid is None:
        with single_threaded_blas():  # the same bits whatever the worker's BLAS thread count
            arrays = build_arrays(config, filters, z, cached=path is not None and persist)
        BUILD_COUNT["grids"] += 1
        BUILD_COUNT["nodes"] += int(z.size)
        grid = ModelGrid(filters=filters, redshifts=z, grid_hash=config.grid_hash(), cache_key=key, **arrays)
        if path is not None and persist:
            _save(path, grid)
    for arr in (grid.flux, grid.valid, grid.redshifts, *grid.intensive.values(), *grid.extensive.values()):
        arr.flags.writeable = False
    _remember(key, grid)
    return grid
