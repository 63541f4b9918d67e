"""A met upper limit is no misfit: a source that is a grid model exactly, with its g band given as
a 5σ upper limit 20× above the model, passes the acceptance test (and shows no residual pattern
to the rules). Read as a measurement, the limit would be a +4.75σ "missing flux" and fail the
per-band residual cut of 3σ."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sedscale.agent.acceptance import AcceptanceTest, source_fits
from sedscale.catalog.photometry import Photometry
from sedscale.sed.api import fit_photometry
from sedscale.sed.config import FitConfig
from sedscale.sed.grid import build_grid

BANDS = ("lsst_g", "lsst_r", "lsst_i", "euclid_y", "euclid_j", "euclid_h")
TINY = {"sfh": {"age": [0.5, 2.0, 5.0], "tau": [0.3, 3.0]}, "stellar": {"metallicity": [1.0]},
        "dust_attenuation": {"av": [0.0, 0.5, 1.5]}, "nebular": {"enabled": False},
        "dust_emission": {"enabled": False}, "error_floor": 0.0}


def test_a_met_limit_passes_acceptance(sedscale_cache_dir: Path) -> None:
    cfg = FitConfig.from_dict(TINY)
    z = np.array([0.8, 0.8])
    grid = build_grid(cfg, BANDS, z[:1], cache_dir=sedscale_cache_dir)
    model = grid.flux[0][7].astype(np.float64) * 1e10 / grid.extensive["mstar"][7]
    flux = np.stack([model, model])
    error = 0.02 * flux
    flux[:, 0], error[:, 0] = 20 * model[0], 4 * model[0]  # a 5σ limit 20× the model's g flux
    is_limit = np.zeros((2, len(BANDS)), bool)
    is_limit[0, 0] = True  # source 0 declares it a limit; source 1 reads it as a measurement
    phot = Photometry(np.array([1, 2]), flux, error, z, BANDS, np.arange(2), is_limit=is_limit)
    result = fit_photometry(phot, cfg, cache_dir=sedscale_cache_dir)
    test = AcceptanceTest(chi2_red_max=2.0, max_abs_residual=3.0)
    limited, measured = source_fits(result)
    assert limited.residual[0] == 0.0 and test.passes(limited), test.failures(limited)
    assert measured.residual[0] > 3.0 and "residual" in test.failures(measured)
    np.testing.assert_array_equal(test.passes_array(result), [True, False])
