"""The campaign commands' refusals and outputs, through the real ``sedscale`` entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sedscale.campaign.commit import commit_partition
from sedscale.campaign.create import create_campaign
from sedscale.campaign.testing import make_synthetic_campaign, synthetic_results
from sedscale.campaign.workflow import workflow_from_dict
from sedscale.engines.site import load_site
from tests.catalog.catalogs import clean_columns, write


def _sedscale(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sedscale", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.fixture()
def real_campaign(tmp_path: Path) -> tuple[Path, Path]:
    """A campaign planned from a real (small) catalog, not yet run."""
    catalog = write(clean_columns(300), tmp_path / "cat.parquet", row_group_size=100)
    wf = workflow_from_dict({"name": "t", "rows_per_partition": 100}, "test")
    root = tmp_path / "camp"
    create_campaign(root, [str(catalog)], workflow=wf, site=load_site("local"), profile_spec="generic",
                    rows_per_partition=100)
    return root, catalog


def test_submit_into_an_existing_campaign_is_refused_with_exit_4(real_campaign, tmp_path: Path) -> None:
    root, catalog = real_campaign
    proc = _sedscale("submit", str(catalog), "--campaign", str(root))
    assert proc.returncode == 4, proc.stderr
    assert "sedscale resume" in proc.stderr


def test_resume_refuses_when_the_catalog_changed(real_campaign) -> None:
    root, catalog = real_campaign
    time.sleep(0.01)
    write(clean_columns(301), catalog, row_group_size=100)  # same name, other content
    proc = _sedscale("resume", str(root))
    assert proc.returncode == 4, proc.stderr
    assert "catalog changed" in proc.stderr and str(catalog.resolve()) in proc.stderr


def test_resume_refuses_when_a_catalog_file_is_touched(real_campaign) -> None:
    root, catalog = real_campaign
    st = catalog.stat()
    os.utime(catalog, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    proc = _sedscale("resume", str(root))
    assert proc.returncode == 4 and "modified" in proc.stderr


def test_resume_and_status_refuse_a_folder_that_is_not_a_campaign(tmp_path: Path) -> None:
    for cmd in ("resume", "status"):
        proc = _sedscale(cmd, str(tmp_path))
        assert proc.returncode == 4 and "not a sedscale campaign" in proc.stderr


def test_status_json_and_export_of_a_partly_done_campaign(tmp_path: Path) -> None:
    paths = make_synthetic_campaign(tmp_path / "c", [10, 10, 10])
    commit_partition(paths, 0, synthetic_results(0, 10), chunk_rows=10, run_id=None)
    st = json.loads(_sedscale("status", str(paths.root), "--json").stdout)
    assert (st["partitions_done"], st["partitions_pending"], st["rows_committed"]) == (1, 2, 10)
    proc = _sedscale("export", str(paths.root), "-o", str(tmp_path / "o.parquet"))
    assert proc.returncode == 4 and "resume" in proc.stderr  # never a silently incomplete file
    assert not (tmp_path / "o.parquet").exists()
    for pid in (1, 2):
        commit_partition(paths, pid, synthetic_results(10 * pid, 10), chunk_rows=10, run_id=None)
    proc = _sedscale("export", str(paths.root), "-o", str(tmp_path / "o.parquet"))
    assert proc.returncode == 0, proc.stderr
    assert pq.read_table(tmp_path / "o.parquet").num_rows == 30


def test_policy_llm_without_a_server_is_refused_before_planning(tmp_path: Path) -> None:
    catalog = write(clean_columns(50), tmp_path / "cat.parquet")
    proc = _sedscale("submit", str(catalog), "--site", "local", "--policy", "llm", "--campaign",
                     str(tmp_path / "camp"), cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr  # unusable configuration
    assert "--llm-url" in proc.stderr and "llm: null" in proc.stderr
    assert not (tmp_path / "camp").exists()


def _command_paths() -> list[list[str]]:
    """Every command of the app as the words that name it (``[]`` is the root, ``["sites", "show"]``)."""
    import typer.main

    from sedscale.cli import app

    def walk(command: object, words: list[str]) -> list[list[str]]:
        found = [words]
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            found += walk(sub, [*words, name])
        return found

    return walk(typer.main.get_command(app), [])


def test_help_of_every_command_shows_no_value_for_a_flag_and_no_braces() -> None:
    from typer.testing import CliRunner

    from sedscale.cli import app

    paths = _command_paths()
    assert ["validate"] in paths and ["sites", "show"] in paths and len(paths) > 10
    for words in paths:
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, (words, result.output)
        text = result.output
        assert "--help" in text and "<bool>" not in text, (words, text)
        usage = next(line for line in text.splitlines() if "Usage:" in line)
        assert "{" not in usage and "}" not in usage, (words, usage)
    validate_usage = CliRunner().invoke(app, ["validate", "--help"]).output
    assert "[OPTIONS] CATALOG..." in validate_usage


def test_help_through_the_entry_point_and_usage_errors_exit_2(tmp_path: Path) -> None:
    proc = _sedscale("fit", "--help")
    assert proc.returncode == 0 and "<bool>" not in proc.stdout and "{catalog}" not in proc.stdout
    assert "Usage:" in proc.stdout and "CATALOG..." in proc.stdout
    # a docstring's source line breaks are joined: the paragraph is wrapped by the console only
    proc = _sedscale("validate", "--help")
    assert any("exit 3 with a message naming the file" in line for line in proc.stdout.splitlines()), proc.stdout
    for args in (["validate"], ["validate", "--no-such-flag", "x"], ["no-such-command"]):
        proc = _sedscale(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "Usage:" in proc.stderr


def test_piped_validate_output_keeps_each_message_on_one_whole_line(tmp_path: Path) -> None:
    cols = clean_columns(60)
    cols["fluxerr_euclid_y"][:5] = -1.0
    catalog = write(cols, tmp_path / "a-catalog-with-a-rather-long-file-name-for-the-example.parquet")
    proc = subprocess.run([sys.executable, "-m", "sedscale", "validate", str(catalog)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "60"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "60 rows in 1 file(s), profile generic, 6 bands: 55 valid, 5 quarantined" in lines[0]
    example = next(line for line in lines if "bad_error" in line)
    assert f"{catalog.name}: row 0 (id 0): an error is ≤ 0 beside a finite flux" in example
    assert "fluxerr_euclid_y=-1" in example and "…" not in proc.stdout


def test_mock_reports_progress_on_stderr_when_piped(tmp_path: Path) -> None:
    out = tmp_path / "mock.parquet"
    proc = _sedscale("mock", str(out), "--n", "600", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert any("loading the model grids" in line for line in lines), proc.stderr
    assert any("600/600 sources" in line for line in lines), proc.stderr
    assert lines[-1].startswith("wrote 600 euclid mock sources to") and str(out) in lines[-1]
    assert pq.read_metadata(out).num_rows == 600
