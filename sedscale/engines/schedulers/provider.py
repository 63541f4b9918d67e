"""Parsl's batch providers with two additions: a configurable status poll and a dry-run mode.

SlurmProvider / PBSProProvider poll every 60 s (a fixed property); polling at the site's
``status_poll_s`` lets a lost block be noticed and replaced by ``htex_auto_scale`` soon. In dry
run, commands are recorded instead of run, so ``sedscale sites show`` renders the exact batch
script a block would submit without submitting it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, TypeVar

from sedscale.engines.schedulers.base import DRY_RUN_JOB_ID

if TYPE_CHECKING:
    from parsl.providers.base import ExecutionProvider

P = TypeVar("P", bound="ExecutionProvider")


def configurable_provider(base: type[P], *, poll_s: int, dry_run: bool) -> type[P]:
    """A subclass of Parsl provider ``base`` polling every ``poll_s`` seconds (and, in
    ``dry_run``, answering its own submit commands with a placeholder job id)."""

    class Provider(base):  # type: ignore[valid-type,misc]
        commands_seen: list[str]

        @property
        def status_polling_interval(self) -> int:
            return poll_s

        def execute_wait(self, cmd: str, timeout: Optional[int] = None) -> Any:
            if not dry_run:
                return super().execute_wait(cmd, timeout) if timeout is not None else super().execute_wait(cmd)
            self.commands_seen = getattr(self, "commands_seen", []) + [cmd]
            if cmd.startswith("sbatch"):
                return 0, f"Submitted batch job {DRY_RUN_JOB_ID}", ""
            if cmd.startswith("qsub"):
                return 0, f"{DRY_RUN_JOB_ID}.pbs", ""
            return 0, "", ""

    Provider.__name__ = base.__name__
    Provider.__qualname__ = base.__qualname__
    return Provider
