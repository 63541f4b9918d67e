"""The per-node service daemon's start/share/stop logic, against a FAKE vLLM server.

The fake (a stdlib HTTP server answering ``/health``, ``/v1/models`` and ``/metrics``) stands in
for vLLM so the lock and life-cycle logic can be exercised in seconds with many concurrent
callers; the real thing is exercised with the CPU vLLM on Slurm in tests/hpc/test_node_llm.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sedscale.serve.node import DEFAULT_IDLE_GRACE_S, ensure_node_service, process_alive, request_stop
from sedscale.serve.settings import LLMSettings
from sedscale.testing.llm import free_base_port

FAKE_SERVER = r'''
import argparse, http.server, json, signal, sys
ap = argparse.ArgumentParser()
ap.add_argument("-m"); ap.add_argument("--host"); ap.add_argument("--port", type=int)
args, _ = ap.parse_known_args()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = {"/health": b"", "/v1/models": json.dumps({"data": [{"id": "fake"}]}).encode(),
                "/metrics": b"vllm:num_requests_running 0\nvllm:prompt_tokens_total 7\n"}.get(self.path)
        self.send_response(200 if body is not None else 404); self.end_headers()
        self.wfile.write(body or b"")
    def log_message(self, *a): pass
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
http.server.HTTPServer((args.host, args.port), H).serve_forever()
'''

CALLER = r'''
import json, sys
from pathlib import Path
from sedscale.serve.node import ensure_node_service
from sedscale.serve.settings import LLMSettings
settings = LLMSettings.model_validate_json(Path(sys.argv[1]).read_text())
handle = ensure_node_service(settings, Path(sys.argv[2]), Path(sys.argv[2]).parent / "stop",
                             idle_grace_s=float(sys.argv[3]))
print(json.dumps({"daemon_pid": handle.daemon_pid, "model": handle.model}))
'''


@pytest.fixture()
def fake_settings(tmp_path: Path) -> LLMSettings:
    model = tmp_path / "weights"
    model.mkdir()
    (model / "config.json").write_text("{}")
    fake = tmp_path / "fake_vllm.py"
    fake.write_text(FAKE_SERVER)
    python = tmp_path / "fake-python"  # what LLMSettings.python runs as "<python> -m vllm..."
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    python.chmod(0o755)
    return LLMSettings(model_path=str(model), served_model_name="fake-model", accelerator="cpu",
                       base_port=free_base_port(), python=str(python), startup_timeout_s=60,
                       api_key_env=None)


def _wait(predicate, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def _daemon_state(run_dir: Path) -> dict:
    return json.loads((run_dir / "daemon.json").read_text())


def test_fake_server_concurrent_workers_start_exactly_one_service(fake_settings: LLMSettings, tmp_path: Path) -> None:
    run_dir = tmp_path / "llm" / "node-a"
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(fake_settings.model_dump_json())
    procs = [subprocess.Popen([sys.executable, "-c", CALLER, str(settings_file), str(run_dir), "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(5)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    pids = {json.loads(o)["daemon_pid"] for o, _ in outs}
    assert len(pids) == 1, f"several daemons started: {pids}"
    starts = (run_dir / "starts.log").read_text().splitlines()
    assert len(starts) == 1
    assert {json.loads(o)["model"] for o, _ in outs} == {"fake-model"}
    # every caller registered; all have exited, so the daemon stops after its 2 s grace
    daemon_pid = pids.pop()
    assert _wait(lambda: not process_alive(daemon_pid, None)), "daemon outlived its clients"
    state = _daemon_state(run_dir)
    assert state["state"] == "stopped" and "no worker" in state["reason"]
    acc = json.loads(next(run_dir.glob("accounting-*.json")).read_text())
    assert acc["stopped_at"] is not None and acc["devices_per_node"] == 0 and acc["allocated_gpu_s"] == 0.0


def test_fake_server_stop_request_ends_the_service_and_a_new_one_starts_after(fake_settings: LLMSettings,
                                                                              tmp_path: Path) -> None:
    run_dir, stop_file = tmp_path / "llm" / "node-a", tmp_path / "llm" / "stop"
    first = ensure_node_service(fake_settings, run_dir, stop_file, idle_grace_s=600)  # this process is its client
    assert first.alive() and ensure_node_service(fake_settings, run_dir, stop_file) == first  # cached, same daemon
    request_stop(stop_file)
    assert _wait(lambda: not first.alive()), "daemon ignored the driver's stop request"
    assert _daemon_state(run_dir)["state"] == "stopped"
    second = ensure_node_service(fake_settings, run_dir, stop_file, idle_grace_s=600)
    try:
        assert second.daemon_pid != first.daemon_pid and second.alive()
        assert len((run_dir / "starts.log").read_text().splitlines()) == 2
    finally:
        os.kill(second.daemon_pid, 15)
        assert _wait(lambda: not second.alive())


def test_fake_server_start_failure_names_the_log(fake_settings: LLMSettings, tmp_path: Path) -> None:
    from sedscale.serve.errors import ServeError

    broken = fake_settings.model_copy(update={"python": str(tmp_path / "no-such-python")})
    with pytest.raises(ServeError, match="daemon.log|failed to start"):
        ensure_node_service(broken, tmp_path / "llm" / "node-a", tmp_path / "llm" / "stop", idle_grace_s=1)


SLOW_FAKE_SERVER = r'''
import os, sys, time
from pathlib import Path
Path(sys.argv[1]).write_text(str(os.getpid()))  # the "vLLM" process the daemon launched
time.sleep(600)                                 # still loading weights when its workers die
'''


def test_fake_server_daemon_exits_when_its_workers_die_during_start_up(fake_settings: LLMSettings,
                                                                        tmp_path: Path) -> None:
    """No orphans: the only worker is SIGKILLed while vLLM is still starting and nobody writes the
    stop file; the daemon abandons the start-up and stops its instance within the grace."""
    slow = tmp_path / "slow_vllm.py"
    slow.write_text(SLOW_FAKE_SERVER)
    instance_pid_file = tmp_path / "instance.pid"
    python = tmp_path / "slow-python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {slow} {instance_pid_file}\n")
    python.chmod(0o755)
    settings = fake_settings.model_copy(update={"python": str(python), "startup_timeout_s": 600})
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(settings.model_dump_json())
    run_dir = tmp_path / "llm" / "node-a"
    worker = subprocess.Popen([sys.executable, "-c", CALLER, str(settings_file), str(run_dir), "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait(instance_pid_file.exists, 60), "the daemon never launched its instance"
        daemon_pid = int(_daemon_state(run_dir)["pid"])
        instance_pid = int(instance_pid_file.read_text())
        assert process_alive(daemon_pid, None) and process_alive(instance_pid, None)
    finally:
        worker.kill()
        worker.wait()
    died_at = time.monotonic()
    assert _wait(lambda: not process_alive(daemon_pid, None), 30), "the daemon outlived its dead worker"
    assert time.monotonic() - died_at < 2 + 10, "the daemon waited for the start-up instead of its grace"
    assert not process_alive(instance_pid, None), "the daemon's vLLM instance was left running"
    state = _daemon_state(run_dir)
    assert state["state"] == "stopped" and "no worker" in state["reason"]
    assert not (tmp_path / "llm" / "stop").exists()


def test_default_grace_keeps_dead_services_under_a_minute() -> None:
    """The contract (docs/CAMPAIGNS.md): a dead campaign's node services are gone within 60 s —
    grace, one watch interval and the instances' SIGTERM/SIGKILL stop must fit in it."""
    from sedscale.serve.node import WATCH_INTERVAL_S

    assert DEFAULT_IDLE_GRACE_S + WATCH_INTERVAL_S <= 45
