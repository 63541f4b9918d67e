"""The agent's trail: one record per agent step (a configuration fitted for a source), and its
fixed Arrow schema.

Why: a reader of a campaign must be able to audit every decision — what was tried, who decided
it (rules or the LLM, after fallbacks), why, what it did to χ²_red and what it cost — without
re-running anything. The loop (:mod:`sedscale.agent.loop`) books one :class:`StepRecord` per
fit it runs for a source (so a source has exactly ``agent_steps`` rows); a terminal decision
(``accept``/``give_up``/nothing left) fits nothing and has no row (its tokens stay in the
source's totals). The campaign writes :func:`trail_table` per partition
(``trails/partition-<id>.parquet``); nothing in it is timing, so for the rules policy it is
identical run to run.

Provenance rule (the ``policy`` results column, :func:`kept_policy`): a source's fit is ``none``
(triage) when no step improved on it; else the kept configuration is the chain of improving
steps up to the kept one, and it is ``llm`` when any of those edits was decided by the LLM,
``rules`` when all were (an LLM source whose every decision fell back to rules is ``rules``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Sequence

import pyarrow as pa

#: Columns of the trail (one row per agent step), in this order.
TRAIL_SCHEMA = pa.schema([
    pa.field("source_id", pa.int64(), nullable=False),
    pa.field("step", pa.int32(), nullable=False),  # 1, 2, ... : the decision step that led to this fit
    pa.field("by", pa.string()),  # rules | llm: who chose the action in the end (after fallbacks)
    pa.field("action", pa.string()),  # the action as canonical JSON
    pa.field("reason", pa.string()),  # the rule / pattern; "fallback: <why>" when the LLM's answer was not used
    pa.field("chi2_before", pa.float64()),  # χ²_red of the best fit before this step
    pa.field("chi2_after", pa.float64()),  # χ²_red of this step's fit (NaN: the fit failed)
    pa.field("accepted_after", pa.bool_()),  # this step's fit passes the acceptance test
    pa.field("kept", pa.bool_()),  # this step's fit is the source's final one
    pa.field("config_id", pa.string()),  # hash of the configuration fitted (configs/<id>.json once kept)
    pa.field("tokens_prompt", pa.int64()),  # this step's decision: prompt tokens (0 for rules)
    pa.field("tokens_completion", pa.int64()),
])


def action_json(action: object) -> str:
    """An action (a pydantic model) as canonical JSON: sorted keys, no spaces."""
    dump = getattr(action, "model_dump", None)
    data = dump(mode="json") if callable(dump) else str(action)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def step_reason(rule: str, fallback: str | None) -> str:
    """The policy's reason and, when the LLM's answer was not used, why."""
    parts = [rule] if rule else []
    if fallback:
        parts.append(f"fallback: {fallback}")
    return "; ".join(parts)


@dataclass
class StepRecord:
    """One agent step of one source: the decision, the fit it led to, what it cost."""

    source_id: int
    step: int
    by: str
    action: str
    reason: str
    chi2_before: float
    tokens_prompt: int
    tokens_completion: int
    chi2_after: float = float("nan")
    accepted_after: bool = False
    improved: bool = False  # became the best fit when it was made
    kept: bool = False  # set once the source stops: the last improving step
    config_id: str = ""


def mark_kept(records: Sequence[StepRecord]) -> None:
    """Mark the last improving step as the kept one (the best fit only changes on improvement)."""
    for r in records:
        r.kept = False
    improving = [r for r in records if r.improved]
    if improving:
        improving[-1].kept = True


def kept_policy(records: Sequence[StepRecord]) -> str:
    """``none`` | ``rules`` | ``llm`` for one source's steps (the rule in the module docstring)."""
    chain: list[StepRecord] = []
    for r in records:
        if r.improved:
            chain.append(r)
        if r.kept:
            break
    if not any(r.kept for r in records):
        return "none"
    return "llm" if any(r.by == "llm" for r in chain) else "rules"


def trail_table(records: Iterable[StepRecord]) -> pa.Table:
    """The records as a :data:`TRAIL_SCHEMA` table, sorted by (source_id, step)."""
    rows = sorted(records, key=lambda r: (r.source_id, r.step))
    columns = {name: [getattr(r, name) for r in rows] for name in TRAIL_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=TRAIL_SCHEMA)


def empty_trail() -> pa.Table:
    """A trail with no rows (a table whose sources all stayed with triage)."""
    return TRAIL_SCHEMA.empty_table()


def sort_trail(table: pa.Table) -> pa.Table:
    """``table`` sorted by (source_id, step): the order every written trail has."""
    return table.sort_by([("source_id", "ascending"), ("step", "ascending")])
