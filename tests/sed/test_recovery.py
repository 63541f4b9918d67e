"""Parameter recovery at known redshift on a physics mock (``make_mock``), S/N ≥ 20 in every band.

Stated tolerances (mean over the sample of fit − truth; scatter = standard deviation, or NMAD
where a few unconstrained sources would dominate the standard deviation):

* log M*: |bias| ≤ 0.05 dex, scatter ≤ 0.15 dex (the issue's requirement);
* A_V: |bias| ≤ 0.15 mag, NMAD ≤ 0.20 mag;
* log SFR (100 Myr): |median offset| ≤ 0.15 dex, NMAD ≤ 0.25 dex — quiescent sources, whose SFR
  only has an upper bound, are what the standard deviation would measure.

The grid spans the mock's ages evenly (the default grid's age list is denser at young ages, which
as a prior pulls old populations young and their masses low by ~0.06 dex).
"""

from __future__ import annotations

import numpy as np
import pytest

RECOVERY_CONFIG = {
    "sfh": {"age": [0.1, 0.3, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0,
                    10.0, 11.0, 12.0]},
}


def _nmad(d: np.ndarray) -> float:
    return float(1.48 * np.median(np.abs(d - np.median(d))))


pytestmark = pytest.mark.slow  # builds a ~2,300-model grid at ~200 redshift nodes (~30-70 s)


@pytest.fixture(scope="module")
def recovery(sedscale_cache_dir):
    from sedscale.catalog.photometry import Photometry
    from sedscale.sed.api import fit_photometry
    from sedscale.sed.config import FitConfig
    from sedscale.sed.mock import make_mock, survey_bands

    tab = make_mock("euclid", 200, seed=7, depth_offset=3.0).to_pydict()
    bands = survey_bands("euclid")
    flux = np.column_stack([tab[f"flux_{b}"] for b in bands])
    err = np.column_stack([tab[f"fluxerr_{b}"] for b in bands])
    sel = np.min(flux / err, axis=1) >= 20.0
    phot = Photometry(np.asarray(tab["source_id"])[sel], flux[sel], err[sel],
                      np.asarray(tab["redshift"])[sel], bands, np.arange(int(sel.sum())))
    res = fit_photometry(phot, FitConfig.from_dict(RECOVERY_CONFIG), cache_dir=sedscale_cache_dir)
    truth = {k: np.asarray(v)[sel] for k, v in tab.items() if k.startswith("truth_")}
    return res, truth


def test_sample_is_large_enough(recovery):
    res, truth = recovery
    assert len(res) >= 80
    assert np.all(res.fitted) and np.all(res.n_bands == 9)
    assert np.nanmedian(res.chi2_red) < 2.0


def test_stellar_mass_recovered(recovery):
    res, truth = recovery
    d = res.mean("logmstar") - truth["truth_logmstar"]
    print(f"log M*: bias {d.mean():+.3f} dex, scatter {d.std():.3f} dex, N={d.size}")
    assert abs(d.mean()) <= 0.05
    assert d.std() <= 0.15
    # the quoted uncertainties are of the right size (not a factor of 3 off)
    assert 0.3 < np.median(np.abs(d) / np.maximum(res.std("logmstar"), 1e-3)) < 3.0


def test_av_recovered(recovery):
    res, truth = recovery
    d = res.mean("av") - truth["truth_av"]
    print(f"A_V: bias {d.mean():+.3f} mag, NMAD {_nmad(d):.3f} mag")
    assert abs(d.mean()) <= 0.15
    assert _nmad(d) <= 0.20


def test_sfr_recovered(recovery):
    res, truth = recovery
    d = res.mean("logsfr") - truth["truth_logsfr"]
    d = d[np.isfinite(d)]
    print(f"log SFR: median offset {np.median(d):+.3f} dex, NMAD {_nmad(d):.3f} dex")
    assert abs(np.median(d)) <= 0.15
    assert _nmad(d) <= 0.25
