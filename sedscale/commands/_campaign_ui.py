"""Shared pieces of the campaign commands: the rich progress bar and the run summary.

Both count partitions and sources apart and say which: the bar's failures are *partitions*
whose task failed after every retry, the summary's are *sources* (rows) with status ``failed``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from sedscale.driver import RunEvent


def progress_runner(console: "Console") -> tuple["Progress", Callable[["RunEvent"], None]]:
    """A rich Progress (partitions, sources/s, failed partitions, ETA) and the driver callback
    that feeds it."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    progress = Progress(
        TextColumn("[bold]partitions"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} sources/s"),
        TextColumn("failed partitions {task.fields[failed]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task: Optional["TaskID"] = None
    failed = 0

    def on_event(event: "RunEvent") -> None:
        nonlocal task, failed
        if task is None:
            task = progress.add_task("fit", total=event.partitions_todo, rate="-", failed=0)
        outcome = event.outcome
        if outcome is None:
            return
        if not outcome.ok:
            failed += 1
            console.print(f"[yellow]partition {outcome.partition_id} failed after {outcome.attempts} "
                          f"attempt(s): {outcome.error}")
        elapsed = max(time.time() - event.started_at, 1e-9)
        progress.update(task, completed=event.partitions_finished,
                        rate=f"{event.rows_finished / elapsed:,.0f}", failed=failed)

    return progress, on_event


def print_summary(console: "Console", root: str) -> None:
    """One line: rows committed, sources by status, partitions by state — each labelled."""
    from sedscale.campaign.status import campaign_status

    st = campaign_status(root, verify="none")
    console.print(
        f"[bold]{st.name}[/]: {st.rows_committed:,}/{st.rows_total:,} rows — sources fitted {st.sources_fitted:,}, "
        f"quarantined {st.sources_quarantined:,}, failed {st.sources_failed:,}; partitions done "
        f"{st.partitions_done}, failed {st.partitions_failed}, pending {st.partitions_pending}"
    )
