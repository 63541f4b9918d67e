"""The projection's arithmetic on a hand-checked example."""

from __future__ import annotations

import pytest

from sedscale.report.projection import MeasuredRates, SiteCapacity, project, reference_points


def test_hand_checked_example():
    # 100 sources/s per core, 56 cores -> 5,600 sources/s per node -> 1e9 / 5600 / 3600 = 49.603 node-h
    # 10% agent sources x 2,000 completion tokens = 2e11 tokens; at 3,125 tok/s per GCD:
    #   2e11 / 3125 / 3600 = 17,777.8 GPU-h; / 8 GCDs = 2,222.2 node-h (LLM-bound)
    rates = MeasuredRates(fit_sources_per_core_second=100.0, agent_fraction=0.1,
                          completion_tokens_per_agent_source=2000.0, prompt_tokens_per_agent_source=3000.0)
    site = SiteCapacity("frontier", cores_per_node=56, gpus_per_node=8, decode_tokens_per_second_per_gpu=3125.0)
    p = project(rates, site, sources=1e9, nodes=1000)
    assert p.fit_node_hours == pytest.approx(1e9 / 5600 / 3600)
    assert p.llm_gpu_hours == pytest.approx(2e11 / 3125 / 3600)
    assert p.llm_node_hours == pytest.approx(2e11 / 3125 / 3600 / 8)
    assert p.node_hours == pytest.approx(2222.222, rel=1e-6)
    assert p.gpu_hours_allocated == pytest.approx(17777.78, rel=1e-6)
    assert p.wall_days == pytest.approx(2222.222 / 1000 / 24, rel=1e-6)
    assert p.tokens_total == pytest.approx(1e8 * 5000)
    assert p.gpu_hours_per_source == pytest.approx(1.777778e-5, rel=1e-6)
    assert p.basis["decode_tokens_per_second_per_gpu"] == "assumption"


def test_cpu_only_site_has_no_gpu_hours():
    rates = MeasuredRates(50.0, 0.2, 1000.0, 1000.0)
    p = project(rates, SiteCapacity("local", 2, 0, 0.0), sources=1e6, nodes=1)
    assert p.llm_gpu_hours == 0 and p.gpu_hours_allocated == 0
    assert p.node_hours == pytest.approx(1e6 / 100 / 3600)


def test_reference_points_of_the_seed():
    ref = reference_points(1e9)
    assert ref["gpt4o_usd"] == pytest.approx(1e9)
    assert ref["gpt4o_tokens"] == pytest.approx(1e14)
    # 15 GPU-minutes per source: 1e9 x 15 / 60 / 24 = 1.04e7 GPU-days ("1e7 GPU-days")
    assert ref["llama70b_4xh100_gpu_days"] == pytest.approx(1.0417e7, rel=1e-3)
