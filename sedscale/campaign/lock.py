"""One driver per campaign: an advisory ``flock`` on ``state/lock``.

The kernel drops the lock when the holder dies (even by SIGKILL), so a crashed driver never
blocks ``resume``. Workers do not take it; stale workers are fenced by the run id instead
(:mod:`sedscale.campaign.commit`).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from typing import Iterator

from sedscale.campaign.paths import CampaignPaths
from sedscale.errors import CampaignError


@contextmanager
def campaign_lock(paths: CampaignPaths) -> Iterator[None]:
    """Hold the campaign for this process; refuse when another live driver holds it."""
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise CampaignError(
                f"{paths.root}: another sedscale driver (pid {holder}) is running this campaign; "
                "wait for it or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def is_locked(paths: CampaignPaths) -> bool:
    """True while a driver holds the campaign (used by ``status``)."""
    if not paths.lock_file.exists():
        return False
    fd = os.open(paths.lock_file, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
