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


def test_a_declared_limit_scales_and_shows_the_model_as_the_fit_does(tmp_path: Path) -> None:
    """The u band given as an upper limit far above the model: the scale is the detected bands'
    (2.5e9) and the u residual is 0 (a met limit), where read as a measurement it would be ~+5σ. A limit below the model binds: the scale drops to the kernel's own
    (``limits.best_normalisation``) and the u residual is the excess, < 0."""
    from sedscale.sed.limits import best_normalisation

    sed = rebuild_model(CONFIG, FILTERS, 3, Z, cache_dir=tmp_path)
    truth = 2.5e9 * sed.band_flux
    error = 0.05 * truth
    is_limit = np.array([True, False, False, False])
    flux = truth.copy()
    flux[0], error[0] = 50 * truth[0], 10 * truth[0]  # a 5σ limit 50× the model's u flux
    met = sed.scale_to(flux, error, 0.0, is_limit)
    assert met.scale == pytest.approx(2.5e9, rel=1e-9)
    assert met.residual_sigma(flux, error, 0.0, is_limit)[0] == 0.0
    plain = sed.scale_to(flux, error, 0.0)  # the limit read as a measurement: a ~5σ "missing flux"
    assert plain.residual_sigma(flux, error, 0.0)[0] > 4.0

    flux[0], error[0] = 0.5 * truth[0], 0.1 * truth[0]  # the limit sits at half the model's u flux
    bound = sed.scale_to(flux, error, 0.0, is_limit)
    kernel = best_normalisation(flux, error, is_limit, (sed.band_flux / sed.scale)[None])
    assert bound.scale == pytest.approx(float(kernel.s[0]), rel=1e-9)
    assert bound.scale < 2.5e9
    assert bound.residual_sigma(flux, error, 0.0, is_limit)[0] < 0.0


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


def test_a_declared_limit_is_drawn_as_the_catalogs_limit(tmp_path: Path) -> None:
    """The figure's photometry panel draws a declared limit as a "catalog upper limit" arrow at its
    value, not as a detection with an error bar."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from sedscale.report.sed_figure import draw_sed
    from sedscale.report.source_sed import SourceSED

    model = rebuild_model(CONFIG, FILTERS, 3, Z, cache_dir=tmp_path)
    truth = 2.5e9 * model.band_flux
    flux, error = truth.copy(), 0.05 * truth
    flux[0], error[0] = 50 * truth[0], 10 * truth[0]
    limits = np.array([True, False, False, False])
    sed = SourceSED(row={"source_id": 7, "status": "fitted"}, filters=FILTERS, flux=flux, error=error,
                    error_floor=0.0, model=model.scale_to(flux, error, 0.0, limits), is_limit=limits)
    fig = Figure()
    draw_sed(fig, sed)
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert "catalog upper limit" in labels
    assert np.nanmax(np.abs(sed.residual_sigma())) < 1e-6  # met limit and exact detections: all 0
