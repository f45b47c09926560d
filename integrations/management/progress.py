"""A terminal progress bar for the batch commands (``rich``; nothing is drawn when the output is
not a terminal, e.g. in cron, tests or a pipe: the command's summary line says what was done)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class BatchProgress:
    """``integrations.services.encryption.Progress`` drawn as one bar per step on stderr."""

    def __init__(self) -> None:
        console = Console(stderr=True)
        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=console, disable=not console.is_terminal,
        )  # fmt: skip
        self._task = None

    def __enter__(self) -> BatchProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._bar.stop()

    def step_started(self, label: str, total: int) -> None:
        self._task = self._bar.add_task(label, total=total)

    def advanced(self, rows: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, rows)
