"""Two real CPU vLLM instances; one is SIGKILLed mid-run: nothing is lost, it comes back, counted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from sedscale.serve.instances import InstanceState
from sedscale.serve.service import LLMService
from sedscale.testing.llm import tiny_llm_settings

pytestmark = [pytest.mark.vllm, pytest.mark.slow]  # starts vLLM

N_REQUESTS = 200
KILL_AFTER = 40


def test_kill_one_of_two_instances_mid_run(tiny_model: Path, tmp_path: Path) -> None:
    settings = tiny_llm_settings(tiny_model, instances=2)
    with LLMService(settings, run_dir=tmp_path / "llm", supervise_interval_s=0.5) as service:
        victim = service.instances[0]
        old_pid = victim.pid

        async def main() -> tuple[list[dict], list[dict]]:
            router = service.router(probe_interval_s=0.5)
            done = 0
            killed = asyncio.Event()
            gate = asyncio.Semaphore(32)

            async def one(i: int) -> dict:
                nonlocal done
                async with gate:
                    reply = await router.chat_completion(
                        {"messages": [{"role": "user", "content": f"request {i}"}], "max_tokens": 12}, source=i
                    )
                done += 1
                if done == KILL_AFTER and not killed.is_set():
                    victim.kill()  # SIGKILL to the API server: what a crash looks like
                    killed.set()
                return reply

            replies = await asyncio.gather(*(one(i) for i in range(N_REQUESTS)))
            stats = router.stats()
            await router.aclose()
            return replies, stats

        replies, stats = asyncio.run(main())
        assert len(replies) == N_REQUESTS
        assert all(r["choices"][0]["message"]["content"] is not None for r in replies)
        assert sum(s["served"] for s in stats) == N_REQUESTS
        assert stats[0]["failures"] >= 1  # the router saw instance 0 die ...
        assert stats[1]["served"] > N_REQUESTS - KILL_AFTER - 32  # ... and sent the rest to instance 1

        deadline = time.monotonic() + settings.startup_timeout_s + 30
        while victim.state is not InstanceState.HEALTHY or victim.pid == old_pid:
            assert victim.state is not InstanceState.FAILED, (tmp_path / "llm" / "vllm-0.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "instance 0 was not restarted in time"
            time.sleep(0.5)
        assert victim.restarts == 1 and service.restarts == 1
        assert victim.pid != old_pid and victim.probe()
        assert any(what == "died" for _, index, what in service.events if index == 0)
        assert "start #1 of instance 0" in (tmp_path / "llm" / "vllm-0.log").read_text()

        async def after() -> list[dict]:
            router = service.router()
            replies = await asyncio.gather(*(router.chat_completion({"messages": [{"role": "user", "content": "x"}],
                                                                     "max_tokens": 2}) for _ in range(8)))  # fmt: skip
            assert all(s["served"] > 0 for s in router.stats())  # both instances serve again
            await router.aclose()
            return replies

        assert len(asyncio.run(after())) == 8
        window = service.accounting()
        assert window.tokens.requests == N_REQUESTS + 8
        assert all(b <= window.wall_s for b in window.busy_s)
