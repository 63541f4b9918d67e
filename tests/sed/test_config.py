"""FitConfig: stable hashes, clear validation errors, YAML round trip, the bounds registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sedscale.errors import ConfigError
from sedscale.sed.config import PARAMETER_BOUNDS, FitConfig


def test_hash_is_stable_across_processes() -> None:
    here = FitConfig.default().hash()
    code = "from sedscale.sed.config import FitConfig; print(FitConfig.default().hash())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert here == other
    assert len(here) == 64


def test_hash_normalises_numbers_and_tracks_content() -> None:
    a = FitConfig.from_dict({"sfh": {"tau": [1, 3]}})
    b = FitConfig.from_dict({"sfh": {"tau": [1.0, 3.0]}})
    c = FitConfig.from_dict({"sfh": {"tau": [1.0, 3.5]}})
    assert a.hash() == b.hash()
    assert a.hash() != c.hash()
    assert FitConfig.from_dict({"agn": {"enabled": True}}).hash() != FitConfig.default().hash()


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"sfh": {"tau": [500.0]}}, "sfh.tau: value(s) [500.0] outside the allowed range [0.01, 100.0] Gyr"),
        ({"dust_attenuation": {"av": [-1.0]}}, "dust_attenuation.av"),
        ({"nebular": {"logu": [0.5]}}, "nebular.logu"),
        ({"stellar": {"metallicity": []}}, "stellar.metallicity: needs at least one value"),
        ({"sfh": {"age": [1.0, 1.0]}}, "duplicate"),
        ({"dust": {}}, "unknown key 'dust'"),
        ({"sfh": {"taus": [1.0]}}, "unknown key 'sfh.taus'"),
        ({"sfh": {"family": "lognormal"}}, "sfh.family"),
        ({"cosmology": "Planck99"}, "not an astropy realization"),
        ({"dust_attenuation": {"law": "calzetti", "delta": [-0.3]}}, "apply only to law 'modified_starburst'"),
        ({"redshift": {"z_min": 2.0, "z_max": 1.0}}, "must exceed"),
    ],
)
def test_validation_errors_name_the_key(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        FitConfig.from_dict(data, source="cfg.yaml")
    assert needle in str(err.value)
    assert str(err.value).startswith("cfg.yaml:")


def test_yaml_round_trip(tmp_path) -> None:
    cfg = FitConfig.from_dict(
        {"sfh": {"family": "delayed_burst", "burst_fraction": [0.0, 0.2]},
         "dust_attenuation": {"law": "modified_starburst", "delta": [-0.3, 0.0], "bump": [0.0, 1.5]},
         "agn": {"enabled": True, "frac_agn": [0.0, 0.5]}}
    )
    path = tmp_path / "fit.yaml"
    path.write_text(cfg.to_yaml())
    back = FitConfig.from_yaml(path)
    assert back == cfg and back.hash() == cfg.hash()


def test_from_yaml_reports_the_file(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sfh: {tau: [0.001]}\n")
    with pytest.raises(ConfigError, match="bad.yaml: sfh.tau"):
        FitConfig.from_yaml(path)
    with pytest.raises(ConfigError, match="cannot read"):
        FitConfig.from_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        FitConfig.from_yaml(tmp_path / "list.yaml")


def test_default_size_and_axes() -> None:
    cfg = FitConfig.default()
    assert 1_000 <= cfg.n_models <= 10_000
    axes = cfg.axes()
    assert list(axes)[:3] == ["metallicity", "tau", "age"]
    assert "frac_agn" not in axes  # AGN off by default
    n = 1
    for v in axes.values():
        n *= len(v)
    assert n == cfg.n_models
    assert FitConfig.from_dict({"sfh": {"family": "constant"}}).axes().keys().isdisjoint({"tau"})


def test_bounds_registry_covers_every_list_parameter() -> None:
    cfg = FitConfig.default()
    for section in ("sfh", "stellar", "dust_attenuation", "nebular", "dust_emission", "agn"):
        for name, value in getattr(cfg, section).model_dump().items():
            if isinstance(value, list):
                bound = PARAMETER_BOUNDS[f"{section}.{name}"]
                assert bound.min < bound.max and bound.description
                assert all(bound.min <= v <= bound.max for v in value)
    lo, hi, unit, desc = PARAMETER_BOUNDS["sfh.tau"]
    assert (lo, hi, unit) == (0.01, 100.0, "Gyr")


def test_config_is_immutable() -> None:
    cfg = FitConfig.default()
    with pytest.raises(Exception):
        cfg.error_floor = 0.1  # type: ignore[misc]
