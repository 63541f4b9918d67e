"""The agent-quality benchmark's figures: one strategy's per-source outputs → the issue's 8 numbers.

Kept apart from the strategies so the arithmetic can be checked by hand (tests/report/
test_agent_quality_metrics.py). Errors are |estimate − truth|; medians run over every source of
the strategy's set, accepted or not; a source without an estimate (its fit failed: NaN) is left
out of that median. A figure whose truth column is absent is None (JSON null).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

#: The keys of one strategy's entry in OUT.json, in order (issue 17's contract).
METRIC_KEYS = ("models_per_source", "logmstar_abs_err_median", "logsfr_abs_err_median", "av_abs_err_median",
               "accepted_fraction", "agent_steps_per_source", "tokens_per_source", "seconds_per_source")
#: estimate name → truth column.
TRUTH_COLUMNS = {"logmstar": "truth_logmstar", "logsfr": "truth_logsfr", "av": "truth_av"}


@dataclass
class StrategyRun:
    """What one strategy produced for its sources (arrays over the same rows, in order)."""

    source_id: np.ndarray
    estimates: dict[str, np.ndarray]  # logmstar, logsfr, av (NaN: not estimated)
    accepted: np.ndarray
    models: np.ndarray  # (model, redshift node) χ² evaluations per source
    agent_steps: np.ndarray
    tokens: np.ndarray
    seconds: float  # wall time of the strategy over these sources
    note: str = ""  # e.g. which half of the catalog the figures are over

    def subset(self, source_id: np.ndarray) -> StrategyRun:
        """The run's rows of ``source_id`` (seconds scaled to their share of the sources)."""
        keep = np.isin(self.source_id, source_id)
        return StrategyRun(self.source_id[keep], {k: v[keep] for k, v in self.estimates.items()},
                           self.accepted[keep], self.models[keep], self.agent_steps[keep], self.tokens[keep],
                           self.seconds * float(keep.sum()) / max(len(self.source_id), 1), self.note)


@dataclass(frozen=True)
class Truth:
    """Truth columns (None where the catalog has none) and the class of each source."""

    source_id: np.ndarray
    values: dict[str, Optional[np.ndarray]]  # estimate name → truth (or None)
    truth_class: Optional[np.ndarray] = None

    def take(self, source_id: np.ndarray) -> Truth:
        """The rows of ``source_id``, in that order."""
        order = {int(s): i for i, s in enumerate(self.source_id)}
        idx = np.array([order[int(s)] for s in source_id], dtype=np.int64)
        return Truth(np.asarray(source_id), {k: None if v is None else v[idx] for k, v in self.values.items()},
                     None if self.truth_class is None else self.truth_class[idx])


def _median(values: np.ndarray) -> Optional[float]:
    """Median of the finite values (a failed fit has no estimate); None if there are none."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def abs_errors(run: StrategyRun, truth: Truth, name: str) -> Optional[np.ndarray]:
    """|estimate − truth| per source of ``run`` (None without that truth column)."""
    t = truth.take(run.source_id).values.get(name)
    if t is None:
        return None
    return np.asarray(np.abs(np.asarray(run.estimates[name], float) - np.asarray(t, float)), float)


def strategy_metrics(run: StrategyRun, truth: Truth) -> dict[str, Optional[float]]:
    """The 8 figures of one strategy (:data:`METRIC_KEYS`), means and medians per source."""
    n = max(len(run.source_id), 1)
    out: dict[str, Optional[float]] = {"models_per_source": float(np.sum(run.models)) / n}
    for name in TRUTH_COLUMNS:
        err = abs_errors(run, truth, name)
        out[f"{name}_abs_err_median"] = None if err is None else _median(err)
    out["accepted_fraction"] = float(np.sum(run.accepted)) / n
    out["agent_steps_per_source"] = float(np.sum(run.agent_steps)) / n
    out["tokens_per_source"] = float(np.sum(run.tokens)) / n
    out["seconds_per_source"] = run.seconds / n
    return {k: out[k] for k in METRIC_KEYS}


def class_medians(run: StrategyRun, truth: Truth) -> dict[str, Optional[float]]:
    """truth_class → median |Δ log M*| of the class's sources in ``run`` (empty without classes)."""
    sub = truth.take(run.source_id)
    err = abs_errors(run, truth, "logmstar")
    if sub.truth_class is None or err is None:
        return {}
    classes = np.asarray(sub.truth_class, dtype=object)
    return {str(c): _median(err[classes == c]) for c in sorted({str(c) for c in classes})}


def dusty_high_av_median(run: StrategyRun, truth: Truth, av_min: float = 3.0) -> Optional[float]:
    """Median |ΔA_V| of the dusty sources (a class whose name contains "dusty") with true A_V > ``av_min``."""
    sub = truth.take(run.source_id)
    err = abs_errors(run, truth, "av")
    true_av = sub.values.get("av")
    if sub.truth_class is None or err is None or true_av is None:
        return None
    dusty = np.array(["dusty" in str(c) for c in sub.truth_class], dtype=bool)
    return _median(err[dusty & (np.asarray(true_av, float) > av_min)])


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    """``numerator ÷ denominator``, None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator
