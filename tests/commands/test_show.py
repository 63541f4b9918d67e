"""``sedscale show`` on a real tiny campaign (the report tests' 600-row, 3-partition campaign with
the rules policy): the PNG, the rebuilt model agreeing with the fit's own χ², and the refusals —
an unknown id, a quarantined source (with its reason), an unfinished campaign (naming the
partition)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sedscale.pipeline import campaign_context
from sedscale.report.source_sed import find_source, input_photometry, source_sed
from tests.report.conftest import real_campaign, sedscale  # noqa: F401 - the session fixture

pytestmark = pytest.mark.slow  # the campaign: ~40 s of submit on a busy 2-core machine


def _results(real_campaign: tuple[Path, Path]):  # noqa: F811
    return pq.read_table(real_campaign[1]).to_pandas()


def test_show_writes_a_png_of_a_fitted_source(real_campaign: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    root, _ = real_campaign
    res = _results(real_campaign)
    sid = int(res[(res.status == "fitted") & (res.agent_steps == 0)].source_id.iloc[3])
    out = tmp_path / "sed.png"
    proc = sedscale("show", str(root), str(sid), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out) and out.is_file()
    from PIL import Image

    im = Image.open(out)
    assert im.size == (800, 550)
    assert len(im.convert("RGB").getcolors(maxcolors=1_000_000)) > 50  # drawn, not blank


def test_the_rebuilt_model_has_the_fits_chi2(real_campaign: tuple[Path, Path]) -> None:  # noqa: F811
    """The model rebuilt from (fit_config_id, best_model, redshift), normalised to the catalog's
    photometry, gives back the χ²_red the fit stored: same model, same photometry, same errors."""
    root, _ = real_campaign
    ctx = campaign_context(str(root))
    res = _results(real_campaign)
    triage = res[(res.status == "fitted") & (res.agent_steps == 0)]
    for sid in triage.source_id.iloc[:5].astype(int):
        part, row, values = find_source(ctx, int(sid))
        sed = source_sed(ctx, values, input_photometry(ctx, part, [row]), 0)
        assert sed.model is not None and sed.model.scale > 0, sed.note
        r = sed.residual_sigma()
        dof = int(np.isfinite(r).sum()) - 1
        assert np.nansum(r**2) / dof == pytest.approx(float(values["chi2_red"]), rel=2e-3)


def test_unknown_id_and_quarantined_source_say_why(real_campaign: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    root, _ = real_campaign
    out = tmp_path / "none.png"
    proc = sedscale("show", str(root), "987654321", "-o", str(out))
    assert proc.returncode == 3
    assert "source 987654321 is not in the campaign" in proc.stderr
    proc = sedscale("show", str(root), "71", "-o", str(out))  # planted: redshift -1
    assert proc.returncode == 3
    assert "source 71 was not fitted: it is quarantined (bad_redshift" in proc.stderr
    assert not out.exists()


def test_an_unfinished_campaign_is_refused_naming_its_partitions(real_campaign: tuple[Path, Path],  # noqa: F811
                                                                  tmp_path: Path) -> None:
    root, _ = real_campaign
    copy = tmp_path / "camp"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("cache", "runinfo", "logs", "report"))
    marker = next((copy / "state" / "done").rglob("p1.json"))
    marker.unlink()
    proc = sedscale("show", str(copy), "5", "-o", str(tmp_path / "x.png"))
    assert proc.returncode == 4
    assert "not finished: 1 of 3 partitions are not committed (1)" in proc.stderr
    assert f"sedscale resume {copy}" in proc.stderr
