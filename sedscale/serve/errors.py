"""Errors of the node's LLM service, each naming its cause and the log file to read.

They subclass :class:`sedscale.errors.SedscaleError` so the CLI prints one line instead of a
traceback; a missing model path is a configuration fault (exit code 3), the rest exit 1.
"""

from __future__ import annotations

from pathlib import Path

from sedscale.errors import ConfigError, SedscaleError


class ServeError(SedscaleError):
    """The LLM service could not start or keep serving."""


class ModelPathError(ConfigError):
    """The weights directory named by ``llm.model_path`` does not exist on this node."""


class PortInUseError(ServeError):
    """Another process already listens on an instance's port."""


class InstanceStartError(ServeError):
    """An instance exited, or never answered ``/health``, before its start-up deadline."""

    def __init__(self, message: str, log_file: Path | None = None) -> None:
        super().__init__(message)
        self.log_file = log_file


class NoHealthyInstanceError(ServeError):
    """Every instance is down (or gave up restarting) and none came back in time."""


def log_tail(path: Path, lines: int = 15, max_bytes: int = 64_000) -> str:
    """The last ``lines`` lines of a log file, for error messages (empty if unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
