"""The little-red-dots workflow on its mock sub-population, with the real fitter.

LRD mocks (``make_mock(..., hard_classes=("lrd",))``: z 3–8, young lightly attenuated host, a
reddened AGN dominating the rest optical) must fail the workflow's own triage fit and acceptance
test at a meaningful rate — where Roman + LSST reach the rest optical (z ≲ 4.5) the "V" cannot be
fitted by a grid whose AGN is unobscured — and the rules policy must rescue some of them.
Figures are printed (``pytest -s``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from sedscale.agent import AcceptanceTest, AgentBudgets, RulesPolicy, run_agent
from sedscale.sed.api import fit_photometry
from sedscale.sed.config import FitConfig
from sedscale.sed.mock import make_mock

from .mocks import table_to_photometry

pytestmark = pytest.mark.slow

WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "little-red-dots.yaml"


@pytest.fixture(scope="module")
def lrd_run(sedscale_cache_dir):
    wf = yaml.safe_load(WORKFLOW.read_text())
    cfg = FitConfig.model_validate(wf["fit"])
    acc = AcceptanceTest.model_validate(wf["acceptance"])
    table = make_mock("roman", 40, seed=5, hard_fraction=1.0, depth_offset=3.0, hard_classes=("lrd",))
    phot = table_to_photometry(table)
    triage = fit_photometry(phot, cfg, cache_dir=sedscale_cache_dir)
    out = run_agent(phot, triage, cfg, RulesPolicy(), partition_id=0, budgets=AgentBudgets(max_steps=6),
                    acceptance=acc, cache_dir=sedscale_cache_dir)
    return table, out


def test_lrd_mocks_fail_the_workflow_triage_at_a_meaningful_rate(lrd_run) -> None:
    table, out = lrd_run
    z = table["redshift"].to_numpy()
    failed = ~out.triage_accepted
    print(f"\nLRD mocks failing the little-red-dots triage: {int(failed.sum())}/{failed.size}; "
          f"z <= 4.5: {int(failed[z <= 4.5].sum())}/{int((z <= 4.5).sum())}, z > 4.5: "
          f"{int(failed[z > 4.5].sum())}/{int((z > 4.5).sum())}")
    assert set(table["truth_class"].to_pylist()) == {"lrd"}
    assert failed.mean() >= 0.25
    # the V is what fails: where the rest optical is in the bands, most fail
    assert failed[z <= 4.5].mean() > failed[z > 4.5].mean()


def test_rules_policy_rescues_some_lrds_and_never_gets_worse(lrd_run) -> None:
    _, out = lrd_run
    m = out.entered
    rescued = int((out.accepted & m).sum())
    print(f"rules policy: {rescued}/{int(m.sum())} LRD triage failures accepted; stop reasons "
          f"{out.summary()['stop_reasons']}")
    assert rescued >= 1
    assert np.all(out.chi2_red <= out.triage_chi2_red + 1e-12)
    assert np.median(out.chi2_red[m]) < np.median(out.triage_chi2_red[m])
