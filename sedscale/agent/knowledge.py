"""The campaign's knowledge base: which action works for which residual pattern, measured.

Every agent step yields a record (the state's patterns → the action's key → the relative χ²_red
gain, improved?, accepted?). Records aggregate into one :class:`RuleStats` per
(pattern, action key) with integer counts only — gains are summed in thousandths — so merging is
exact integer addition: commutative and associative, hence the same whatever order partitions
finish or nodes merge in. A step whose state shows several patterns counts under each.

Uses: :meth:`KnowledgeBase.score` ranks the RulesPolicy's candidates; :meth:`KnowledgeBase.digest`
is the short text in the LLM prompt prefix. The prefix changes only when the campaign moves to a
new knowledge epoch (merged deltas), so the server's prefix cache holds within an epoch.

Persisted as indented, sorted JSON (:meth:`save` / :meth:`load`) that a person can read and diff.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from sedscale.fsutil import atomic_write

FORMAT = "sedscale-knowledge"
VERSION = 1


@dataclass(frozen=True)
class RuleStats:
    """Aggregated outcomes of one action under one pattern (integers only)."""

    n: int = 0
    improved: int = 0
    accepted: int = 0
    gain_milli: int = 0  # Σ round(1000 × relative χ²_red gain), gains clipped to [-1, 1]

    def __add__(self, other: RuleStats) -> RuleStats:
        return RuleStats(self.n + other.n, self.improved + other.improved,
                         self.accepted + other.accepted, self.gain_milli + other.gain_milli)

    @property
    def success(self) -> float:
        """Fraction of tries that were accepted (1) or improved (½)."""
        if self.n == 0:
            return 0.0
        return (self.accepted + 0.5 * max(self.improved - self.accepted, 0)) / self.n


class KnowledgeBase:
    """Mapping (pattern, action key) → :class:`RuleStats`, plus the epoch it belongs to."""

    def __init__(self, rules: dict[tuple[str, str], RuleStats] | None = None, epoch: int = 0) -> None:
        self.rules: dict[tuple[str, str], RuleStats] = dict(rules or {})
        self.epoch = int(epoch)

    def copy(self) -> KnowledgeBase:
        """An independent copy (the stats are immutable, so copying the mapping suffices): what a
        policy ranks by, so that recording into the original later cannot change its choices."""
        return KnowledgeBase(self.rules, self.epoch)

    # -- recording ------------------------------------------------------------------------------

    def record(self, patterns: Iterable[str], action_key: str, gain: float, improved: bool, accepted: bool) -> None:
        """Add one step's outcome under each of its patterns."""
        g = 0.0 if not math.isfinite(gain) else max(-1.0, min(1.0, gain))
        one = RuleStats(1, int(bool(improved)), int(bool(accepted)), int(round(1000.0 * g)))
        for p in sorted(set(patterns)):
            key = (p, action_key)
            self.rules[key] = self.rules.get(key, RuleStats()) + one

    # -- combining ------------------------------------------------------------------------------

    @classmethod
    def merge(cls, *bases: KnowledgeBase, epoch: int | None = None) -> KnowledgeBase:
        """The sum of several bases (order-independent); epoch = ``epoch`` or the largest given."""
        out: dict[tuple[str, str], RuleStats] = {}
        for kb in bases:
            for key, stats in kb.rules.items():
                out[key] = out.get(key, RuleStats()) + stats
        ep = epoch if epoch is not None else max((kb.epoch for kb in bases), default=0)
        return cls(out, ep)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KnowledgeBase) and self.to_dict() == other.to_dict()

    def __len__(self) -> int:
        return len(self.rules)

    # -- using ----------------------------------------------------------------------------------

    def stats(self, pattern: str, action_key: str) -> RuleStats:
        return self.rules.get((pattern, action_key), RuleStats())

    def score(self, patterns: Iterable[str], action_key: str, prior: float, pseudo: float = 2.0) -> float:
        """Success rate of ``action_key`` for these patterns, shrunk toward ``prior`` with
        ``pseudo`` pseudo-counts (so a rule tried twice does not outrank expert order)."""
        total = RuleStats()
        for p in set(patterns):
            total = total + self.stats(p, action_key)
        return (prior * pseudo + total.success * total.n) / (pseudo + total.n)

    def digest(self, max_lines: int = 6, min_n: int = 3) -> str:
        """Short text for the prompt: the best-measured actions per pattern, deterministic order."""
        rows = [(p, a, s) for (p, a), s in self.rules.items() if s.n >= min_n]
        rows.sort(key=lambda t: (-t[2].success, -t[2].n, t[0], t[1]))
        lines = [f"{p} {a} {s.accepted}/{s.n}" for p, a, s in rows[:max_lines]]
        return "\n".join(lines) if lines else "(none measured yet)"

    # -- persistence ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        rules = [
            {"pattern": p, "action": a, "n": s.n, "improved": s.improved, "accepted": s.accepted,
             "gain_milli": s.gain_milli}
            for (p, a), s in sorted(self.rules.items())
        ]
        return {"format": FORMAT, "version": VERSION, "epoch": self.epoch, "rules": rules}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "knowledge base") -> KnowledgeBase:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{source}: not a {FORMAT} file")
        if int(data.get("version", 0)) > VERSION:
            raise ValueError(f"{source}: version {data.get('version')} is newer than this sedscale ({VERSION})")
        rules: dict[tuple[str, str], RuleStats] = {}
        for i, row in enumerate(data.get("rules", [])):
            try:
                key = (str(row["pattern"]), str(row["action"]))
                stats = RuleStats(int(row["n"]), int(row["improved"]), int(row["accepted"]), int(row["gain_milli"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{source}: rules[{i}] is malformed ({exc})") from None
            rules[key] = rules.get(key, RuleStats()) + stats
        return cls(rules, int(data.get("epoch", 0)))

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    def save(self, path: str | Path) -> None:
        """Write atomically and durably (:func:`sedscale.fsutil.atomic_write`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, self.dumps().encode())

    @classmethod
    def load(cls, path: str | Path) -> KnowledgeBase:
        path = Path(path)
        return cls.from_dict(json.loads(path.read_text()), source=str(path))

    @classmethod
    def load_or_empty(cls, path: str | Path | None) -> KnowledgeBase:
        if path is None or not Path(path).exists():
            return cls()
        return cls.load(path)
