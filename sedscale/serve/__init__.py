"""The node's LLM service: start, health-check, restart and route over vLLM instances, and
account for the GPU-seconds they hold and use. Knows nothing of SED physics.

Entry points: :class:`LLMSettings` (a site's ``llm:`` section), :class:`LLMService` (owns a node's
instances), :class:`Router` (async least-outstanding-requests client; ``router.openai_client()``
is an ``openai.AsyncOpenAI`` over all instances), :func:`connect` (a router from another process).
Heavy submodules import lazily so ``import sedscale.serve`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sedscale.serve.settings import LLMSettings

if TYPE_CHECKING:
    from sedscale.serve.accounting import Accountant, AccountingSnapshot
    from sedscale.serve.router import Router
    from sedscale.serve.service import LLMService, connect

__all__ = ["LLMSettings", "LLMService", "Router", "Accountant", "AccountingSnapshot", "connect"]

_LAZY = {
    "LLMService": "sedscale.serve.service",
    "connect": "sedscale.serve.service",
    "Router": "sedscale.serve.router",
    "Accountant": "sedscale.serve.accounting",
    "AccountingSnapshot": "sedscale.serve.accounting",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
