"""The single-writer lease, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta

import pytest

from icp_sync.errors import LeaseHeldError
from icp_sync.store import Store
from icp_sync.store.schema import leases

TTL = timedelta(seconds=60)


def test_a_second_owner_is_refused_and_told_who_holds_the_lease(
    store: Store, now: datetime
) -> None:
    """While one owner holds the lease another gets the holder (owner, host, pid, since)."""
    first = store.lease.try_acquire("sync", "owner-a", ttl=TTL, now=now)
    second = store.lease.try_acquire("sync", "owner-b", ttl=TTL, now=now + timedelta(seconds=5))

    assert first.owner == "owner-a"
    assert second.owner == "owner-a"
    assert second.pid > 0
    assert second.host
    assert second.acquired_at == now


def test_an_expired_lease_is_taken_over(store: Store, now: datetime) -> None:
    """A crashed holder stops renewing; once its lease expires another owner takes it."""
    store.lease.try_acquire("sync", "crashed", ttl=TTL, now=now)
    later = now + TTL + timedelta(seconds=1)

    taken = store.lease.try_acquire("sync", "owner-b", ttl=TTL, now=later)

    assert taken.owner == "owner-b"
    assert not store.lease.renew("sync", "crashed", ttl=TTL, now=later)


def test_renewal_keeps_the_lease_and_release_frees_it(store: Store, now: datetime) -> None:
    """A renewed lease outlives its first expiry; a released one is free at once."""
    store.lease.try_acquire("sync", "owner-a", ttl=TTL, now=now)
    assert store.lease.renew("sync", "owner-a", ttl=TTL, now=now + TTL / 2)

    held = store.lease.try_acquire("sync", "owner-b", ttl=TTL, now=now + TTL + TTL / 4)
    assert held.owner == "owner-a"

    store.lease.release("sync", "owner-a")
    assert store.lease.holder("sync") is None
    assert store.lease.try_acquire("sync", "owner-b", ttl=TTL, now=now).owner == "owner-b"


def test_holding_refuses_at_once_without_wait(store: Store) -> None:
    """`hold` with no wait raises LeaseHeldError naming the holder, and takes nothing."""
    with store.lease.hold("sync", ttl=TTL, wait=timedelta(0)) as mine:
        with (
            pytest.raises(LeaseHeldError, match=r"pid \d+ on .* since"),
            store.lease.hold("sync", ttl=TTL, wait=timedelta(0)),
        ):
            pass
        assert store.lease.holder("sync") == mine.holder()
    assert store.lease.holder("sync") is None


def test_holding_waits_a_bounded_time_for_the_lease(store: Store) -> None:
    """A waiting `hold` gets the lease once the holder releases it within the wait."""
    released = threading.Event()
    with store.lease.hold("sync", ttl=TTL, wait=timedelta(0)) as first:
        timer = threading.Timer(0.3, lambda: (first.release(), released.set()))
        timer.start()
        with store.lease.hold("sync", ttl=TTL, wait=timedelta(seconds=30)) as second:
            assert released.is_set()
            assert store.lease.holder("sync") == second.holder()
        timer.join()


def test_heartbeat_renews_the_lease_while_held(store: Store) -> None:
    """The holder's heartbeat pushes the expiry forward without being asked."""
    with store.lease.hold("sync", ttl=timedelta(seconds=1.5), wait=timedelta(0)) as mine:
        first = mine.holder().expires_at
        assert mine.wait_for_renewal(timeout=10)
        renewed = store.lease.holder("sync")
        assert renewed is not None
        assert renewed.expires_at > first


def test_a_lease_whose_process_died_on_this_host_is_taken_at_once(
    store: Store, now: datetime
) -> None:
    """A holder killed on this host (its pid is gone) frees the lease before its expiry."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    store.lease.try_acquire("sync", "killed", ttl=TTL, now=now)
    with store.engine.begin() as conn:
        conn.execute(leases.update().values(pid=int(gone.stdout)))

    taken = store.lease.try_acquire("sync", "owner-b", ttl=TTL, now=now + timedelta(seconds=1))

    assert taken.owner == "owner-b"
