"""The wavelength-mode AGN (``agn.fraction_at`` = a rest wavelength): frac_agn is the AGN's share of
the total λL_λ there, it needs no host dust, the grid and the per-source models agree, and the
default (IR) mode keeps every existing configuration hash."""

from __future__ import annotations

import numpy as np
import pytest

from sedscale.errors import ConfigError
from sedscale.sed.agn import at_wavelength
from sedscale.sed.config import FitConfig
from sedscale.sed.grid import build_grid
from sedscale.sed.models import SourceParams, model_photometry, rest_frame_spectra

BANDS = ("lsst_g", "lsst_r", "euclid_vis", "euclid_h")


def _params(frac: float, av: float, av_agn: float, fraction_at: float | None) -> SourceParams:
    one = np.ones(1)
    return SourceParams(z=0.5 * one, age=2.0 * one, tau=1.0 * one, metallicity=one, av=av * one,
                        logu=-3.0 * one, frac_agn=frac * one, av_agn=av_agn * one,
                        agn_fraction_at=fraction_at)


@pytest.mark.parametrize("frac, av, av_agn", [(0.5, 0.0, 0.0), (0.3, 1.0, 0.0), (0.8, 0.5, 1.5)])
def test_agn_share_at_reference_wavelength_equals_frac_agn(frac: float, av: float, av_agn: float) -> None:
    """Hand check: model with the AGN minus model without it, read at 5100 Å, over the total."""
    with_agn, _ = rest_frame_spectra(_params(frac, av, av_agn, 5100.0))
    galaxy, _ = rest_frame_spectra(_params(0.0, av, av_agn, 5100.0))
    agn = with_agn - galaxy
    share = at_wavelength(agn, 5100.0) / at_wavelength(with_agn, 5100.0)
    assert share[0] == pytest.approx(frac, rel=1e-9)


def test_wavelength_mode_needs_no_host_dust() -> None:
    """With A_V = 0 the IR-mode AGN vanishes (no dust luminosity); the wavelength mode does not."""
    _, ir_mode = rest_frame_spectra(_params(0.5, 0.0, 0.0, None))
    _, at_5100 = rest_frame_spectra(_params(0.5, 0.0, 0.0, 5100.0))
    assert ir_mode["lagn_ir"][0] == 0.0
    assert at_5100["lagn_ir"][0] > 0.0


def test_grid_equals_per_source_models_in_wavelength_mode() -> None:
    cfg = FitConfig.from_dict({
        "sfh": {"age": [0.5, 2.0], "tau": [0.3, 3.0]},
        "stellar": {"metallicity": [0.4, 1.0]},
        "dust_attenuation": {"av": [0.0, 1.2]},
        "nebular": {"logu": [-2.5]},
        "agn": {"enabled": True, "frac_agn": [0.0, 0.4, 0.9], "av_agn": [0.0, 1.5], "fraction_at": 5100},
    })
    z = 10 ** (round(np.log10(1.8) / 0.0005) * 0.0005) - 1  # on the lattice
    g = build_grid(cfg, BANDS, [z], persist=False)
    i = g.intensive
    p = SourceParams(z=np.full(g.n_models, z), age=i["age"], tau=i["tau"], metallicity=i["metallicity"],
                     av=i["av"], logu=i["logu"], frac_agn=i["frac_agn"], av_agn=i["av_agn"],
                     agn_fraction_at=5100.0)
    flux, _, extras = model_photometry(p, BANDS)
    assert np.allclose(flux, g.flux[0], rtol=1e-5, atol=0)
    assert np.allclose(extras["lagn_ir"], g.extensive["lagn_ir"], rtol=1e-9)
    # a brighter AGN at the same host: more light in every band
    host = (i["frac_agn"] == 0.0)
    assert np.all(g.flux[0][i["frac_agn"] == 0.9] > g.flux[0][host])


def test_default_mode_keeps_hashes_and_validates_the_wavelength() -> None:
    base = FitConfig.default()
    explicit = FitConfig.from_dict({"agn": {"fraction_at": "dust"}})
    assert explicit.hash() == base.hash()
    assert "fraction_at" not in base.canonical_json()
    # the default of before the field existed (floor 0.05 then) keeps its hash
    assert FitConfig.from_dict({"error_floor": 0.05}).hash().startswith("3209d0f46f43")
    moved = FitConfig.from_dict({"agn": {"fraction_at": 5100}})
    assert moved.hash() != base.hash() and moved.agn.reference_aa == 5100.0
    assert FitConfig.model_validate(moved.model_dump(mode="json")).hash() == moved.hash()
    with pytest.raises(ConfigError, match="fraction_at"):
        FitConfig.from_dict({"agn": {"fraction_at": 50.0}})
