"""Settings for serving the tiny Llama on the CPU build of vLLM, for any layer's tests.

::

    from sedscale.testing.llm import tiny_llm_settings
    from sedscale.serve.service import LLMService

    with LLMService(tiny_llm_settings(), run_dir=tmp_path / "llm") as service:
        client = service.router().openai_client()      # inside your event loop

Start-up costs 35–55 s and ~2.7 GB on a 2-core machine: share one service per test session.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from sedscale.serve.settings import LLMSettings
from sedscale.testing.tiny_llama import TINY_MODEL_NAME, build_tiny_llama


def free_base_port(count: int = 1, start: int | None = None, stop: int = 28000) -> int:
    """The first port ``p`` such that ``p .. p+count-1`` are all free on loopback right now.

    The search starts at a point derived from the PID (default), so concurrent test sessions, which
    probe ports a minute before vLLM binds them, rarely pick the same ones.
    """
    if start is None:
        start = 18100 + (os.getpid() * 37) % 6000
    port = start
    while port + count <= stop:
        for offset in range(count):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port + offset))
                except OSError:
                    break
        else:
            return port
        port += offset + 1
    raise RuntimeError(f"no {count} consecutive free ports in [{start}, {stop})")


def tiny_llm_settings(
    model_path: Path | None = None,
    *,
    instances: int = 1,
    base_port: int | None = None,
    **overrides: Any,
) -> LLMSettings:
    """:class:`LLMSettings` serving the tiny Llama on CPU (built on first use), loopback, with a key."""
    values: dict[str, Any] = {
        "model_path": str(model_path or build_tiny_llama()),
        "served_model_name": TINY_MODEL_NAME,
        "accelerator": "cpu",
        "instances_per_node": instances,
        "base_port": base_port if base_port is not None else free_base_port(instances),
        "max_num_seqs": 64,
        "max_model_len": 4096,
        "cpu_kvcache_space_gib": 1,
        "startup_timeout_s": 480.0,  # 35-55 s on an idle 2-core machine; 3-4 min seen under load
        "restart": {"max_restarts": 3, "backoff_initial_s": 0.5, "backoff_max_s": 5.0},
    }
    values.update(overrides)
    return LLMSettings(**values)
