"""Knowledge base: exact, order-independent merges; readable persistence; stable digest."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from sedscale.agent.knowledge import KnowledgeBase, RuleStats

PATTERNS = ["ir_under", "uv_over", "line_excess", "v_shape", "generic"]
ACTIONS = ["enable:agn", "widen:dust_attenuation.av:up", "enable:nebular", "set:agn.av_agn", "enable:burst"]


def _delta(seed: int, n: int = 200) -> KnowledgeBase:
    rng = random.Random(seed)
    kb = KnowledgeBase(epoch=3)
    for _ in range(n):
        pats = rng.sample(PATTERNS, rng.randint(1, 2))
        gain = rng.uniform(-2.0, 1.0)
        kb.record(pats, rng.choice(ACTIONS), gain, gain > 0.02, rng.random() < 0.3)
    return kb


def test_merge_is_order_independent_and_exact() -> None:
    deltas = [_delta(s) for s in range(5)]
    base = _delta(99)
    results = {KnowledgeBase.merge(base, *perm).dumps() for perm in itertools.permutations(deltas)}
    assert len(results) == 1
    # associativity: merging partial merges gives the same bytes
    left = KnowledgeBase.merge(KnowledgeBase.merge(base, deltas[0], deltas[1]), KnowledgeBase.merge(*deltas[2:]))
    assert left.dumps() == results.pop()
    total = KnowledgeBase.merge(base, *deltas)
    assert sum(s.n for s in total.rules.values()) == sum(sum(s.n for s in d.rules.values()) for d in [base, *deltas])


def test_record_counts_each_pattern_and_clips_gain() -> None:
    kb = KnowledgeBase()
    kb.record(["ir_under", "v_shape", "ir_under"], "enable:agn", 5.0, True, True)
    kb.record(["ir_under"], "enable:agn", float("nan"), False, False)
    assert kb.stats("ir_under", "enable:agn") == RuleStats(2, 1, 1, 1000)
    assert kb.stats("v_shape", "enable:agn") == RuleStats(1, 1, 1, 1000)
    assert kb.stats("ir_under", "enable:agn").success == pytest.approx(0.5)


def test_persistence_round_trip_is_readable(tmp_path) -> None:
    kb = KnowledgeBase.merge(_delta(1), _delta(2), epoch=4)
    path = tmp_path / "kb" / "knowledge.json"
    kb.save(path)
    text = path.read_text()
    data = json.loads(text)
    assert data["format"] == "sedscale-knowledge" and data["epoch"] == 4
    assert "\n" in text and '"pattern": "' in text  # indented, one key per line: a person can read it
    assert KnowledgeBase.load(path) == kb
    assert KnowledgeBase.load_or_empty(tmp_path / "missing.json") == KnowledgeBase()
    path.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="knowledge.json"):
        KnowledgeBase.load(path)


def test_score_ranks_by_measured_success_with_prior_shrinkage() -> None:
    kb = KnowledgeBase()
    for _ in range(20):
        kb.record(["uv_over"], "dust_law:smc", 0.5, True, True)
        kb.record(["uv_over"], "widen:dust_attenuation.av:up", -0.1, False, False)
    assert kb.score(["uv_over"], "dust_law:smc", prior=0.3) > kb.score(["uv_over"], "widen:dust_attenuation.av:up", prior=0.9)
    # unmeasured: the prior decides
    assert kb.score(["v_shape"], "enable:agn", prior=0.8) == pytest.approx(0.8)


def test_digest_is_deterministic_and_short() -> None:
    a = KnowledgeBase.merge(_delta(1), _delta(2))
    b = KnowledgeBase.merge(_delta(2), _delta(1))
    assert a.digest() == b.digest()
    assert len(a.digest().splitlines()) <= 12
    assert KnowledgeBase().digest() == "(none measured yet)"
