"""Router logic against in-process fake instances (httpx.MockTransport): no server needed."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from sedscale.serve.accounting import Accountant
from sedscale.serve.errors import NoHealthyInstanceError
from sedscale.serve.router import Router

URLS = ["http://a:1", "http://b:2"]


def _reply(host: str) -> httpx.Response:
    body = {"choices": [{"message": {"content": host}}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    return httpx.Response(200, json=body)


def test_least_outstanding_requests_spreads_concurrent_load() -> None:
    async def main() -> list[str]:
        release = asyncio.Event()

        async def handler(request: httpx.Request) -> httpx.Response:
            await release.wait()
            return _reply(request.url.host)

        router = Router(URLS, transport=httpx.MockTransport(handler))
        tasks = [asyncio.create_task(router.chat_completion({"messages": []})) for _ in range(10)]
        await asyncio.sleep(0.05)
        assert sorted(e.outstanding for e in router.endpoints) == [5, 5]
        release.set()
        replies = await asyncio.gather(*tasks)
        await router.aclose()
        return [r["choices"][0]["message"]["content"] for r in replies]

    hosts = asyncio.run(main())
    assert hosts.count("a") == 5 and hosts.count("b") == 5


def test_dead_instance_is_skipped_requests_retried_and_it_comes_back() -> None:
    state = {"a_dead": True, "a_calls": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a":
            if request.url.path == "/health":
                return httpx.Response(503 if state["a_dead"] else 200)
            state["a_calls"] += 1
            if state["a_dead"]:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return _reply(request.url.host)

    async def main() -> None:
        acct = Accountant(2, 1)
        router = Router(URLS, transport=httpx.MockTransport(handler), accountant=acct, probe_interval_s=0.05)
        replies = await asyncio.gather(*(router.chat_completion({}, source=i % 4) for i in range(40)))
        assert all(r["choices"][0]["message"]["content"] == "b" for r in replies)
        assert not router.endpoints[0].up and router.retries >= 1
        assert state["a_calls"] <= 2  # marked down at the first failure, then skipped
        state["a_dead"] = False
        for _ in range(100):
            await asyncio.sleep(0.02)
            if router.endpoints[0].up:
                break
        assert router.endpoints[0].up
        replies = await asyncio.gather(*(router.chat_completion({}) for _ in range(10)))
        assert {r["choices"][0]["message"]["content"] for r in replies} == {"a", "b"}
        snap = acct.snapshot()
        assert snap.tokens.requests == 50 and snap.tokens.prompt == 150  # failed attempts carry no usage
        assert sum(c.requests for c in snap.tokens_by_source.values()) == 40
        await router.aclose()

    asyncio.run(main())


def test_server_errors_are_retried_on_another_instance() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a":
            return httpx.Response(503, text="engine dead")
        return _reply("b")

    async def main() -> None:
        router = Router(URLS, transport=httpx.MockTransport(handler))
        for _ in range(6):
            assert (await router.chat_completion({}))["choices"][0]["message"]["content"] == "b"
        await router.aclose()

    asyncio.run(main())


def test_no_instance_up_fails_within_the_wait() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    async def main() -> None:
        router = Router(URLS, transport=httpx.MockTransport(handler), wait_for_instance_s=0.5, probe_interval_s=0.1)
        t0 = time.monotonic()
        with pytest.raises(NoHealthyInstanceError, match="no LLM instance answered within"):
            await router.chat_completion({})
        assert time.monotonic() - t0 < 3
        await router.aclose()

    asyncio.run(main())


def test_openai_client_goes_through_the_router_with_key_and_source() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        return httpx.Response(
            200,
            json={
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "{}"}}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15,
                          "prompt_tokens_details": {"cached_tokens": 8}},
            },
        )  # fmt: skip

    async def main() -> None:
        acct = Accountant(2, 1)
        router = Router(URLS, api_key="sekret", accountant=acct, transport=httpx.MockTransport(handler))
        client = router.openai_client()
        reply = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Sedscale-Source": "src-7"}
        )
        assert reply.usage is not None and reply.usage.completion_tokens == 4
        snap = acct.snapshot()
        assert snap.tokens_by_source["src-7"].cached == 8
        await client.close()
        await router.aclose()

    asyncio.run(main())
    assert seen[0].headers["authorization"] == "Bearer sekret"
    assert "x-sedscale-source" not in seen[0].headers
    assert seen[0].url.path == "/v1/chat/completions"


def test_closing_an_owning_openai_client_closes_its_router_and_only_then() -> None:
    """``NodeService.openai_client`` relies on this: the router made for one client goes with it."""

    async def handler(request: httpx.Request) -> httpx.Response:
        return _reply(request.url.host)

    async def main() -> tuple[bool, bool]:
        shared = Router(URLS, transport=httpx.MockTransport(handler))
        await shared.openai_client().close()
        owned = Router(URLS, transport=httpx.MockTransport(handler))
        await owned.openai_client(owns_router=True).close()
        closed = (shared._client.is_closed, owned._client.is_closed)
        await shared.aclose()
        return closed

    assert asyncio.run(main()) == (False, True)
