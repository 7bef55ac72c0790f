"""The one progress bar of parables (rich): a description, the bar, done of total (or bytes
and speed), a free `status` field, elapsed and remaining time. Disabled, it draws nothing."""

from __future__ import annotations

from typing import Any

__all__ = ["progress_bar"]


def progress_bar(enabled: bool = True, *, bytes: bool = False, transient: bool = False,
                 console: Any = None) -> Any:
    """A rich Progress; tasks take `status=` for the text shown after the counts."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    counts: list[Any] = ([DownloadColumn(), TransferSpeedColumn()] if bytes
                         else [MofNCompleteColumn()])
    return Progress(TextColumn("{task.description}"), BarColumn(), *counts,
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                    TimeRemainingColumn(), disable=not enabled, transient=transient,
                    console=console)
