"""A source the agent refits reports its own best model and percentiles in ``AgentOutcome.extra``;
the other rows keep the triage fit's (a fake triage result: no grid needed)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from sedscale.agent.acceptance import AcceptanceTest, source_fits
from sedscale.agent.accounting import SourceAccounting
from sedscale.agent.knowledge import KnowledgeBase
from sedscale.agent.outcome import AgentResult, assemble_outcome
from sedscale.sed.config import FitConfig


def _fake_result(best: list[int], p50: list[float]) -> SimpleNamespace:
    n = len(best)
    p = np.asarray(p50, float)
    return SimpleNamespace(
        chi2_red=np.ones(n), chi2_best=np.full(n, 3.0), dof=np.full(n, 3), n_good_models=np.full(n, 5),
        residual_sigma=np.zeros((n, 4)), best_flux=np.ones((n, 4)),
        estimates={"logmstar": (p, np.full(n, 0.1))}, best_index=np.asarray(best),
        percentiles={"logmstar": {"p025": p - 0.2, "p16": p - 0.1, "p50": p, "p84": p + 0.1,
                                  "p975": p + 0.2}},
    )


def test_refit_source_reports_its_own_model_and_percentiles_fake() -> None:
    triage = _fake_result([10, 11, 12], [9.0, 9.5, 10.0])
    refit = source_fits(_fake_result([77], [8.0]))[0]
    assert refit.extra["best_model"] == 77 and refit.extra["logmstar_p975"] == 8.2
    other = FitConfig.from_dict({"dust_attenuation": {"av": [0.0, 0.5]}})
    result = AgentResult(best=refit, config=other, accounting=SourceAccounting(), history=[],
                         decisions=[])
    outcome = assemble_outcome(np.array([1, 2, 3]), 4, triage, FitConfig(), {1: result},
                               ["", "", ""], np.array([False, True, False]),
                               np.array([True, False, True]), AcceptanceTest(), KnowledgeBase())
    np.testing.assert_array_equal(outcome.extra["best_model"], [10, 77, 12])
    np.testing.assert_allclose(outcome.extra["logmstar_p16"], [8.9, 7.9, 9.9])
    np.testing.assert_allclose(outcome.extra["logmstar_p975"], [9.2, 8.2, 10.2])
    assert outcome.config_hash[1] == other.hash() != outcome.config_hash[0]


def test_missing_best_model_is_minus_one_fake() -> None:
    triage = _fake_result([10, 11], [9.0, 9.5])
    del triage.best_index
    refit = source_fits(_fake_result([5], [8.0]))[0]
    result = AgentResult(best=refit, config=FitConfig(), accounting=SourceAccounting(), history=[],
                         decisions=[])
    outcome = assemble_outcome(np.array([1, 2]), 4, triage, FitConfig(), {0: result}, ["", ""],
                               np.array([True, False]), np.array([False, True]), AcceptanceTest(),
                               KnowledgeBase())
    np.testing.assert_array_equal(outcome.extra["best_model"], [5, -1])
