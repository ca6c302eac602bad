"""Rich progress bars for the long steps of a command, shown only on a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from icp_sync import progress

__all__ = ["bars", "wanted"]


def wanted(*streams: TextIO) -> bool:
    """Bars only when every stream is a terminal (never in pipes, files, CI logs, ``--json``)."""
    return all(stream.isatty() for stream in streams)


class _RichListener:
    def __init__(self, display: Progress) -> None:
        self._display = display
        self._tasks: dict[int, TaskID] = {}

    def started(self, key: int, description: str, total: float | None) -> None:
        self._tasks[key] = self._display.add_task(description, total=total)

    def advanced(self, key: int, amount: float) -> None:
        self._display.advance(self._tasks[key], amount)

    def finished(self, key: int) -> None:
        task = self._tasks.pop(key)
        self._display.update(task, visible=False)


@contextmanager
def bars(stream: TextIO, *, enabled: bool) -> Iterator[None]:
    """Show the steps run inside the block as bars on ``stream`` (when ``enabled``)."""
    if not enabled:
        yield
        return
    display = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=stream),
        transient=True,
    )
    with display, progress.listening(_RichListener(display)):
        yield
