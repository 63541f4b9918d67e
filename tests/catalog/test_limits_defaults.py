"""``validate``, ``fit`` and ``submit`` take their validation rules from one place (the
workflow): a row without a redshift is ``missing_redshift`` for both validate and fit unless
photo-z is on, and ``--min-bands`` exists on all three and reaches ValidationRules.min_bands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sedscale.campaign.workflow import load_workflow
from sedscale.cli import app, main

from tests.commands.test_fit_command import FIT_CONFIG

from .catalogs import clean_columns, write


@pytest.fixture()
def catalog(tmp_path: Path) -> Path:
    cols = clean_columns(8, seed=3)
    cols["redshift"][1] = np.nan  # no redshift
    for band in ("euclid_y", "euclid_j", "euclid_h", "lsst_g"):  # two bands left
        cols[f"flux_{band}"][2] = np.nan
        cols[f"fluxerr_{band}"][2] = np.nan
    return write(cols, tmp_path / "cat.parquet")


def _validate(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, ["validate", *args, "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, object] = json.loads(result.stdout)
    return out


def test_validate_uses_the_workflow_defaults(catalog: Path) -> None:
    assert load_workflow(None).validation_rules().require_redshift  # the default workflow: no photo-z
    assert _validate(str(catalog))["reasons"] == {"missing_redshift": 1, "too_few_bands": 1}
    assert _validate(str(catalog), "--min-bands", "2")["reasons"] == {"missing_redshift": 1}
    assert _validate(str(catalog), "--no-require-redshift")["reasons"] == {"too_few_bands": 1}


def test_submit_and_fit_have_min_bands() -> None:
    for command in ("fit", "submit"):
        assert "--min-bands" in CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
    wf = load_workflow(None).with_min_bands(2)
    assert wf.validation_rules().min_bands == 2 and load_workflow(None).with_min_bands(None).validation_rules().min_bands == 3


@pytest.mark.slow  # builds the tiny grid in a fresh cache: ~20 s on a busy 2-core machine
def test_fit_quarantines_as_validate_does(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, catalog: Path,
                                          sedscale_cache_dir: Path) -> None:
    config = tmp_path / "fit.yaml"
    config.write_text(FIT_CONFIG)
    out = tmp_path / "out.parquet"
    monkeypatch.setattr(sys, "argv", ["sedscale", "fit", str(catalog), "-o", str(out), "--config", str(config),
                                      "--policy", "none", "--cache-dir", str(sedscale_cache_dir),
                                      "--min-bands", "2"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None)
    table = pq.read_table(out).to_pylist()
    reasons = {r["source_id"]: r["reason"].split(":")[0] for r in table if r["status"] == "quarantined"}
    assert reasons == {1: "missing_redshift"}  # row 2 (two bands) fitted: --min-bands 2 reached the rules
    assert next(r for r in table if r["source_id"] == 2)["status"] == "fitted"
