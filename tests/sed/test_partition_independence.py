"""A source's fit depends on its own row and the configuration only: the same catalog fitted
whole, as 7 and as 50 random partitions in shuffled orders, with cold and with warm grid caches,
gives the same bits in every output column (issue 13).

The catalog puts many sources exactly on lattice nodes (as ``sedscale mock`` does), several
sharing each redshift, near the redshift where the oldest models stop being valid: the case
where the lattice cell of a source used to depend on which other nodes its partition needed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from sedscale.catalog.photometry import Photometry
from sedscale.sed import grid as grid_mod
from sedscale.sed.api import FitResult, fit_photometry
from sedscale.sed.config import FitConfig

BANDS = ("lsst_u", "lsst_g", "lsst_r", "lsst_i", "euclid_y", "euclid_j", "euclid_h")
#: Real BC03 physics, a small grid: 5-Gyr models turn invalid at z ≈ 1.235 (Universe 5 Gyr old).
CONFIG = FitConfig.from_dict({
    "sfh": {"age": [0.5, 2.0, 5.0], "tau": [0.3, 3.0]}, "stellar": {"metallicity": [1.0]},
    "dust_attenuation": {"av": [0.0, 0.5, 1.5]}, "nebular": {"enabled": False},
    "dust_emission": {"enabled": False}, "error_floor": 0.05})
N_SOURCES = 300


def _redshifts(rng: np.random.Generator) -> np.ndarray:
    """Two-thirds on 24 lattice nodes (shared by ~8 sources each), a third anywhere between."""
    step = CONFIG.redshift.node_step
    k_lo = [int(np.log10(1.0 + z0) / step) for z0 in (0.5, 1.21)]
    cells = np.concatenate([np.arange(k, k + 20) for k in k_lo])
    nodes = grid_mod.lattice_nodes(CONFIG, rng.choice(cells, 24, replace=False))
    on_node = rng.choice(nodes, 2 * N_SOURCES // 3)
    between = grid_mod.lattice_nodes(CONFIG, rng.choice(cells, N_SOURCES - on_node.size)
                                     + rng.uniform(0.0, 1.0, N_SOURCES - on_node.size))
    return rng.permutation(np.concatenate([on_node, between]))


def _catalog() -> Photometry:
    rng = np.random.default_rng(13)
    z = _redshifts(rng)
    grid = grid_mod.build_grid(CONFIG, BANDS, [0.5])
    true = grid.flux[0][rng.integers(0, grid.n_models, z.size)].astype(np.float64)
    true *= 10 ** rng.uniform(9.0, 10.5, z.size)[:, None] * (1.0 + rng.uniform(-0.3, 0.3, true.shape))
    err = np.abs(true) / rng.uniform(5.0, 40.0, true.shape)
    flux = true + rng.normal(size=true.shape) * err
    flux[rng.random(flux.shape) < 0.05] = np.nan  # a few bands not observed
    return Photometry(np.arange(z.size, dtype=np.int64), flux, err, z, BANDS, np.arange(z.size))


def _columns(res: FitResult) -> dict[str, np.ndarray]:
    """Every per-source output of a fit, as arrays over its rows."""
    out = {name: np.asarray(getattr(res, name)) for name in (
        "chi2_best", "chi2_red", "dof", "n_bands", "n_good_models", "residual_sigma",
        "best_flux", "best_index", "redshift", "fitted")}
    for name, (mean, std) in res.estimates.items():
        out[f"{name}_mean"], out[f"{name}_std"] = np.asarray(mean), np.asarray(std)
    return out


def _fit(phot: Photometry, parts: Sequence[np.ndarray], cache_dir: Path | None) -> dict[str, np.ndarray]:
    """Fit ``phot`` partition by partition (in the given order) and reassemble by row."""
    merged: dict[str, np.ndarray] = {}
    for rows in parts:
        for name, value in _columns(fit_photometry(phot.take(rows), CONFIG, cache_dir=cache_dir)).items():
            if name not in merged:
                merged[name] = np.zeros((len(phot),) + value.shape[1:], value.dtype)
            merged[name][rows] = value
    return merged


def _random_partitions(n: int, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(n - count, np.full(count, 1.0 / count)) + 1  # uneven, none empty
    parts = np.split(rng.permutation(n), np.cumsum(sizes)[:-1])
    return [parts[i] for i in rng.permutation(count)]  # shuffled order, rows shuffled within


def _assert_same_bits(got: dict[str, np.ndarray], want: dict[str, np.ndarray], layout: str) -> None:
    assert got.keys() == want.keys(), layout
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=f"{layout}: {name}")


@pytest.fixture(scope="module")
def catalog() -> Photometry:
    return _catalog()


@pytest.fixture(scope="module")
def whole(catalog: Photometry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    grid_mod.clear_memory_cache()
    return _fit(catalog, [np.arange(len(catalog))], tmp_path_factory.mktemp("whole-cache"))


def test_catalog_exercises_the_cases(catalog: Photometry, whole: dict[str, np.ndarray]) -> None:
    """The catalog means something: shared node redshifts, several lattice blocks, sources
    fitted, and validity changing between the nodes it spans."""
    _, counts = np.unique(catalog.redshift, return_counts=True)
    assert counts.max() >= 5
    cells = grid_mod.known_z_cells(CONFIG, catalog.redshift)
    assert np.unique(cells // grid_mod.LATTICE_BLOCK).size >= 5
    assert whole["fitted"].all() and np.isfinite(whole["logmstar_mean"]).all()
    grid = grid_mod.build_lattice_grid(CONFIG, BANDS, catalog.redshift)
    assert not np.all(grid.valid == grid.valid[:1])


@pytest.mark.parametrize("n_parts", [7, 50])
def test_partitions_with_cold_caches_give_the_same_bits(catalog: Photometry, whole: dict[str, np.ndarray],
                                                        n_parts: int, tmp_path: Path) -> None:
    for seed in (1, 2):
        grid_mod.clear_memory_cache()
        cache = tmp_path / f"cold-{seed}"
        got = _fit(catalog, _random_partitions(len(catalog), n_parts, seed), cache)
        _assert_same_bits(got, whole, f"{n_parts} partitions, cold cache, seed {seed}")


@pytest.mark.parametrize("n_parts", [7, 50])
def test_partitions_with_warm_caches_give_the_same_bits(catalog: Photometry, whole: dict[str, np.ndarray],
                                                        n_parts: int, tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    grid_mod.clear_memory_cache()
    _fit(catalog, _random_partitions(len(catalog), 13, 7), cache)  # warms memory and disk
    got = _fit(catalog, _random_partitions(len(catalog), n_parts, 3), cache)  # memory hits
    _assert_same_bits(got, whole, f"{n_parts} partitions, warm memory cache")
    grid_mod.clear_memory_cache()  # another worker on the node: disk hits only
    got = _fit(catalog, _random_partitions(len(catalog), n_parts, 4), cache)
    _assert_same_bits(got, whole, f"{n_parts} partitions, warm disk cache")


def test_a_source_on_a_node_has_one_cell_whatever_its_neighbours() -> None:
    """The cause of the partition dependence: a source on node k used to be placed among the
    partition's nodes by a search that rounds differently from the lattice formula."""
    k = np.arange(900, 1300)
    z = grid_mod.lattice_nodes(CONFIG, k)
    cell, frac = grid_mod.lattice_coordinates(CONFIG, z)
    alone = [grid_mod.lattice_coordinates(CONFIG, z[i : i + 1]) for i in range(z.size)]
    np.testing.assert_array_equal(np.concatenate([c for c, _ in alone]), cell)
    np.testing.assert_array_equal(np.concatenate([t for _, t in alone]), frac)
    assert np.all((cell == k) | (cell == k - 1)) and np.all((frac >= 0) & (frac < 1))
    assert np.all(np.isin(cell + 1, grid_mod.known_z_cells(CONFIG, z)))
