"""``sedscale export --format parquet|fits`` through the command line, and the refusals every
format shares (incomplete campaign, unknown format, HATS without sky positions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from sedscale.campaign.commit import commit_partition
from sedscale.campaign.export_fits import TNULL
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.testing import make_synthetic_campaign, synthetic_results
from sedscale.results import RESULT_UNITS, RESULTS_SCHEMA

SIZES = [40, 17, 0, 33]
BIG_ID = 2**62 + 12345  # not representable as float64: an id read as float would lose it


def _rows(start: int, n: int) -> pa.Table:
    """Synthetic results with a huge id, a null id and a non-ASCII reason in the first partition."""
    table = synthetic_results(start, n)
    if start == 0 and n >= 4:
        cols = table.to_pydict()
        cols["source_id"][0] = BIG_ID
        cols["source_id"][1] = None
        cols["reason"][3] = "bad_error: FLUXERR_H=−3 µJy ≤ 0"
        table = pa.table(cols, schema=RESULTS_SCHEMA)
    return table


def _committed(root: Path, sizes: list[int] = SIZES, *, skip: tuple[int, ...] = ()) -> CampaignPaths:
    paths = make_synthetic_campaign(root, sizes)
    start = 0
    for pid, n in enumerate(sizes):
        if pid not in skip:
            commit_partition(paths, pid, _rows(start, n), chunk_rows=max(sizes), run_id=None)
        start += n
    return paths


def _expected(sizes: list[int] = SIZES) -> pa.Table:
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return pa.concat_tables([_rows(int(s), n) for s, n in zip(starts, sizes)])


def _sedscale(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sedscale", *args], capture_output=True, text=True, timeout=300)


def test_parquet_is_the_default_and_carries_units_in_field_metadata(tmp_path: Path) -> None:
    paths = _committed(tmp_path / "c")
    proc = _sedscale("export", str(paths.root), "-o", str(tmp_path / "r.parquet"))
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.schema.equals(RESULTS_SCHEMA)
    assert table.equals(_expected().cast(table.schema))
    meta = table.schema.field("logmstar").metadata
    assert u.Unit(meta[b"unit"].decode()) == u.Unit("dex(solMass)")
    assert table.schema.field("ra").metadata[b"unit"] == b"deg"
    assert b"unit" not in (table.schema.field("status").metadata or {})


def test_fits_round_trip_keeps_int64_ids_units_and_nulls(tmp_path: Path) -> None:
    paths = _committed(tmp_path / "c")
    out = tmp_path / "r.fits"
    proc = _sedscale("export", str(paths.root), "-o", str(out), "--format", "fits")
    assert proc.returncode == 0, proc.stderr
    assert f"{sum(SIZES)} rows" in proc.stdout
    expected = _expected()
    with fits.open(out) as hdus:
        hdu = hdus["RESULTS"]
        assert isinstance(hdu, fits.BinTableHDU)
        header, data = hdu.header, hdu.data
        names = [header[f"TTYPE{i}"] for i in range(1, header["TFIELDS"] + 1)]
        assert names == RESULTS_SCHEMA.names and header["NAXIS2"] == sum(SIZES)
        column = {name: i for i, name in enumerate(names, start=1)}
        for name, unit in RESULT_UNITS.items():  # every unit is in TUNIT and parses with astropy
            if unit:
                assert u.Unit(header[f"TUNIT{column[name]}"]) == u.Unit(unit)
        assert header[f"TFORM{column['source_id']}"] == "K"
        assert header[f"TNULL{column['source_id']}"] == TNULL[64]
        ids = np.asarray(data["source_id"])
        assert ids.dtype.kind == "i" and ids.dtype.itemsize == 8
        assert int(ids[0]) == BIG_ID and int(ids[1]) == TNULL[64]
        assert ids[2:].tolist() == expected.column("source_id").to_pylist()[2:]
        logm = expected.column("logmstar").to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(np.asarray(data["logmstar"]), logm)  # nulls as NaN
        n_bands = expected.column("n_bands")
        assert np.asarray(data["n_bands"])[n_bands.is_null().to_numpy(zero_copy_only=False)].tolist() == \
            [TNULL[32]] * n_bands.null_count
        assert list(data["status"]) == expected.column("status").to_pylist()
        assert data["reason"][3] == "bad_error: FLUXERR_H=\\u22123 \\xb5Jy \\u2264 0"
    with fits.open(out, logical_as_bytes=True) as hdus:  # FITS logicals keep their nulls (a zero
        # byte, which numpy shows as b"")
        flags = [bytes(v) for v in hdus["RESULTS"].data["accepted"]]
    want = [b"" if v is None else (b"T" if v else b"F") for v in expected.column("accepted").to_pylist()]
    assert flags == want


@pytest.mark.parametrize("fmt", ["parquet", "fits", "hats"])
def test_every_format_refuses_an_incomplete_campaign_and_leaves_nothing(tmp_path: Path, fmt: str) -> None:
    paths = _committed(tmp_path / "c", skip=(1,))
    out = tmp_path / f"r.{fmt}"
    proc = _sedscale("export", str(paths.root), "-o", str(out), "--format", fmt)
    assert proc.returncode == 4 and "resume" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_an_unknown_format_is_refused_by_name(tmp_path: Path) -> None:
    paths = _committed(tmp_path / "c")
    proc = _sedscale("export", str(paths.root), "-o", str(tmp_path / "r.csv"), "--format", "csv")
    assert proc.returncode != 0 and "--format must be one of parquet, hats, fits" in proc.stderr


def test_hats_without_positions_says_so_and_what_to_add(tmp_path: Path) -> None:
    paths = make_synthetic_campaign(tmp_path / "c", [20, 20])
    for pid in (0, 1):
        table = synthetic_results(20 * pid, 20)
        table = table.set_column(table.schema.get_field_index("ra"), "ra", pa.nulls(20, pa.float64()))
        table = table.set_column(table.schema.get_field_index("dec"), "dec", pa.nulls(20, pa.float64()))
        commit_partition(paths, pid, table, chunk_rows=20, run_id=None)
    out = tmp_path / "r.hats"
    proc = _sedscale("export", str(paths.root), "-o", str(out), "--format", "hats")
    assert proc.returncode == 4, proc.stderr
    message = " ".join(proc.stderr.split())
    assert "no sky position" in message and "profile names no ra/dec columns" in message
    assert "add `ra: <column>` and `dec: <column>`" in message and "--format parquet" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no catalog, no staging left


def test_hats_refuses_to_overwrite_an_existing_directory(tmp_path: Path) -> None:
    paths = _committed(tmp_path / "c")
    (tmp_path / "r.hats").mkdir()
    (tmp_path / "r.hats" / "keep").write_text("mine")
    proc = _sedscale("export", str(paths.root), "-o", str(tmp_path / "r.hats"), "--format", "hats")
    assert proc.returncode == 4 and "exists" in proc.stderr
    assert (tmp_path / "r.hats" / "keep").read_text() == "mine"
