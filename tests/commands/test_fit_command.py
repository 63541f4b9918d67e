"""``sedscale fit`` through the console entry point (``sedscale.cli.main``), in this process:
the output file, and the exit codes 0 (fitted), 2 (bad usage) and 3 (unusable input)."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sedscale.cli import main
from sedscale.results import RESULTS_SCHEMA
from tests.test_fitting import PLANTED, write_small_catalog

FIT_CONFIG = """\
sfh: {family: delayed, age: [0.5, 3.0], tau: [1.0]}
stellar: {metallicity: [1.0]}
dust_attenuation: {av: [0.0, 1.0]}
nebular: {enabled: false}
dust_emission: {enabled: false}
redshift: {node_step: 0.02}
"""


def run_sedscale(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``sedscale ARGS`` as the console script runs it; its exit code."""
    monkeypatch.setattr(sys, "argv", ["sedscale", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture()
def catalog(tmp_path: Path) -> Path:
    return write_small_catalog(tmp_path / "cat.parquet", 30)


@pytest.mark.slow  # the first fit in a process builds the tiny grid: ~20 s on a busy 2-core machine
def test_fit_writes_the_results_contract(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, catalog: Path,
                                         sedscale_cache_dir: Path) -> None:
    config = tmp_path / "fit.yaml"
    config.write_text(FIT_CONFIG)
    out = tmp_path / "out" / "results.parquet"
    code = run_sedscale(monkeypatch, "fit", str(catalog), "-o", str(out), "--config", str(config),
                        "--policy", "none", "--cache-dir", str(sedscale_cache_dir), "--chunk-rows", "16")
    assert code == 0
    table = pq.read_table(out)
    assert table.schema.equals(RESULTS_SCHEMA) and table.num_rows == 30
    status = table.column("status").to_pylist()
    assert [status[i] for i in sorted(PLANTED)] == ["quarantined"] * len(PLANTED)
    assert status.count("fitted") > 10
    assert not list(out.parent.glob("*.tmp"))  # written atomically: no temporary left


def test_missing_output_is_bad_usage(monkeypatch: pytest.MonkeyPatch, catalog: Path) -> None:
    assert run_sedscale(monkeypatch, "fit", str(catalog)) == 2


def test_unknown_policy_is_unusable_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, catalog: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run_sedscale(monkeypatch, "fit", str(catalog), "-o", str(tmp_path / "o.parquet"), "--policy", "magic") == 3
    assert "none, rules or llm" in capsys.readouterr().err


def test_missing_catalog_is_unusable_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.parquet"
    assert run_sedscale(monkeypatch, "fit", str(missing), "-o", str(tmp_path / "o.parquet")) == 3
    assert "nowhere.parquet" in capsys.readouterr().err


def test_policy_llm_without_a_url_is_unusable_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, catalog: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.parquet"
    assert run_sedscale(monkeypatch, "fit", str(catalog), "-o", str(out), "--policy", "llm",
                        "--cache-dir", str(tmp_path / "cache")) == 3
    assert "--llm-url" in capsys.readouterr().err
    assert not out.exists()
