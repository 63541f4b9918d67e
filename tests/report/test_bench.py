"""``sedscale bench``: one table, JSON results, ratios whose direction is right."""

from __future__ import annotations

import json
from pathlib import Path

from sedscale.report.bench import Figure
from tests.report.conftest import sedscale


def test_ratio_is_at_least_one_when_the_target_is_met() -> None:
    assert Figure("x", "speed", 12.0, 10.0, ">=").ratio == 1.2
    assert Figure("x", "seconds", 0.5, 2.0, "<=").ratio == 4.0
    assert Figure("x", "seconds", 4.0, 2.0, "<=").as_dict()["met"] is False
    assert Figure("x", "broken", None, 1.0, ">=").as_dict()["met"] is None


def test_bench_plan_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = sedscale("bench", "plan", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "peak RSS" in proc.stdout and "ratio" in proc.stdout
    res = json.loads(out.read_text())
    (fig,) = res["figures"]
    assert fig["bench"] == "plan" and not fig["error"]
    assert fig["measured"] > 0 and fig["target"] == 1.2 and fig["ratio"] == fig["target"] / fig["measured"]


def test_unknown_benchmark_is_a_usage_error() -> None:
    proc = sedscale("bench", "nope")
    assert proc.returncode == 3 and "unknown benchmark" in proc.stderr
