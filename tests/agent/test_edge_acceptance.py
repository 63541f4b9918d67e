"""A posterior piled against a grid bound fails acceptance (``edge:<param>``), and the rules widen
the range (issue 17): real fits of model sources beyond the grid's A_V ceiling, and of the shipped
independent (bagpipes) hard mocks' dusty sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sedscale.agent import AcceptanceTest, AgentBudgets, RulesPolicy, run_agent
from sedscale.agent.acceptance import edge_params, edge_threshold, source_fits
from sedscale.catalog.photometry import Photometry
from sedscale.sed.api import fit_photometry
from sedscale.sed.config import FitConfig
from sedscale.sed.hard_mocks import HARD_MOCK_BANDS
from sedscale.sed.models import SourceParams, model_photometry

BANDS = ("lsst_u", "lsst_g", "lsst_r", "lsst_i", "lsst_z", "euclid_y", "euclid_j", "euclid_h")
#: A small grid whose A_V stops at 3 mag (like the default's), so a test fits in seconds.
SMALL = FitConfig.from_dict({
    "sfh": {"age": [0.5, 1.0, 2.0, 4.0], "tau": [0.3, 1.0, 3.0]},
    "stellar": {"metallicity": [1.0]},
    "dust_attenuation": {"av": [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]},
    "dust_emission": {"enabled": False},
})
HARD_60 = Path(__file__).resolve().parents[2] / "examples" / "hard_mocks" / "hard_mocks_60.parquet"


def _sources(avs: list[float], z: float = 0.8, snr: float = 15.0) -> Photometry:
    """Model galaxies (1 Gyr, τ 1 Gyr, solar) at the given A_V, 10^10 M☉ formed, noiseless at S/N ``snr``."""
    n = len(avs)
    one = np.ones(n)
    p = SourceParams(z=z * one, age=one, tau=one, metallicity=one, av=np.asarray(avs, float), logu=-3.0 * one)
    flux, zz, _ = model_photometry(p, BANDS)
    flux = flux * 1e10
    return Photometry(np.arange(1, n + 1, dtype=np.int64), flux, flux / snr, zz, BANDS, np.arange(n, dtype=np.int64))


def test_edge_threshold_is_the_top_cell_below_the_physical_bound() -> None:
    assert edge_threshold("av", [0.0, 1.0, 2.0, 3.0]) == 2.5
    assert edge_threshold("av", [3.0]) is None  # one value: nothing explored
    assert edge_threshold("av", [0.0, 5.0, 10.0]) is None  # already at PARAMETER_BOUNDS max
    assert edge_params({"av": [0.0, 1.0, 3.0]}, {"av": (2.1, 0.3)}) == ["av"]
    assert edge_params({"av": [0.0, 1.0, 3.0]}, {"av": (1.9, 0.3)}) == []


def test_acceptance_flags_a_fit_at_the_av_ceiling(sedscale_cache_dir: Path) -> None:
    phot = _sources([4.0, 1.0])
    fit = fit_photometry(phot, SMALL, cache_dir=sedscale_cache_dir)
    test = AcceptanceTest()
    assert fit.chi2_red[0] < test.chi2_red_max  # χ² alone would accept the dusty source ...
    ok, helpable = test.triage_arrays(fit)
    assert not ok[0] and helpable[0]  # ... the edge check does not, and the agent may help
    assert ok[1]  # the moderate one is accepted
    dusty, moderate = source_fits(fit)
    assert "edge:av" in test.failures(dusty) and test.failures(moderate) == []
    assert AcceptanceTest(edge_check=False).passes(dusty)
    assert np.array_equal(test.edge_reasons(fit)["edge:av"], [True, False])


def test_rules_widen_av_for_a_source_accepted_at_the_edge(sedscale_cache_dir: Path) -> None:
    phot = _sources([4.0, 3.8])
    triage = fit_photometry(phot, SMALL, cache_dir=sedscale_cache_dir)
    assert np.all(triage.chi2_red < AcceptanceTest().chi2_red_max)  # χ² would have accepted both
    out = run_agent(phot, triage, SMALL, RulesPolicy(explore=0.0), partition_id=1,
                    budgets=AgentBudgets(max_steps=3), cache_dir=sedscale_cache_dir)
    assert out.entered.all()
    steps = np.array([a.agent_steps for a in out.accounting])
    assert np.all(steps >= 1)
    assert np.all(out.accepted)  # widened: the estimate left the top cell
    before, after = triage.estimates["av"][0], out.estimates["av"][0]
    assert np.all(before <= 3.0) and np.all(np.abs(after - [4.0, 3.8]) < np.abs(before - [4.0, 3.8]))


def _hard_dusty() -> tuple[Photometry, np.ndarray]:
    """The shipped 60-source hard mocks' dusty sources with true A_V > 3."""
    t = pq.read_table(HARD_60).to_pandas()
    t = t[(t.truth_class == "dusty") & (t.truth_av > 3.0)]
    flux = t[[f"flux_{b}" for b in HARD_MOCK_BANDS]].to_numpy(float)
    err = t[[f"fluxerr_{b}" for b in HARD_MOCK_BANDS]].to_numpy(float)
    phot = Photometry(t.source_id.to_numpy(np.int64), flux, err, t.redshift.to_numpy(float), HARD_MOCK_BANDS,
                      np.arange(len(t), dtype=np.int64))
    return phot, t.truth_av.to_numpy(float)


@pytest.mark.slow
def test_rules_recover_av_of_independent_dusty_mocks_better_than_triage(sedscale_cache_dir: Path) -> None:
    phot, truth = _hard_dusty()
    assert len(truth) >= 4
    cfg = FitConfig.default()
    triage = fit_photometry(phot, cfg, cache_dir=sedscale_cache_dir)
    out = run_agent(phot, triage, cfg, RulesPolicy(), partition_id=2, budgets=AgentBudgets(max_steps=4),
                    cache_dir=sedscale_cache_dir)
    before = float(np.median(np.abs(triage.estimates["av"][0] - truth)))
    after = float(np.median(np.abs(out.estimates["av"][0] - truth)))
    print(f"\nhard dusty mocks (A_V > 3, n={len(truth)}): median |dA_V| triage {before:.2f} -> rules {after:.2f}")
    assert after < before and after < 0.5
