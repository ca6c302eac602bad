"""The single-writer lease repository: one process at a time writes to the CRM and the store.

A lease is a row (``leases``) naming its owner, host, pid, when it was taken and when it
expires. Taking it is one conditional ``UPDATE`` (free, expired, or already ours) followed,
when no row exists yet, by an ``INSERT ... ON CONFLICT DO NOTHING``: both are atomic on SQLite
(one writer at a time) and PostgreSQL (row lock, ``WHERE`` re-checked), so two processes can
never both succeed. The holder renews it from a heartbeat thread; a crashed holder stops
renewing and its lease expires, so nobody has to clean up after a ``kill -9``. A row rather
than an advisory / file lock: it works the same on both databases, across hosts, and says who
holds it and since when.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from icp_sync.errors import LeaseHeldError
from icp_sync.store._base import Repository, aware, process_alive
from icp_sync.store.schema import leases

__all__ = ["HeldLease", "LeaseHolder", "LeaseRepository"]


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds a lease, from when, until when (unless renewed)."""

    owner: str
    host: str
    pid: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        """``icp-sync pid 4242 on host-a since 2026-12-01 04:33:55 UTC (owner 1f2e...)``."""
        since = self.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"icp-sync pid {self.pid} on {self.host} since {since} (owner {self.owner})"


class LeaseRepository(Repository):
    """Named leases (table ``leases``); :meth:`hold` is what a writer uses."""

    def try_acquire(self, name: str, owner: str, *, ttl: timedelta, now: datetime) -> LeaseHolder:
        """Take (or keep) lease ``name`` for ``owner`` if free, expired or ours.

        Returns:
            The holder after the attempt: ``owner`` itself when taken, else who holds it.
        """
        row = {
            "owner": owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "acquired_at": now,
            "renewed_at": now,
            "expires_at": now + ttl,
        }
        table = leases
        free = sa.or_(table.c.expires_at < now, table.c.owner == owner)
        current = self.holder(name)
        if current is not None and _dead_here(current):
            # a holder killed on this host frees the lease at once, not at its expiry; the
            # owner in the condition makes this a compare-and-swap against a racing taker
            free = sa.or_(free, table.c.owner == current.owner)
        with self._tx() as conn:
            taken = conn.execute(
                table.update().where(table.c.name == name).where(free).values(**row)
            ).rowcount
            if not taken:
                insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
                conn.execute(insert(table).values(name=name, **row).on_conflict_do_nothing())
        holder = self.holder(name)
        assert holder is not None  # just taken, or held by someone else
        return holder

    def renew(self, name: str, owner: str, *, ttl: timedelta, now: datetime) -> bool:
        """Push the expiry of ``owner``'s lease forward; ``False`` when it is no longer held."""
        with self._tx() as conn:
            renewed = conn.execute(
                leases.update()
                .where(leases.c.name == name, leases.c.owner == owner)
                .values(renewed_at=now, expires_at=now + ttl)
            ).rowcount
        return bool(renewed)

    def release(self, name: str, owner: str) -> None:
        """Give the lease up (nothing happens when ``owner`` no longer holds it)."""
        with self._tx() as conn:
            conn.execute(leases.delete().where(leases.c.name == name, leases.c.owner == owner))

    def holder(self, name: str) -> LeaseHolder | None:
        """Who holds lease ``name`` (possibly expired), or ``None``."""
        query = sa.select(leases).where(leases.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().one_or_none()
        if row is None:
            return None
        return LeaseHolder(
            owner=row["owner"],
            host=row["host"],
            pid=int(row["pid"]),
            acquired_at=aware(row["acquired_at"]),
            renewed_at=aware(row["renewed_at"]),
            expires_at=aware(row["expires_at"]),
        )

    @contextmanager
    def hold(self, name: str, *, ttl: timedelta, wait: timedelta) -> Iterator[HeldLease]:
        """Hold lease ``name`` for the ``with`` block, renewed by a heartbeat every ttl / 3.

        Args:
            name: Which lease (``"sync"``).
            ttl: How long the lease outlives its holder's last heartbeat.
            wait: How long to wait for a held lease before giving up (0: not at all).

        Raises:
            LeaseHeldError: If another owner still holds it after ``wait``.
        """
        owner = uuid.uuid4().hex[:16]
        deadline = time.monotonic() + wait.total_seconds()
        delay = 0.05
        while True:
            holder = self.try_acquire(name, owner, ttl=ttl, now=datetime.now(UTC))
            if holder.owner == owner:
                break
            if time.monotonic() >= deadline:
                waited = f" after waiting {wait.total_seconds():g} s" if wait else ""
                raise LeaseHeldError(
                    f"another {holder.describe()} is writing to this state store{waited}; "
                    "nothing was written. Let it finish, or wait for it with --wait-lease "
                    f"SECONDS; a crashed holder's lease expires at "
                    f"{holder.expires_at.strftime('%H:%M:%S UTC')}"
                )
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 2.0)
        held = HeldLease(self, name, owner, ttl)
        try:
            yield held
        finally:
            held.release()


class HeldLease:
    """A lease this process holds, renewed by a daemon heartbeat thread until released."""

    def __init__(self, repository: LeaseRepository, name: str, owner: str, ttl: timedelta) -> None:
        self._repository = repository
        self.name = name
        self.owner = owner
        self._ttl = ttl
        self._stop = threading.Event()
        self._renewed = threading.Condition()
        self._renewals = 0
        self.lost = False
        self._thread = threading.Thread(target=self._beat, name=f"lease-{name}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._ttl.total_seconds() / 3):
            kept = self._repository.renew(
                self.name, self.owner, ttl=self._ttl, now=datetime.now(UTC)
            )
            with self._renewed:
                self.lost = self.lost or not kept
                self._renewals += 1
                self._renewed.notify_all()
            if not kept:
                return

    def holder(self) -> LeaseHolder | None:
        """This lease as stored."""
        holder = self._repository.holder(self.name)
        return holder if holder is not None and holder.owner == self.owner else None

    def wait_for_renewal(self, *, timeout: float) -> bool:
        """Block until the heartbeat has renewed the lease once more (for tests and probes)."""
        with self._renewed:
            seen = self._renewals
            return self._renewed.wait_for(lambda: self._renewals > seen, timeout=timeout)

    def check(self) -> None:
        """Raise :class:`LeaseHeldError` when the lease was lost (it expired and was taken)."""
        if self.lost or self.holder() is None:
            self.lost = True
            raise LeaseHeldError(
                f"the {self.name} lease was lost (a heartbeat came too late); stopping before "
                "the next write"
            )

    def release(self) -> None:
        """Stop the heartbeat and give the lease up."""
        if self._stop.is_set():
            return
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()
        self._repository.release(self.name, self.owner)


def _dead_here(holder: LeaseHolder) -> bool:
    """Was the lease taken by a process of this host that no longer exists?"""
    return (
        holder.host == socket.gethostname()
        and holder.pid != os.getpid()
        and not process_alive(holder.pid)
    )
