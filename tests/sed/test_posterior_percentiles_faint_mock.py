"""No source fails for being faint: a mock at survey depth with many non-detections, plus sources
whose fluxes are noise only, all exactly 0, or all negative, through ``fit_table``. Each ends
``fitted`` with ``detected`` false where no band reaches S/N 3, and a log M* posterior whose p975
(the upper limit) lies above its median."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sedscale.campaign.workflow import Workflow
from sedscale.catalog.profiles import load_profile
from sedscale.fitting import FitOptions, fit_table
from sedscale.sed.config import FitConfig
from sedscale.sed.mock import make_mock, survey_bands

pytestmark = pytest.mark.slow  # physics mock and a grid at ~100 redshift nodes (~1-2 min)

FAINT_CONFIG = {
    "sfh": {"family": "delayed", "age": [0.3, 1.0, 3.0, 8.0], "tau": [0.3, 3.0]},
    "stellar": {"metallicity": [1.0]},
    "dust_attenuation": {"av": [0.0, 0.5, 1.0]},
    "nebular": {"enabled": False}, "dust_emission": {"enabled": False},
    "redshift": {"node_step": 0.002},
}


@pytest.fixture(scope="module")
def results(sedscale_cache_dir: Path) -> pa.Table:
    mock = make_mock("euclid", 160, seed=21, depth_offset=-1.0)  # 1 mag shallower than the survey
    keep = [n for n in mock.column_names if not n.startswith("truth_")]
    table = mock.select(keep)
    cols = {n: table.column(n).to_numpy().copy() for n in table.column_names}
    for b in survey_bands("euclid"):
        err = cols[f"fluxerr_{b}"]
        cols[f"flux_{b}"][:20] = np.random.default_rng(3).normal(0.0, 1.0, 20) * err[:20]  # noise
        cols[f"flux_{b}"][20:25] = 0.0  # every flux exactly 0
        cols[f"flux_{b}"][25:30] = -np.abs(cols[f"flux_{b}"][25:30]) - err[25:30]  # all negative
    table = pa.table(cols)
    options = FitOptions.from_workflow(Workflow(name="faint"), cache_dir=sedscale_cache_dir,
                                       fit_config=FitConfig.from_dict(FAINT_CONFIG), policy="none")
    return fit_table(table, load_profile("generic", table.schema), options).table


def test_no_source_fails_for_being_faint(results: pa.Table) -> None:
    status = results.column("status").to_pylist()
    assert status.count("failed") == 0, [r for r, s in zip(results.column("reason").to_pylist(), status)
                                         if s == "failed"][:3]
    assert status.count("fitted") == results.num_rows


def test_many_sources_are_not_detected_and_get_upper_limits(results: pa.Table) -> None:
    detected = results.column("detected").to_numpy(zero_copy_only=False)
    assert np.sum(~detected) >= 30  # the planted 30 and the mock's own faint ones
    assert not detected[20:30].any()  # zero / negative everywhere
    assert np.sum(detected[:20]) <= 4  # noise only: a 3σ excursion in one of 9 bands is rare
    logm = results.column("logmstar").to_numpy(zero_copy_only=False)
    p50 = results.column("logmstar_p50").to_numpy(zero_copy_only=False)
    p975 = results.column("logmstar_p975").to_numpy(zero_copy_only=False)
    assert np.all(np.isfinite(logm)) and np.all(np.isfinite(p975))
    assert np.all(p975[~detected] > p50[~detected])
    # an undetected source's limit sits below the detected sources' typical mass at the same depth
    assert np.median(p975[~detected]) < np.median(logm[detected]) + 0.5
    assert pc.all(pc.is_valid(results.column("logmstar_p16"))).as_py()
