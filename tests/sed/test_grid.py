"""Model grids: the contract's shapes, caching, validity, redshift interpolation error, and the
agreement of the vectorized grid with the independent per-source model path."""

from __future__ import annotations

import numpy as np
import pytest

from sedscale.bands import EUCLID_BANDS, ROMAN_BANDS
from sedscale.sed.config import FitConfig
from sedscale.sed.grid import (
    ModelGrid,
    build_grid,
    clear_memory_cache,
    grid_cache_key,
    known_z_nodes,
    photoz_nodes,
)
from sedscale.sed.models import SourceParams, model_photometry
from sedscale.sed.sfh import bin_masses, mass_within

BANDS = ("euclid_vis", "euclid_h", "lsst_u", "roman_f158")
SMALL = FitConfig.from_dict({
    "sfh": {"age": [0.3, 2.0, 12.0], "tau": [0.3, 3.0]},
    "stellar": {"metallicity": [0.4, 1.0]},
    "dust_attenuation": {"av": [0.0, 1.0]},
})


def test_contract_shapes_and_types() -> None:
    z = np.array([0.5, 1.0, 4.0])
    g = build_grid(SMALL, BANDS, z)
    m = SMALL.n_models
    assert isinstance(g, ModelGrid) and g.filters == BANDS
    assert g.flux.shape == (3, m, 4) and g.flux.dtype == np.float32
    assert g.valid.shape == (3, m) and g.valid.dtype == bool
    assert g.redshifts.dtype == np.float64 and np.array_equal(g.redshifts, z)
    for key in ("mstar", "sfr10", "sfr100", "ldust"):
        assert g.extensive[key].shape == (m,)
    for key in ("age", "tau", "av", "metallicity", "frac_agn", "logu", "age_mw"):
        assert g.intensive[key].shape == (m,)
    assert g.grid_hash == SMALL.grid_hash()
    assert np.all(np.isfinite(g.flux)) and np.all(g.flux >= 0)
    # surviving mass: 1 M☉ formed leaves 0.5–1 M☉ in stars + remnants (BC03/Kroupa ≈ 0.59 at 12 Gyr)
    assert np.all((g.extensive["mstar"] > 0.5) & (g.extensive["mstar"] <= 1.0))
    assert np.all(g.extensive["mstar_living"] < g.extensive["mstar"])
    # a 12 Gyr-old population cannot exist at z = 4 (Universe ≈ 1.5 Gyr old)
    assert not g.valid[2][g.intensive["age"] == 12.0].any()
    assert g.valid[0][g.intensive["age"] == 2.0].all()
    with pytest.raises(ValueError):
        g.flux[0, 0, 0] = 1.0  # cached arrays are read-only


def test_cartesian_order_follows_config_axes() -> None:
    g = build_grid(SMALL, BANDS, [1.0])
    axes = SMALL.axes()
    grids = np.meshgrid(*axes.values(), indexing="ij")
    for (name, _), values in zip(axes.items(), grids):
        assert np.array_equal(g.intensive[name], values.ravel()), name


def test_memory_and_disk_cache(tmp_path) -> None:
    z = [0.7, 0.8]
    clear_memory_cache()
    first = build_grid(SMALL, BANDS, z, cache_dir=tmp_path)
    assert build_grid(SMALL, BANDS, z, cache_dir=tmp_path) is first  # memory hit
    files = list(tmp_path.glob("grid-*.npz"))
    assert len(files) == 1
    clear_memory_cache()
    again = build_grid(SMALL, BANDS, z, cache_dir=tmp_path)  # disk hit
    assert again is not first
    assert np.array_equal(again.flux, first.flux) and np.array_equal(again.valid, first.valid)
    for k in first.intensive:
        assert np.array_equal(again.intensive[k], first.intensive[k])
    for k in first.extensive:
        assert np.array_equal(again.extensive[k], first.extensive[k])
    assert again.filters == first.filters and again.grid_hash == first.grid_hash
    # a corrupt file is rebuilt, not trusted
    files[0].write_bytes(b"not an npz")
    clear_memory_cache()
    assert np.array_equal(build_grid(SMALL, BANDS, z, cache_dir=tmp_path).flux, first.flux)


def test_cache_key_depends_on_everything_that_changes_fluxes() -> None:
    z = np.array([1.0])
    base = grid_cache_key(SMALL, BANDS, z)
    assert grid_cache_key(SMALL, BANDS, z) == base
    assert grid_cache_key(SMALL, BANDS[:-1], z) != base
    assert grid_cache_key(SMALL, BANDS, z + 0.01) != base
    other = FitConfig.from_dict({**SMALL.model_dump(), "cosmology": "WMAP9"})
    assert grid_cache_key(other, BANDS, z) != base


def test_redshift_nodes() -> None:
    cfg = FitConfig.from_dict({"redshift": {"z_min": 0.0, "z_max": 4.0, "dlog1pz": 0.01}})
    nodes = photoz_nodes(cfg)
    assert nodes[0] == pytest.approx(0.0, abs=1e-12) and nodes[-1] == pytest.approx(4.0)
    assert np.allclose(np.diff(np.log10(1 + nodes)), np.diff(np.log10(1 + nodes))[0])
    z = np.array([0.512, 0.5121, 2.3, np.nan])
    kn = known_z_nodes(cfg, z)
    x = np.log10(1 + kn) / cfg.redshift.node_step
    assert np.allclose(x, np.round(x))  # on the fixed lattice
    for zi in z[:3]:
        assert kn[kn <= zi].size and kn[kn >= zi].size  # every redshift is bracketed


def test_redshift_interpolation_error_below_one_percent() -> None:
    """Linear interpolation in log10(1+z) between known-z nodes (default spacing) stays within
    1 % of the exact fluxes for Euclid and Roman bands (docs/PHYSICS.md gives the full table;
    LSST y, with its telluric water band, reaches ~2.5 % and is excluded here)."""
    cfg = FitConfig.from_dict({
        "sfh": {"age": [0.1, 1.0, 5.0], "tau": [0.1, 10.0]},
        "stellar": {"metallicity": [0.2, 1.0]},
        "dust_attenuation": {"av": [0.0, 2.0]},
        "nebular": {"logu": [-3.0, -2.0]},
    })
    bands = EUCLID_BANDS + ROMAN_BANDS
    step = cfg.redshift.node_step
    rng = np.random.default_rng(1)
    zq = np.sort(10 ** rng.uniform(np.log10(1.1), np.log10(7.0), 40) - 1)
    nodes = known_z_nodes(cfg, zq)
    grid = build_grid(cfg, bands, nodes)
    exact = build_grid(cfg, bands, zq)
    interp = grid.at_redshift(zq)
    keep = exact.valid[:, :, None] & (exact.flux > 0.01 * exact.flux.max(axis=2, keepdims=True))
    err = np.abs(interp / exact.flux - 1)[keep]
    assert err.max() < 0.01, f"max interpolation error {100 * err.max():.2f}% (node step {step})"


def test_grid_equals_per_source_models() -> None:
    """The vectorized Cartesian grid and the per-source path (mocks) are two implementations of
    the same physics; they must agree to float32 precision, AGN and bursts included."""
    cfg = FitConfig.from_dict({
        "sfh": {"family": "delayed_burst", "age": [0.5, 2.0], "tau": [0.3, 3.0], "burst_age": [20.0],
                "burst_fraction": [0.0, 0.2]},
        "stellar": {"metallicity": [0.3, 1.5]},
        "dust_attenuation": {"av": [0.0, 1.2], "young_factor": [1.0, 2.0]},
        "nebular": {"logu": [-2.7]},
        "agn": {"enabled": True, "frac_agn": [0.0, 0.4], "av_agn": [0.0, 1.5]},
    })
    z = 10 ** (round(np.log10(2.3) / 0.0005) * 0.0005) - 1  # on the lattice, so no snapping
    g = build_grid(cfg, BANDS, [z])
    i = g.intensive
    p = SourceParams(
        z=np.full(g.n_models, z), age=i["age"], tau=i["tau"], metallicity=i["metallicity"], av=i["av"],
        logu=i["logu"], burst_age=i["burst_age"], burst_fraction=i["burst_fraction"],
        young_factor=i["young_factor"], frac_agn=i["frac_agn"], av_agn=i["av_agn"],
    )
    flux, zz, extras = model_photometry(p, BANDS)
    assert np.allclose(zz, z)
    assert np.allclose(flux, g.flux[0], rtol=1e-5, atol=0)
    for k in ("mstar", "mstar_living", "sfr10", "sfr100", "ldust", "lagn_ir"):
        assert np.allclose(extras[k], g.extensive[k], rtol=1e-10, atol=1e-300), k
    # frac_agn is the AGN share of the total IR luminosity
    agn = i["frac_agn"] > 0
    dusty = agn & (g.extensive["ldust"] > 0)
    share = g.extensive["lagn_ir"][dusty] / (g.extensive["lagn_ir"][dusty] + g.extensive["ldust"][dusty])
    assert dusty.any() and np.allclose(share, i["frac_agn"][dusty])


def test_sfh_integrals() -> None:
    w = bin_masses("constant", 1e9)
    assert w.sum() == pytest.approx(1.0)
    assert mass_within("constant", 1e9, 1.0, 1e8) == pytest.approx(0.1)
    # exponential, τ = 100 Myr, age 2 Gyr: mass in the last 100 Myr = (e^{-19} − e^{-20}) / (1 − e^{-20})
    assert mass_within("exponential", 2e9, 1e8, 1e8) == pytest.approx(np.exp(-19) - np.exp(-20), rel=1e-6)
    # delayed-τ with τ → ∞ tends to SFR ∝ t: mass in last 10 % of the time = 1 − 0.9² = 0.19
    assert mass_within("delayed", 1e9, 1e15, 1e8) == pytest.approx(0.19, rel=1e-4)
    g = build_grid(FitConfig.from_dict({"sfh": {"family": "constant", "age": [0.05, 1.0]},
                                        "dust_attenuation": {"av": [0.0]}, "stellar": {"metallicity": [1.0]}}),
                   BANDS, [1.0])
    assert np.allclose(g.extensive["sfr100"], [1 / 5e7, 1 / 1e9])
    assert np.allclose(g.extensive["sfr10"], [1 / 5e7, 1 / 1e9])


def test_energy_balance_and_dust_emission() -> None:
    """With dust, L_dust > 0 and grows with A_V; dust emission brightens no optical band but is
    on (a far-IR filter file sees it)."""
    g = build_grid(SMALL, BANDS, [1.0])
    av = g.intensive["av"]
    assert np.all(g.extensive["ldust"][av == 0] == 0) and np.all(g.extensive["ldust"][av > 0] > 0)
    off = FitConfig.from_dict({**SMALL.model_dump(), "dust_emission": {"enabled": False}})
    g_off = build_grid(off, BANDS, [1.0])
    assert np.allclose(g_off.flux, g.flux, rtol=1e-4)  # < 1 µm rest: no DL07 contribution
