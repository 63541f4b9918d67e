"""Input forms through the real readers: HATS catalogs and collections (built by hats-import),
FITS tiles (astropy), flat Parquet — planning from metadata, reading only the profile's columns,
and every bad input named by file, pixel and column."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.catalog.catalog_input import open_for_profile
from sedscale.catalog.plan import plan_partitions
from sedscale.catalog.read import read_partition
from sedscale.catalog.forms import open_catalog
from sedscale.errors import CatalogError
from sedscale.testing.catalogs import add_sky_positions, write_fits_tiles, write_hats_catalog
from tests.catalog.catalogs import clean_columns

N_ROWS = 1_200


def _mock_table(n: int = N_ROWS, start_id: int = 0) -> pa.Table:
    table = pa.table(clean_columns(n, seed=3, start_id=start_id))
    return add_sky_positions(table, seed=5, center=(52.0, -28.0), radius_deg=1.0)


@pytest.fixture(scope="module")
def hats_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HATS collection (catalog + margin cache + thumbnail + statistics) of N_ROWS rows."""
    out = tmp_path_factory.mktemp("hats")
    return write_hats_catalog(_mock_table(), out, catalog_name="mock", pixel_threshold=300,
                              margin_arcsec=60.0, thumbnail=True, partition_stats=True)


def _all_rows(source_spec: str | Path, columns: list[str]) -> pa.Table:
    source = open_catalog(source_spec)
    return pa.concat_tables([read_partition(p, columns) for p in plan_partitions(source, 10_000)])


def test_hats_collection_reads_exactly_the_main_catalogs_rows(hats_collection: Path) -> None:
    source = open_catalog(hats_collection)
    assert source.form == "hats"
    assert source.num_rows == N_ROWS  # no margin duplicates, no thumbnail rows
    assert len({(f.pixel_order, f.pixel) for f in source.files}) >= 3
    ids = _all_rows(hats_collection, ["source_id"]).column(0).to_numpy()
    assert sorted(ids.tolist()) == list(range(N_ROWS))
    names = " ".join(source.paths)
    assert "margin" not in names and "thumbnail" not in names and "statistics" not in names


def test_hats_partitions_never_span_two_pixels(hats_collection: Path) -> None:
    source = open_catalog(hats_collection)
    parts = plan_partitions(source, 50)  # smaller than a pixel: large pixels are split by rows
    assert len(parts) > len(source.files)
    for part in parts:
        assert part.has_pixel
        cf = source.files[part.file_index]
        assert (part.pixel_order, part.pixel) == (cf.pixel_order, cf.pixel)
        assert f"Npix={part.pixel}" in part.file
    assert sum(p.n_rows for p in parts) == N_ROWS


def test_hats_profile_sees_data_columns_not_hive_keys(hats_collection: Path) -> None:
    source, profile = open_for_profile(hats_collection, "generic")
    assert "Npix" not in source.schema.names and "flux_euclid_vis" in source.schema.names
    assert profile.id == "source_id"


def test_hats_without_properties_names_the_missing_file(hats_collection: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "broken"
    shutil.copytree(hats_collection / "mock", catalog)
    for name in ("hats.properties", "properties"):
        (catalog / name).unlink(missing_ok=True)
    with pytest.raises(CatalogError, match=r"broken.*hats\.properties"):
        open_catalog(catalog)


def test_truncated_hats_pixel_file_is_named_with_its_pixel(hats_collection: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "truncated"
    shutil.copytree(hats_collection / "mock", catalog)
    source = open_catalog(catalog)
    victim = Path(source.files[1].path)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    parts = [p for p in plan_partitions(source, 10_000) if p.file == str(victim)]
    with pytest.raises(CatalogError, match=rf"Npix={source.files[1].pixel}.*(truncated|corrupt)"):
        read_partition(parts[0], ["source_id"])


def test_fits_tiles_keep_int64_ids_and_read_by_row_range(tmp_path: Path) -> None:
    table = _mock_table(300)
    big = np.arange(300, dtype=np.int64) + 2_000_000_000_000_000_001  # 19 digits: not exact in float64
    table = table.set_column(table.schema.get_field_index("source_id"), "source_id", pa.array(big))
    write_fits_tiles(table, tmp_path, n_tiles=3)
    source = open_catalog(tmp_path)
    assert source.form == "fits" and source.num_rows == 300 and len(source.files) == 3
    parts = plan_partitions(source, 40)
    assert all(p.form == "fits" and p.row_groups == () and p.n_rows <= 40 for p in parts)
    ids = pa.concat_tables([read_partition(p, ["source_id"]) for p in parts]).column(0)
    assert ids.type == pa.int64()
    assert ids.to_numpy().tolist() == big.tolist()


def test_fits_tunit_contradicting_the_profile_stops_naming_the_column(tmp_path: Path) -> None:
    write_fits_tiles(_mock_table(50), tmp_path, n_tiles=1, units="nJy")
    with pytest.raises(CatalogError, match=r"flux_euclid_\w+.*nJy"):
        open_for_profile(tmp_path, "generic")


def test_parquet_unit_metadata_contradicting_the_profile_stops(tmp_path: Path) -> None:
    table = _mock_table(20)
    fields = [f.with_metadata({"unit": "nJy"}) if f.name.startswith("flux") else f for f in table.schema]
    pq.write_table(table.cast(pa.schema(fields)), tmp_path / "nJy.parquet")
    with pytest.raises(CatalogError, match=r"flux_euclid_\w+.*nJy"):
        open_for_profile(tmp_path / "nJy.parquet", "generic")


def test_type_difference_in_an_unused_column_does_not_stop(tmp_path: Path) -> None:
    a, b = _mock_table(20), _mock_table(20, start_id=20)
    pq.write_table(a.append_column("notes", pa.array(["x"] * 20)), tmp_path / "a.parquet")
    pq.write_table(b.append_column("notes", pa.array(np.arange(20))), tmp_path / "b.parquet")
    source, _ = open_for_profile(tmp_path, "generic")
    assert source.num_rows == 40 and len(source.schemas) == 2


def test_type_difference_in_a_used_column_names_file_and_column(tmp_path: Path) -> None:
    a, b = _mock_table(20), _mock_table(20, start_id=20)
    b = b.set_column(b.schema.get_field_index("flux_euclid_h"), "flux_euclid_h",
                     b.column("flux_euclid_h").cast(pa.float32()))
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.parquet")
    with pytest.raises(CatalogError, match=r"b\.parquet.*flux_euclid_h"):
        open_for_profile(tmp_path, "generic")


def test_float_id_column_is_refused_for_precision_loss(tmp_path: Path) -> None:
    table = _mock_table(20)
    table = table.set_column(0, "source_id", table.column("source_id").cast(pa.float64()))
    pq.write_table(table, tmp_path / "float_ids.parquet")
    with pytest.raises(CatalogError, match=r"float_ids\.parquet.*source_id.*double"):
        open_for_profile(tmp_path / "float_ids.parquet", "generic")


def test_reading_a_wide_file_reads_only_the_profile_columns(tmp_path: Path) -> None:
    """1,000 extra columns: the profile's ~16 columns (and the footer) are < 5% of the bytes read.

    Row groups of HATS-pixel size (10^4 rows), one partition each; a partition smaller than its
    row group would read the group once per partition.
    """
    n = 10_000
    table = _mock_table(n)
    rng = np.random.default_rng(0)
    extra = {f"extra_{k:04d}": rng.random(n, dtype=np.float32) for k in range(1_000)}
    table = pa.table({**{c: table.column(c) for c in table.column_names}, **extra})
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path, row_group_size=n)
    source, profile = open_for_profile(path, "generic")
    before = _rchar()
    for part in plan_partitions(source, n):
        read_partition(part, profile.columns())
    read = _rchar() - before
    assert read < 0.05 * path.stat().st_size, f"read {read} of {path.stat().st_size} bytes"


def _rchar() -> int:
    """Bytes this process has read through read()/pread() (/proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _generic_yaml(path: Path, optional: set[str]) -> Path:
    lines = ["id: source_id", "redshift: redshift", "ra: ra", "dec: dec", "bands:"]
    for band in ("euclid_vis", "euclid_y", "euclid_j", "euclid_h", "lsst_g", "lsst_r"):
        lines += [f"  - column: flux_{band}", f"    error: fluxerr_{band}", f"    filter: {band}"]
        if band in optional:
            lines.append("    optional: true")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fits_tile_without_a_required_band_names_file_and_column(tmp_path: Path) -> None:
    tiles = write_fits_tiles(_mock_table(60), tmp_path / "tiles", n_tiles=3,
                             drop_columns={2: ["flux_lsst_g", "fluxerr_lsst_g"]})
    with pytest.raises(CatalogError, match=rf"{tiles[2].name}.*flux_lsst_g"):
        open_for_profile(tmp_path / "tiles", _generic_yaml(tmp_path / "p.yaml", set()))


def test_optional_band_absent_from_a_tile_reads_as_not_observed(tmp_path: Path) -> None:
    tiles = write_fits_tiles(_mock_table(60), tmp_path / "tiles", n_tiles=3,
                             drop_columns={2: ["flux_lsst_g", "fluxerr_lsst_g"]})
    source, profile = open_for_profile(tmp_path / "tiles", _generic_yaml(tmp_path / "p.yaml", {"lsst_g"}))
    parts = [p for p in plan_partitions(source, 1_000) if p.file == str(tiles[2])]
    table = read_partition(parts[0], profile.columns(), profile.optional_columns())
    assert table.column("flux_lsst_g").null_count == table.num_rows == 20
    assert table.column("flux_lsst_r").null_count == 0


def test_bad_inputs_exit_3_through_the_cli(hats_collection: Path, tmp_path: Path) -> None:
    """Through `sedscale validate`: exit code 3 and the file (and column) named, nothing written."""
    import subprocess
    import sys

    broken = tmp_path / "no_properties"
    shutil.copytree(hats_collection / "mock", broken)
    for name in ("hats.properties", "properties"):
        (broken / name).unlink(missing_ok=True)
    write_fits_tiles(_mock_table(30), tmp_path / "njy", n_tiles=1, units="nJy")
    cases = {str(broken): "hats.properties", str(tmp_path / "njy"): "nJy"}
    for spec, expected in cases.items():
        proc = subprocess.run([sys.executable, "-m", "sedscale", "validate", spec], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 3, proc.stderr
        assert expected in proc.stderr and Path(spec).name in proc.stderr


def _with_unit(table: pa.Table, column: str, unit: str) -> pa.Table:
    fields = [f.with_metadata({"unit": unit}) if f.name == column else f for f in table.schema]
    return table.cast(pa.schema(fields))


def test_files_recording_different_units_for_a_used_column_stop(tmp_path: Path) -> None:
    pq.write_table(_with_unit(_mock_table(20), "flux_euclid_h", "uJy"), tmp_path / "a.parquet")
    pq.write_table(_with_unit(_mock_table(20, start_id=20), "flux_euclid_h", "nJy"), tmp_path / "b.parquet")
    with pytest.raises(CatalogError, match=r"flux_euclid_h.*b\.parquet.*nJy.*a\.parquet"):
        open_for_profile(tmp_path, "generic")


def test_files_recording_different_units_for_an_unused_column_do_not_stop(tmp_path: Path) -> None:
    a = _mock_table(20).append_column("size", pa.array(np.ones(20)))
    b = _mock_table(20, start_id=20).append_column("size", pa.array(np.ones(20)))
    pq.write_table(_with_unit(a, "size", "arcsec"), tmp_path / "a.parquet")
    pq.write_table(_with_unit(b, "size", "pix"), tmp_path / "b.parquet")
    source, _ = open_for_profile(tmp_path, "generic")
    assert source.num_rows == 40 and "size" in source.unit_conflicts
