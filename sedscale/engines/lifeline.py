"""``python -m sedscale.engines.lifeline --pid P --start T -- CMD...``: run CMD while process P
(started at T) lives, and stop CMD's whole process group within seconds after P dies.

Why: the local site's Parsl worker pool is started in its own process group (so a SIGKILL of the
driver's group misses it) and only notices a lost interchange after its heartbeat threshold — or
never, if the interchange vanished before it connected. Every process the driver starts on this
machine therefore runs under a lifeline tied to the driver's pid *and* start time (a recycled pid
never keeps it alive). Signals the lifeline receives (TERM, INT, HUP, USR1, USR2) go to CMD.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from types import FrameType
from typing import Optional, Sequence

from sedscale.engines.processes import process_alive

POLL_S = 2.0
GRACE_S = 10.0
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def lifeline_command(pid: int, start_time: float, command: Sequence[str]) -> list[str]:
    """``command`` run under a lifeline tied to process ``pid`` started at ``start_time``."""
    return [sys.executable, "-m", "sedscale.engines.lifeline", "--pid", str(pid), "--start", repr(start_time),
            "--", *command]


def _stop_group(child: subprocess.Popen[bytes]) -> None:
    """TERM the child, then KILL whatever is left of this process group after the grace time."""
    try:
        child.terminate()
        child.wait(GRACE_S)
    except (OSError, subprocess.TimeoutExpired):
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(os.getpgid(0), signal.SIGKILL)


def run(pid: int, start_time: float, command: Sequence[str]) -> int:
    """Run ``command`` until it exits (its status) or the watched process dies (then stop it all)."""
    if os.getpgid(0) != os.getpid():
        os.setpgid(0, 0)  # our own group: stopping it never reaches the caller's
    child = subprocess.Popen(list(command))

    def forward(signum: int, frame: Optional[FrameType]) -> None:
        child.send_signal(signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    while True:
        try:
            return child.wait(POLL_S)
        except subprocess.TimeoutExpired:
            pass
        if not process_alive(pid, start_time):
            _stop_group(child)
            return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="sedscale.engines.lifeline", description=__doc__)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--start", type=float, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    return run(args.pid, args.start, command)


if __name__ == "__main__":
    sys.exit(main())
