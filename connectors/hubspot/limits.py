"""Client-side pacing for HubSpot: the burst window, the search limit, the daily count.

HubSpot limits a portal's calls per rolling ten seconds (``X-HubSpot-RateLimit-Max`` per
``-Interval-Milliseconds``, ``-Remaining`` left), per day (``-Daily``, ``-Daily-Remaining``;
absent for OAuth apps) and, apart from those, search calls per second (about 5 per token).
:class:`Limiter` learns the limits from every answer's headers and says how long to wait
before the next call, so the portal never has to refuse one. One limiter serves every
connector of a portal and app in this process (successive cycles pace together).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from connectors.hubspot.config import HubSpotConfig

__all__ = ["Limiter", "shared_limiter"]


class Limiter:
    """Client-side pacing: own calls in the burst window and search calls in the last second,
    against the limits the portal's headers report."""

    def __init__(self, config: HubSpotConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self._lock = threading.Lock()
        self.burst_max: int | None = None
        self.window_s = 10.0
        self.remaining: int | None = None
        self.daily: int | None = None
        self.daily_remaining: int | None = None
        self._calls: deque[float] = deque()
        self._searches: deque[float] = deque()

    def delay(self, *, search: bool) -> float:
        """Seconds to wait before the next call (0 when it may go now); counts it when 0."""
        now = self.clock()
        with self._lock:
            if search:
                return self._take(
                    self._searches, 1.0, max(1, int(self.config.search_per_second)), now
                )
            allowance = None
            if self.burst_max is not None:
                allowance = max(1, self.burst_max - self.config.burst_reserve)
            spent = self.remaining is not None and self.remaining <= self.config.burst_reserve
            if spent and self._calls and now - self._calls[-1] < self.window_s:
                # the portal says the window is (nearly) spent, maybe by other apps too
                self.remaining = None
                return self.window_s
            return self._take(self._calls, self.window_s, allowance, now)

    @staticmethod
    def _take(calls: deque[float], window: float, allowance: int | None, now: float) -> float:
        margin = 0.05  # the portal's clock and ours differ by a request's travel time
        while calls and now - calls[0] >= window + margin:
            calls.popleft()
        if allowance is not None and len(calls) >= allowance:
            return calls[0] + window + margin - now
        calls.append(now)
        return 0.0

    def observe(self, headers: Any) -> None:
        """Learn the limits from an answer's ``X-HubSpot-RateLimit-*`` headers."""

        def number(name: str) -> int | None:
            value = headers.get(name)
            try:
                return int(value) if value is not None else None
            except ValueError:
                return None

        with self._lock:
            self.burst_max = number("X-HubSpot-RateLimit-Max") or self.burst_max
            interval = number("X-HubSpot-RateLimit-Interval-Milliseconds")
            if interval:
                self.window_s = interval / 1000
            self.remaining = number("X-HubSpot-RateLimit-Remaining")
            self.daily = number("X-HubSpot-RateLimit-Daily") or self.daily
            daily_remaining = number("X-HubSpot-RateLimit-Daily-Remaining")
            if daily_remaining is not None:
                self.daily_remaining = daily_remaining


_LIMITERS: dict[tuple[str, str, str], Limiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(config: HubSpotConfig, clock: Callable[[], float]) -> Limiter:
    """One limiter per portal and app in this process: the limits are the portal's, so
    successive connectors (cycles, commands) pace together."""
    identity = config.client_id or config.access_token
    key = (
        config.base_url.rstrip("/"),
        config.auth,
        identity.get_secret_value()[-12:] if identity else "",
    )
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None or limiter.clock is not clock:
            limiter = _LIMITERS[key] = Limiter(config, clock)
        limiter.config = config
        return limiter
