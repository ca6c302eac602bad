"""Per-endpoint API accounting: calls, records read and records written.

Exposed by every sandbox port at ``GET /__sandbox/stats`` (contract) so that tests and
benchmarks count CRM API calls exactly as a real org's limits would.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

__all__ = ["ApiStats"]


class ApiStats:
    """Thread-safe counters of API calls and records, by endpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, int] = defaultdict(int)
        self._read: dict[str, int] = defaultdict(int)
        self._written: dict[str, int] = defaultdict(int)

    def record(self, endpoint: str, *, records_read: int = 0, records_written: int = 0) -> None:
        """Count one call to ``endpoint`` (a name such as ``"GET query"``) and its records."""
        with self._lock:
            self._calls[endpoint] += 1
            self._read[endpoint] += records_read
            self._written[endpoint] += records_written

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._calls.clear()
            self._read.clear()
            self._written.clear()

    def snapshot(self) -> dict[str, Any]:
        """The contract JSON: ``calls``, ``by_endpoint``, ``records_read``, ``records_written``."""
        with self._lock:
            by_endpoint = {
                name: {
                    "calls": self._calls[name],
                    "records_read": self._read[name],
                    "records_written": self._written[name],
                }
                for name in sorted(self._calls.keys() | self._read.keys() | self._written.keys())
            }
            return {
                "calls": sum(self._calls.values()),
                "by_endpoint": by_endpoint,
                "records_read": sum(self._read.values()),
                "records_written": sum(self._written.values()),
            }
