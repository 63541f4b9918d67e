"""Shared pieces of the campaign commands: the rich progress bar and the run summary."""

from __future__ import annotations

import time
from typing import Any, Callable


def progress_runner(console: Any) -> tuple[Any, Callable[[Any], None]]:
    """A rich Progress (partitions, sources/s, ETA) and the driver callback that feeds it."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    progress = Progress(
        TextColumn("[bold]partitions"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} sources/s"),
        TextColumn("failed {task.fields[failed]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    state: dict[str, Any] = {"task": None, "failed": 0}

    def on_event(event: Any) -> None:
        if state["task"] is None:
            state["task"] = progress.add_task("fit", total=event.partitions_todo, rate="-", failed=0)
        outcome = event.outcome
        if outcome is None:
            return
        if not outcome.ok:
            state["failed"] += 1
            console.print(f"[yellow]partition {outcome.partition_id} failed after {outcome.attempts} "
                          f"attempt(s): {outcome.error}")
        elapsed = max(time.time() - event.started_at, 1e-9)
        progress.update(state["task"], completed=event.partitions_finished,
                        rate=f"{event.rows_finished / elapsed:,.0f}", failed=state["failed"])

    return progress, on_event


def print_summary(console: Any, root: str) -> None:
    from sedscale.campaign.status import campaign_status

    st = campaign_status(root, verify="none")
    console.print(
        f"[bold]{st.name}[/]: {st.rows_committed:,}/{st.rows_total:,} rows — fitted {st.sources_fitted:,}, "
        f"quarantined {st.sources_quarantined:,}, failed {st.sources_failed:,}; partitions done "
        f"{st.partitions_done}, failed {st.partitions_failed}, pending {st.partitions_pending}"
    )
