"""The agent-quality benchmark's arithmetic, worked by hand: medians of |estimate − truth| over
every source (accepted or not), null without a truth column, per-class medians, the dusty
high-A_V figure, the model-evaluation count checked against a real grid's valid mask, and the
seeded half split."""

from __future__ import annotations

import numpy as np

from sedscale.report.agent_quality import split_halves
from sedscale.report.agent_quality_grid import evaluations_per_source, exhaustive_configs
from sedscale.report.agent_quality_metrics import (
    METRIC_KEYS,
    StrategyRun,
    Truth,
    class_medians,
    dusty_high_av_median,
    strategy_metrics,
)
from sedscale.report.agent_quality_summary import bench_object
from sedscale.sed.config import FitConfig


def _run() -> StrategyRun:
    return StrategyRun(
        source_id=np.array([3, 1, 2, 4]),
        estimates={"logmstar": np.array([10.0, 9.5, np.nan, 11.2]), "logsfr": np.array([1.0, 0.0, 0.5, 2.0]),
                   "av": np.array([1.0, 3.0, 0.5, 2.0])},
        accepted=np.array([True, False, True, True]),
        models=np.array([100, 300, 200, 400]),
        agent_steps=np.array([0, 3, 0, 1]),
        tokens=np.array([0, 1200, 0, 400]),
        seconds=2.0,
    )


def _truth(with_av: bool = True) -> Truth:
    # listed in another order than the run: rows are matched by source id
    return Truth(source_id=np.array([1, 2, 3, 4]),
                 values={"logmstar": np.array([10.0, 9.0, 10.3, 11.0]), "logsfr": np.array([0.5, 0.5, 1.0, 1.0]),
                         "av": np.array([4.0, 0.2, 1.5, 3.5]) if with_av else None},
                 truth_class=np.array(["very_dusty", "agn", "agn", "very_dusty"], dtype=object))


def test_metrics_by_hand() -> None:
    m = strategy_metrics(_run(), _truth())
    assert tuple(m) == METRIC_KEYS
    assert m["models_per_source"] == 250.0  # (100 + 300 + 200 + 400) / 4
    # |Δ log M*|: id3 0.3, id1 0.5, id2 NaN (no estimate: left out), id4 0.2 → median 0.3
    assert abs(m["logmstar_abs_err_median"] - 0.3) < 1e-12
    # |Δ log SFR|: 0, 0.5, 0, 1 → median 0.25 (unaccepted id1 included)
    assert abs(m["logsfr_abs_err_median"] - 0.25) < 1e-12
    # |ΔA_V|: 0.5, 1.0, 0.3, 1.5 → median 0.75
    assert abs(m["av_abs_err_median"] - 0.75) < 1e-12
    assert m["accepted_fraction"] == 0.75
    assert m["agent_steps_per_source"] == 1.0 and m["tokens_per_source"] == 400.0
    assert m["seconds_per_source"] == 0.5


def test_absent_truth_column_gives_null() -> None:
    m = strategy_metrics(_run(), _truth(with_av=False))
    assert m["av_abs_err_median"] is None and m["logmstar_abs_err_median"] is not None
    assert dusty_high_av_median(_run(), _truth(with_av=False)) is None
    obj = bench_object({"triage": _run()}, _truth(with_av=False))
    assert obj == {"n_sources": 4, "strategies": {"triage": m}}


def test_class_and_dusty_medians_by_hand() -> None:
    per_class = class_medians(_run(), _truth())
    assert abs(per_class["agn"] - 0.3) < 1e-12  # id2 NaN left out, id3 0.3
    assert abs(per_class["very_dusty"] - 0.35) < 1e-12  # id1 0.5, id4 0.2
    # dusty with true A_V > 3: id1 (4.0 → |ΔA_V| 1.0) and id4 (3.5 → 1.5) → 1.25
    assert abs(dusty_high_av_median(_run(), _truth()) - 1.25) < 1e-12


def test_evaluations_match_the_grids_valid_mask() -> None:
    """2 nodes × the models valid at both: by hand (1,215 models; at z = 2 six of nine ages are
    younger than the Universe) and from a real lattice grid."""
    from sedscale.sed.grid import build_lattice_grid, lattice_coordinates

    config = FitConfig()
    z = np.array([0.1, 2.0, np.nan, 1.0])
    counts = evaluations_per_source(config, z, np.array([True, True, True, False]))
    assert counts.tolist() == [2 * 1215, 2 * 1215 * 6 // 9, 0, 0]
    grid = build_lattice_grid(config, ("lsst_g", "lsst_r"), z[1:2])
    cell, _ = lattice_coordinates(config, z[1:2])
    assert grid.redshifts.size == 2 and cell[0] >= 0
    assert 2 * int(np.sum(grid.valid[0] & grid.valid[1])) == counts[1]


def test_exhaustive_union_spans_the_action_space() -> None:
    """Every SFH family, attenuation law and AGN mode, A_V to 8 mag, log U up to −1: every family
    of the action space, or (bounded) those at most one discrete change from triage."""
    from sedscale.agent.apply import action_space_configs

    base = FitConfig()
    assert [m.hash() for m in exhaustive_configs(base)] == [c.hash() for c in action_space_configs(base)]
    members = exhaustive_configs(base, max_changes=1)
    assert {m.sfh.family for m in members} == {"delayed", "exponential", "constant", "delayed_burst"}
    assert {m.dust_attenuation.law for m in members} == {"calzetti", "smc", "modified_starburst"}
    assert {(m.agn.enabled, m.agn.fraction_at if m.agn.enabled else None) for m in members} == \
        {(False, None), (True, "dust"), (True, 5100.0)}
    assert all(max(m.dust_attenuation.av) == 8.0 for m in members)
    assert max(max(m.nebular.logu) for m in members) == -1.0
    full = {c.hash() for c in action_space_configs(base)}
    assert {m.hash() for m in members} <= full and len(members) < len(full)
    assert len({m.hash() for m in members}) == len(members)
    assert sum(m.n_models for m in members) > 100 * base.n_models


def test_half_split_is_seeded_and_disjoint() -> None:
    ids = np.arange(1000, 1200)
    a, b = split_halves(ids, 0)
    assert not np.any(a & b) and np.all(a | b) and 70 < a.sum() < 130
    a_rev, _ = split_halves(ids[::-1], 0)
    assert np.array_equal(a_rev, a[::-1])  # a source's half depends on its id alone
    assert not np.array_equal(split_halves(ids, 1)[0], a)


def test_rules_on_the_kb_half_is_reported_beside_rules_kb() -> None:
    """rules_kb's figures are over one half: the details repeat rules' figures over that half."""
    from sedscale.report.agent_quality_summary import details_object

    run, truth = _run(), _truth()
    half = run.subset(np.array([1, 4]))
    assert half.source_id.tolist() == [1, 4] and half.seconds == 1.0 and half.models.tolist() == [300, 400]
    runs = {"triage": run, "exhaustive": run, "rules": run, "rules_kb": half}
    details = details_object(runs, truth, bench_object(runs, truth))
    same = details["rules_on_rules_kb_sources"]
    assert same == strategy_metrics(half, truth)
    assert abs(same["logmstar_abs_err_median"] - 0.35) < 1e-12  # id1 0.5, id4 0.2
    assert details["sources_per_strategy"]["rules_kb"] == 2
