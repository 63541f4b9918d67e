"""Start-up failures are clear errors, within their deadline, naming the cause and the log file.

These use real processes but not vLLM (a Python one-liner stands in where the point is what the
manager does with a process that never listens or exits at once), so they take seconds.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from sedscale.serve.errors import InstanceStartError, ModelPathError, PortInUseError
from sedscale.serve.instances import InstanceState, VLLMInstance
from sedscale.serve.service import LLMService
from sedscale.serve.settings import LLMSettings
from sedscale.testing.llm import free_base_port


def _settings(model: Path, port: int, **kw: object) -> LLMSettings:
    return LLMSettings(model_path=str(model), served_model_name="m", accelerator="cpu", base_port=port,
                       startup_timeout_s=5, **kw)  # fmt: skip


def test_missing_model_path_fails_before_any_process_starts(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-weights"
    service = LLMService(_settings(missing, free_base_port()), run_dir=tmp_path / "run")
    t0 = time.monotonic()
    with pytest.raises(ModelPathError) as info:
        service.start()
    assert time.monotonic() - t0 < 1
    assert "llm.model_path" in str(info.value) and str(missing) in str(info.value)
    assert service.instances == [] and not (tmp_path / "run").exists()


def test_unset_variable_in_model_path_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEDSCALE_NO_SUCH_VAR", raising=False)
    settings = _settings(Path("/lustre/$SEDSCALE_NO_SUCH_VAR/w"), free_base_port())
    with pytest.raises(ModelPathError, match="environment variable"):
        LLMService(settings, run_dir=tmp_path).start()


def test_port_in_use_is_a_clear_error_naming_port_and_log(tmp_path: Path) -> None:
    model = tmp_path / "weights"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        service = LLMService(_settings(model, port), run_dir=tmp_path / "run")
        t0 = time.monotonic()
        with pytest.raises(PortInUseError) as info:
            service.start()
    assert time.monotonic() - t0 < 2
    message = str(info.value)
    assert f"port {port}" in message and "already in use" in message and "vllm-0.log" in message


def _instance(tmp_path: Path, code: str, timeout_s: float) -> VLLMInstance:
    return VLLMInstance(
        0, [sys.executable, "-c", code], dict(os.environ), host="127.0.0.1", port=free_base_port(),
        log_file=tmp_path / "inst.log", startup_timeout_s=timeout_s,
    )  # fmt: skip


def test_process_that_never_opens_its_port_fails_at_the_deadline_and_is_stopped(tmp_path: Path) -> None:
    inst = _instance(tmp_path, "import time; print('loading forever', flush=True); time.sleep(600)", 3.0)
    t0 = time.monotonic()
    with pytest.raises(InstanceStartError) as info:
        inst.start()
    elapsed = time.monotonic() - t0
    assert 3.0 <= elapsed < 8.0
    message = str(info.value)
    assert "did not answer /health within" in message and str(tmp_path / "inst.log") in message
    assert "loading forever" in message  # the log's last lines are quoted
    assert info.value.log_file == tmp_path / "inst.log"
    assert inst.state is InstanceState.DOWN and inst.pid is None  # stopped, by its process group


def test_process_that_exits_during_startup_fails_at_once_with_its_log(tmp_path: Path) -> None:
    inst = _instance(tmp_path, "import sys; print('bad flag --frobnicate'); sys.exit(2)", 60.0)
    t0 = time.monotonic()
    with pytest.raises(InstanceStartError) as info:
        inst.start()
    assert time.monotonic() - t0 < 10
    assert "exited with code 2" in str(info.value) and "bad flag --frobnicate" in str(info.value)


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print('CHILD' + '-PID', child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    inst = _instance(tmp_path, code, 5.0)
    inst.launch()
    for _ in range(100):
        text = (tmp_path / "inst.log").read_text()
        if "CHILD-PID " in text:
            break
        time.sleep(0.1)
    child = int(text.split("CHILD-PID ")[1].split()[0])
    inst.stop(grace_s=5)
    time.sleep(0.2)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Running (a zombie left for an init that does not reap counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def test_staging_copies_weights_once_per_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sedscale.serve.staging import prepare_model

    source = tmp_path / "orion" / "AstroSage-8B"
    source.mkdir(parents=True)
    (source / "model.safetensors").write_bytes(b"x" * 1000)
    (source / "config.json").write_text("{}")
    monkeypatch.setenv("SEDSCALE_TEST_BB", str(tmp_path / "bb"))
    settings = _settings(source, free_base_port(), staging={"dest": "$SEDSCALE_TEST_BB/models"})
    staged = prepare_model(settings)
    assert staged == tmp_path / "bb" / "models" / "AstroSage-8B"
    assert (staged / "model.safetensors").read_bytes() == b"x" * 1000
    mtime = (staged / "model.safetensors").stat().st_mtime_ns
    assert prepare_model(settings) == staged  # complete copy reused
    assert (staged / "model.safetensors").stat().st_mtime_ns == mtime
    (source / "model.safetensors").write_bytes(b"y" * 2000)  # source changed: copied again
    assert (prepare_model(settings) / "model.safetensors").read_bytes() == b"y" * 2000
