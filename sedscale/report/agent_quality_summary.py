"""The agent-quality benchmark's outputs as data: OUT.json's object and the extra figures.

OUT.json is exactly ``{"n_sources": N, "strategies": {name: {8 keys}}}`` (issue 17); everything
else — ``rules ÷ exhaustive`` ratios, per-class medians, the dusty high-A_V figure, which sources
each strategy's figures are over, the issue's targets — goes to the terminal and the optional
details file.
"""

from __future__ import annotations

from typing import Any, Optional

from sedscale.report.agent_quality_metrics import (
    StrategyRun,
    Truth,
    class_medians,
    dusty_high_av_median,
    ratio,
    strategy_metrics,
)

#: ``rules ÷ exhaustive`` ratios printed: label → metric key.
RATIO_KEYS = {"|Δ log M*|": "logmstar_abs_err_median", "|Δ log SFR|": "logsfr_abs_err_median",
              "|ΔA_V|": "av_abs_err_median", "model evaluations": "models_per_source"}
#: issue 17's targets on hard mocks.
TARGET_MASS_RATIO = 1.2  # rules' median |Δ log M*| ≤ 1.2 × exhaustive's
TARGET_MODELS_RATIO = 0.05  # with ≤ 5% of its model evaluations per source
TARGET_CLASS_SLACK = 0.01  # no class more than 0.01 dex worse than triage
TARGET_DUSTY_AV = 0.5  # dusty, true A_V > 3: median |ΔA_V| ≤ 0.5 mag


def bench_object(runs: dict[str, StrategyRun], truth: Truth) -> dict[str, Any]:
    """OUT.json: the number of sources and each strategy's 8 figures."""
    return {"n_sources": int(len(truth.source_id)),
            "strategies": {name: strategy_metrics(run, truth) for name, run in runs.items()}}


def _met(value: Optional[float], limit: float) -> Optional[bool]:
    """Target met (every target here is an upper limit); None when not measurable."""
    return None if value is None else value <= limit


def targets(obj: dict[str, Any], details: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Issue 17's targets for ``rules``: value, limit and whether it is met (None: not measurable)."""
    ratios = details["rules_over_exhaustive"]
    per_class = details["class_logmstar_median"]
    worst: Optional[float] = None
    for cls, by_strategy in per_class.items():
        gap = None if by_strategy.get("rules") is None or by_strategy.get("triage") is None else \
            by_strategy["rules"] - by_strategy["triage"]
        if gap is not None and (worst is None or gap > worst):
            worst = gap
    dusty = details["dusty_av_gt3_av_median"].get("rules")
    return {
        "rules ÷ exhaustive |Δ log M*|": {"value": ratios["|Δ log M*|"], "limit": TARGET_MASS_RATIO,
                                                 "met": _met(ratios["|Δ log M*|"], TARGET_MASS_RATIO)},
        "rules ÷ exhaustive model evaluations": {"value": ratios["model evaluations"], "limit": TARGET_MODELS_RATIO,
                                                 "met": _met(ratios["model evaluations"], TARGET_MODELS_RATIO)},
        "worst class: rules − triage median |Δ log M*| (dex)": {"value": worst, "limit": TARGET_CLASS_SLACK,
                                                               "met": _met(worst, TARGET_CLASS_SLACK)},
        "dusty, true A_V > 3: rules median |ΔA_V| (mag)": {"value": dusty, "limit": TARGET_DUSTY_AV,
                                                         "met": _met(dusty, TARGET_DUSTY_AV)},
    }


def details_object(runs: dict[str, StrategyRun], truth: Truth, obj: dict[str, Any]) -> dict[str, Any]:
    """The figures beside OUT.json: ratios, per-class medians, dusty high-A_V, notes, targets."""
    strategies = obj["strategies"]
    rules, exhaustive = strategies.get("rules", {}), strategies.get("exhaustive", {})
    per_class: dict[str, dict[str, Optional[float]]] = {}
    for name, run in runs.items():
        for cls, value in class_medians(run, truth).items():
            per_class.setdefault(cls, {})[name] = value
    details: dict[str, Any] = {
        "rules_over_exhaustive": {label: ratio(rules.get(key), exhaustive.get(key))
                                  for label, key in RATIO_KEYS.items()},
        "class_logmstar_median": per_class,
        "dusty_av_gt3_av_median": {name: dusty_high_av_median(run, truth) for name, run in runs.items()},
        "sources_per_strategy": {name: int(len(run.source_id)) for name, run in runs.items()},
        "notes": {name: run.note for name, run in runs.items() if run.note},
    }
    for name in ("rules_kb", "llm_kb"):  # the same policy without knowledge, on the same sources
        base = runs.get(name.removesuffix("_kb"))
        if name in runs and base is not None and len(runs[name].source_id) < len(base.source_id):
            details[f"{base_name(name)}_on_{name}_sources"] = strategy_metrics(
                base.subset(runs[name].source_id), truth)
    details["targets"] = targets(obj, details)
    return details


def base_name(kb_strategy: str) -> str:
    """``rules_kb`` → ``rules``."""
    return kb_strategy.removesuffix("_kb")
