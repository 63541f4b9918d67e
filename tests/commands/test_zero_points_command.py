"""``sedscale zero-points``: a catalog whose i band is 10% low gets a profile back with that band's
zero point at 1/0.9 and the others at 1; excluded ids are kept out of the calibration, and bad
input is refused with the file and line named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.commands.test_fit_command import run_sedscale

BANDS = ("lsst_g", "lsst_r", "lsst_i", "euclid_y", "euclid_j", "euclid_h")
WORKFLOW = """\
name: tiny-zp
profile: generic
photoz: false
fit:
  sfh: {family: delayed, age: [0.5, 2.0, 5.0], tau: [0.3, 3.0]}
  stellar: {metallicity: [1.0]}
  dust_attenuation: {av: [0.0, 0.5, 1.5]}
  nebular: {enabled: false}
  dust_emission: {enabled: false}
  error_floor: 0.0
policy: none
"""


def _catalog(path: Path, cache: Path) -> Path:
    """Six grid models at their own redshifts (S/N 50), the i band 10% low, plus a row without a
    redshift (not a calibrator) and one row whose i band is wildly off (id 99, to be excluded)."""
    from sedscale.sed.config import FitConfig
    from sedscale.sed.grid import build_grid

    cfg = FitConfig.from_dict(yaml.safe_load(WORKFLOW)["fit"])
    z = np.array([0.6, 0.8, 1.0, 1.2, 0.7, 0.9])
    grid = build_grid(cfg, BANDS, z, cache_dir=cache)
    picks = [0, 3, 7, 10, 14, 16]
    flux = np.stack([grid.at_redshift(zi)[j] * 1e10 / grid.extensive["mstar"][j] for zi, j in zip(z, picks)])
    flux = np.vstack([flux, flux[:1], flux[1:2] * np.array([1, 1, 3.0, 1, 1, 1])])
    flux[:, 2] *= 0.9  # the catalog's i band is 10% low
    ids = np.array([1, 2, 3, 4, 5, 6, 7, 99])
    redshift = np.concatenate([z, [np.nan, 0.8]])
    cols: dict[str, object] = {"source_id": pa.array(ids, pa.int64()), "redshift": redshift}
    for b, name in enumerate(BANDS):
        cols[f"flux_{name}"] = flux[:, b]
        cols[f"fluxerr_{name}"] = 0.02 * flux[:, b]
    pq.write_table(pa.table(cols), path)
    return path


def test_zero_points_command_writes_a_profile_that_corrects_the_low_band(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sedscale.catalog.profiles import load_profile

    cache = tmp_path / "grids"
    catalog = _catalog(tmp_path / "cat.parquet", cache)
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(WORKFLOW)
    exclude = tmp_path / "scored.txt"
    exclude.write_text("# the sources photo-z will be scored on\n99\n")
    out = tmp_path / "calibrated.yaml"
    assert run_sedscale(monkeypatch, "zero-points", str(catalog), "--profile", "generic", "--workflow", str(workflow),
                        "--exclude-ids", str(exclude), "--rounds", "2", "-o", str(out), "--cache-dir", str(cache)) == 0
    said = capsys.readouterr().err  # the summary; stdout is kept for the YAML
    assert "zero points from 6 sources" in said  # id 7 has no redshift, id 99 is excluded

    profile = load_profile(out, pq.read_schema(catalog))
    assert sorted(b.filter for b in profile.bands) == sorted(BANDS)
    assert profile.redshift == "redshift"
    zps = {b.filter: b.zero_point for b in profile.bands}
    assert zps.pop("lsst_i") == pytest.approx(1 / 0.9, rel=0.02)
    np.testing.assert_allclose(list(zps.values()), 1.0, atol=0.005)

    # a second calibration with the written profile finds nothing more to correct
    assert run_sedscale(monkeypatch, "zero-points", str(catalog), "--profile", str(out), "--workflow", str(workflow),
                        "--exclude-ids", str(exclude), "--rounds", "1", "-o", str(tmp_path / "again.yaml"),
                        "--cache-dir", str(cache)) == 0
    again = load_profile(tmp_path / "again.yaml", pq.read_schema(catalog))
    np.testing.assert_allclose([b.zero_point for b in again.bands], [b.zero_point for b in profile.bands], rtol=0.005)

    # without -o the profile goes to stdout alone: redirected to a file, it loads
    capsys.readouterr()
    assert run_sedscale(monkeypatch, "zero-points", str(catalog), "--profile", str(out), "--workflow", str(workflow),
                        "--exclude-ids", str(exclude), "--rounds", "1", "--cache-dir", str(cache)) == 0
    printed = tmp_path / "printed.yaml"
    printed.write_text(capsys.readouterr().out)
    assert [b.zero_point for b in load_profile(printed, pq.read_schema(catalog)).bands] == \
        [b.zero_point for b in again.bands]


def test_zero_points_command_names_a_bad_ids_line_and_a_profile_without_redshift(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = pa.table({"source_id": pa.array([1, 2], pa.int64()), "redshift": [0.5, 0.7],
                      "flux_lsst_r": [1.0, 2.0], "fluxerr_lsst_r": [0.1, 0.1],
                      "flux_lsst_i": [1.0, 2.0], "fluxerr_lsst_i": [0.1, 0.1]})
    catalog = tmp_path / "cat.parquet"
    pq.write_table(table, catalog)
    ids = tmp_path / "ids.txt"
    ids.write_text("1\nsource-two\n")
    assert run_sedscale(monkeypatch, "zero-points", str(catalog), "--profile", "generic", "--exclude-ids", str(ids)) != 0
    err = capsys.readouterr().err
    assert "line 2" in err and "source-two" in err

    assert run_sedscale(monkeypatch, "zero-points", str(catalog), "--profile", "generic", "--min-snr", "0") != 0
    assert "--min-snr 0: must be > 0" in capsys.readouterr().err

    no_z = tmp_path / "noz.yaml"
    no_z.write_text("id: source_id\nbands:\n  - {column: flux_lsst_r, error: fluxerr_lsst_r, filter: lsst_r}\n")
    assert run_sedscale(monkeypatch, "zero-points", str(catalog), "--profile", str(no_z)) != 0
    assert "maps no redshift column" in capsys.readouterr().err
