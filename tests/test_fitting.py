"""``fit_table`` and ``FitOptions`` directly, on a small real table (no campaign, no engine).

The table is synthetic photometry in the generic profile's columns with planted bad rows; the
fit is the real SED path with the tiny grid the campaign tests use, so a run costs seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from sedscale.agent import AcceptanceTest, AgentBudgets, KnowledgeBase
from sedscale.agent.endpoint import API_KEY_ENV, LLMEndpoint
from sedscale.campaign.workflow import Workflow, workflow_from_dict
from sedscale.catalog.profiles import CatalogProfile, load_profile
from sedscale.errors import ConfigError
from sedscale.fitting import FitOptions, fit_table, make_policy
from sedscale.results import RESULTS_SCHEMA
from tests.campaign.mock_catalog import TINY_WORKFLOW

BANDS = ("euclid_vis", "euclid_y", "euclid_j", "euclid_h", "lsst_g", "lsst_r", "lsst_i", "lsst_z")
#: planted row → the validation's reason code
PLANTED = {3: "null_id", 5: "duplicate_id", 7: "missing_redshift", 9: "bad_error", 11: "no_bands"}


def small_catalog(n: int = 40, seed: int = 5) -> pa.Table:
    """``n`` sources with a red, galaxy-like SED and 5 % errors; the rows in PLANTED broken."""
    rng = np.random.default_rng(seed)
    slope = np.linspace(0.6, 1.4, len(BANDS))  # brighter to the red, as for an evolved galaxy
    scale = rng.uniform(2.0, 50.0, n)
    cols: dict[str, pa.Array] = {}
    ids = np.arange(1, n + 1, dtype=np.int64)
    ids[5] = ids[4]
    id_mask = np.zeros(n, bool)
    id_mask[3] = True
    cols["source_id"] = pa.array(ids, pa.int64(), mask=id_mask)
    for j, band in enumerate(BANDS):
        flux = scale * slope[j] * (1 + 0.05 * rng.normal(size=n))
        err = 0.05 * scale * slope[j]
        if j == 0:
            err[9] = -1.0
        flux[11] = np.nan
        cols[f"flux_{band}"] = pa.array(flux)
        cols[f"fluxerr_{band}"] = pa.array(err)
    redshift = rng.uniform(0.3, 2.0, n)
    redshift[7] = np.nan
    cols["redshift"] = pa.array(redshift)
    return pa.table(cols)


def tiny_workflow(**changes: object) -> Workflow:
    """The campaign tests' tiny grid, with ``changes`` to its keys."""
    return workflow_from_dict(yaml.safe_load(TINY_WORKFLOW) | changes, "test")


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return small_catalog()


@pytest.fixture(scope="module")
def profile(table: pa.Table) -> CatalogProfile:
    return load_profile("generic", table.schema)


@pytest.fixture(scope="module")
def triage_only(table: pa.Table, profile: CatalogProfile, sedscale_cache_dir: Path) -> pa.Table:
    options = FitOptions.from_workflow(tiny_workflow(), cache_dir=sedscale_cache_dir, policy="none")
    return fit_table(table, profile, options).table


def test_a_table_of_only_bad_rows_is_all_quarantined(table: pa.Table, profile: CatalogProfile) -> None:
    rows = sorted(PLANTED)
    bad = table.take(rows)  # fit_table fits nothing here: fast enough for every run
    options = FitOptions.from_workflow(tiny_workflow(), cache_dir=None)
    # row 5 repeats row 4's id, which is not in this table: the catalog-wide index says so
    outcome = fit_table(bad, profile, options, row_offset=100, duplicate_rows=np.array([rows.index(5)]))
    assert outcome.table.schema.equals(RESULTS_SCHEMA)
    assert set(outcome.table.column("status").to_pylist()) == {"quarantined"}
    codes = [r.split(":")[0] for r in outcome.table.column("reason").to_pylist()]
    assert sorted(codes) == sorted(PLANTED.values())
    assert (outcome.summary.rows, outcome.summary.quarantined, outcome.summary.fitted) == (len(PLANTED), len(PLANTED), 0)
    assert len(outcome.knowledge_delta) == 0


@pytest.mark.slow  # the first fit in a process builds the tiny grid: ~20 s on a busy 2-core machine
def test_every_row_comes_back_with_the_results_schema(triage_only: pa.Table, table: pa.Table) -> None:
    assert triage_only.schema.equals(RESULTS_SCHEMA)
    assert triage_only.num_rows == table.num_rows


@pytest.mark.slow
def test_planted_rows_are_quarantined_with_their_reason(triage_only: pa.Table) -> None:
    status = triage_only.column("status").to_pylist()
    reasons = triage_only.column("reason").to_pylist()
    for row, code in PLANTED.items():
        assert status[row] == "quarantined", (row, reasons[row])
        assert reasons[row].startswith(f"{code}: "), (row, reasons[row])
    assert triage_only.column("source_id")[3].as_py() is None  # a null id stays null
    others = [s for i, s in enumerate(status) if i not in PLANTED]
    assert set(others) <= {"fitted", "failed"} and others.count("fitted") > len(others) // 2


@pytest.mark.slow
def test_triage_only_takes_no_agent_step(triage_only: pa.Table) -> None:
    assert set(triage_only.column("agent_steps").to_pylist()) == {0}
    fitted = np.array(triage_only.column("status").to_pylist()) == "fitted"
    logm = triage_only.column("logmstar").to_numpy(zero_copy_only=False)
    assert np.isfinite(logm[fitted]).all() and np.isnan(logm[~fitted]).all()


@pytest.mark.slow  # agent re-fits build grids for the changed configurations
def test_rules_policy_runs_the_agent_where_triage_fails(table: pa.Table, profile: CatalogProfile,
                                                        triage_only: pa.Table, sedscale_cache_dir: Path) -> None:
    strict = tiny_workflow(policy="rules", acceptance={"chi2_red_max": 0.5, "band_sigma_max": 1.0})
    outcome = fit_table(table, profile, FitOptions.from_workflow(strict, cache_dir=sedscale_cache_dir),
                        partition_id=3)
    rules = outcome.table
    assert rules.schema.equals(RESULTS_SCHEMA)
    assert rules.column("status").to_pylist() == triage_only.column("status").to_pylist()
    steps = np.array(rules.column("agent_steps").to_pylist())
    assert steps.max() >= 1 and steps.max() <= strict.budgets.max_agent_steps
    assert outcome.summary.triage_failed >= int((steps > 0).sum()) > 0
    assert outcome.summary.rows == table.num_rows
    assert outcome.summary.quarantined == len(PLANTED)
    assert isinstance(outcome.knowledge_delta, KnowledgeBase)


def test_from_workflow_converts_each_section_once() -> None:
    wf = tiny_workflow(acceptance={"chi2_red_max": 3.0, "band_sigma_max": 4.0, "min_good_models": 2},
                       budgets={"max_agent_steps": 7, "max_tokens_per_source": 900, "max_agent_fraction": 0.5})
    options = FitOptions.from_workflow(wf, cache_dir=None)
    assert options.fit_config == wf.fit
    assert options.acceptance == AcceptanceTest(chi2_red_max=3.0, max_abs_residual=4.0, min_good_models=2)
    budgets = options.budgets
    assert (budgets.max_steps, budgets.max_tokens_per_source, budgets.max_agent_fraction) == (7, 900, 0.5)
    assert options.policy == "none" and options.llm is None
    assert options.rules.require_redshift  # photo-z off in the workflow


def test_workflow_budget_defaults_are_the_agents() -> None:
    budgets = FitOptions.from_workflow(Workflow(name="plain"), cache_dir=None).budgets
    defaults = AgentBudgets()
    assert (budgets.max_steps, budgets.max_tokens_per_source) == (defaults.max_steps, defaults.max_tokens_per_source)


def test_command_line_replacements_win(tmp_path: Path) -> None:
    wf = tiny_workflow(llm_url="http://wf:8000/v1", llm_model="wf-model")
    options = FitOptions.from_workflow(wf, cache_dir=tmp_path, photoz=True, policy="rules",
                                       llm=LLMEndpoint.at_url("http://cli:9000/v1"))
    assert options.photoz and not options.rules.require_redshift
    assert options.policy == "rules"
    assert options.llm is not None and options.llm.url == "http://cli:9000/v1"
    assert options.cache_dir == tmp_path


def test_workflow_url_becomes_an_endpoint_with_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "k-123")
    options = FitOptions.from_workflow(tiny_workflow(policy="llm", llm_url="http://h:1/v1", llm_model="m"),
                                       cache_dir=None)
    assert options.llm == LLMEndpoint("url", model="m", url="http://h:1/v1", api_key="k-123")
    assert "k-123" not in repr(options.llm)


def test_policy_llm_without_an_endpoint_is_a_config_error() -> None:
    options = FitOptions.from_workflow(tiny_workflow(policy="llm"), cache_dir=None)
    with pytest.raises(ConfigError, match="llm-url"):
        make_policy(options, KnowledgeBase(), photoz=False)


def test_an_endpoint_is_exactly_one_way_to_reach_a_server() -> None:
    with pytest.raises(ValueError):
        LLMEndpoint("url")
    with pytest.raises(ValueError):
        LLMEndpoint("client")
    with pytest.raises(ValueError):
        LLMEndpoint("node", url="http://h/v1")
    assert LLMEndpoint.of_client(factory=lambda: None).kind == "client"  # type: ignore[arg-type,return-value]


def write_small_catalog(path: Path, n: int = 40) -> Path:
    """:func:`small_catalog` as a Parquet file (for the command and campaign tests)."""
    pq.write_table(small_catalog(n), path)
    return path
