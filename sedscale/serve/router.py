"""Spread a node's LLM requests over its vLLM instances: least outstanding requests, with retry.

* **Choice**: the instance with the fewest requests in flight from this router (ties rotate), so
  a slow instance gets fewer new requests instead of a growing queue.
* **Down instances** are skipped: a connection refused / reset marks an instance down, and a probe
  task polls its ``/health`` until it answers again (the supervisor restarts it meanwhile).
* **Retry elsewhere**: a request that dies with its instance (connection dropped before a full
  reply) or gets a 5xx is re-sent to another instance, up to ``max_attempts``. Chat requests are
  idempotent for our purposes (a retried request is just re-generated). A read *timeout* is not
  retried: the instance is alive and busy, and re-sending would double its load.
* Bodies are read whole before returning (no streaming), which is what makes a mid-reply crash
  retryable; agents do not stream.

Agents can use the OpenAI SDK unchanged: :meth:`Router.openai_client` returns an
``openai.AsyncOpenAI`` whose HTTP transport is this router. A request may carry an
``X-Sedscale-Source`` header naming what it is for; the accountant attributes its tokens to it.

One router per event loop (``httpx.AsyncClient`` is bound to the loop that first uses it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Hashable, Mapping, Sequence

import httpx

from sedscale.serve.accounting import Accountant
from sedscale.serve.errors import NoHealthyInstanceError
from sedscale.serve.health import is_healthy_async

if TYPE_CHECKING:
    import openai

SOURCE_HEADER = "x-sedscale-source"

#: Failures that mean "this instance is gone": retry the request elsewhere and mark it down.
_CONNECTION_LOST = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.CloseError,
)
_RETRY_STATUS = frozenset({500, 502, 503, 504})
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "content-encoding"})


@dataclass
class Endpoint:
    """One instance as the router sees it."""

    index: int
    base_url: str  # http://host:port (the OpenAI API is under /v1)
    up: bool = True
    outstanding: int = 0
    served: int = 0
    failures: int = 0
    retried_away: int = 0


class Router:
    """Async least-outstanding-requests router over ``base_urls``."""

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        api_key: str | None = None,
        model: str | None = None,
        accountant: Accountant | None = None,
        request_timeout_s: float = 600.0,
        wait_for_instance_s: float = 900.0,
        probe_interval_s: float = 1.0,
        max_attempts: int = 6,
        max_connections: int = 4096,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_urls:
            raise ValueError("a router needs at least one instance URL")
        self.endpoints = [Endpoint(i, url.rstrip("/")) for i, url in enumerate(base_urls)]
        self.api_key = api_key
        self.model = model
        self.accountant = accountant
        self.wait_for_instance_s = wait_for_instance_s
        self.probe_interval_s = probe_interval_s
        self.max_attempts = max_attempts
        self.retries = 0
        self._rotation = 0
        self._prober: asyncio.Task[None] | None = None
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(request_timeout_s, connect=10.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=512),
            transport=transport,  # tests inject httpx.MockTransport; None = real connections
        )

    # -- choosing an instance ---------------------------------------------------------------------

    async def _pick(self, avoid: set[int]) -> Endpoint:
        deadline = time.monotonic() + self.wait_for_instance_s
        while True:
            up = [e for e in self.endpoints if e.up]
            candidates = [e for e in up if e.index not in avoid] or up
            if candidates:
                self._rotation = (self._rotation + 1) % len(self.endpoints)
                n = len(self.endpoints)
                return min(candidates, key=lambda e: (e.outstanding, (e.index - self._rotation) % n))
            self._ensure_prober()
            if time.monotonic() >= deadline:
                raise NoHealthyInstanceError(
                    f"no LLM instance answered within {self.wait_for_instance_s:.0f} s: "
                    + ", ".join(e.base_url for e in self.endpoints)
                )
            await asyncio.sleep(min(0.2, self.probe_interval_s))

    def _mark_down(self, endpoint: Endpoint) -> None:
        endpoint.failures += 1
        endpoint.up = False
        self._ensure_prober()

    def _ensure_prober(self) -> None:
        if self._prober is None or self._prober.done():
            self._prober = asyncio.get_running_loop().create_task(self._probe_down_endpoints())

    async def _probe_down_endpoints(self) -> None:
        while any(not e.up for e in self.endpoints):
            for endpoint in self.endpoints:
                if not endpoint.up and await is_healthy_async(self._client, endpoint.base_url):
                    endpoint.up = True
            await asyncio.sleep(self.probe_interval_s)

    # -- sending ----------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        source: Hashable | None = None,
    ) -> httpx.Response:
        """Send ``method path`` (e.g. ``POST /v1/chat/completions``) to the best instance.

        Returns the first response that is not a retryable failure (the body already read); raises
        :class:`NoHealthyInstanceError` when attempts or the wait for an instance run out.
        """
        send_headers = {k: v for k, v in (headers or {}).items() if k.lower() not in _HOP_HEADERS}
        if self.api_key and not any(k.lower() == "authorization" for k in send_headers):
            send_headers["Authorization"] = f"Bearer {self.api_key}"
        avoid: set[int] = set()
        last_error: str = ""
        for attempt in range(1, self.max_attempts + 1):
            endpoint = await self._pick(avoid)
            endpoint.outstanding += 1
            if self.accountant is not None:
                self.accountant.request_started(endpoint.index)
            usage: Mapping[str, object] | None = None
            try:
                response = await self._client.request(
                    method, endpoint.base_url + path, json=json, content=content, headers=send_headers
                )
            except _CONNECTION_LOST as exc:
                self._mark_down(endpoint)
                last_error = f"{endpoint.base_url}: {type(exc).__name__}: {exc}"
            else:
                if response.status_code in _RETRY_STATUS and attempt < self.max_attempts:
                    endpoint.failures += 1
                    last_error = f"{endpoint.base_url}: HTTP {response.status_code}"
                else:
                    endpoint.served += 1
                    usage = _usage_of(response)
                    return response
            finally:
                endpoint.outstanding -= 1
                if self.accountant is not None:
                    self.accountant.request_finished(endpoint.index, usage, source)
            endpoint.retried_away += 1
            self.retries += 1
            avoid.add(endpoint.index)
        raise NoHealthyInstanceError(f"request {method} {path} failed {self.max_attempts} times; last: {last_error}")

    async def chat_completion(self, body: Mapping[str, Any], *, source: Hashable | None = None) -> dict[str, Any]:
        """POST ``/v1/chat/completions``; the parsed reply (``model`` defaults to the served name)."""
        payload = dict(body)
        if "model" not in payload and self.model:
            payload["model"] = self.model
        response = await self.request("POST", "/v1/chat/completions", json=payload, source=source)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    # -- OpenAI SDK -------------------------------------------------------------------------------

    def transport(self, *, owns_router: bool = False) -> "RouterTransport":
        """An httpx transport that sends every request through this router (closing it closes the
        router too when ``owns_router``)."""
        return RouterTransport(self, owns_router=owns_router)

    def openai_client(self, *, owns_router: bool = False, **kwargs: Any) -> "openai.AsyncOpenAI":
        """An ``openai.AsyncOpenAI`` routed over the node's instances (retries left to the router).

        With ``owns_router`` closing the client closes this router as well: for a router made
        only to serve that one client.
        """
        import openai

        http_client = httpx.AsyncClient(transport=self.transport(owns_router=owns_router), timeout=self._client.timeout)
        kwargs.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(
            base_url="http://sedscale-router/v1", api_key=self.api_key or "none",
            # openai types its client against its vendored ``httpx2``; an ``httpx.AsyncClient`` has
            # the same interface and openai only calls it (no isinstance check), so this is sound
            http_client=http_client,  # type: ignore[arg-type]
            **kwargs,
        )

    # -- state ------------------------------------------------------------------------------------

    def stats(self) -> list[dict[str, Any]]:
        """Per instance: url, up, outstanding, served, failures, retried_away."""
        return [vars(e).copy() for e in self.endpoints]

    async def aclose(self) -> None:
        """Close connections and stop the probe task."""
        if self._prober is not None:
            self._prober.cancel()
        await self._client.aclose()

    async def __aenter__(self) -> "Router":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _usage_of(response: httpx.Response) -> Mapping[str, object] | None:
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    usage = body.get("usage") if isinstance(body, dict) else None
    return usage if isinstance(usage, dict) else None


class RouterTransport(httpx.AsyncBaseTransport):
    """Lets any httpx-based client (the OpenAI SDK) talk to the router as if it were one server.

    The request's path (``/v1/...``) is kept and its host replaced by the chosen instance; the
    ``X-Sedscale-Source`` header, if present, becomes the accounting label and is not forwarded.
    """

    def __init__(self, router: Router, *, owns_router: bool = False) -> None:
        self.router = router
        self.owns_router = owns_router

    async def aclose(self) -> None:
        """Called when the httpx client closes: the router goes with it when the client owns it."""
        if self.owns_router:
            await self.router.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        source = headers.pop(SOURCE_HEADER, None)
        for key in [k for k in headers if k.lower() == SOURCE_HEADER]:
            source = headers.pop(key)
        path = request.url.raw_path.decode("ascii")
        response = await self.router.request(request.method, path, content=body, headers=headers, source=source)
        out_headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS]
        return httpx.Response(response.status_code, headers=out_headers, content=response.content, request=request)
