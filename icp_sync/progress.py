"""Progress of long steps, told to whoever listens: a rich bar on a terminal, else nobody.

The pipeline marks its long steps with :func:`step` and advances them; the CLI installs a
listener (:func:`listening`) only when both output streams are a terminal. With no listener
every call is a no-op, so the daemon and scripts pay nothing. The listener lives in a
context variable: a daemon thread never reports into a CLI's bar.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

__all__ = ["Listener", "listening", "step"]


class Listener(Protocol):
    """**Protocol**: shows steps (a rich progress display implements it)."""

    def started(self, key: int, description: str, total: float | None) -> None:
        """A step began (``total`` units, or unknown)."""
        ...

    def advanced(self, key: int, amount: float) -> None:
        """The step moved on by ``amount`` units."""
        ...

    def finished(self, key: int) -> None:
        """The step ended."""
        ...


_listener: ContextVar[Listener | None] = ContextVar("icp_sync_progress", default=None)
_keys = itertools.count(1)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Report the steps run inside the block to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


@contextmanager
def step(description: str, total: float | None = None) -> Iterator[Callable[[float], None]]:
    """A long step; the block advances it by calling what it yields with a number of units."""
    listener = _listener.get()
    if listener is None:
        yield lambda _: None
        return
    key = next(_keys)
    listener.started(key, description, total)
    try:
        yield lambda amount: listener.advanced(key, amount)
    finally:
        listener.finished(key)
