"""Helpers shared by command modules: consoles that suit a pipe, progress reports and JSON output.

Why: a rich ``Console`` that writes to a pipe or file assumes 80 columns, so a message breaks
mid-sentence ("0 \\nquarantined") and a table cell is cut with "…". Output that is not a terminal
is read by programs and log viewers, which want whole lines: :func:`make_console` gives such a
stream soft wrapping and a width no line reaches. A progress bar is drawn only on a terminal; in
a batch log, :class:`ChunkProgress` writes a plain line per step instead, so a long command never
looks hung.
"""

from __future__ import annotations

import json
import sys
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

#: Columns of a console that writes to a pipe or file: wider than any message or table row.
PIPE_WIDTH = 10_000

#: Seconds between two progress lines written to a pipe (a batch log gets no more than that).
PIPE_PROGRESS_INTERVAL_S = 2.0


def make_console(*, stderr: bool = False) -> Console:
    """A console for stdout (or stderr): the terminal's width on a terminal, full lines on a pipe."""
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, soft_wrap=True, width=PIPE_WIDTH)


err_console = make_console(stderr=True)


def progress_bar(transient: bool = False) -> Progress:
    """A rich progress bar on stderr (stdout stays clean for --json); quiet when not a TTY."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,
    )


class ChunkProgress:
    """Progress of ``total`` items done in chunks, on stderr: a bar on a terminal, else lines.

    ``phase(text)`` names what runs before the first chunk reports (e.g. a grid build), so the
    user sees why nothing has advanced yet; ``advance(k)`` counts ``k`` more items done.
    """

    def __init__(self, description: str, total: int, *, unit: str = "items") -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.done = 0
        self._started = time.perf_counter()
        self._last_line = float("-inf")
        self._bar = progress_bar(transient=True)
        self._task: TaskID | None = None

    def __enter__(self) -> ChunkProgress:
        self._started = time.perf_counter()
        self._bar.__enter__()
        self._task = self._bar.add_task(self.description, total=self.total, rate="")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.__exit__(exc_type, exc, tb)

    @property
    def on_terminal(self) -> bool:
        return err_console.is_terminal

    def phase(self, text: str) -> None:
        """Say what is running now (before or between chunks)."""
        if self.on_terminal and self._task is not None:
            self._bar.update(self._task, description=f"{self.description}: {text}")
        else:
            err_console.print(f"{self.description}: {text}", markup=False, highlight=False)

    def advance(self, count: int) -> None:
        """``count`` more items are done; a pipe gets a line at most every few seconds, and the last."""
        self.done += count
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        rate = f"{self.done / elapsed:,.0f} {self.unit}/s"
        if self.on_terminal and self._task is not None:
            self._bar.update(self._task, advance=count, rate=rate, description=self.description)
            return
        now = time.perf_counter()
        if self.done >= self.total or now - self._last_line >= PIPE_PROGRESS_INTERVAL_S:
            self._last_line = now
            err_console.print(f"{self.description}: {self.done:,}/{self.total:,} {self.unit} "
                              f"({rate}, {elapsed:,.1f} s)", markup=False, highlight=False)


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout (one object, nothing else on the stream)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()
