"""The survey-shaped test-catalog builders (sedscale.testing.catalogs) themselves.

Builders that run hats-import (a dask cluster) or lsdb (dask graphs) are marked slow; the
pyarrow/hats-only pixel writer and the FITS and renaming builders are not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.sed.mock import make_mock
from sedscale.testing import catalogs as tc

N_ROWS = 2_000
CENTER = (52.0, -28.0)


@pytest.fixture(scope="module")
def mock_with_positions() -> pa.Table:
    return tc.add_sky_positions(make_mock("euclid", N_ROWS, seed=11), seed=11, center=CENTER, radius_deg=1.0)


def _separation_deg(ra: np.ndarray, dec: np.ndarray, center: tuple[float, float]) -> np.ndarray:
    ra0, dec0 = np.radians(center[0]), np.radians(center[1])
    r, d = np.radians(ra), np.radians(dec)
    cos_sep = np.sin(d) * np.sin(dec0) + np.cos(d) * np.cos(dec0) * np.cos(r - ra0)
    return np.degrees(np.arccos(np.clip(cos_sep, -1.0, 1.0)))


# ---------------------------------------------------------------------------- positions
def test_positions_lie_on_the_cap_uniformly_and_repeat_with_the_seed() -> None:
    ra, dec = tc.sky_cap_positions(20_000, seed=5, center=(359.8, 60.0), radius_deg=2.0)
    sep = _separation_deg(ra, dec, (359.8, 60.0))
    assert sep.max() <= 2.0 + 1e-9
    assert ((ra >= 0.0) & (ra < 360.0)).all()  # wraps across ra = 0
    inner = (1 - np.cos(np.radians(1.0))) / (1 - np.cos(np.radians(2.0)))  # equal-area share
    assert abs(np.mean(sep <= 1.0) - inner) < 0.02
    ra2, dec2 = tc.sky_cap_positions(20_000, seed=5, center=(359.8, 60.0), radius_deg=2.0)
    assert np.array_equal(ra, ra2) and np.array_equal(dec, dec2)


def test_add_sky_positions_appends_float64_columns_and_refuses_existing_ones(
        mock_with_positions: pa.Table) -> None:
    table = mock_with_positions
    assert table.schema.field("ra").type == pa.float64() and table.schema.field("dec").type == pa.float64()
    assert table.num_rows == N_ROWS
    with pytest.raises(ValueError, match="already has"):
        tc.add_sky_positions(table, seed=1)


# ---------------------------------------------------------------------------- Euclid names
def test_irsa_like_table_names_types_units_and_correction(mock_with_positions: pa.Table) -> None:
    mock = mock_with_positions
    irsa = tc.irsa_like_table(mock, extra_columns=120, seed=2)
    schema = irsa.schema
    assert irsa.num_rows == N_ROWS
    assert schema.field("object_id").type == pa.int64()
    assert irsa.column("object_id").to_pylist() == mock.column("source_id").to_pylist()
    for stem in ("vis_psf", "y_templfit", "j_templfit", "h_templfit", "g_ext_lsst_templfit",
                 "z_ext_lsst_templfit", "detection_total"):
        for kind in ("flux", "fluxerr"):
            assert schema.field(f"mer_{kind}_{stem}").metadata == {b"unit": b"uJy"}
    assert np.array_equal(irsa.column("mer_flux_g_ext_lsst_templfit").to_numpy(),
                          mock.column("flux_lsst_g").to_numpy())
    assert np.array_equal(irsa.column("phz_phz_median").to_numpy(), mock.column("redshift").to_numpy())
    for letter in "yjh":
        factor = (irsa.column("mer_flux_detection_total").to_numpy()
                  / irsa.column(f"mer_flux_vis_to_{letter}_templfit").to_numpy())
        assert ((factor >= 1.0 - 1e-12) & (factor <= 1 / 0.9 + 1e-12)).all()
    extras = [f for f in schema if f.name.split("_")[0] + "_" in tc.IRSA_PREFIXES
              and f.name[-4:].isdigit()]
    assert len(extras) == 120
    assert {str(f.type) for f in extras} == {"float", "double", "int32", "int16", "bool", "string"}
    assert "tileid" in schema.names and "mer_point_like_flag" in schema.names
    again = tc.irsa_like_table(mock, extra_columns=120, seed=2)
    assert again.equals(irsa)


def test_mer_like_table_native_names(mock_with_positions: pa.Table) -> None:
    mer = tc.mer_like_table(mock_with_positions)
    names = mer.column_names
    assert names[:3] == ["OBJECT_ID", "RIGHT_ASCENSION", "DECLINATION"]
    for col in ("FLUX_VIS_PSF", "FLUXERR_VIS_PSF", "FLUX_Y_TEMPLFIT", "FLUXERR_H_TEMPLFIT",
                "FLUX_G_EXT_LSST_TEMPLFIT", "FLUXERR_U_EXT_LSST_TEMPLFIT", "REDSHIFT",
                "FLUX_DETECTION_TOTAL", "FLUX_VIS_TO_J_TEMPLFIT", "POINT_LIKE_FLAG"):
        assert col in names
    assert mer.schema.field("OBJECT_ID").type == pa.int64()
    assert "REDSHIFT" not in tc.mer_like_table(mock_with_positions, with_redshift=False).column_names


def test_tables_without_positions_are_refused() -> None:
    table = pa.table({"source_id": pa.array([1, 2], pa.int64()), "redshift": [0.1, 0.2],
                      "flux_euclid_vis": [1.0, 2.0], "fluxerr_euclid_vis": [0.1, 0.1]})
    with pytest.raises(ValueError, match="add_sky_positions"):
        tc.irsa_like_table(table, extra_columns=0, seed=0)


# ---------------------------------------------------------------------------- FITS tiles
def test_fits_tiles_keep_rows_int64_ids_units_and_drop_columns(mock_with_positions: pa.Table,
                                                               tmp_path: Path) -> None:
    from astropy.io import fits

    mer = tc.mer_like_table(mock_with_positions)
    dropped = ["FLUX_U_EXT_LSST_TEMPLFIT", "FLUXERR_U_EXT_LSST_TEMPLFIT"]
    paths = tc.write_fits_tiles(mer, tmp_path, n_tiles=5, drop_columns={2: dropped})
    assert len(paths) == 5 and all(p.name.startswith("EUC_MER_FINAL-CAT_TILE") for p in paths)
    ids: list[int] = []
    for k, path in enumerate(paths):
        with fits.open(path) as hdul:
            cols = hdul[1].columns
            assert cols["OBJECT_ID"].format == "K"
            assert cols["FLUX_VIS_PSF"].unit == "uJy" and cols["FLUXERR_Y_TEMPLFIT"].unit == "uJy"
            assert cols["RIGHT_ASCENSION"].unit is None
            assert (dropped[0] in cols.names) == (k != 2)
            ids.extend(int(i) for i in hdul[1].data["OBJECT_ID"])
    assert ids == mer.column("OBJECT_ID").to_pylist()  # every row once, in order, exact int64


def test_fits_tiles_carry_the_asked_unit_on_generic_names(tmp_path: Path) -> None:
    from astropy.io import fits

    table = pa.table({"source_id": pa.array([2**53 + 1, 2**62], pa.int64()),
                      "flux_roman_f106": [1.0, 2.0], "fluxerr_roman_f106": [0.1, 0.2],
                      "redshift": [0.5, 1.0]})
    (path,) = tc.write_fits_tiles(table, tmp_path, n_tiles=1, units="nJy")
    with fits.open(path) as hdul:
        assert hdul[1].columns["flux_roman_f106"].unit == "nJy"
        assert hdul[1].columns["redshift"].unit is None
        assert [int(i) for i in hdul[1].data["source_id"]] == [2**53 + 1, 2**62]


# ---------------------------------------------------------------------------- HATS, direct writer
def _pixel_writer_catalog(mock: pa.Table, out: Path) -> Path:
    irsa = tc.irsa_like_table(mock, extra_columns=10, seed=4)
    ra = irsa.column("ra").to_numpy()
    dec = irsa.column("dec").to_numpy()
    return tc.write_hats_pixels(out, catalog_name="direct", ra=ra, dec=dec, order=5,
                                make_rows=lambda idx: irsa.take(pa.array(idx)), chunk_rows=300)


def test_pixel_writer_makes_a_hats_catalog_hats_reads(mock_with_positions: pa.Table,
                                                      tmp_path: Path) -> None:
    import hats

    root = _pixel_writer_catalog(mock_with_positions, tmp_path)
    catalog = hats.read_hats(root)
    pixels = catalog.get_healpix_pixels()
    assert len(pixels) >= 3 and catalog.catalog_info.total_rows == N_ROWS
    ids: list[int] = []
    for pixel in pixels:
        path = hats.io.paths.pixel_catalog_file(root, pixel)
        table = pq.read_table(str(path))
        spatial = table.column(tc.HEALPIX_29).to_numpy()
        assert (np.diff(spatial) >= 0).all()
        assert (spatial >> (2 * (29 - pixel.order)) == pixel.pixel).all()
        ids.extend(table.column("object_id").to_pylist())
    assert sorted(ids) == mock_with_positions.column("source_id").to_pylist()
    assert pq.read_schema(root / "dataset" / "_common_metadata").field("mer_flux_vis_psf").metadata \
        == {b"unit": b"uJy"}


# ---------------------------------------------------------------------------- HATS, hats-import
@pytest.mark.slow
def test_hats_import_catalog_opens_with_hats_and_lsdb(mock_with_positions: pa.Table,
                                                      tmp_path: Path) -> None:
    import hats
    import lsdb

    irsa = tc.irsa_like_table(mock_with_positions, extra_columns=40, seed=9)
    root = tc.write_hats_catalog(irsa, tmp_path, catalog_name="q1", pixel_threshold=500)
    catalog = hats.read_hats(root)
    assert len(catalog.get_healpix_pixels()) >= 3
    assert catalog.catalog_info.total_rows == N_ROWS
    schema = pq.read_schema(root / "dataset" / "_common_metadata")
    assert schema.field("object_id").type == pa.int64()
    assert schema.field("mer_flux_h_templfit").metadata == {b"unit": b"uJy"}
    frame = lsdb.open_catalog(root).compute()
    assert len(frame) == N_ROWS
    got = frame.sort_values("object_id")
    assert got["object_id"].tolist() == irsa.column("object_id").to_pylist()
    assert np.array_equal(got["mer_flux_vis_psf"].to_numpy(), irsa.column("mer_flux_vis_psf").to_numpy())


@pytest.mark.slow
def test_hats_collection_has_margin_thumbnail_and_stats_beside_the_main_pixels(
        mock_with_positions: pa.Table, tmp_path: Path) -> None:
    import hats
    import lsdb
    from hats.catalog.catalog_collection import CatalogCollection

    root = tc.write_hats_catalog(mock_with_positions, tmp_path, catalog_name="gen",
                                 pixel_threshold=500, margin_arcsec=60.0, thumbnail=True,
                                 partition_stats=True)
    assert (root / "collection.properties").is_file()
    collection = hats.read_hats(root)
    assert isinstance(collection, CatalogCollection)
    main = collection.main_catalog
    assert len(main.get_healpix_pixels()) >= 3 and main.catalog_info.total_rows == N_ROWS
    margin = hats.read_hats(collection.default_margin_catalog_dir)
    assert margin.catalog_info.total_rows > 0  # rows a reader of the root must not take as data
    assert (collection.main_catalog_dir / "data_thumbnail.parquet").is_file()
    assert (collection.main_catalog_dir / "per_partition_statistics.parquet").is_file()
    opened = lsdb.open_catalog(root)
    assert opened.margin is not None and len(opened.compute()) == N_ROWS
