"""Units recorded in the file agree with the profile, or the run stops naming the column."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from sedscale.catalog.profiles import load_profile
from sedscale.catalog.units import check_units, is_magnitude, parse_unit
from sedscale.catalog.units_metadata import units_of_schema
from sedscale.errors import CatalogError

GENERIC = pa.schema([pa.field("source_id", pa.int64()), pa.field("ra", pa.float64()), pa.field("dec", pa.float64()),
                     pa.field("flux_euclid_h", pa.float64()), pa.field("fluxerr_euclid_h", pa.float64())])


@pytest.mark.parametrize("recorded", ["uJy", "µJy", "microJy", "1e-6 Jy", " uJy ", "1000 nJy"])
def test_spellings_of_the_profile_unit_pass(recorded: str) -> None:
    profile = load_profile("generic", GENERIC)
    check_units(profile, {"flux_euclid_h": recorded, "fluxerr_euclid_h": recorded, "ra": "deg"}, "cat.parquet")


def test_nanojansky_in_the_file_read_as_microjansky_stops() -> None:
    profile = load_profile("generic", GENERIC)
    with pytest.raises(CatalogError, match=r"cat.parquet.*fluxerr_euclid_h.*'nJy'.*generic.*uJy"):
        check_units(profile, {"fluxerr_euclid_h": "nJy"}, "cat.parquet")
    with pytest.raises(CatalogError, match="flux_euclid_h.*mag"):
        check_units(profile, {"flux_euclid_h": "mag"}, "cat.parquet")
    with pytest.raises(CatalogError, match="'ra'.*rad.*deg"):
        check_units(profile, {"ra": "rad"}, "cat.parquet")


def test_no_recorded_unit_passes_and_unparseable_stops() -> None:
    profile = load_profile("generic", GENERIC)
    check_units(profile, {}, "cat.parquet")
    check_units(profile, {"flux_euclid_h": "", "source_id": "furlong"}, "cat.parquet")  # id not checked
    with pytest.raises(CatalogError, match="flux_euclid_h.*'furlongs'.*cannot parse"):
        check_units(profile, {"flux_euclid_h": "furlongs"}, "cat.parquet")


def test_magnitude_profiles_accept_magnitude_spellings(tmp_path: Path) -> None:
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("m", pa.float64()), pa.field("e", pa.float64())])
    prof = tmp_path / "p.yaml"
    prof.write_text("id: id\nbands:\n - {column: m, error: e, unit: ABmag, filter: lsst_g}\n")
    profile = load_profile(prof, schema)
    for spelling in ("mag", "ABmag", "AB", "mag(AB)"):
        check_units(profile, {"m": spelling, "e": "mag"}, "m.fits")
    with pytest.raises(CatalogError, match="'m'.*'nJy'.*ABmag"):
        check_units(profile, {"m": "nJy"}, "m.fits")
    assert is_magnitude("AB") and parse_unit("AB") is None and parse_unit("nanoJy") is not None


def test_roman_profile_agrees_with_romancal_nanojansky_and_scale_columns_are_checked(tmp_path: Path) -> None:
    schema = pa.schema([pa.field("label", pa.int32()), pa.field("kron_f158_flux", pa.float32()),
                        pa.field("kron_f158_flux_err", pa.float32())])
    profile = load_profile("roman", schema)
    check_units(profile, {"kron_f158_flux": "nJy", "kron_f158_flux_err": "nJy"}, "sc.parquet")
    with pytest.raises(CatalogError, match="kron_f158_flux.*uJy.*nJy"):
        load_profile("roman", schema, source="sc.parquet", units={"kron_f158_flux": "uJy"})
    table = pa.table({"id": pa.array([1], pa.int64()), "a": [2.0], "ea": [0.1], "num": [6.0], "den": [3.0]})
    prof = tmp_path / "p.yaml"
    prof.write_text("id: id\nbands:\n  - {column: a, error: ea, filter: lsst_r, "
                    "scale: {numerator: num, denominator: den}}\n")
    with pytest.raises(CatalogError, match="'den'.*'mJy'"):
        load_profile(prof, table.schema, units={"den": "mJy"})


def test_astropy_written_parquet_in_nanojansky_stops_a_microjansky_profile(tmp_path: Path) -> None:
    """The +3 dex case: astropy records nJy in ``table_meta_yaml``; the generic profile says µJy."""
    path = tmp_path / "njy.parquet"
    Table({"source_id": np.arange(3, dtype=np.int64), "flux_euclid_h": np.ones(3) * u.nJy,
           "fluxerr_euclid_h": np.ones(3) * 0.1 * u.nJy}).write(path, format="parquet")
    schema = pq.read_schema(path)
    units = units_of_schema(schema)
    assert units["flux_euclid_h"] == "nJy"
    with pytest.raises(CatalogError, match=r"njy.parquet.*flux_euclid_h.*nJy.*uJy"):
        load_profile("generic", schema, source=str(path), units=units)
    prof = tmp_path / "njy.yaml"
    prof.write_text("id: source_id\nbands:\n - {column: flux_euclid_h, error: fluxerr_euclid_h, unit: nJy, "
                    "filter: euclid_h}\n")
    load_profile(prof, schema, units=units)
