"""The derived-array cache (BC03 grid, filter curves) gives the bits a fresh derivation gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sedscale.sed import filters, ssp
from sedscale.sed.derived_cache import cached_arrays


@pytest.fixture()
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEDSCALE_CACHE_DIR", str(tmp_path))
    ssp.load_ssp.cache_clear()
    filters.load_filter.cache_clear()
    yield tmp_path / "grids" / "derived"
    ssp.load_ssp.cache_clear()
    filters.load_filter.cache_clear()


def test_the_bc03_grid_from_the_cache_equals_a_fresh_derivation(own_cache: Path) -> None:
    fresh = ssp._derive_ssp()
    first = ssp.load_ssp()  # derives and writes
    assert len(list(own_cache.glob("ssp-*.npz"))) == 1
    ssp.load_ssp.cache_clear()
    loaded = ssp.load_ssp()  # reads
    for grid in (first, loaded):
        np.testing.assert_array_equal(grid.spectra, fresh["spectra"])
        np.testing.assert_array_equal(grid.surviving_frac, fresh["surviving"])
        assert not grid.spectra.flags.writeable


def test_filter_curves_from_the_cache_equal_the_providers(own_cache: Path) -> None:
    for band in ("euclid_vis", "lsst_g", "roman_f158"):  # speclite and sedpy
        direct = filters._read_builtin(band)
        cold = filters.load_filter(band)
        filters.load_filter.cache_clear()
        warm = filters.load_filter(band)
        np.testing.assert_array_equal(cold.wavelength, warm.wavelength)
        np.testing.assert_array_equal(cold.throughput, warm.throughput)
        assert warm.wavelength[0] >= direct["wavelength"][0] and warm.wavelength.dtype == np.float64
    assert len(list(own_cache.glob("filter-*.npz"))) == 3


def test_a_damaged_cache_file_is_derived_again(own_cache: Path) -> None:
    calls = []

    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"x": np.arange(5.0)}

    np.testing.assert_array_equal(cached_arrays("probe", "k", build)["x"], np.arange(5.0))
    path = next(own_cache.glob("probe-*.npz"))
    path.write_bytes(path.read_bytes()[:40])  # torn
    np.testing.assert_array_equal(cached_arrays("probe", "k", build)["x"], np.arange(5.0))
    assert len(calls) == 2
    np.testing.assert_array_equal(cached_arrays("probe", "k", build)["x"], np.arange(5.0))
    assert len(calls) == 2


def test_cosmology_splines_from_the_cache_agree_with_astropy(own_cache: Path) -> None:
    from astropy.cosmology import realizations

    from sedscale.sed import cosmology

    z = np.array([0.0013, 0.1, 0.87, 2.5, 7.3, 19.0])
    cosmology._distance_spline.cache_clear()
    cosmology._age_spline.cache_clear()
    cold = (cosmology.luminosity_distance_cm(z), cosmology.age_gyr(z))  # astropy, then written
    assert len(list(own_cache.glob("cosmology-*.npz"))) == 1
    cosmology._distance_spline.cache_clear()
    cosmology._age_spline.cache_clear()
    warm = (cosmology.luminosity_distance_cm(z), cosmology.age_gyr(z))  # from the cache
    for a, b in zip(cold, warm):
        np.testing.assert_array_equal(a, b)
    planck = realizations.Planck18
    np.testing.assert_allclose(warm[0] / cosmology.MPC_CM, planck.luminosity_distance(z).to_value("Mpc"), rtol=1e-6)
    np.testing.assert_allclose(warm[1], planck.age(z).to_value("Gyr"), rtol=1e-6)


def test_the_written_out_cosmology_names_are_astropys() -> None:
    from astropy.cosmology import realizations

    from sedscale.sed.config import ASTROPY_REALIZATIONS

    assert set(ASTROPY_REALIZATIONS) == set(realizations.available)
