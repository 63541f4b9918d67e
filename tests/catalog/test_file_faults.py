"""File-level faults: one clear message naming the file (and column), exit code 3, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .catalogs import clean_columns, write


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sedscale", *args], capture_output=True, text=True, cwd=cwd)


def _truncated(tmp_path: Path) -> Path:
    good = write(clean_columns(100), tmp_path / "good.parquet")
    data = good.read_bytes()
    bad = tmp_path / "truncated.parquet"
    bad.write_bytes(data[: len(data) // 2])
    return bad


FAULTS = {
    "truncated": (_truncated, "truncated.parquet", "not a readable Parquet"),
    "empty_file": (lambda t: (t / "empty.parquet").write_bytes(b"") or t / "empty.parquet", "empty.parquet", "empty"),
    "no_rows": (lambda t: pq.write_table(pa.table({"source_id": pa.array([], pa.int64()),
                                                   "flux_euclid_h": pa.array([], pa.float64()),
                                                   "fluxerr_euclid_h": pa.array([], pa.float64())}),
                                         t / "norows.parquet") or t / "norows.parquet", "norows.parquet", "no rows"),
    "no_id": (lambda t: pq.write_table(pa.table({"flux_euclid_h": [1.0], "fluxerr_euclid_h": [0.1]}),
                                       t / "noid.parquet") or t / "noid.parquet", "noid.parquet", "'source_id'"),
    "no_band": (lambda t: pq.write_table(pa.table({"source_id": [1], "mag_x": [1.0]}), t / "noband.parquet")
                or t / "noband.parquet", "noband.parquet", "no recognisable band column"),
    "wrong_type": (lambda t: pq.write_table(pa.table({"source_id": [1], "flux_euclid_h": ["1.0"],
                                                      "fluxerr_euclid_h": [0.1]}), t / "str.parquet")
                   or t / "str.parquet", "str.parquet", "'flux_euclid_h' has type string"),
    "glob_no_match": (lambda t: str(t / "nothing-*.parquet"), "nothing-*.parquet", "matches no file"),
    "missing": (lambda t: t / "absent.parquet", "absent.parquet", "no such file"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_file_fault_exit_code_and_message(tmp_path, fault):
    make, name, text = FAULTS[fault]
    target = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run_cli("validate", str(target), "--json", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert name in proc.stderr and text in proc.stderr, proc.stderr
    assert proc.stdout == ""  # nothing half-written on stdout
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_schema_disagreement_between_files(tmp_path):
    write(clean_columns(10), tmp_path / "a.parquet")
    cols = clean_columns(10, start_id=10)
    cols["flux_euclid_h"] = cols["flux_euclid_h"].astype(np.float32)
    write(cols, tmp_path / "b.parquet")
    proc = run_cli("validate", str(tmp_path))
    assert proc.returncode == 3 and "b.parquet" in proc.stderr and "flux_euclid_h" in proc.stderr


def test_validate_json_contract(tmp_path):
    cols = clean_columns(200)
    cols["fluxerr_euclid_h"][3] = -1
    write(cols, tmp_path / "c.parquet", row_group_size=64)
    proc = run_cli("validate", str(tmp_path / "c.parquet"), "--json")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["rows_total"] == 200 and obj["rows_valid"] == 199 and obj["rows_quarantined"] == 1
    assert obj["reasons"] == {"bad_error": 1}


def test_version_and_help():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("sedscale ")
    proc = run_cli("validate", "--help")
    assert proc.returncode == 0 and "Exit codes" in proc.stdout
