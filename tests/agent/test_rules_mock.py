"""RulesPolicy on mock hard sources with the real fitter: acceptance and parameter recovery.

Figures are printed (``pytest -s``) for the closing note.
"""

from __future__ import annotations

import numpy as np
import pytest

from sedscale.agent import AcceptanceTest, AgentBudgets, KnowledgeBase, RulesPolicy, run_agent
from sedscale.sed.api import fit_photometry

from .mocks import hard_mock, small_triage_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rules_run(sedscale_cache_dir):
    phot, table = hard_mock(n=60, seed=1)
    cfg = small_triage_config()
    triage = fit_photometry(phot, cfg, cache_dir=sedscale_cache_dir)
    out = run_agent(phot, triage, cfg, RulesPolicy(), partition_id=11, budgets=AgentBudgets(max_steps=6),
                    cache_dir=sedscale_cache_dir)
    return phot, table, triage, out


def test_rules_accept_most_triage_failures_within_six_steps(rules_run) -> None:
    phot, table, triage, out = rules_run
    klass = np.array(table["truth_class"].to_pylist())
    failed = out.entered
    n_failed = int(failed.sum())
    assert n_failed >= 15, "the mock should make the standard fit fail for many hard sources"
    frac = float(out.accepted[failed].mean())
    steps = np.array([a.agent_steps for a in out.accounting])
    print(f"\nrules policy: {int(out.accepted[failed].sum())}/{n_failed} triage failures accepted ({100 * frac:.0f}%), "
          f"mean steps {steps[failed].mean():.2f}, max {steps.max()}")
    for k in ("agn", "strong_lines", "very_dusty", "lrd"):
        m = failed & (klass == k)
        print(f"  {k:13s} failed triage {int(m.sum()):3d}  accepted {int(out.accepted[m].sum()):3d}")
    assert frac >= 0.8
    assert steps.max() <= 6
    assert np.all(out.chi2_red <= out.triage_chi2_red + 1e-12)  # never worse than triage
    assert np.all(out.accepted[out.triage_accepted])


def test_rules_improve_recovered_parameters(rules_run) -> None:
    phot, table, triage, out = rules_run
    m = out.entered
    report = {}
    for name, col in (("logmstar", "truth_logmstar"), ("av", "truth_av"), ("logsfr", "truth_logsfr")):
        truth = table[col].to_numpy()
        before = float(np.nanmedian(np.abs(triage.estimates[name][0][m] - truth[m])))
        after = float(np.nanmedian(np.abs(out.estimates[name][0][m] - truth[m])))
        report[name] = (before, after)
        print(f"  median |{name} - truth| over triage failures: triage {before:.3f} -> agent {after:.3f}")
    chi_before, chi_after = np.median(out.triage_chi2_red[m]), np.median(out.chi2_red[m])
    print(f"  median chi2_red over triage failures: {chi_before:.2f} -> {chi_after:.2f}")
    assert chi_after < 0.5 * chi_before
    assert all(after <= before + 0.02 for before, after in report.values())
    assert any(after <= 0.9 * before for before, after in report.values())


def test_rules_run_distils_knowledge_and_reruns_identically(rules_run, sedscale_cache_dir) -> None:
    phot, table, triage, out = rules_run
    kb = out.knowledge_delta
    assert sum(s.n for s in kb.rules.values()) >= sum(a.agent_steps for a in out.accounting)
    assert any(s.accepted for s in kb.rules.values())
    again = run_agent(phot, triage, small_triage_config(), RulesPolicy(), partition_id=11,
                      budgets=AgentBudgets(max_steps=6), cache_dir=sedscale_cache_dir)
    assert again.config_hash == out.config_hash and again.stop_reason == out.stop_reason
    assert again.knowledge_delta == kb
    assert np.array_equal(again.chi2_red, out.chi2_red)
