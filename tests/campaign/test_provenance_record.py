"""provenance.json (issue 17): written once at campaign creation with every field, the LLM
weights fingerprint's rules, and the report's loader and HTML table."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.campaign.create import create_campaign
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.provenance import build_provenance, llm_record, weights_fingerprint
from sedscale.campaign.workflow import Workflow
from sedscale.engines.site import load_site
from sedscale.report.provenance import load_provenance, provenance_html

FIELDS = ("sedscale_version", "physics_version", "results_schema_hash", "workflow", "policy", "llm",
          "prompt_version", "knowledge_sha256", "seeds")


def _weights(folder: Path) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 64}')
    (folder / "model.safetensors").write_bytes(b"\0" * 4096)
    return folder


def test_fingerprint_changes_with_a_config_file_not_with_mtimes(tmp_path: Path) -> None:
    folder = _weights(tmp_path / "model")
    before = weights_fingerprint(folder)
    for path in folder.iterdir():
        os.utime(path, (1, 1))
    assert weights_fingerprint(folder) == before
    (folder / "config.json").write_text('{"hidden_size": 65}')  # same size, other bytes
    assert weights_fingerprint(folder) != before


def test_fingerprint_changes_when_a_weight_file_is_resized(tmp_path: Path) -> None:
    folder = _weights(tmp_path / "model")
    before = weights_fingerprint(folder)
    (folder / "model.safetensors").write_bytes(b"\0" * 4097)
    assert weights_fingerprint(folder) != before


def test_llm_record_names_the_site_model_and_fingerprints_its_folder(tmp_path: Path) -> None:
    folder = _weights(tmp_path / "model")
    site = {"llm": {"model_path": str(folder), "served_model_name": "AstroMLab/AstroSage-8B"}}
    record = llm_record({"policy": "llm", "llm_model": None, "llm_url": None}, site)
    assert record == {"model": "AstroMLab/AstroSage-8B", "url": None, "weights_path": str(folder),
                      "weights_fingerprint": weights_fingerprint(folder)}
    assert llm_record({"policy": "rules"}, site) is None


def test_campaign_creation_writes_provenance_with_every_field(tmp_path: Path) -> None:
    catalog = tmp_path / "cat.parquet"
    pq.write_table(pa.table({"source_id": [1, 2, 3], "redshift": [0.5, 1.0, 1.5],
                             "flux_lsst_g": [1.0, 2.0, 3.0], "fluxerr_lsst_g": [0.1, 0.1, 0.1]}), catalog)
    workflow = Workflow(name="prov", policy="rules")
    site = load_site("local")
    paths = create_campaign(tmp_path / "camp", [str(catalog)], workflow=workflow, site=site,
                            profile_spec="generic", rows_per_partition=2)
    prov = load_provenance(paths)
    assert prov is not None and set(FIELDS) <= set(prov)
    assert prov == build_provenance(workflow.model_dump(mode="json"), site.model_dump(mode="json"))
    assert prov["seeds"]["campaign_seed"] == 0 and prov["policy"] == "rules"


def test_a_campaign_without_the_record_has_no_provenance(tmp_path: Path) -> None:
    assert load_provenance(CampaignPaths.at(tmp_path)) is None


def test_provenance_html_escapes_every_value() -> None:
    prov = build_provenance({"name": "<script>x</script>", "policy": "rules"}, {})
    text = provenance_html(prov)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert text.startswith("<table") and prov["prompt_version"] in text
