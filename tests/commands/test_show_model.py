"""The model ``sedscale show`` draws is the grid's model: its spectrum, folded through the filter
responses, gives the builder's band fluxes, and the observed spectrum averaged over a filter
(photon counting) gives them too; the configuration registry keeps configurations verifiably."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sedscale.campaign.paths import CampaignPaths
from sedscale.errors import CampaignError
from sedscale.pipeline import save_fit_configs
from sedscale.report.source_sed import load_fit_config
from sedscale.sed.builder import build_arrays, response_matrix
from sedscale.sed.config import FitConfig
from sedscale.sed.filters import load_filters
from sedscale.sed.spectrum import observed_spectrum, rebuild_model, rest_frame_spectrum

#: Every module on (nebular, dust emission, AGN) so each term of the spectrum is exercised.
CONFIG = FitConfig.from_dict({
    "sfh": {"age": [0.5, 3.0], "tau": [1.0]}, "stellar": {"metallicity": [1.0]},
    "dust_attenuation": {"av": [0.0, 1.0]}, "agn": {"enabled": True, "frac_agn": [0.0, 0.3]},
    "redshift": {"node_step": 0.02},
})
FILTERS = ("lsst_u", "lsst_g", "euclid_vis", "euclid_h")
Z = 1.3


def test_the_spectrum_folds_to_the_builders_band_fluxes() -> None:
    grid = build_arrays(CONFIG, FILTERS, [Z])["flux"][0]
    resp = response_matrix(FILTERS, Z, CONFIG.cosmology, True)
    for m in range(CONFIG.n_models):
        bands = rest_frame_spectrum(CONFIG, m) @ resp
        np.testing.assert_allclose(bands, grid[m], rtol=1e-6)


def test_the_observed_spectrum_averages_to_the_band_fluxes() -> None:
    """⟨f_ν⟩ = ∫ f_ν T/λ dλ / ∫ T/λ dλ over each filter equals the builder's band flux."""
    m = 5
    wave, f_nu = observed_spectrum(CONFIG, rest_frame_spectrum(CONFIG, m), Z)
    grid = build_arrays(CONFIG, FILTERS, [Z])["flux"][0, m]
    for b, filt in enumerate(load_filters(list(FILTERS))):
        t = filt.sample(wave) / wave
        assert np.trapezoid(f_nu * t, wave) / np.trapezoid(t, wave) == pytest.approx(float(grid[b]), rel=2e-3)


def test_rebuild_model_scales_to_the_photometry(tmp_path: Path) -> None:
    sed = rebuild_model(CONFIG, FILTERS, 3, Z, cache_dir=tmp_path)
    truth = 2.5e9 * sed.band_flux
    scaled = sed.scale_to(truth, 0.05 * truth, 0.0)
    assert scaled.scale == pytest.approx(2.5e9, rel=1e-9)
    np.testing.assert_allclose(scaled.residual_sigma(truth, 0.05 * truth, 0.0), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="outside the grid"):
        rebuild_model(CONFIG, FILTERS, CONFIG.n_models, Z)


def test_the_registry_keeps_configurations_by_their_hash(tmp_path: Path) -> None:
    paths = CampaignPaths.at(tmp_path)
    triage = FitConfig.default()
    written = save_fit_configs(paths, {CONFIG.hash(): CONFIG})
    assert written == [paths.fit_config(CONFIG.hash())]
    assert save_fit_configs(paths, {CONFIG.hash(): CONFIG}) == []  # content-addressed: written once
    assert load_fit_config(paths, CONFIG.hash(), triage) == CONFIG
    assert load_fit_config(paths, triage.hash(), triage) == triage  # the workflow's own, unrecorded
    with pytest.raises(CampaignError, match="is not recorded"):
        load_fit_config(paths, "0" * 64, triage)
    with pytest.raises(CampaignError, match="not a fit configuration id"):
        load_fit_config(paths, "../campaign", triage)
    path = paths.fit_config(CONFIG.hash())
    path.write_text(path.read_text().replace("calzetti", "smc"))
    with pytest.raises(CampaignError, match="does not match its hash"):
        load_fit_config(paths, CONFIG.hash(), triage)
