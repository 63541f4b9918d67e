"""``sedscale prepare``: the triage grids a catalog needs are built ahead into the grid cache, in
parallel processes; a fit afterwards builds nothing and gives the same bits as a fit that built
its own grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sedscale.sed import grid as grid_mod
from tests.campaign.mock_catalog import TINY_WORKFLOW
from tests.commands.test_fit_command import run_sedscale
from tests.test_fitting import write_small_catalog


@pytest.fixture()
def workflow(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_WORKFLOW.replace("photoz: false", "photoz: true"))
    return path


def _fit(monkeypatch: pytest.MonkeyPatch, catalog: Path, workflow: Path, cache: Path, out: Path) -> dict:
    grid_mod.clear_memory_cache()
    before = dict(grid_mod.BUILD_COUNT)
    assert run_sedscale(monkeypatch, "fit", str(catalog), "-o", str(out), "--workflow", str(workflow),
                        "--cache-dir", str(cache)) == 0
    return {"builds": grid_mod.BUILD_COUNT["grids"] - before["grids"], "table": pq.read_table(out)}


def test_prepare_builds_every_grid_a_fit_reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workflow: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    catalog = write_small_catalog(tmp_path / "cat.parquet", 30)  # one row without a redshift: photo-z
    grid_mod.clear_memory_cache()  # what an earlier test left in this process's memory is not on disk here
    prepared = tmp_path / "prepared"
    assert run_sedscale(monkeypatch, "prepare", str(catalog), "--workflow", str(workflow), "--cache-dir",
                        str(prepared), "--workers", "2", "--no-kernel") == 0
    said = capsys.readouterr().out
    assert "photo-z grid built" in said and "0 already cached" in said
    n_files = len(list(prepared.glob("grid-*.npz")))
    assert n_files >= 2  # lattice blocks + the photo-z grid

    with_prepared = _fit(monkeypatch, catalog, workflow, prepared, tmp_path / "a.parquet")
    assert with_prepared["builds"] == 0  # every grid the fit read was there
    assert len(list(prepared.glob("grid-*.npz"))) == n_files
    on_its_own = _fit(monkeypatch, catalog, workflow, tmp_path / "own", tmp_path / "b.parquet")
    assert on_its_own["builds"] > 0
    a, b = with_prepared["table"], on_its_own["table"]
    for name in ("status", "logmstar", "logmstar_err", "chi2_red", "z_phot", "best_model"):
        np.testing.assert_array_equal(np.asarray(a.column(name).to_pylist(), dtype=object),
                                      np.asarray(b.column(name).to_pylist(), dtype=object), err_msg=name)

    assert run_sedscale(monkeypatch, "prepare", str(catalog), "--workflow", str(workflow), "--cache-dir",
                        str(prepared), "--no-kernel") == 0
    assert "0 lattice blocks built" in capsys.readouterr().out  # a second prepare finds them all
