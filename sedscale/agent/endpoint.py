"""Where the agent's LLM is: one type for the three ways a fit reaches a chat model.

A user names a server by URL (``--llm-url``, a workflow's ``llm_url``); a campaign task on a site
with an ``llm:`` section routes to the node's own LLM service; tests and benchmarks hand over a
ready client. Before this type existed those were four loose options (URL, model, client, client
factory) whose combinations every caller re-checked; now a fit carries one :class:`LLMEndpoint`
or none, and only :meth:`LLMEndpoint.policy` turns it into an :class:`~sedscale.agent.llm.LLMPolicy`.

It lives in the agent layer so that both the agent and the fitting code above it can use it; the
serving layer is not imported (the node service arrives as a client factory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal

from sedscale.agent.knowledge import KnowledgeBase
from sedscale.agent.llm import LLMOptions, LLMPolicy
from sedscale.sed.config import FitConfig

if TYPE_CHECKING:
    from openai import AsyncOpenAI

#: The environment variable an API key for a URL endpoint is read from (never a flag: keys in
#: command lines end up in shell histories and process lists).
API_KEY_ENV = "SEDSCALE_LLM_API_KEY"

EndpointKind = Literal["url", "node", "client"]


@dataclass(frozen=True)
class LLMEndpoint:
    """An OpenAI-compatible chat server the agent can reach, and the model to ask for.

    Build one with :meth:`at_url`, :meth:`node_service` or :meth:`of_client`; the constructor
    checks that exactly the fields of its ``kind`` are set. ``model`` None means the first model
    the server lists.
    """

    kind: EndpointKind
    model: str | None = None
    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    client: AsyncOpenAI | None = field(default=None, repr=False)
    client_factory: Callable[[], AsyncOpenAI] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind == "url" and (not self.url or self.client or self.client_factory):
            raise ValueError("a URL endpoint needs a url and no client")
        if self.kind == "node" and (self.client_factory is None or self.url or self.client):
            raise ValueError("a node-service endpoint needs a client factory only")
        if self.kind == "client" and ((self.client is None) == (self.client_factory is None) or self.url):
            raise ValueError("a client endpoint needs exactly one of client and client_factory")

    @classmethod
    def at_url(cls, url: str, model: str | None = None) -> LLMEndpoint:
        """A server at ``url`` (``http://host:port/v1``); the key comes from ``$SEDSCALE_LLM_API_KEY``."""
        return cls("url", model=model, url=url, api_key=os.environ.get(API_KEY_ENV))

    @classmethod
    def node_service(cls, client_factory: Callable[[], AsyncOpenAI], model: str) -> LLMEndpoint:
        """The node's LLM service: ``client_factory`` returns a client routed over its instances
        (called inside the event loop that uses it, since routers are bound to one loop)."""
        return cls("node", model=model, client_factory=client_factory)

    @classmethod
    def of_client(cls, client: AsyncOpenAI | None = None, *,
                  factory: Callable[[], AsyncOpenAI] | None = None, model: str | None = None) -> LLMEndpoint:
        """A ready client, or a factory of one (tests, benchmarks, a caller's own router)."""
        return cls("client", model=model, client=client, client_factory=factory)

    def policy(self, *, knowledge: KnowledgeBase, photoz: bool, base_config: FitConfig,
               options: LLMOptions | None = None) -> LLMPolicy:
        """The LLM policy that asks this endpoint (the only place an endpoint becomes a policy)."""
        return LLMPolicy(client=self.client, client_factory=self.client_factory, base_url=self.url,
                         api_key=self.api_key, model=self.model, options=options or LLMOptions(),
                         knowledge=knowledge, photoz=photoz, base_config=base_config)
