"""Routing overhead: throughput through sedscale's router vs. straight to the vLLM instance.

Same run, same server, same load, two ways: ``alternate`` rounds (direct, router, router, direct,
...: drift in a shared machine's load hits both sides alike; median of per-pair ratios) and
``mixed`` rounds (both paths at once with half the concurrency each, so both see exactly the same
moment of the machine). Target: router/direct >= 0.95. Also records each instance's start-up time and resident memory (the whole
process group: API server, engine core, workers).

    python benchmarks/bench_serve.py                         # tiny Llama on the CPU vLLM
    python benchmarks/bench_serve.py --concurrency 32 --rounds 6 --json
    python benchmarks/bench_serve.py --site polaris          # the site's real model, on its node

The direct side uses a plain ``httpx.AsyncClient`` with the same connection limits, headers and
bodies as the router's; ``--openai`` puts the OpenAI SDK on both sides instead (the agents' path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import psutil

from sedscale.serve.service import LLMService
from sedscale.serve.settings import LLMSettings

Send = Callable[[dict[str, Any]], Awaitable[int]]  # returns completion tokens


def _group_rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return float("nan")
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def _bodies(model: str, n: int, prompt_words: int, max_tokens: int) -> list[dict[str, Any]]:
    filler = " ".join(f"band{i % 17} flux {i * 0.37:.2f}" for i in range(prompt_words // 3))
    return [
        {
            "model": model,
            "messages": [{"role": "user", "content": f"[{i}] {filler}"}],
            "max_tokens": max_tokens,
            "ignore_eos": True,  # vLLM extension: every reply has exactly max_tokens tokens
            "temperature": 1.0,
        }
        for i in range(n)
    ]


async def _round(send: Send, bodies: list[dict[str, Any]], concurrency: int) -> tuple[float, int]:
    gate = asyncio.Semaphore(concurrency)

    async def one(body: dict[str, Any]) -> int:
        async with gate:
            return await send(body)

    t0 = time.perf_counter()
    tokens = sum(await asyncio.gather(*(one(b) for b in bodies)))
    return time.perf_counter() - t0, tokens


async def _bench(service: LLMService, args: argparse.Namespace) -> dict[str, Any]:
    bodies = _bodies(service.model, args.requests, args.prompt_words, args.max_tokens)
    router = service.router()
    base = service.instances[0].base_url
    headers = {"Authorization": f"Bearer {service.api_key}"} if service.api_key else {}
    direct = httpx.AsyncClient(
        timeout=httpx.Timeout(600.0, connect=10.0),
        limits=httpx.Limits(max_connections=4096, max_keepalive_connections=512),
    )

    if args.openai:
        import openai

        sdk_direct = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=service.api_key or "none",
                                        http_client=direct, max_retries=0)  # fmt: skip
        sdk_routed = router.openai_client()

        async def send_direct(body: dict[str, Any]) -> int:
            extra = {"ignore_eos": body["ignore_eos"]}
            r = await sdk_direct.chat.completions.create(
                model=body["model"], messages=body["messages"], max_tokens=body["max_tokens"], extra_body=extra
            )
            return r.usage.completion_tokens if r.usage else 0

        async def send_routed(body: dict[str, Any]) -> int:
            extra = {"ignore_eos": body["ignore_eos"]}
            r = await sdk_routed.chat.completions.create(
                model=body["model"], messages=body["messages"], max_tokens=body["max_tokens"], extra_body=extra
            )
            return r.usage.completion_tokens if r.usage else 0
    else:

        async def send_direct(body: dict[str, Any]) -> int:
            r = await direct.post(f"{base}/v1/chat/completions", json=body, headers=headers)
            r.raise_for_status()
            return int(r.json()["usage"]["completion_tokens"])

        async def send_routed(body: dict[str, Any]) -> int:
            return int((await router.chat_completion(body))["usage"]["completion_tokens"])

    await _round(send_direct, bodies[: max(4, args.concurrency)], args.concurrency)  # warm-up both paths
    await _round(send_routed, bodies[: max(4, args.concurrency)], args.concurrency)
    result: dict[str, Any] = {}
    if args.mode in ("alternate", "both"):
        rounds: list[dict[str, float]] = []
        for r in range(args.rounds):
            order = [("direct", send_direct), ("router", send_routed)]
            if r % 2:
                order.reverse()
            row: dict[str, float] = {}
            for name, send in order:
                seconds, tokens = await _round(send, bodies, args.concurrency)
                row[name] = tokens / seconds
            rounds.append(row)
        result["alternate"] = _summary(rounds)
    if args.mode in ("mixed", "both"):
        # Both paths at once, half the concurrency each, sharing the server and the machine's
        # momentary load: robust to other jobs on a shared node, at the price of the two sides
        # competing for the same batch slots (an overhead shows as a smaller share).
        half = max(1, args.concurrency // 2)
        rounds = []
        for _ in range(args.rounds):
            (d_s, d_tok), (r_s, r_tok) = await asyncio.gather(
                _round(send_direct, bodies[0::2], half), _round(send_routed, bodies[1::2], half)
            )
            rounds.append({"direct": d_tok / d_s, "router": r_tok / r_s})
        result["mixed"] = _summary(rounds)
    await direct.aclose()
    await router.aclose()
    result["client_side_us_per_request"] = await _router_overhead_us()
    return result


async def _router_overhead_us(n: int = 3000) -> dict[str, float]:
    """Client-side cost of the router per request, measured against an in-process fake server.

    Machine noise cannot hide here: the same fake reply is served to a plain httpx client and to
    the router (pick, accounting, usage parse, retry bookkeeping), n requests each, sequentially.
    """
    from sedscale.serve.accounting import Accountant
    from sedscale.serve.router import Router

    reply = {"choices": [{"message": {"content": "{}"}}], "usage": {"prompt_tokens": 100, "completion_tokens": 32}}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=reply))
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 32}
    direct = httpx.AsyncClient(transport=transport)
    router = Router(["http://a:1", "http://b:2"], transport=transport, accountant=Accountant(2, 1), api_key="k")
    timings: dict[str, float] = {}
    for _ in range(2):  # second pass is the measurement (first warms caches)
        t0 = time.perf_counter()
        for _ in range(n):
            (await direct.post("http://a:1/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"})).json()
        timings["direct_us"] = (time.perf_counter() - t0) / n * 1e6
        t0 = time.perf_counter()
        for _ in range(n):
            await router.chat_completion(body)
        timings["router_us"] = (time.perf_counter() - t0) / n * 1e6
    await direct.aclose()
    await router.aclose()
    timings["overhead_us"] = timings["router_us"] - timings["direct_us"]
    return timings


def _summary(rounds: list[dict[str, float]]) -> dict[str, Any]:
    ratios = [row["router"] / row["direct"] for row in rounds]
    return {
        "rounds": rounds,
        "direct_tokens_per_s": statistics.median(r["direct"] for r in rounds),
        "router_tokens_per_s": statistics.median(r["router"] for r in rounds),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", help="Serve this site's llm: section instead of the tiny CPU model.")
    parser.add_argument("--instances", type=int, default=1, help="Instances to start (tiny model only).")
    parser.add_argument("--requests", type=int, default=128, help="Requests per round and side.")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--prompt-words", type=int, default=96)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4, help="Direct/router pairs (alternating order).")
    parser.add_argument("--openai", action="store_true", help="Use the OpenAI SDK on both sides.")
    parser.add_argument("--mode", choices=["alternate", "mixed", "both"], default="both",
                        help="alternate: ABAB rounds; mixed: both paths at once, half the load each.")
    parser.add_argument("--run-dir", type=Path, help="Logs of the instances (default: a temp dir).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of tables.")
    args = parser.parse_args(argv)

    settings: LLMSettings
    if args.site:
        from sedscale.engines.site import load_site

        loaded = load_site(args.site).llm
        if loaded is None:
            parser.error(f"site {args.site} has no llm: section")
        settings = loaded
    else:
        from sedscale.testing.llm import tiny_llm_settings

        settings = tiny_llm_settings(instances=args.instances)

    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="sedscale-bench-serve-"))
    service = LLMService(settings, run_dir=run_dir, sample_interval_s=None)
    t0 = time.monotonic()
    with service:
        startup_total = time.monotonic() - t0
        instances = [
            {"index": i.index, "startup_s": round(i.last_startup_s or float("nan"), 1),
             "rss_mb": round(_group_rss_mb(i.pid), 0)}
            for i in service.instances
        ]  # fmt: skip
        result = asyncio.run(_bench(service, args))
    result.update(
        {
            "model": settings.served_model_name,
            "accelerator": settings.accelerator,
            "service_startup_s": round(startup_total, 1),
            "instances": instances,
            "load": {k: getattr(args, k) for k in ("requests", "concurrency", "prompt_words", "max_tokens", "rounds")},
            "machine_load_avg": os.getloadavg(),
            "client": "openai" if args.openai else "httpx",
        }
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_tables(result)
    return 0


def _print_tables(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=f"Instances ({result['model']} on {result['accelerator']})")
    for col in ("instance", "start-up s", "RSS MB (process group)"):
        t.add_column(col, justify="right")
    for inst in result["instances"]:
        t.add_row(str(inst["index"]), f"{inst['startup_s']:.1f}", f"{inst['rss_mb']:.0f}")
    console.print(t)
    load = result["load"]
    micro = result["client_side_us_per_request"]
    console.print(f"client-side cost per request (fake in-process server): direct {micro['direct_us']:.0f} us, "
                  f"router {micro['router_us']:.0f} us, overhead {micro['overhead_us']:.0f} us")  # fmt: skip
    for mode in ("alternate", "mixed"):
        if mode not in result:
            continue
        summary = result[mode]
        how = "rounds alternate direct/router" if mode == "alternate" else "both paths at once, half each"
        t = Table(title=f"{mode}: output tokens/s, {load['requests']} requests x {load['max_tokens']} tokens, "
                        f"concurrency {load['concurrency']} ({how}; {result['client']} client)")  # fmt: skip
        for col in ("round", "direct", "router", "ratio"):
            t.add_column(col, justify="right")
        for i, row in enumerate(summary["rounds"]):
            t.add_row(str(i), f"{row['direct']:.0f}", f"{row['router']:.0f}", f"{row['router'] / row['direct']:.3f}")
        t.add_row("median", f"{summary['direct_tokens_per_s']:.0f}", f"{summary['router_tokens_per_s']:.0f}",
                  f"{summary['ratio_median']:.3f}")  # fmt: skip
        console.print(t)
        verdict = "meets" if summary["ratio_median"] >= 0.95 else "MISSES"
        console.print(f"{mode}: router/direct = {summary['ratio_median']:.3f} (min {summary['ratio_min']:.3f}): "
                      f"{verdict} the 0.95 target")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
