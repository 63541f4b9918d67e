"""Start, watch, restart and stop the vLLM server processes of one node.

Each instance runs in a process group of its own (``start_new_session``), so the API server and
the engine-core children it spawns are stopped together — SIGTERM to the group, then SIGKILL after
a grace period — by the group id we created, never by matching process names (other users' and
other tests' servers share the node). Output goes to one log file per instance, appended across
restarts with a header line, so a crash and its restart read as one story.

:class:`InstanceSupervisor` is one thread per instance: it notices a dead process (or a live one
whose ``/health`` fails several probes in a row), kills what is left of its group, and restarts it
with exponential backoff, up to ``restart.max_restarts`` consecutive failures; it counts every
restart. Threads, not asyncio, because start-up waits are long and blocking, and the service must
work the same from sync worker code and from an agent's event loop.
"""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from sedscale.serve.errors import InstanceStartError, PortInUseError, log_tail
from sedscale.serve.health import is_healthy, port_in_use, probe_host
from sedscale.serve.settings import RestartSettings


class InstanceState(str, enum.Enum):
    """Life cycle of one instance, as the supervisor sees it."""

    STOPPED = "stopped"
    STARTING = "starting"
    HEALTHY = "healthy"
    DOWN = "down"  # died or hung; a restart is pending
    FAILED = "failed"  # gave up after too many consecutive failed restarts


class VLLMInstance:
    """One server process: launch, wait for ``/health``, probe, stop.

    ``argv``/``env`` come from :mod:`sedscale.serve.command`; any command works (the tests use a
    process that never opens its port to exercise the start-up deadline).
    """

    def __init__(
        self,
        index: int,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        host: str,
        port: int,
        log_file: Path,
        startup_timeout_s: float,
    ) -> None:
        self.index = index
        self.argv = list(argv)
        self.env = env
        self.host = host
        self.port = port
        self.log_file = log_file
        self.startup_timeout_s = startup_timeout_s
        self.state = InstanceState.STOPPED
        self.restarts = 0
        self.last_startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._launched_at = 0.0
        self._closed = False
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """``http://host:port`` of this instance (the OpenAI API is under ``/v1``)."""
        return f"http://{probe_host(self.host)}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the server process (also its process-group id), while it runs."""
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        """True while the server process we started has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def probe(self, timeout_s: float = 2.0) -> bool:
        """True when ``/health`` answers 200."""
        return is_healthy(self.base_url, timeout_s)

    # -- start ------------------------------------------------------------------------------------

    def launch(self) -> None:
        """Start the process (not waiting for it); :class:`PortInUseError` if the port is taken."""
        with self._lock:
            if self._closed:
                raise InstanceStartError(f"instance {self.index} was closed; not starting it again", self.log_file)
            if self.alive():
                raise RuntimeError(f"instance {self.index} is already running (pid {self.pid})")
            if port_in_use(self.host, self.port):
                raise PortInUseError(
                    f"instance {self.index}: port {self.port} on {self.host} is already in use by "
                    f"another process; choose another llm.base_port (log file would be {self.log_file})"
                )
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_file, "ab") as log:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                log.write(f"\n=== sedscale: start #{self.restarts} of instance {self.index} at {stamp}: "
                          f"{' '.join(self.argv)}\n".encode())
                log.flush()
                self._proc = subprocess.Popen(
                    self.argv,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=str(self.log_file.parent),
                )
            self._launched_at = time.monotonic()
            self.state = InstanceState.STARTING

    def wait_healthy(self, deadline: float | None = None, poll_s: float = 0.5) -> None:
        """Block until ``/health`` answers, or raise :class:`InstanceStartError` naming the log.

        ``deadline`` is a ``time.monotonic()`` value (default: launch + ``startup_timeout_s``).
        A process that exits first fails at once; one that outlives the deadline is stopped.
        """
        if deadline is None:
            deadline = self._launched_at + self.startup_timeout_s
        while True:
            proc = self._proc
            if proc is None:
                raise RuntimeError("wait_healthy() before launch()")
            code = proc.poll()
            if code is not None:
                self._kill_leftovers()
                self.state = InstanceState.DOWN
                tail = log_tail(self.log_file)
                message = (
                    f"vLLM instance {self.index} (port {self.port}) exited with code {code} during "
                    f"start-up; see {self.log_file}. Last lines:\n{tail}"
                )
                if "address already in use" in tail.lower():  # lost a race for the port
                    raise PortInUseError(f"port {self.port} on {self.host} is already in use: {message}")
                raise InstanceStartError(message, self.log_file)
            if self.probe(timeout_s=min(2.0, max(0.1, deadline - time.monotonic()))):
                self.state = InstanceState.HEALTHY
                self.last_startup_s = time.monotonic() - self._launched_at
                return
            if time.monotonic() >= deadline:
                waited = time.monotonic() - self._launched_at
                self.stop()
                self.state = InstanceState.DOWN
                raise InstanceStartError(
                    f"vLLM instance {self.index} (pid {proc.pid}, port {self.port}) did not answer "
                    f"/health within {waited:.1f} s (llm.startup_timeout_s); it was stopped. See "
                    f"{self.log_file}. Last lines:\n{log_tail(self.log_file)}",
                    self.log_file,
                )
            time.sleep(poll_s)

    def start(self, deadline: float | None = None) -> None:
        """:meth:`launch` then :meth:`wait_healthy`."""
        self.launch()
        self.wait_healthy(deadline)

    # -- stop -------------------------------------------------------------------------------------

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the instance's process group, SIGKILL it after ``grace_s``; idempotent."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                self._signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    self._signal_group(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
            self._kill_leftovers()
            self._proc = None
            self.state = InstanceState.STOPPED

    def close(self, grace_s: float = 15.0) -> None:
        """Stop for good: a supervisor racing to restart it can no longer launch a process."""
        with self._lock:
            self._closed = True
        self.stop(grace_s)

    def kill(self) -> None:
        """SIGKILL the server process only (what a crash looks like; tests and chaos drills)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)

    def _kill_leftovers(self) -> None:
        """After the leader died, SIGKILL the rest of its group (engine-core children)."""
        proc = self._proc
        if proc is not None and proc.poll() is not None:
            self._signal_group(proc.pid, signal.SIGKILL)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class InstanceSupervisor(threading.Thread):
    """Watches one instance; restarts it with backoff when it dies or stops answering."""

    def __init__(
        self,
        instance: VLLMInstance,
        policy: RestartSettings,
        *,
        interval_s: float = 1.0,
        failed_probes_before_restart: int = 5,
        probe_timeout_s: float = 10.0,
        stable_after_s: float = 300.0,
        on_event: Callable[[VLLMInstance, str], None] | None = None,
    ) -> None:
        super().__init__(name=f"sedscale-supervisor-{instance.index}", daemon=True)
        self.instance = instance
        self.policy = policy
        self.interval_s = interval_s
        self.failed_probes_before_restart = failed_probes_before_restart
        self.probe_timeout_s = probe_timeout_s  # generous: a busy server answers /health late
        self.stable_after_s = stable_after_s
        self.on_event = on_event
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask the thread to finish (it exits within one interval, or after a start-up wait)."""
        self._stop.set()

    def _event(self, what: str) -> None:
        if self.on_event is not None:
            self.on_event(self.instance, what)

    def run(self) -> None:
        inst = self.instance
        failed_probes = 0
        consecutive = 0
        healthy_since = time.monotonic()
        while not self._stop.wait(self.interval_s):
            if inst.state is not InstanceState.HEALTHY:
                continue
            if inst.alive():
                if inst.probe(self.probe_timeout_s):
                    failed_probes = 0
                    if time.monotonic() - healthy_since > self.stable_after_s:
                        consecutive = 0
                    continue
                failed_probes += 1
                if failed_probes < self.failed_probes_before_restart:
                    continue
                self._event("hung")
            else:
                self._event("died")
            inst.state = InstanceState.DOWN
            inst.stop(grace_s=5.0)
            inst.state = InstanceState.DOWN
            failed_probes = 0
            while not self._stop.is_set():
                if consecutive >= self.policy.max_restarts:
                    inst.state = InstanceState.FAILED
                    self._event("gave up")
                    return
                backoff = min(self.policy.backoff_initial_s * 2**consecutive, self.policy.backoff_max_s)
                if self._stop.wait(backoff):
                    return
                consecutive += 1
                inst.restarts += 1
                self._event("restarting")
                try:
                    inst.start()
                except Exception as exc:  # noqa: BLE001 — any failure counts; the log has the cause
                    self._event(f"restart failed: {exc}")
                    inst.stop(grace_s=5.0)
                    inst.state = InstanceState.DOWN
                    continue
                healthy_since = time.monotonic()
                self._event("restarted")
                break
