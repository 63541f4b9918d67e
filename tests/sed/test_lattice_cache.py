"""Known-redshift grids are cached per lattice block: small partitions reuse them, and the fit of a
source does not depend on how the catalog was partitioned (bit for bit)."""

from __future__ import annotations

import numpy as np

from sedscale.catalog.photometry import Photometry
from sedscale.sed import grid as grid_mod
from sedscale.sed.api import fit_photometry
from sedscale.sed.config import FitConfig

BANDS = ("lsst_g", "lsst_r", "lsst_i", "euclid_y", "euclid_j", "euclid_h")
TINY = {"sfh": {"age": [0.5, 2.0, 5.0], "tau": [0.3, 3.0]}, "stellar": {"metallicity": [1.0]},
        "dust_attenuation": {"av": [0.0, 0.5, 1.5]}, "nebular": {"enabled": False},
        "dust_emission": {"enabled": False}, "error_floor": 0.05}


def _catalog(n: int = 48) -> Photometry:
    """Noisy sources at redshifts spread over several lattice blocks (0.5 < z < 0.62)."""
    cfg = FitConfig.from_dict(TINY)
    rng = np.random.default_rng(11)
    z = np.sort(rng.uniform(0.5, 0.62, n))
    g = grid_mod.build_grid(cfg, BANDS, [0.56])
    pick = rng.integers(0, g.n_models, n)
    true = g.flux[0][pick].astype(np.float64) * 10 ** rng.uniform(9.5, 10.5, n)[:, None]
    err = true / 20.0
    flux = true + rng.normal(size=true.shape) * err
    order = rng.permutation(n)  # partitions are not sorted by redshift
    return Photometry(np.arange(n, dtype=np.int64), flux[order], err[order], z[order], BANDS,
                      np.arange(n))


def _rows(phot: Photometry, sel: slice) -> Photometry:
    return Photometry(phot.source_id[sel], phot.flux[sel], phot.error[sel], phot.redshift[sel],
                      phot.filters, phot.row_index[sel])


def _fit_in_partitions(phot: Photometry, size: int, cache_dir=None) -> dict[str, np.ndarray]:
    cfg = FitConfig.from_dict(TINY)
    parts = [fit_photometry(_rows(phot, slice(i, i + size)), cfg, cache_dir=cache_dir)
             for i in range(0, len(phot.source_id), size)]
    out = {k: np.concatenate([getattr(p, k) for p in parts])
           for k in ("chi2_best", "best_index", "n_good_models", "best_flux")}
    for name in parts[0].estimates:
        out[name] = np.concatenate([p.estimates[name][0] for p in parts])
        out[name + "_std"] = np.concatenate([p.estimates[name][1] for p in parts])
    return out


def _blocks_needed(phot: Photometry) -> int:
    cfg = FitConfig.from_dict(TINY)
    cells = grid_mod.known_z_cells(cfg, phot.redshift)
    return int(np.unique(cells // grid_mod.LATTICE_BLOCK).size)


def test_small_partitions_build_each_block_once_and_agree_bit_for_bit(tmp_path, monkeypatch):
    # the block-reuse mechanism alone: without it a partition that needs only one source's pair
    # of nodes in a block builds just that pair (test below)
    monkeypatch.setattr(grid_mod, "SPARSE_BLOCK_NODES", 0)
    phot = _catalog()
    n_blocks = _blocks_needed(phot)
    assert n_blocks >= 3  # the test must span several blocks to mean anything

    grid_mod.clear_memory_cache()
    before = grid_mod.BUILD_COUNT["grids"]
    whole = _fit_in_partitions(phot, len(phot.source_id))
    assert grid_mod.BUILD_COUNT["grids"] - before == n_blocks

    grid_mod.clear_memory_cache()
    before = grid_mod.BUILD_COUNT["grids"]
    small = _fit_in_partitions(phot, 5, cache_dir=tmp_path)  # ten partitions, shared blocks
    assert grid_mod.BUILD_COUNT["grids"] - before == n_blocks  # not one build per partition
    for key, value in whole.items():
        np.testing.assert_array_equal(small[key], value, err_msg=key)

    grid_mod.clear_memory_cache()  # a new worker process on the node: the disk cache serves it
    before = grid_mod.BUILD_COUNT["grids"]
    again = _fit_in_partitions(phot, 16, cache_dir=tmp_path)
    assert grid_mod.BUILD_COUNT["grids"] == before
    for key, value in whole.items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)


def test_lattice_grid_nodes_match_known_z_nodes():
    cfg = FitConfig.from_dict(TINY)
    z = np.array([0.501, 0.55, 0.6199, np.nan])
    g = grid_mod.build_lattice_grid(cfg, BANDS, z)
    np.testing.assert_allclose(g.redshifts, grid_mod.known_z_nodes(cfg, z), rtol=0, atol=1e-12)
    assert g.flux.shape[0] == g.redshifts.size == g.valid.shape[0]


def test_a_node_does_not_depend_on_the_nodes_built_with_it():
    """What lets a fit of one source build only its two nodes (SPARSE_BLOCK_NODES) instead of
    their whole block: a node's fluxes are the same bits whichever other nodes are built."""
    cfg = FitConfig.from_dict(TINY)
    nodes = grid_mod.lattice_nodes(cfg, np.arange(8 * 50, 8 * 51, dtype=np.int64))
    grid_mod.clear_memory_cache()
    whole = grid_mod.build_grid(cfg, BANDS, nodes)
    pair = grid_mod.build_grid(cfg, BANDS, nodes[3:5])
    np.testing.assert_array_equal(pair.flux, whole.flux[3:5])
    np.testing.assert_array_equal(pair.valid, whole.valid[3:5])


def test_one_source_builds_its_pair_of_nodes_and_fits_as_in_a_whole_block(tmp_path):
    phot = _catalog()
    grid_mod.clear_memory_cache()
    whole = _fit_in_partitions(phot, len(phot.source_id))  # every block built whole (48 sources)
    grid_mod.clear_memory_cache()
    small = _fit_in_partitions(phot, 3)  # partitions of 3: many blocks see one source's pair
    for key, value in whole.items():
        np.testing.assert_array_equal(small[key], value, err_msg=key)
    one = _rows(phot, slice(0, 1))
    grid_mod.clear_memory_cache()
    before = dict(grid_mod.BUILD_COUNT)
    alone = _fit_in_partitions(one, 1)
    assert grid_mod.BUILD_COUNT["nodes"] - before["nodes"] <= 2 * grid_mod.SPARSE_BLOCK_NODES  # not 8
    for key, value in alone.items():
        np.testing.assert_array_equal(value, whole[key][:1], err_msg=key)


def test_a_sparse_pair_is_not_written_to_disk(tmp_path):
    cfg = FitConfig.from_dict(TINY)
    grid_mod.clear_memory_cache()
    grid_mod.build_lattice_grid(cfg, BANDS, np.array([0.5731]), cache_dir=tmp_path)  # one source
    assert not list(tmp_path.glob("grid-*.npz"))
    grid_mod.build_lattice_grid(cfg, BANDS, np.linspace(0.57, 0.58, 12), cache_dir=tmp_path)  # a dense block
    assert list(tmp_path.glob("grid-*.npz"))


def test_a_dense_call_caches_every_block_it_touches_so_a_repeat_builds_nothing(tmp_path):
    """A partition's triage fit needs most nodes of its blocks: the block where only one source
    sits is built whole and cached too, so the next campaign of this configuration builds nothing."""
    cfg = FitConfig.from_dict(TINY)
    crowded = np.linspace(0.50, 0.53, 40)  # every node of a few blocks
    lone = np.array([0.6123])  # one source's pair in a block of its own
    z = np.concatenate([crowded, lone])
    cells = grid_mod.known_z_cells(cfg, z)
    lone_block = grid_mod.known_z_cells(cfg, lone)[0] // grid_mod.LATTICE_BLOCK
    assert np.count_nonzero(cells // grid_mod.LATTICE_BLOCK == lone_block) <= grid_mod.SPARSE_BLOCK_NODES
    blocks = np.unique(cells // grid_mod.LATTICE_BLOCK)
    assert cells.size >= grid_mod.DENSE_CALL_FRACTION * blocks.size * grid_mod.LATTICE_BLOCK
    grid_mod.clear_memory_cache()
    first = grid_mod.build_lattice_grid(cfg, BANDS, z, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("grid-*.npz"))) == blocks.size  # the lone block's too
    grid_mod.clear_memory_cache()  # a new campaign's worker
    before = dict(grid_mod.BUILD_COUNT)
    again = grid_mod.build_lattice_grid(cfg, BANDS, z, cache_dir=tmp_path)
    assert grid_mod.BUILD_COUNT == before
    np.testing.assert_array_equal(again.flux, first.flux)


def test_memory_cache_keeps_one_configuration_and_disk_is_told_apart(tmp_path):
    """What the agent-quality benchmark relies on (the triage grid kept while the exhaustive
    members' grids are dropped) and what ``sedscale prepare`` relies on (a grid in this process's
    memory is not a file another process can read)."""
    keep, drop = FitConfig.from_dict(TINY), FitConfig.from_dict({**TINY, "dust_attenuation": {"av": [0.0, 0.7]}})
    nodes = grid_mod.lattice_nodes(keep, np.arange(8 * 50, 8 * 51, dtype=np.int64))
    grid_mod.clear_memory_cache()
    for cfg in (keep, drop):
        grid_mod.build_grid(cfg, BANDS, nodes)  # memory only: no cache_dir
    assert grid_mod.is_cached(keep, BANDS, nodes, tmp_path) and not grid_mod.is_cached(keep, BANDS, nodes, tmp_path, in_memory=False)
    grid_mod.clear_memory_cache(keep_config=keep.grid_hash())
    assert grid_mod.is_cached(keep, BANDS, nodes, None) and not grid_mod.is_cached(drop, BANDS, nodes, None)


def test_a_new_floor_builds_no_grid_but_changes_the_fit(tmp_path, monkeypatch):
    """The floor weighs the data, not the models: a configuration that differs only in
    ``error_floor`` reads the same grid files (no build), has its own fit-configuration hash, and
    its χ² is the one of the wider errors."""
    monkeypatch.setattr(grid_mod, "SPARSE_BLOCK_NODES", 0)  # whole blocks, written to the cache
    phot = _catalog(12)
    base = FitConfig.from_dict(TINY)
    wider = FitConfig.from_dict({**TINY, "error_floor": 0.15})
    assert wider.grid_hash() == base.grid_hash() and wider.hash() != base.hash()
    grid_mod.clear_memory_cache()
    first = fit_photometry(phot, base, cache_dir=tmp_path)
    grid_mod.clear_memory_cache()  # what the second fit finds must come from disk
    before = dict(grid_mod.BUILD_COUNT)
    second = fit_photometry(phot, wider, cache_dir=tmp_path)
    assert grid_mod.BUILD_COUNT["grids"] == before["grids"]
    assert second.config_hash == wider.hash()
    assert np.all(second.chi2_best < first.chi2_best)
