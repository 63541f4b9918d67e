"""The driver's end-of-run wait for the per-node LLM services does not wait for a lost node's: a
service on another host whose files have been silent for ``LOST_AFTER_S`` (its node crashed or
was cut off) is skipped at once, while a live one on another host is still waited for."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sedscale.serve.node import LOST_AFTER_S, wait_stopped


def _service_dir(root: Path, host: str, age_s: float) -> Path:
    folder = root / host
    folder.mkdir(parents=True)
    record = folder / "daemon.json"
    record.write_text(json.dumps({"host": host, "pid": 1, "start_time": 1, "state": "ready"}))
    then = time.time() - age_s
    os.utime(record, (then, then))
    return folder


def test_a_silent_service_on_another_node_is_not_waited_for(tmp_path: Path) -> None:
    lost = _service_dir(tmp_path, "node-lost", LOST_AFTER_S + 5)
    t0 = time.monotonic()
    assert wait_stopped([lost], timeout_s=20) == []
    assert time.monotonic() - t0 < 2


def test_a_live_service_on_another_node_is_still_waited_for(tmp_path: Path) -> None:
    live = _service_dir(tmp_path, "node-live", 0)
    t0 = time.monotonic()
    assert wait_stopped([live], timeout_s=1.5) == ["node-live"]
    assert time.monotonic() - t0 >= 1.5
