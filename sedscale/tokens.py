"""Token counts: the one type every layer uses for LLM tokens, and the one list of their columns.

Why here, in the base layer: the agent counts what each source's requests cost (from the OpenAI
``usage`` of each reply), the serving layer counts what each node's server reported (and
attributes GPU time by tokens), and the campaign and report layers sum both. The agent and the
serving layer must not import each other (docs/ARCHITECTURE.md), so the shared vocabulary lives
below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Results / store columns that hold a source's token and call counts, in contract order.
TOKEN_COLUMNS: tuple[str, ...] = ("llm_calls", "tokens_prompt", "tokens_cached", "tokens_completion")


@dataclass
class TokenCounts:
    """Tokens of one source, one request window or one node, as OpenAI ``usage`` reports them.

    ``requests`` counts the chat-completion calls that produced them.
    """

    prompt: int = 0
    completion: int = 0
    cached: int = 0
    requests: int = 0

    @property
    def total(self) -> int:
        """Prompt + completion: what a budget limits and what GPU time is attributed by."""
        return self.prompt + self.completion

    def add(self, other: TokenCounts) -> None:
        """Accumulate ``other`` into this count."""
        self.prompt += other.prompt
        self.completion += other.completion
        self.cached += other.cached
        self.requests += other.requests

    def minus(self, earlier: TokenCounts) -> TokenCounts:
        """The increase since ``earlier`` (both cumulative)."""
        return TokenCounts(
            self.prompt - earlier.prompt,
            self.completion - earlier.completion,
            self.cached - earlier.cached,
            self.requests - earlier.requests,
        )

    def add_usage(self, response: Any) -> None:
        """Count one chat-completion reply (its ``usage``; a reply without one counts as a call)."""
        self.requests += 1
        usage = getattr(response, "usage", None)
        if usage is None:
            return
        self.prompt += int(getattr(usage, "prompt_tokens", 0) or 0)
        self.completion += int(getattr(usage, "completion_tokens", 0) or 0)
        details = getattr(usage, "prompt_tokens_details", None)
        self.cached += int(getattr(details, "cached_tokens", 0) or 0) if details is not None else 0

    def as_columns(self) -> dict[str, int]:
        """The :data:`TOKEN_COLUMNS` values of this count."""
        return {"llm_calls": self.requests, "tokens_prompt": self.prompt,
                "tokens_cached": self.cached, "tokens_completion": self.completion}
