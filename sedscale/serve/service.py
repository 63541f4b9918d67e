"""The node's LLM service: k vLLM instances, their supervisors, a router factory and accounting.

Typical use (a test, an agent process, or ``sedscale serve``)::

    with LLMService(settings, run_dir=host_dir) as service:   # e.g. CampaignPaths.llm_host_dir(host)
        router = service.router()                 # in the event loop that will use it
        client = router.openai_client()           # openai.AsyncOpenAI over all instances
        reply = await client.chat.completions.create(model=service.model, messages=[...])
        ...
        print(service.accounting().busy_gpu_s)

Order of :meth:`LLMService.start`: resolve the weights (a missing path fails here, before any
process starts), stage them if configured, check every port, launch all instances at once (their
start-ups overlap), wait for each ``/health`` under one deadline, then start one supervisor thread
per instance and the ``/metrics`` sampler. If anything fails, everything already started is
stopped before the error propagates. The service writes ``service.json`` (URLs, PIDs, model) and,
when it generated the API key, ``api_key`` (mode 0600) into ``run_dir`` so other processes on the
node can connect with :func:`connect`.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from sedscale.fsutil import atomic_write
from sedscale.serve.accounting import Accountant, AccountingSnapshot
from sedscale.serve.command import instance_command, instance_env
from sedscale.serve.errors import ServeError
from sedscale.serve.instances import InstanceState, InstanceSupervisor, VLLMInstance
from sedscale.serve.metrics import ServerMetrics, scrape, scrape_all
from sedscale.serve.router import Router
from sedscale.serve.settings import LLMSettings
from sedscale.serve.staging import prepare_model

log = logging.getLogger("sedscale.serve")

_LIVE: "weakref.WeakSet[LLMService]" = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:  # an interpreter exiting without stop() must not orphan servers
    for service in list(_LIVE):
        service.stop()


class LLMService:
    """Owns one node's vLLM instances for as long as it runs."""

    def __init__(
        self,
        settings: LLMSettings,
        *,
        run_dir: Path,
        cache_dir: Path | None = None,
        api_key: str | None = None,
        sample_interval_s: float | None = 1.0,
        supervise_interval_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.run_dir / "cache"
        self.api_key = api_key if api_key is not None else _resolve_api_key(settings)
        self.sample_interval_s = sample_interval_s
        self.supervise_interval_s = supervise_interval_s
        self.instances: list[VLLMInstance] = []
        self.model_path: Path | None = None
        self.startup_s: float | None = None
        self.accountant = Accountant(settings.instances_per_node, settings.devices_per_instance)
        self.events: list[tuple[float, int, str]] = []
        self._supervisors: list[InstanceSupervisor] = []
        self._sampler: threading.Thread | None = None
        self._stop_sampling = threading.Event()
        self._sampled_busy_s = [0.0] * settings.instances_per_node
        self._started = False

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> "LLMService":
        """Start every instance and wait until all are healthy (see the module docstring)."""
        if self._started:
            return self
        t0 = time.monotonic()
        self.model_path = prepare_model(self.settings)  # ModelPathError before anything starts
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.instances = [self._make_instance(i) for i in range(self.settings.instances_per_node)]
        _LIVE.add(self)
        try:
            for instance in self.instances:
                instance.launch()
            deadline = time.monotonic() + self.settings.startup_timeout_s
            for instance in self.instances:
                instance.wait_healthy(deadline)
        except BaseException:
            self._stop_instances()
            _LIVE.discard(self)
            raise
        self.startup_s = time.monotonic() - t0
        self.accountant = Accountant(len(self.instances), self.settings.devices_per_instance)
        self._supervisors = []
        self._stop_sampling = threading.Event()
        self._sampled_busy_s = [0.0] * len(self.instances)
        for instance in self.instances:
            supervisor = InstanceSupervisor(
                instance, self.settings.restart, interval_s=self.supervise_interval_s, on_event=self._on_event
            )
            supervisor.start()
            self._supervisors.append(supervisor)
        if self.sample_interval_s:
            self._sampler = threading.Thread(target=self._sample, name="sedscale-llm-sampler", daemon=True)
            self._sampler.start()
        self._started = True
        self._write_key()
        self._write_state()
        return self

    def stop(self) -> None:
        """Stop supervisors, sampler and every instance (SIGTERM, then SIGKILL, by process group)."""
        for supervisor in self._supervisors:
            supervisor.stop()
        self._stop_sampling.set()
        self._stop_instances(close=True)
        self.accountant.stop()
        self._started = False
        _LIVE.discard(self)

    def _stop_instances(self, close: bool = False) -> None:
        threads = [threading.Thread(target=i.close if close else i.stop) for i in self.instances]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def __enter__(self) -> "LLMService":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what clients use -------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The served model name clients send."""
        return self.settings.served_model_name

    @property
    def base_urls(self) -> list[str]:
        """OpenAI-compatible base URLs, one per instance (``http://127.0.0.1:8100/v1``)."""
        return [f"{i.base_url}/v1" for i in self.instances]

    def router(self, **kwargs: Any) -> Router:
        """A new router over the instances, feeding this service's accountant.

        Create it inside the event loop that will use it (one per loop).
        """
        kwargs.setdefault("wait_for_instance_s", self.settings.startup_timeout_s)
        return Router(
            [i.base_url for i in self.instances],
            api_key=self.api_key,
            model=self.model,
            accountant=self.accountant,
            **kwargs,
        )

    # -- observation ------------------------------------------------------------------------------

    @property
    def restarts(self) -> int:
        """Restarts across all instances since start."""
        return sum(i.restarts for i in self.instances)

    def states(self) -> list[InstanceState]:
        """Each instance's state."""
        return [i.state for i in self.instances]

    def accounting(self) -> AccountingSnapshot:
        """Allocated/busy GPU-seconds and tokens so far (busy from the routers' request intervals)."""
        return self.accountant.snapshot()

    def sampled_busy_s(self) -> list[float]:
        """Per instance, seconds with ``vllm:num_requests_running > 0`` (sampled; see SERVING.md)."""
        return list(self._sampled_busy_s)

    def metrics(self) -> ServerMetrics:
        """The node total of every instance's ``/metrics`` now."""
        return scrape_all([i.base_url for i in self.instances])

    # -- internals --------------------------------------------------------------------------------

    def _make_instance(self, index: int) -> VLLMInstance:
        assert self.model_path is not None
        settings = self.settings
        return VLLMInstance(
            index,
            instance_command(settings, index, self.model_path),
            instance_env(settings, index, cache_dir=self.cache_dir, api_key=self.api_key),
            host=settings.host,
            port=settings.port(index),
            log_file=self.run_dir / f"vllm-{index}.log",
            startup_timeout_s=settings.startup_timeout_s,
        )

    def _on_event(self, instance: VLLMInstance, what: str) -> None:
        self.events.append((time.time(), instance.index, what))
        log.warning("LLM instance %d (port %d): %s", instance.index, instance.port, what)
        self._write_state()

    def _sample(self) -> None:
        """Left-Riemann sum of "≥ 1 request running": busy += Δt when the previous scrape said so."""
        assert self.sample_interval_s
        previous: list[tuple[float, bool] | None] = [None] * len(self.instances)
        while not self._stop_sampling.wait(self.sample_interval_s):
            for index, instance in enumerate(self.instances):
                if instance.state is not InstanceState.HEALTHY:
                    previous[index] = None
                    continue
                try:
                    now = scrape(instance.base_url, timeout_s=2.0)
                except Exception:  # noqa: BLE001 — a failed scrape only loses one sample
                    previous[index] = None
                    continue
                before = previous[index]
                if before is not None and before[1]:
                    self._sampled_busy_s[index] += now.scraped_at - before[0]
                previous[index] = (now.scraped_at, now.requests_running > 0)

    def _write_key(self) -> None:
        key_file = self.run_dir / "api_key"
        key_file.unlink(missing_ok=True)
        if self.api_key:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(self.api_key)

    def _write_state(self) -> None:
        key_file = self.run_dir / "api_key"
        state = {
            "host": socket.gethostname(),
            "model": self.model,
            "base_urls": self.base_urls,
            "api_key_env": self.settings.api_key_env,
            "api_key_file": str(key_file) if self.api_key else None,
            "instances": [
                {"index": i.index, "pid": i.pid, "port": i.port, "state": i.state.value,
                 "restarts": i.restarts, "log": str(i.log_file)}
                for i in self.instances
            ],
        }  # fmt: skip
        atomic_write(self.run_dir / "service.json", json.dumps(state, indent=2).encode())


def _resolve_api_key(settings: LLMSettings) -> str | None:
    """The key from ``settings.api_key_env`` if set, a fresh random one if not, None if disabled."""
    if settings.api_key_env is None:
        return None
    return os.environ.get(settings.api_key_env) or secrets.token_urlsafe(24)


def connect(run_dir: Path, **router_kwargs: Any) -> Router:
    """A router for another process on the node, from the ``service.json`` a service wrote.

    Its accounting sees only this process's requests (see :mod:`sedscale.serve.accounting`).
    """
    state_file = Path(run_dir) / "service.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError) as exc:
        raise ServeError(f"no running LLM service described in {state_file}: {exc}") from exc
    api_key = None
    if state.get("api_key_file"):
        api_key = Path(state["api_key_file"]).read_text().strip()
    elif state.get("api_key_env"):
        api_key = os.environ.get(state["api_key_env"])
    urls = [url.removesuffix("/v1") for url in state["base_urls"]]
    return Router(urls, api_key=api_key, model=state["model"], **router_kwargs)
