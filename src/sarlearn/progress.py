"""The rich progress bar shared by a run and a sweep: label, bar, done/total, the caller's own
columns, elapsed and remaining time."""

from __future__ import annotations

from typing import Any


def progress_bar(label: str, *fields: str, console: Any = None) -> Any:
    """A ``rich.progress.Progress`` (not started) with one text column per entry of ``fields``,
    e.g. ``"|e| {task.fields[err]}"``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(f) for f in fields),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
