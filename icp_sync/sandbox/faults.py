"""Deterministic fault injection for the sandbox.

A :class:`FaultProfile` says how hostile the sandbox is; a :class:`FaultInjector` draws from
a seeded random stream, so the same profile and the same sequence of requests give the same
faults. Profiles come from the CLI (``--faults flaky`` or ``--faults "server_error=0.1,seed=3"``)
or from ``POST /__sandbox/faults``.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["PROFILES", "FaultInjector", "FaultProfile", "parse_profile"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultProfile:
    """How often the sandbox misbehaves.

    Attributes:
        seed: Seed of the random stream the faults are drawn from.
        server_error: Probability that a request answers 503 (Salesforce) or 502/503 (HubSpot).
        rate_limit: Probability that a request is refused for rate (HubSpot 429 ten-secondly,
            Salesforce 403 REQUEST_LIMIT_EXCEEDED).
        lock_row: Per-record probability of UNABLE_TO_LOCK_ROW on a Salesforce write.
        validation: Per-record probability of a validation-rule error on a write.
        session_expiry_after: After this many API calls with one access token, the token
            expires (401); ``0`` never expires.
        latency_ms: Added latency per request, in milliseconds.
    """

    seed: int = 0
    server_error: float = 0.0
    rate_limit: float = 0.0
    lock_row: float = 0.0
    validation: float = 0.0
    session_expiry_after: int = 0
    latency_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


PROFILES: dict[str, FaultProfile] = {
    "none": FaultProfile(),
    "flaky": FaultProfile(server_error=0.05, rate_limit=0.03, lock_row=0.03, validation=0.01),
    "hostile": FaultProfile(
        server_error=0.15,
        rate_limit=0.1,
        lock_row=0.1,
        validation=0.03,
        session_expiry_after=50,
        latency_ms=5,
    ),
}

_PROBABILITIES = ("server_error", "rate_limit", "lock_row", "validation")


def parse_profile(text: str) -> FaultProfile:
    """Parse ``"flaky"``, ``"server_error=0.1,lock_row=0.05"`` or ``"hostile,seed=3"``.

    Raises:
        ValueError: On an unknown profile name or key, or an out-of-range value.
    """
    profile = FaultProfile()
    for raw in filter(None, (part.strip() for part in text.split(","))):
        if "=" not in raw:
            if raw not in PROFILES:
                raise ValueError(f"unknown fault profile {raw!r}; known: {', '.join(PROFILES)}")
            profile = replace(PROFILES[raw], seed=profile.seed)
            continue
        key, _, value = (s.strip() for s in raw.partition("="))
        profile = from_mapping({**profile.as_dict(), key: value})
    return profile


def from_mapping(values: dict[str, Any]) -> FaultProfile:
    """Build a profile from a mapping (JSON body or parsed text), validating every key."""
    known = {f.name for f in fields(FaultProfile)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
    parsed: dict[str, Any] = {}
    for key, value in values.items():
        if key in _PROBABILITIES:
            number = float(value)
            if not 0.0 <= number <= 1.0:
                raise ValueError(f"{key} must be a probability between 0 and 1, got {value!r}")
            parsed[key] = number
        else:
            number_int = int(value)
            if number_int < 0:
                raise ValueError(f"{key} must not be negative, got {value!r}")
            parsed[key] = number_int
    return FaultProfile(**parsed)


class FaultInjector:
    """Draws faults from a profile's seeded stream; safe to share between server threads."""

    def __init__(self, profile: FaultProfile | None = None) -> None:
        self._lock = threading.Lock()
        self._profile = profile or FaultProfile()
        self._rng = random.Random(self._profile.seed)

    @property
    def profile(self) -> FaultProfile:
        """The profile in force."""
        return self._profile

    def set_profile(self, profile: FaultProfile) -> None:
        """Replace the profile and restart the random stream from its seed."""
        with self._lock:
            self._profile = profile
            self._rng = random.Random(profile.seed)

    def _draw(self, probability: float) -> bool:
        if probability <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < probability

    def server_error(self) -> bool:
        """Whether this request should fail with a 5xx."""
        return self._draw(self._profile.server_error)

    def rate_limited(self) -> bool:
        """Whether this request should be refused for rate."""
        return self._draw(self._profile.rate_limit)

    def lock_row(self) -> bool:
        """Whether this record write should fail with UNABLE_TO_LOCK_ROW."""
        return self._draw(self._profile.lock_row)

    async def delay(self) -> None:
        """Sleep for the profile's added latency, if any."""
        if self._profile.latency_ms > 0:
            await asyncio.sleep(self._profile.latency_ms / 1000)
