"""``sedscale bench agent-quality`` end to end on a small hard-mock catalog: every strategy but
the LLM ones, OUT.json exactly the issue-17 object, counts and the rules_kb half split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sedscale.report.agent_quality import split_halves
from sedscale.report.agent_quality_grid import evaluations_per_source, exhaustive_configs
from sedscale.report.agent_quality_metrics import METRIC_KEYS
from sedscale.sed.config import FitConfig
from tests.report.conftest import sedscale

SHIPPED = Path(__file__).resolve().parents[2] / "examples" / "hard_mocks" / "hard_mocks_60.parquet"


def _catalog(tmp_path: Path) -> Path:
    """The first 30 of the shipped 60 hard mocks (bagpipes; all three classes) when present, else
    30 from ``sedscale mock``: 30 keep the run near a minute on 2 cores."""
    path = tmp_path / "hard.parquet"
    if SHIPPED.exists():
        pq.write_table(pq.read_table(SHIPPED).slice(0, 30), path)
        return path
    proc = sedscale("mock", str(path), "--n", "30", "--hard-fraction", "1", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.mark.slow
def test_agent_quality_bench_on_hard_mocks(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    out, details = tmp_path / "out.json", tmp_path / "details.json"
    proc = sedscale("bench", "agent-quality", "--catalog", str(catalog), "--json", str(out),
                    "--details", str(details), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rules ÷ exhaustive" in proc.stdout and "truth_class" in proc.stdout
    obj = json.loads(out.read_text())
    table = pq.read_table(catalog)
    assert set(obj) == {"n_sources", "strategies"} and obj["n_sources"] == table.num_rows
    assert list(obj["strategies"]) == ["triage", "exhaustive", "rules", "rules_kb"]
    for metrics in obj["strategies"].values():
        assert tuple(metrics) == METRIC_KEYS
        assert all(isinstance(v, float) for v in metrics.values())
    s = obj["strategies"]
    z, ids = table.column("redshift").to_numpy(), table.column("source_id").to_numpy()
    triage_models = evaluations_per_source(FitConfig(), z, np.ones(z.size, bool))
    assert s["triage"]["models_per_source"] == pytest.approx(triage_models.mean())
    exhaustive = sum(evaluations_per_source(c, z, np.ones(z.size, bool)) for c in exhaustive_configs(FitConfig()))
    assert s["exhaustive"]["models_per_source"] == pytest.approx(exhaustive.mean())
    assert s["exhaustive"]["models_per_source"] > 10 * s["rules"]["models_per_source"]
    assert s["rules"]["models_per_source"] >= s["triage"]["models_per_source"]
    assert s["triage"]["agent_steps_per_source"] == 0 and s["rules"]["tokens_per_source"] == 0
    extra = json.loads(details.read_text())
    _, half_b = split_halves(ids, 0)
    assert extra["sources_per_strategy"]["rules_kb"] == int(half_b.sum()) < table.num_rows
    assert "half B" in extra["notes"]["rules_kb"] and "half B" in proc.stdout
    assert tuple(extra["rules_on_rules_kb_sources"]) == METRIC_KEYS


@pytest.mark.slow
def test_agent_quality_without_av_truth_writes_null(tmp_path: Path) -> None:
    """A catalog without ``truth_av``: its figure is null for every strategy (triage only, to stay fast)."""
    from sedscale.report.agent_quality import load_inputs, run_triage
    from sedscale.report.agent_quality_summary import bench_object

    src = tmp_path / "m.parquet"
    proc = sedscale("mock", str(src), "--n", "8", "--hard-fraction", "1", "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(src)
    pq.write_table(table.drop_columns(["truth_av"]), tmp_path / "no_av.parquet")
    inputs = load_inputs(tmp_path / "no_av.parquet")
    obj = bench_object({"triage": run_triage(inputs, lambda *a: None)}, inputs.truth)
    assert obj["n_sources"] == 8
    assert obj["strategies"]["triage"]["av_abs_err_median"] is None
    assert obj["strategies"]["triage"]["logmstar_abs_err_median"] is not None


def test_agent_quality_needs_a_catalog_and_runs_alone() -> None:
    proc = sedscale("bench", "agent-quality")
    assert proc.returncode == 3 and "--catalog" in proc.stderr
    proc = sedscale("bench", "agent-quality", "plan", "--catalog", "x.parquet")
    assert proc.returncode == 3 and "runs alone" in proc.stderr
