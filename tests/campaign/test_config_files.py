"""Shipped workflows and site configs validate; bad keys are errors naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedscale.campaign.workflow import load_workflow
from sedscale.engines.site import load_site
from sedscale.errors import ConfigError
from sedscale.resources import site_configs_dir, workflows_dir

WORKFLOWS = sorted(p.stem for p in workflows_dir().glob("*.yaml"))
SITES = sorted(p.stem for p in site_configs_dir().glob("*.yaml"))


def test_the_issue_workflows_are_shipped() -> None:
    assert {"default", "euclid-wide", "roman-hlwas", "little-red-dots"} <= set(WORKFLOWS)


@pytest.mark.parametrize("name", WORKFLOWS)
def test_shipped_workflow_validates_with_its_fit_config(name: str) -> None:
    wf = load_workflow(name)
    assert wf.name == name
    assert wf.fit.n_models >= 1
    assert wf.validation_rules().require_redshift == (not wf.photoz)


@pytest.mark.parametrize("name", SITES)
def test_shipped_site_config_validates(name: str) -> None:
    site = load_site(name)
    assert site.name == name
    assert site.workers_per_node >= 1


def test_local_is_the_embedded_default() -> None:
    site = load_site(None)
    assert (site.name, site.engine, site.scheduler, site.llm) == ("local", "parsl", "local", None)


def test_unknown_workflow_key_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nrows_per_partion: 10\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*rows_per_partion"):
        load_workflow(str(bad))


def test_bad_fit_config_in_workflow_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nfit:\n  sfh: {age: [-1.0]}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*fit"):
        load_workflow(str(bad))


def test_unknown_site_key_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "site.yaml"
    bad.write_text("name: x\nengine: parsl\nscheduler: local\nworkers_per_nod: 2\n")
    with pytest.raises(ConfigError, match=r"site\.yaml.*workers_per_nod"):
        load_site(str(bad))


def test_unknown_site_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="local"):
        load_site("no-such-machine")


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_survives_the_campaign_json_round_trip(name: str) -> None:
    from sedscale.campaign.workflow import Workflow

    wf = load_workflow(name)
    assert Workflow.model_validate(wf.model_dump(mode="json")) == wf


def test_workflow_keys_convert_to_the_agent_types(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text("name: wf\nacceptance: {band_sigma_max: 4.0, min_good_models: 2}\nbudgets: {max_agent_steps: 3}\n")
    wf = load_workflow(str(path))
    assert wf.budgets.to_agent_budgets().max_steps == 3
    test = wf.acceptance.to_acceptance_test()
    assert (test.max_abs_residual, test.min_good_models, test.chi2_red_max) == (4.0, 2, 5.0)


def test_min_good_models_zero_is_deprecated_and_means_one(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text("name: wf\nacceptance: {min_good_models: 0}\n")
    with pytest.warns(FutureWarning, match="min_good_models"):
        wf = load_workflow(str(path))
    assert wf.acceptance.min_good_models == 1
    path.write_text("name: wf\nacceptance: {min_good_models: -1}\n")
    with pytest.raises(ConfigError, match=r"wf\.yaml.*min_good_models"):
        load_workflow(str(path))


def test_unknown_policy_in_a_workflow_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text("name: wf\npolicy: oracle\n")
    with pytest.raises(ConfigError, match=r"wf\.yaml.*policy"):
        load_workflow(str(path))
