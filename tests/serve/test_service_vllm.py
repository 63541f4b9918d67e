"""Against a real CPU vLLM serving the tiny Llama (the session's one server)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import jsonschema
import psutil
import pytest

from sedscale.serve.service import LLMService, connect

pytestmark = [pytest.mark.vllm, pytest.mark.slow]  # starts vLLM

# Every string and number bounded: a random model cannot produce an invalid or endless reply.
ACTION_SCHEMA = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["set_parameter", "toggle_module", "stop"]},
        "module": {"type": "string", "enum": ["dust", "agn", "nebular"]},
        "value": {"type": "number", "minimum": 0, "maximum": 5},
    },
    "required": ["action", "module", "value"],
    "additionalProperties": False,
}
PREFIX = "You are an expert astronomer fitting spectral energy distributions of galaxies. " * 8


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": PREFIX}, {"role": "user", "content": f"Source {i}: residuals -3.2 1.5"}]


def test_structured_output_through_the_routed_openai_client(llm_service: LLMService) -> None:
    async def main() -> list[str]:
        router = llm_service.router()
        client = router.openai_client()
        replies = await asyncio.gather(*(
            client.chat.completions.create(
                model=llm_service.model, messages=_messages(i), max_tokens=64, temperature=1.0,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "action", "schema": ACTION_SCHEMA, "strict": True}},
            )
            for i in range(8)
        ))  # fmt: skip
        await client.close()
        await router.aclose()
        return [r.choices[0].message.content or "" for r in replies]

    for text in asyncio.run(main()):
        jsonschema.validate(json.loads(text), ACTION_SCHEMA)


def test_client_token_counts_equal_metrics_deltas(llm_service: LLMService) -> None:
    n = 24
    before = llm_service.metrics()
    window_start = llm_service.accounting()

    async def main() -> list[dict]:
        router = llm_service.router()
        replies = await asyncio.gather(*(
            router.chat_completion({"messages": _messages(i), "max_tokens": 24, "temperature": 1.0},
                                   source=f"src-{i % 3}")
            for i in range(n)
        ))  # fmt: skip
        await router.aclose()
        return [r["usage"] for r in replies]

    usages = asyncio.run(main())
    prompt = sum(u["prompt_tokens"] for u in usages)
    completion = sum(u["completion_tokens"] for u in usages)
    cached = sum((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0 for u in usages)
    for _ in range(50):  # the server updates its counters as it streams results out; allow a moment
        delta = llm_service.metrics() - before
        if delta.requests_finished >= n:
            break
        time.sleep(0.1)
    assert delta.requests_finished == n
    assert delta.prompt_tokens == prompt
    assert delta.generation_tokens == completion
    assert delta.prompt_tokens_cached == cached
    assert cached > 0  # the shared system prompt is served from the prefix cache
    assert delta.prefix_cache_hits >= cached

    window = llm_service.accounting() - window_start
    assert (window.tokens.prompt, window.tokens.completion, window.tokens.cached) == (prompt, completion, cached)
    shares = window.attribute()
    assert set(shares) == {"src-0", "src-1", "src-2"}
    assert sum(s.weight for s in shares.values()) == pytest.approx(1.0)


def test_busy_never_exceeds_allocated(llm_service: LLMService) -> None:
    start = llm_service.accounting()
    sampled_start = llm_service.sampled_busy_s()

    async def main() -> None:
        router = llm_service.router()
        await asyncio.gather(*(router.chat_completion({"messages": _messages(i), "max_tokens": 96,
                                                        "ignore_eos": True}) for i in range(16)))
        await router.aclose()

    asyncio.run(main())
    time.sleep(0.6)  # idle tail: wall grows, busy does not
    window = llm_service.accounting() - start
    sampled = [b - a for a, b in zip(sampled_start, llm_service.sampled_busy_s())]
    assert 0 < window.busy_s[0] <= window.wall_s
    assert 0 <= sampled[0] <= window.wall_s
    # CPU site: the service holds no GPU, so both GPU-second figures are zero by construction.
    assert window.devices == 0 and window.busy_gpu_s == 0 == window.allocated_gpu_s
    assert window.busy_gpu_s <= window.allocated_gpu_s


def test_binds_only_to_loopback_and_rejects_requests_without_the_key(llm_service: LLMService) -> None:
    instance = llm_service.instances[0]
    listening = [
        c.laddr for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == instance.port
    ]  # fmt: skip
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening)
    base = instance.base_url
    assert httpx.get(f"{base}/v1/models", timeout=10).status_code == 401
    bad = {"Authorization": "Bearer wrong-key"}
    assert httpx.get(f"{base}/v1/models", headers=bad, timeout=10).status_code == 401
    body = {"model": llm_service.model, "messages": _messages(0), "max_tokens": 2}
    assert httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30).status_code == 401
    good = {"Authorization": f"Bearer {llm_service.api_key}"}
    assert httpx.get(f"{base}/v1/models", headers=good, timeout=10).status_code == 200
    assert httpx.get(f"{base}/health", timeout=10).status_code == 200  # probes need no key


def test_another_process_connects_through_service_json(llm_service: LLMService) -> None:
    state = json.loads((llm_service.run_dir / "service.json").read_text())
    assert state["instances"][0]["state"] == "healthy" and state["instances"][0]["pid"]
    assert oct((llm_service.run_dir / "api_key").stat().st_mode & 0o777) == "0o600"

    async def main() -> dict:
        router = connect(llm_service.run_dir)
        try:
            return await router.chat_completion({"messages": _messages(1), "max_tokens": 4})
        finally:
            await router.aclose()

    assert asyncio.run(main())["usage"]["completion_tokens"] <= 4
