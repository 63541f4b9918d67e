"""Per-source accounting of the agent: steps, LLM calls, tokens, fallbacks, wall time.

These feed the results contract (DESIGN.md §4: ``agent_steps``, ``tokens_prompt``,
``tokens_completion``) and the campaign report. Wall seconds of a step are the source's own
policy time plus its share of its configuration group's fit time (group time ÷ group size), so
they add up to the partition's agent time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np


@dataclass
class SourceAccounting:
    """What one source cost."""

    agent_steps: int = 0
    llm_calls: int = 0
    tokens_prompt: int = 0
    tokens_cached: int = 0
    tokens_completion: int = 0
    fallbacks: list[str] = field(default_factory=list)  # one reason per fallback, in step order
    wall_seconds: float = 0.0
    stop_reason: str = ""

    @property
    def tokens_total(self) -> int:
        return self.tokens_prompt + self.tokens_completion


#: Column names of :func:`accounting_columns` (results table / Zarr store).
COLUMNS = ("agent_steps", "llm_calls", "tokens_prompt", "tokens_cached", "tokens_completion",
           "fallbacks", "wall_seconds")


def accounting_columns(rows: Iterable[SourceAccounting]) -> dict[str, np.ndarray]:
    """Column arrays (``fallbacks`` = number of fallbacks) for a results table."""
    rows = list(rows)
    out = {
        "agent_steps": np.array([r.agent_steps for r in rows], dtype=np.int32),
        "llm_calls": np.array([r.llm_calls for r in rows], dtype=np.int32),
        "tokens_prompt": np.array([r.tokens_prompt for r in rows], dtype=np.int64),
        "tokens_cached": np.array([r.tokens_cached for r in rows], dtype=np.int64),
        "tokens_completion": np.array([r.tokens_completion for r in rows], dtype=np.int64),
        "fallbacks": np.array([len(r.fallbacks) for r in rows], dtype=np.int32),
        "wall_seconds": np.array([r.wall_seconds for r in rows], dtype=np.float64),
    }
    return out


#: Stop reasons of sources that never entered the agent loop.
NOT_ENTERED = ("triage_accepted", "not_eligible", "agent_quota")


def summarize(rows: Iterable[SourceAccounting]) -> dict[str, object]:
    """Totals over the sources that entered the agent loop."""
    rows = [r for r in rows if r.agent_steps > 0 or (r.stop_reason and not r.stop_reason.startswith(NOT_ENTERED))]
    n = len(rows)
    reasons: Counter[str] = Counter()
    stops: Counter[str] = Counter()
    for r in rows:
        reasons.update(f.split(":")[0] for f in r.fallbacks)
        stops[r.stop_reason] += 1
    tokens = sum(r.tokens_total for r in rows)
    prompt = sum(r.tokens_prompt for r in rows)
    cached = sum(r.tokens_cached for r in rows)
    return {
        "agent_sources": n,
        "agent_steps": sum(r.agent_steps for r in rows),
        "llm_calls": sum(r.llm_calls for r in rows),
        "tokens_prompt": prompt,
        "tokens_cached": cached,
        "tokens_completion": sum(r.tokens_completion for r in rows),
        "tokens_per_source": tokens / n if n else 0.0,
        "cached_fraction": cached / prompt if prompt else 0.0,
        "fallbacks": dict(sorted(reasons.items())),
        "stop_reasons": dict(sorted(stops.items())),
        "wall_seconds": sum(r.wall_seconds for r in rows),
    }
