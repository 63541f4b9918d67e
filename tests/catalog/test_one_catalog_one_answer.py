"""One catalog, one answer: the same rows given as flat Parquet (generic names), as a HATS catalog
(survey-style names, a user profile) and as FITS tiles (generic names) give the same results value
for value through ``sedscale fit --policy none`` with known redshifts — the real fitting path."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from sedscale.cli import main
from sedscale.testing.catalogs import add_sky_positions, write_fits_tiles, write_hats_catalog
from tests.catalog.catalogs import BANDS, clean_columns
from tests.commands.test_fit_command import FIT_CONFIG

N = 160
SURVEY_NAMES = {"source_id": "object_id", "redshift": "z_spec", "ra": "ra_deg", "dec": "dec_deg",
                **{f"flux_{b}": f"F_{b.upper()}" for b in BANDS}, **{f"fluxerr_{b}": f"E_{b.upper()}" for b in BANDS}}


def _profile_yaml(path: Path) -> Path:
    lines = ["id: object_id", "redshift: z_spec", "ra: ra_deg", "dec: dec_deg", "bands:"]
    for band in BANDS:
        lines += [f"  - column: F_{band.upper()}", f"    error: E_{band.upper()}", "    unit: uJy", f"    filter: {band}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _fit(monkeypatch: pytest.MonkeyPatch, catalog: Path, out: Path, config: Path, cache: Path,
         profile: str = "generic") -> pa.Table:
    monkeypatch.setattr(sys, "argv", ["sedscale", "fit", str(catalog), "-o", str(out), "--config", str(config),
                                      "--policy", "none", "--profile", profile, "--cache-dir", str(cache),
                                      "--chunk-rows", "37"])
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, f"sedscale fit {catalog} exited {exc.code}"
    table = pq.read_table(out).drop_columns(["fit_seconds"])
    return table.take(pc.sort_indices(table, [("source_id", "ascending")]))


@pytest.mark.slow
def test_flat_hats_and_fits_give_the_same_results(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  sedscale_cache_dir: Path) -> None:
    table = add_sky_positions(pa.table(clean_columns(N, seed=11)), seed=7, radius_deg=0.5)
    config = tmp_path / "fit.yaml"
    config.write_text(FIT_CONFIG)
    pq.write_table(table, tmp_path / "flat.parquet", row_group_size=50)
    renamed = table.rename_columns([SURVEY_NAMES.get(c, c) for c in table.column_names])
    hats_root = write_hats_catalog(renamed, tmp_path / "hats", catalog_name="survey", pixel_threshold=60,
                                   ra_column="ra_deg", dec_column="dec_deg")
    write_fits_tiles(table, tmp_path / "fits", n_tiles=3)

    flat = _fit(monkeypatch, tmp_path / "flat.parquet", tmp_path / "flat_out.parquet", config, sedscale_cache_dir)
    hats = _fit(monkeypatch, hats_root, tmp_path / "hats_out.parquet", config, sedscale_cache_dir,
                profile=str(_profile_yaml(tmp_path / "survey.yaml")))
    fits = _fit(monkeypatch, tmp_path / "fits", tmp_path / "fits_out.parquet", config, sedscale_cache_dir)

    assert flat.num_rows == N and pc.sum(pc.equal(flat.column("status"), "fitted")).as_py() > N // 2
    assert flat.column("ra").null_count == 0  # positions carried into the results
    assert hats.equals(flat), _first_difference(flat, hats)
    assert fits.equals(flat), _first_difference(flat, fits)


def _first_difference(a: pa.Table, b: pa.Table) -> str:
    for name in a.column_names:
        if not a.column(name).equals(b.column(name)):
            return f"column {name!r} differs: {a.column(name)[:5]} vs {b.column(name)[:5]}"
    return "schemas differ" if not a.schema.equals(b.schema) else "no difference"
