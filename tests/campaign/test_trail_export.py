"""Provenance per source on a real campaign (issue 17): ``sedscale submit --policy rules`` on a
small hard mock, then the results' ``policy`` and ``fit_config_id`` columns, the agent's trail
(``export --trail``) and ``provenance.json`` checked against each other."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sedscale.agent.trail import TRAIL_SCHEMA
from sedscale.campaign.paths import CampaignPaths
from sedscale.sed.config import FitConfig
from tests.campaign.mock_catalog import sedscale_in, strict_agent_workflow

#: the tiny grid, strict acceptance so the rules policy gets sources, two partitions
RULES_WORKFLOW = strict_agent_workflow("rules-tiny", 40, "rules", "max_agent_steps: 2, max_agent_fraction: 1.0")
ROWS = 80


@pytest.fixture(scope="module")
def rules_campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished rules campaign (2 partitions), its results and trail exported by the CLI."""
    from sedscale.sed.mock import make_mock

    work = tmp_path_factory.mktemp("rules-campaign")
    table = make_mock("euclid", ROWS, seed=5, hard_fraction=0.6)
    pq.write_table(table.select([c for c in table.column_names if not c.startswith("truth")]), work / "cat.parquet")
    (work / "wf.yaml").write_text(RULES_WORKFLOW)
    proc = sedscale_in("submit", "cat.parquet", "--site", "local", "--workflow", "wf.yaml", "--campaign", "camp",
                     cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for args in (("-o", "out.parquet"), ("--trail", "-o", "trail.parquet")):
        proc = sedscale_in("export", "camp", *args, cwd=work)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return work


@pytest.mark.slow  # a Parsl campaign with agent re-fits
def test_every_agent_source_has_its_whole_trail(rules_campaign: Path) -> None:
    results = pq.read_table(rules_campaign / "out.parquet").to_pylist()
    trail = pq.read_table(rules_campaign / "trail.parquet")
    assert trail.schema.equals(TRAIL_SCHEMA)
    steps = {r["source_id"]: r["agent_steps"] for r in results if r["agent_steps"]}
    assert steps, "the strict acceptance test must send sources to the agent"
    assert Counter(trail.column("source_id").to_pylist()) == Counter(steps)
    keys = list(zip(trail.column("source_id").to_pylist(), trail.column("step").to_pylist()))
    assert keys == sorted(keys)
    assert set(trail.column("by").to_pylist()) == {"rules"}
    assert all(json.loads(a)["op"] for a in trail.column("action").to_pylist())


@pytest.mark.slow
def test_policy_column_matches_the_trail(rules_campaign: Path) -> None:
    results = pq.read_table(rules_campaign / "out.parquet").to_pylist()
    kept = {r["source_id"]: r["config_id"] for r in pq.read_table(rules_campaign / "trail.parquet").to_pylist()
            if r["kept"]}
    for r in results:
        if r["status"] != "fitted":
            assert r["policy"] is None
        elif r["source_id"] in kept:
            assert r["policy"] == "rules" and r["fit_config_id"] == kept[r["source_id"]]
        else:
            assert r["policy"] == "none"
    assert Counter(r["policy"] for r in results)["rules"] == len(kept) > 0


@pytest.mark.slow
def test_every_fit_config_id_resolves_to_its_stored_configuration(rules_campaign: Path) -> None:
    paths = CampaignPaths.at(rules_campaign / "camp")
    ids = {r for r in pq.read_table(rules_campaign / "out.parquet").column("fit_config_id").to_pylist() if r}
    assert len(ids) > 1  # the triage configuration and at least one the agent kept
    for config_id in ids:
        stored = json.loads(paths.fit_config(config_id).read_text())
        assert FitConfig.from_dict(stored["config"], source=config_id).hash() == config_id


@pytest.mark.slow
def test_open_results_and_zarr_carry_the_policy_column(rules_campaign: Path) -> None:
    import sedscale

    exported = pq.read_table(rules_campaign / "out.parquet").column("policy").to_pylist()
    values = sedscale.open_results(rules_campaign / "camp")["policy"].values.tolist()
    assert [v if isinstance(v, str) else None for v in values] == exported  # null: None or NaN


@pytest.mark.slow
def test_campaign_records_its_provenance_once(rules_campaign: Path) -> None:
    prov = json.loads((rules_campaign / "camp" / "provenance.json").read_text())
    assert prov["policy"] == "rules" and prov["llm"] is None
    assert prov["workflow"]["name"] == "rules-tiny"
    for key in ("sedscale_version", "physics_version", "results_schema_hash", "prompt_version",
                "knowledge_sha256", "seeds"):
        assert prov[key]


@pytest.mark.slow
def test_trail_export_refuses_a_campaign_without_trails(rules_campaign: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(rules_campaign / "camp", old)
    shutil.rmtree(old / "trails")  # as a campaign made before trails were kept
    proc = sedscale_in("export", str(old), "--trail", "-o", str(tmp_path / "t.parquet"), cwd=tmp_path)
    assert proc.returncode != 0 and "no agent trails" in proc.stderr
    assert not (tmp_path / "t.parquet").exists()


def test_trail_export_of_a_folder_that_is_no_campaign_fails_clearly(tmp_path: Path) -> None:
    proc = sedscale_in("export", str(tmp_path), "--trail", "-o", str(tmp_path / "t.parquet"), cwd=tmp_path)
    assert proc.returncode != 0 and "not a campaign" in proc.stderr
    assert np.size(list(tmp_path.iterdir())) == 0
