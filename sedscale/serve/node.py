"""One LLM service per node, shared by every worker on it, started lazily behind a node-local lock.

Why lazily, from the workers: Parsl pastes ``worker_init`` once into a block's batch script, so
it runs on the block's *first* node only, and a dask-jobqueue job script likewise runs once. A
service started there would serve one node of a multi-node block. Instead, the first task that
needs the LLM on a node starts the node's service as a detached daemon; every other worker on the
node waits on the same lock and connects to it. This works the same under Parsl and Dask, with
``srun``, ``mpiexec`` or no launcher, on Slurm, PBS or a laptop, because it only relies on what
every node has: a host name and a local ``/tmp``.

The caller names the directories (this layer knows no campaign layout): ``run_dir`` is this
node's service directory (``CampaignPaths.llm_host_dir(host)``, on the shared file system) and
``stop_file`` the driver's end-of-run request (``CampaignPaths.llm_stop_file``)::

    run_dir/daemon.json      daemon pid, process start time, state (starting|ready|stopping|stopped|failed)
    run_dir/service.json     instance URLs and model (written by LLMService; read by connect())
    run_dir/api_key          the service's key (0600)
    run_dir/accounting-<start>-<pid>.json  one per daemon (a resume starts a new one): allocated/
                             busy device-seconds and /metrics token totals, refreshed
    run_dir/clients/<pid>    one file per worker process that uses the service (its start time)
    run_dir/starts.log       one line per daemon start (how tests count services per node)
    run_dir/daemon.log       the daemon's own log; vllm-<i>.log beside it

The lock lives in node-local ``$TMPDIR`` (flock on parallel file systems is not always enabled,
and the lock must be per node anyway). The daemon runs in its own session so a worker killed by
Parsl or the scheduler does not take the shared service with it. It stops, and stops its vLLM
instances, when (a) the driver writes ``stop_file``, (b) none of its client processes has been
alive for ``idle_grace_s`` — checked from the daemon's first second, during the vLLM start-up
too, so a service whose workers died (with their driver) exits within ``idle_grace_s`` + ~1 s
without anyone writing ``stop_file`` — or (c) it receives SIGTERM/SIGINT. The worker that starts
the daemon registers itself as a client before the daemon starts. Where Slurm tracks processes
by cgroup, the end of the job also ends it.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from sedscale.fsutil import atomic_write
from sedscale.serve.errors import ServeError
from sedscale.serve.settings import LLMSettings
from sedscale.tokens import TokenCounts

if TYPE_CHECKING:
    import openai

    from sedscale.serve.metrics import ServerMetrics
    from sedscale.serve.router import Router
    from sedscale.serve.service import LLMService

log = logging.getLogger("sedscale.serve.node")

#: Seconds a daemon outlives its last client: with the 1 s poll and the instances' stop this keeps
#: "a dead campaign's node services are gone within 60 s" (docs/CAMPAIGNS.md, "No orphans").
DEFAULT_IDLE_GRACE_S = 30.0
WATCH_INTERVAL_S = 1.0
ACCOUNTING_EVERY_S = 5.0
#: a service on another node whose files are older than this is on a lost node (it writes its
#: accounting every ACCOUNTING_EVERY_S while it runs)
LOST_AFTER_S = 6 * ACCOUNTING_EVERY_S

# ------------------------------------------------------------------------------------ processes


def process_start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/PID/stat`` (clock ticks since boot), or None if the process is gone or a
    zombie. Pairs (pid, start time) identify a process even after its pid is reused."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def process_alive(pid: int, start_time: int | None) -> bool:
    """True if ``pid`` runs, is not a zombie, and (when given) started at ``start_time``."""
    now = process_start_time(pid)
    return now is not None and (start_time is None or now == start_time)


# ---------------------------------------------------------------------------------------- files


def _lock_path(run_dir: Path) -> Path:
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"sedscale-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / f"llm-{digest}.lock"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically: workers and the driver read these records while they change."""
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True).encode())


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None  # a record is always an object


class _NodeLock:
    """An exclusive ``flock`` on the node-local lock file of one service directory."""

    def __init__(self, run_dir: Path) -> None:
        self.path = _lock_path(run_dir)
        self._fd: int | None = None

    def __enter__(self) -> "_NodeLock":
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


# --------------------------------------------------------------------------------------- client


@dataclass(frozen=True)
class NodeService:
    """A handle on the node's running service (what a worker keeps)."""

    run_dir: Path
    model: str
    daemon_pid: int
    daemon_start_time: int

    def alive(self) -> bool:
        """The daemon still runs (the same process, not a reused pid)."""
        return process_alive(self.daemon_pid, self.daemon_start_time)

    def router(self, **kwargs: Any) -> Router:
        """A :class:`~sedscale.serve.router.Router` over the node's instances (one per event loop)."""
        from sedscale.serve.service import connect

        return connect(self.run_dir, **kwargs)

    def openai_client(self) -> openai.AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` routed over the node's instances; closing it closes the router.

        Call it inside the event loop that will use it (``LLMPolicy(client_factory=...)`` does).
        """
        return self.router().openai_client(owns_router=True)


_HANDLES: dict[str, NodeService] = {}


def _live_daemon(run_dir: Path) -> dict[str, Any] | None:
    """The daemon record if a daemon runs for ``run_dir`` on this node (any state), else None."""
    record = _read_json(run_dir / "daemon.json")
    if not record or record.get("host") != socket.gethostname():
        return None
    if not process_alive(int(record["pid"]), record.get("start_time")):
        return None
    return record


def _register_client(run_dir: Path, pid: int) -> None:
    """Record ``pid`` (with its start time) as a user of the service; the daemon watches these."""
    clients = run_dir / "clients"
    clients.mkdir(parents=True, exist_ok=True)
    path = clients / str(pid)
    start = process_start_time(pid)
    if not path.exists() or path.read_text().strip() != str(start):
        atomic_write(path, str(start).encode(), sync_dir=False)


def ensure_node_service(
    settings: LLMSettings,
    run_dir: Path,
    stop_file: Path,
    *,
    idle_grace_s: float = DEFAULT_IDLE_GRACE_S,
    python: str | None = None,
) -> NodeService:
    """This node's LLM service in ``run_dir``, started by this call if none is running.

    Safe to call from every worker of every task: after the first call in a process it costs a
    ``/proc`` read. Concurrent callers on a node serialize on a node-local lock, so exactly one
    daemon starts; the others wait for it to be ready and connect. ``stop_file`` is where the
    driver asks every node's service to stop. Raises
    :class:`~sedscale.serve.errors.ServeError` (with the daemon log's tail) if it cannot start.
    """
    run_dir = Path(run_dir)
    key = str(run_dir)
    cached = _HANDLES.get(key)
    if cached is not None and cached.alive():
        _register_client(run_dir, os.getpid())
        return cached
    run_dir.mkdir(parents=True, exist_ok=True)
    with _NodeLock(run_dir):
        _register_client(run_dir, os.getpid())  # before a start: the new daemon watches us from its first second
        record = _live_daemon(run_dir)
        if record is not None and record.get("state") == "stopping":
            _wait_exit(int(record["pid"]), record.get("start_time"), settings.startup_timeout_s)
            record = None
        if record is None or record.get("state") != "ready":
            if record is not None:  # alive but not ready: a daemon started by a dead caller
                record = _wait_ready(run_dir, None, int(record["pid"]), record.get("start_time"),
                                     settings.startup_timeout_s + 60)
            else:
                record = _start_daemon(settings, run_dir, stop_file, idle_grace_s, python)
    state = _read_json(run_dir / "service.json") or {}
    handle = NodeService(run_dir, str(state.get("model", settings.served_model_name)), int(record["pid"]),
                         int(record["start_time"]))
    _HANDLES[key] = handle
    return handle


def _start_daemon(settings: LLMSettings, run_dir: Path, stop_file: Path, idle_grace_s: float,
                  python: str | None) -> dict[str, Any]:
    for stale in ("daemon.json", "service.json"):
        (run_dir / stale).unlink(missing_ok=True)
    settings_file = run_dir / "settings.json"
    _write_json(settings_file, settings.model_dump(mode="json"))
    with open(run_dir / "daemon.log", "ab") as logf:
        proc = subprocess.Popen(
            [python or sys.executable, "-m", "sedscale.serve.node", "--run-dir", str(run_dir),
             "--settings", str(settings_file), "--stop-file", str(stop_file),
             "--idle-grace-s", str(idle_grace_s)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
            close_fds=True,
        )
    return _wait_ready(run_dir, proc, proc.pid, None, settings.startup_timeout_s + 60)


def _wait_ready(run_dir: Path, proc: subprocess.Popen[bytes] | None, pid: int, start_time: int | None,
                timeout_s: float) -> dict[str, Any]:
    """Poll ``daemon.json`` until the daemon ``pid`` says ready (or fails, exits, or times out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        record = _read_json(run_dir / "daemon.json")
        if record and int(record.get("pid", -1)) == pid:
            if record.get("state") == "ready":
                return record
            if record.get("state") in ("failed", "stopped"):
                raise ServeError(f"the node's LLM service failed to start: {record.get('error', '?')}; "
                                 f"log {run_dir / 'daemon.log'}:\n{_tail(run_dir / 'daemon.log')}")
        exited = proc.poll() is not None if proc is not None else not process_alive(pid, start_time)
        if exited:
            raise ServeError(f"the node's LLM service daemon (pid {pid}) exited before it was ready; "
                             f"log {run_dir / 'daemon.log'}:\n{_tail(run_dir / 'daemon.log')}")
        if time.monotonic() > deadline:
            raise ServeError(f"the node's LLM service (pid {pid}) was not ready within {timeout_s:.0f} s; "
                             f"see {run_dir / 'daemon.log'}")
        time.sleep(0.5)


def _wait_exit(pid: int, start_time: int | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while process_alive(pid, start_time):
        if time.monotonic() > deadline:
            raise ServeError(f"the node's previous LLM service (pid {pid}) did not stop within {timeout_s:.0f} s")
        time.sleep(0.5)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def request_stop(stop_file: Path) -> None:
    """Ask every node's daemon that watches ``stop_file`` and started before now to stop (end of a run)."""
    stop_file = Path(stop_file)
    if stop_file.parent.is_dir():
        _write_json(stop_file, {"at": time.time(), "pid": os.getpid(), "host": socket.gethostname()})


def _silent_for(run_dir: Path) -> float:
    """Seconds since the newest file of a node's service directory was written (its heartbeat)."""
    try:
        newest = max((p.stat().st_mtime for p in Path(run_dir).iterdir() if p.is_file()), default=0.0)
    except OSError:
        return 0.0
    return time.time() - newest if newest else 0.0


def wait_stopped(run_dirs: Iterable[Path], timeout_s: float = 60.0) -> list[str]:
    """Wait until the daemon of every node directory in ``run_dirs`` has stopped (or died); returns
    the hosts whose daemon still ran at the deadline. A daemon on another node is judged by its
    record, and not waited for once its files are silent for ``LOST_AFTER_S`` (its node is lost:
    crashed or cut off — a campaign's end must not wait a minute for a dead node)."""
    record_paths = [Path(d) / "daemon.json" for d in run_dirs]
    deadline = time.monotonic() + timeout_s
    while True:
        running = []
        for record_path in record_paths:
            record = _read_json(record_path)
            if not record or record.get("state") in ("stopped", "failed"):
                continue
            if record.get("host") == socket.gethostname() and not process_alive(
                    int(record["pid"]), record.get("start_time")):
                continue
            if record.get("host") != socket.gethostname() and _silent_for(record_path.parent) > LOST_AFTER_S:
                continue  # a lost node (crashed, cut off): nothing will come from it, don't wait
            running.append(str(record.get("host")))
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.25)


# --------------------------------------------------------------------------------------- daemon


class _StartAborted(Exception):
    """Raised in the daemon's main thread to abandon a vLLM start-up that nobody waits for any more."""


class NodeDaemon:
    """Runs the node's :class:`~sedscale.serve.service.LLMService` until nobody needs it."""

    def __init__(self, settings: LLMSettings, run_dir: Path, stop_file: Path, idle_grace_s: float) -> None:
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.stop_file = Path(stop_file)
        self.idle_grace_s = idle_grace_s
        self.started_at = time.time()
        self.ready_at: float | None = None
        self.start_time = process_start_time(os.getpid())
        self._signalled = threading.Event()
        self._starting = False
        self._start_done = threading.Event()
        self._stop_reason = "signal"
        self._last_client_seen = time.monotonic()
        self._service: LLMService | None = None
        self._tokens = TokenCounts()  # /metrics token counters summed over scrapes
        # one file per daemon: a resumed campaign's new daemon must not overwrite an earlier run's figures
        self.accounting_file = self.run_dir / f"accounting-{int(self.started_at)}-{os.getpid()}.json"
        self._last_metrics: ServerMetrics | None = None

    def _record(self, state: str, **extra: Any) -> None:
        _write_json(self.run_dir / "daemon.json", {
            "pid": os.getpid(), "start_time": self.start_time, "host": socket.gethostname(), "state": state,
            "started_at": self.started_at, "ready_at": self.ready_at, "updated_at": time.time(), **extra})

    def run(self) -> int:
        """Start the service, serve until a stop condition, stop it; the exit code of the daemon."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self._record("starting")
        with open(self.run_dir / "starts.log", "a") as fh:
            fh.write(f"{self.started_at:.3f} pid={os.getpid()} host={socket.gethostname()}\n")
        not_ready = self._start_service()
        if not_ready is not None:
            return not_ready
        service = self._service
        assert service is not None
        log.warning("LLM service ready on %s: %s", socket.gethostname(), service.base_urls)
        reason = "signal"
        try:
            reason = self._watch()
        finally:
            self._record("stopping", reason=reason)
            self._write_accounting()
            service.stop()
            self._write_accounting(stopped=True)
            self._record("stopped", reason=reason)
        log.warning("LLM service stopped (%s)", reason)
        return 0

    def _on_signal(self, signum: int, frame: object) -> None:
        """SIGTERM/SIGINT: abandon a start-up in progress (its instances are stopped), else stop serving."""
        self._signalled.set()
        if self._starting:
            raise _StartAborted(signal.Signals(signum).name)

    def _start_service(self) -> int | None:
        """Start the instances while a watchdog thread checks the stop conditions; None once ready,
        else the daemon's exit code (0: abandoned because nobody needs it, 1: failed)."""
        from sedscale.serve.service import LLMService

        self._service = service = LLMService(self.settings, run_dir=self.run_dir)
        watchdog = threading.Thread(target=self._watch_start_up, name="sedscale-llm-startup-watch", daemon=True)
        self._starting = True
        watchdog.start()
        try:
            service.start()
            self._starting = False
        except _StartAborted:
            self._starting = False
            service.stop()  # start() stopped what it launched; this also covers a signal after it returned
            self._record("stopped", reason=self._stop_reason)
            log.warning("LLM service start-up abandoned (%s)", self._stop_reason)
            return 0
        except BaseException as exc:  # noqa: BLE001 — recorded for the waiting workers
            self._starting = False
            self._record("failed", error=f"{type(exc).__name__}: {exc}"[:2000])
            log.exception("LLM service failed to start")
            return 1
        finally:
            self._start_done.set()
            watchdog.join()
        self.ready_at = time.time()
        self._record("ready")
        return None

    def _watch_start_up(self) -> None:
        """While vLLM loads (minutes for large weights), stop the start-up once nobody waits for it."""
        while not self._start_done.wait(WATCH_INTERVAL_S):
            reason = self._reason_to_stop()
            if reason is not None:
                self._stop_reason = reason
                os.kill(os.getpid(), signal.SIGTERM)  # handled in the main thread: aborts start()
                return

    def _watch(self) -> str:
        next_accounting = 0.0
        while not self._signalled.wait(WATCH_INTERVAL_S):
            reason = self._reason_to_stop()
            if reason is not None:
                return reason
            now = time.monotonic()
            if now >= next_accounting:
                self._write_accounting()
                next_accounting = now + ACCOUNTING_EVERY_S
        return "signal"

    def _reason_to_stop(self) -> str | None:
        """Why the service should stop now: the driver's request, or no live client for the grace."""
        if self._stop_requested():
            return "the driver asked every node to stop (end of run)"
        now = time.monotonic()
        if self._clients_alive():
            self._last_client_seen = now
        elif now - self._last_client_seen > self.idle_grace_s:
            return f"no worker has used the service for {self.idle_grace_s:.0f} s"
        return None

    def _stop_requested(self) -> bool:
        try:
            return self.stop_file.stat().st_mtime > self.started_at
        except OSError:
            return False

    def _clients_alive(self) -> bool:
        folder = self.run_dir / "clients"
        if not folder.is_dir():
            return False
        alive = False
        for path in folder.iterdir():
            try:
                pid, start = int(path.name), int(path.read_text().strip() or 0) or None
            except (OSError, ValueError):
                continue
            if process_alive(pid, start):
                alive = True
            else:
                path.unlink(missing_ok=True)
        return alive

    def _scrape(self) -> None:
        """Add the node's token counters since the last scrape (counter resets handled by ``-``)."""
        service = self._service
        if service is None:
            return
        try:
            now = service.metrics()
        except Exception:  # noqa: BLE001 — an instance down for a moment loses one sample
            return
        self._tokens.add((now - self._last_metrics).tokens() if self._last_metrics is not None else now.tokens())
        self._last_metrics = now

    def _write_accounting(self, stopped: bool = False) -> None:
        service = self._service
        if service is None:
            return
        if not stopped:
            self._scrape()
        now = time.time()
        s = self.settings
        busy_instance_s = float(sum(service.sampled_busy_s()))
        tokens = self._tokens
        _write_json(self.accounting_file, {
            "host": socket.gethostname(), "daemon_pid": os.getpid(), "instances": s.instances_per_node,
            "devices_per_instance": s.devices_per_instance, "devices_per_node": s.devices_per_node,
            "started_at": self.started_at, "ready_at": self.ready_at, "updated_at": now,
            "stopped_at": now if stopped else None,
            "allocated_gpu_s": s.devices_per_node * (now - self.started_at),
            "busy_instance_s": busy_instance_s, "busy_gpu_s": busy_instance_s * s.devices_per_instance,
            "metrics": {"prompt_tokens": float(tokens.prompt), "generation_tokens": float(tokens.completion),
                        "prompt_tokens_cached": float(tokens.cached), "requests": float(tokens.requests)},
        })


def main(argv: list[str] | None = None) -> int:
    """``python -m sedscale.serve.node --run-dir D --settings F --stop-file S`` (started by
    :func:`ensure_node_service`, not by hand; use ``sedscale serve`` for a foreground service)."""
    ap = argparse.ArgumentParser(prog="python -m sedscale.serve.node", description=main.__doc__)
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--settings", type=Path, required=True)
    ap.add_argument("--stop-file", type=Path, required=True)
    ap.add_argument("--idle-grace-s", type=float, default=DEFAULT_IDLE_GRACE_S)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = LLMSettings.model_validate_json(args.settings.read_text())
    return NodeDaemon(settings, args.run_dir, args.stop_file, args.idle_grace_s).run()


if __name__ == "__main__":
    sys.exit(main())
