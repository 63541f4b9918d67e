"""The ``policy`` results column and the trail of ``fit_table`` (issue 17): the provenance rule
on step records, and through the real rules policy on a small table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sedscale.agent.trail import StepRecord, kept_policy, mark_kept, trail_table
from sedscale.catalog.profiles import load_profile
from sedscale.fitting import FitOptions, fit_table
from tests.test_fitting import small_catalog, tiny_workflow


def _step(step: int, by: str, improved: bool) -> StepRecord:
    return StepRecord(7, step, by, "{}", "", 10.0, 0, 0, chi2_after=9.0, improved=improved)


@pytest.mark.parametrize(("steps", "policy"), [
    ([], "none"),
    ([("rules", False), ("llm", False)], "none"),  # entered the loop, kept the triage fit
    ([("llm", True), ("rules", True)], "llm"),  # the kept configuration contains an LLM edit
    ([("rules", True), ("llm", False)], "rules"),  # the LLM's step did not improve
    ([("rules", True), ("rules", False)], "rules"),  # an LLM source whose decisions all fell back
])
def test_kept_policy_follows_the_improving_chain(steps: list[tuple[str, bool]], policy: str) -> None:
    records = [_step(i + 1, by, improved) for i, (by, improved) in enumerate(steps)]
    mark_kept(records)
    assert kept_policy(records) == policy
    assert sum(r.kept for r in records) == (policy != "none")


def test_trail_table_sorts_by_source_and_step() -> None:
    a, b, c = _step(2, "rules", True), _step(1, "rules", False), _step(1, "llm", False)
    c.source_id = 3
    table = trail_table([a, b, c])
    assert list(zip(table.column("source_id").to_pylist(), table.column("step").to_pylist())) == [(3, 1), (7, 1), (7, 2)]


@pytest.mark.slow  # agent re-fits build grids for the changed configurations
def test_rules_fit_table_fills_policy_and_trail(sedscale_cache_dir: Path) -> None:
    table = small_catalog()
    strict = tiny_workflow(policy="rules", acceptance={"chi2_red_max": 0.5, "band_sigma_max": 1.0},
                           budgets={"max_agent_steps": 2})
    options = FitOptions.from_workflow(strict, cache_dir=sedscale_cache_dir)
    outcome = fit_table(table, load_profile("generic", table.schema), options)
    rows = outcome.table.to_pylist()
    trail = outcome.trail.to_pylist()
    per_source: dict[int, int] = {}
    for t in trail:
        per_source[t["source_id"]] = per_source.get(t["source_id"], 0) + 1
    assert per_source == {r["source_id"]: r["agent_steps"] for r in rows if r["agent_steps"]}
    kept = {t["source_id"]: t["config_id"] for t in trail if t["kept"]}
    for r in rows:
        if r["status"] != "fitted":
            assert r["policy"] is None
        elif r["agent_steps"] == 0 or r["source_id"] not in kept:
            assert r["policy"] == "none"
        else:
            assert r["policy"] == "rules" and r["fit_config_id"] == kept[r["source_id"]]
    assert {r["policy"] for r in rows if r["accepted"] and not r["agent_steps"]} <= {"none"}
    again = fit_table(table, load_profile("generic", table.schema), options)
    assert again.trail.equals(outcome.trail)  # deterministic for the rules policy
    assert np.isfinite([t["chi2_before"] for t in trail]).all()
