"""The posterior intervals are calibrated (issue 15; sedscale.sed.calibration):

* on mocks drawn from the model's own priors, the 16–84% interval holds the truth for 60–76% of
  sources and the 2.5–97.5% one for 92–98%, for log M*, log SFR and A_V;
* on independent mocks (bagpipes ``model_galaxy``, S/N 25, known z, truth = surviving mass) the
  16–84% interval of log M* holds the truth for 55–80%, with the calibration grid and with the
  default grid and floor that ``FitConfig()`` gives every user.

benchmarks/bench_calibration.py prints the same numbers with the PIT histograms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sedscale.catalog.photometry import Photometry
from sedscale.sed.api import fit_photometry
from sedscale.sed.calibration import CALIBRATION_GRID, QUANTITIES, bagpipes_mock, coverage, prior_mock
from sedscale.sed.config import FitConfig
from sedscale.sed.mock import survey_bands

pytestmark = pytest.mark.slow  # grids at a few redshift nodes; bagpipes models one by one (~2-4 min)

def test_intervals_are_calibrated_on_mocks_from_the_models_priors(sedscale_cache_dir: Path) -> None:
    # the mocks are the grid's own models: no template mismatch, so no systematic floor
    config = FitConfig.from_dict({**CALIBRATION_GRID, "error_floor": 0.0})
    phot, truth = prior_mock(config, survey_bands("euclid"), 0.7, 500, snr=10.0, seed=1,
                             cache_dir=sedscale_cache_dir)
    result = fit_photometry(phot, config, cache_dir=sedscale_cache_dir)
    for quantity in QUANTITIES:
        cov = coverage(result, quantity, truth[quantity])
        assert cov.n == 500
        assert 0.60 <= cov.within68 <= 0.76, (quantity, cov)
        assert 0.92 <= cov.within95 <= 0.98, (quantity, cov)


@pytest.fixture(scope="module")
def bagpipes_sample() -> tuple[Photometry, dict[str, np.ndarray]]:
    """200 bagpipes galaxies (~40 s to make), shared by both grids' tests."""
    return bagpipes_mock(survey_bands("euclid"), (0.4, 0.8), 200, seed=3, snr=25.0)


@pytest.mark.parametrize("grid", ["calibration grid, its 5% floor", "default grid and floor (what users get)"])
def test_mass_intervals_hold_on_independent_bagpipes_mocks(
        grid: str, bagpipes_sample: tuple[Photometry, dict[str, np.ndarray]], sedscale_cache_dir: Path) -> None:
    config = FitConfig.from_dict(CALIBRATION_GRID) if grid.startswith("calibration") else FitConfig()
    phot, truth = bagpipes_sample
    result = fit_photometry(phot, config, cache_dir=sedscale_cache_dir)
    cov = coverage(result, "logmstar", truth["logmstar"])
    assert cov.n == 200
    assert 0.55 <= cov.within68 <= 0.80, cov
    assert abs(cov.bias) < 0.15, cov
