"""Test hooks that make rare moments reachable (crash-safety tests); inert unless env vars are set.

``SEDSCALE_TEST_COMMIT_PAUSE=<seconds>`` pauses every commit between placing its first and its
second chunk file (the worst moment to crash: a torn partition on disk); with
``SEDSCALE_TEST_HOOK_DIR=<dir>`` the paused process first drops ``in-commit-<pid>-<partition>``
there so a test knows when to strike. ``SEDSCALE_TEST_TASK_PAUSE=<seconds>`` pauses each
partition task before its work (with ``task-<pid>-<partition>`` in the hook dir), so a test can
find and kill a worker process. ``SEDSCALE_TEST_GRID_WRITE_PAUSE=<seconds>`` pauses every
grid-cache write between its complete temporary file and the rename (``in-grid-write-<pid>-0``).

A base module (not the campaign layer's) because the SED layer's grid cache calls it too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def _pause(env: str, tag: str, partition_id: int) -> None:
    seconds = os.environ.get(env)
    if not seconds:
        return
    hook_dir = os.environ.get("SEDSCALE_TEST_HOOK_DIR")
    if hook_dir:
        Path(hook_dir, f"{tag}-{os.getpid()}-{partition_id}").touch()
    time.sleep(float(seconds))


def in_commit(partition_id: int) -> None:
    _pause("SEDSCALE_TEST_COMMIT_PAUSE", "in-commit", partition_id)


def in_task(partition_id: int) -> None:
    _pause("SEDSCALE_TEST_TASK_PAUSE", "task", partition_id)


def in_grid_write() -> None:
    _pause("SEDSCALE_TEST_GRID_WRITE_PAUSE", "in-grid-write", 0)
