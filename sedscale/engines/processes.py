"""Processes a run started on this machine, recorded by pid *and* start time so a later
``resume`` stops exactly those — never a process found by name, never a recycled pid.

The driver's recorder thread keeps ``CampaignPaths.processes`` (passed in as a path) in step
with the driver's descendants and the local worker blocks (Parsl starts those in their own
process groups, outside the driver's tree once their launching shell exits). The file only
grows while the run lives: a process that exited stays listed, which is harmless because
stopping it checks the start time first.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import psutil

from sedscale.engines.recorder import PeriodicRecorder
from sedscale.fsutil import atomic_write

#: Start times are compared to this precision (psutil's create_time is derived from clock ticks).
START_TIME_TOLERANCE_S = 0.05


@dataclass(frozen=True)
class ProcessRecord:
    """One process: its pid and its start time (seconds since the epoch, psutil's create_time)."""

    pid: int
    start_time: float


def start_time(pid: int) -> Optional[float]:
    """When process ``pid`` started; None when there is no such process."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def this_process() -> ProcessRecord:
    pid = os.getpid()
    return ProcessRecord(pid, start_time(pid) or 0.0)


def process_alive(pid: int, started: float) -> bool:
    """Whether the process ``pid`` that started at ``started`` is still running (not a zombie)."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - started) > START_TIME_TOLERANCE_S:
            return False
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def tree(roots: Iterable[int]) -> list[ProcessRecord]:
    """Each root process and all its descendants, as records."""
    found: dict[int, ProcessRecord] = {}
    for pid in roots:
        try:
            proc = psutil.Process(pid)
            members = [proc, *proc.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for member in members:
            try:
                found[member.pid] = ProcessRecord(member.pid, float(member.create_time()))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return list(found.values())


def write_records(path: Path, driver: ProcessRecord, records: Iterable[ProcessRecord]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"host": socket.gethostname(), "driver": asdict(driver),
            "processes": [asdict(r) for r in sorted(set(records), key=lambda r: r.pid)]}
    atomic_write(path, json.dumps(data, indent=1).encode(), path.parent)


def read_records(path: Path) -> tuple[Optional[ProcessRecord], list[ProcessRecord], str]:
    """(driver, processes, host) of a processes file; (None, [], "") when absent or unreadable."""
    try:
        data = json.loads(path.read_text())
        driver = ProcessRecord(int(data["driver"]["pid"]), float(data["driver"]["start_time"]))
        records = [ProcessRecord(int(r["pid"]), float(r["start_time"])) for r in data.get("processes", [])]
        return driver, records, str(data.get("host", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None, [], ""


def stop_recorded(path: Path, grace_s: float = 10.0) -> list[ProcessRecord]:
    """Stop what a dead run left on this machine: each recorded process still alive with its
    recorded start time gets SIGTERM, then SIGKILL after ``grace_s``. Returns those signalled.

    Nothing happens when the file names another host (a login node cannot reach those pids) or
    when its driver is this process or still alive (the caller holds the campaign lock, so a
    live driver would be a bug; better to leave it be)."""
    driver, records, host = read_records(path)
    if driver is None or host != socket.gethostname() or driver.pid == os.getpid():
        return []
    if process_alive(driver.pid, driver.start_time):
        return []
    alive = [r for r in records if r.pid != os.getpid() and process_alive(r.pid, r.start_time)]
    _signal(alive, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(process_alive(r.pid, r.start_time) for r in alive):
        time.sleep(0.2)
    _signal([r for r in alive if process_alive(r.pid, r.start_time)], signal.SIGKILL)
    path.unlink(missing_ok=True)
    return alive


def _signal(records: Iterable[ProcessRecord], sig: signal.Signals) -> None:
    for r in records:
        try:
            os.kill(r.pid, sig)
        except (ProcessLookupError, PermissionError):
            continue


class ProcessRecorder(PeriodicRecorder):
    """Background thread: records this process's descendants and ``extra_roots()``'s trees."""

    def __init__(self, path: Path, extra_roots: Callable[[], list[int]], period: float = 1.0) -> None:
        super().__init__(period, "sedscale-process-recorder")
        self.path, self.extra_roots = Path(path), extra_roots
        self.driver = this_process()
        self._seen: set[ProcessRecord] = set()

    def start(self) -> None:
        self.record()
        super().start()

    def record(self) -> None:
        try:
            roots = [os.getpid(), *self.extra_roots()]
        except Exception:  # noqa: BLE001 - the engine may be shutting down
            roots = [os.getpid()]
        now = {r for r in tree(roots) if r.pid != os.getpid()}
        if now - self._seen:
            self._seen |= now
            write_records(self.path, self.driver, self._seen)

    def stop(self) -> None:
        """Stop recording; the run ended cleanly, so there is nothing for a resume to stop."""
        self.halt(join_timeout=5)
        self.path.unlink(missing_ok=True)
