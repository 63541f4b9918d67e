"""Per-source accounting of the agent: steps, LLM calls, tokens, fallbacks, wall time.

These feed the results contract (DESIGN.md §4: ``agent_steps``, ``tokens_prompt``,
``tokens_completion``) and the campaign report. Tokens are one :class:`~sedscale.tokens.TokenCounts`
(the base layer's type, shared with the serving layer and the report), whose column names are
:data:`~sedscale.tokens.TOKEN_COLUMNS`. Wall seconds of a step are the source's own policy time
plus its share of its configuration group's fit time (group time ÷ group size), so they add up to
the partition's agent time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from sedscale.tokens import TOKEN_COLUMNS, TokenCounts


@dataclass
class SourceAccounting:
    """What one source cost."""

    agent_steps: int = 0
    tokens: TokenCounts = field(default_factory=TokenCounts)
    fallbacks: list[str] = field(default_factory=list)  # one reason per fallback, in step order
    wall_seconds: float = 0.0
    stop_reason: str = ""

    @property
    def llm_calls(self) -> int:
        """Chat-completion requests made for this source."""
        return self.tokens.requests

    @property
    def tokens_prompt(self) -> int:
        return self.tokens.prompt

    @property
    def tokens_cached(self) -> int:
        return self.tokens.cached

    @property
    def tokens_completion(self) -> int:
        return self.tokens.completion

    @property
    def tokens_total(self) -> int:
        """Prompt + completion: what ``max_tokens_per_source`` limits."""
        return self.tokens.total


#: Column names of :func:`accounting_columns` (results table / Zarr store).
COLUMNS: tuple[str, ...] = ("agent_steps", *TOKEN_COLUMNS, "fallbacks", "wall_seconds")

#: dtypes of the :data:`~sedscale.tokens.TOKEN_COLUMNS` (call counts int32, token counts int64).
_TOKEN_DTYPES = {"llm_calls": np.int32}


def accounting_columns(rows: Iterable[SourceAccounting]) -> dict[str, np.ndarray]:
    """Column arrays (``fallbacks`` = number of fallbacks) for a results table, in :data:`COLUMNS` order."""
    rows = list(rows)
    out = {"agent_steps": np.array([r.agent_steps for r in rows], dtype=np.int32)}
    token_rows = [r.tokens.as_columns() for r in rows]
    for name in TOKEN_COLUMNS:
        out[name] = np.array([t[name] for t in token_rows], dtype=_TOKEN_DTYPES.get(name, np.int64))
    out["fallbacks"] = np.array([len(r.fallbacks) for r in rows], dtype=np.int32)
    out["wall_seconds"] = np.array([r.wall_seconds for r in rows], dtype=np.float64)
    return out


#: Stop reasons of sources that never entered the agent loop.
NOT_ENTERED = ("triage_accepted", "not_eligible", "agent_quota")


def summarize(rows: Iterable[SourceAccounting]) -> dict[str, object]:
    """Totals over the sources that entered the agent loop."""
    rows = [r for r in rows if r.agent_steps > 0 or (r.stop_reason and not r.stop_reason.startswith(NOT_ENTERED))]
    n = len(rows)
    reasons: Counter[str] = Counter()
    stops: Counter[str] = Counter()
    tokens = TokenCounts()
    for r in rows:
        reasons.update(f.split(":")[0] for f in r.fallbacks)
        stops[r.stop_reason] += 1
        tokens.add(r.tokens)
    return {
        "agent_sources": n,
        "agent_steps": sum(r.agent_steps for r in rows),
        **tokens.as_columns(),
        "tokens_per_source": tokens.total / n if n else 0.0,
        "cached_fraction": tokens.cached / tokens.prompt if tokens.prompt else 0.0,
        "fallbacks": dict(sorted(reasons.items())),
        "stop_reasons": dict(sorted(stops.items())),
        "wall_seconds": sum(r.wall_seconds for r in rows),
    }
