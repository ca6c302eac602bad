"""The run repository, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from icp_sync.errors import StateStoreError
from icp_sync.model import CrmObject, Reject
from icp_sync.store import Store


def test_run_history_and_rejects(store: Store, now: datetime) -> None:
    """Runs are recorded newest first with their summary; rejects are kept per run."""
    store.runs.start("r1", "sync", now=now)
    store.runs.finish("r1", status="ok", summary={"api_calls": 3}, now=now)
    store.runs.start("r2", "sync", now=now + timedelta(minutes=5))
    reject = Reject(crm_object=CrmObject.OPPORTUNITY, record_id="O9", reason="missing account_id")
    store.runs.add_rejects("r2", [reject])

    runs = store.runs.recent()

    assert [r.run_id for r in runs] == ["r2", "r1"]
    assert runs[1].summary == {"api_calls": 3}
    assert runs[1].finished_at == now.astimezone(UTC)
    assert runs[0].status == "running"
    assert runs[0].finished_at is None
    assert store.runs.rejects("r2") == [reject]
    assert store.runs.rejects("r1") == []


def test_recent_runs_are_limited(store: Store, now: datetime) -> None:
    """recent(limit) returns only the newest ``limit`` runs."""
    for i in range(5):
        store.runs.start(f"r{i}", "derive", now=now + timedelta(minutes=i))

    assert [r.run_id for r in store.runs.recent(limit=2)] == ["r4", "r3"]


def test_many_rejects_are_kept_in_order(store: Store) -> None:
    """Rejects beyond one write chunk are all kept, in the order given."""
    items = [
        Reject(crm_object=CrmObject.ACCOUNT, record_id=f"A{i}", reason="x") for i in range(6_001)
    ]

    store.runs.add_rejects("r1", items)
    store.runs.add_rejects("r1", [])

    assert store.runs.rejects("r1") == items


def test_a_run_id_is_started_once(store: Store, now: datetime) -> None:
    """Starting a run id twice is a StateStoreError and leaves the first run intact."""
    store.runs.start("r1", "sync", now=now)

    with pytest.raises(StateStoreError, match="write failed"):
        store.runs.start("r1", "derive", now=now)
    assert [(r.run_id, r.command) for r in store.runs.recent()] == [("r1", "sync")]


def test_a_run_whose_process_is_gone_is_marked_abandoned(store: Store, now: datetime) -> None:
    """At the next start, a running run of a dead process on this host becomes abandoned."""
    store.runs.start("dead", "sync", now=now, host="here", pid=4242)
    later = now + timedelta(minutes=30)

    marked = store.runs.start("next", "sync", now=later, host="here", alive=lambda pid: False)

    assert [r.run_id for r in marked] == ["dead"]
    run = next(r for r in store.runs.recent() if r.run_id == "dead")
    assert run.status == "abandoned"
    assert run.finished_at == later
    assert run.summary["abandoned"]["detected_at"] == later.isoformat()
    assert "process 4242 on here" in run.summary["abandoned"]["reason"]


@pytest.mark.parametrize(
    ("host", "alive"), [("here", True), ("elsewhere", False)], ids=["live-process", "other-host"]
)
def test_a_live_or_foreign_run_is_never_marked(
    store: Store, now: datetime, host: str, alive: bool
) -> None:
    """A run whose process is alive, or that another host owns, stays running."""
    store.runs.start("busy", "sync", now=now, host=host, pid=4242)

    marked = store.runs.start("next", "sync", now=now, host="here", alive=lambda pid: alive)

    assert marked == []
    assert {r.run_id: r.status for r in store.runs.recent()}["busy"] == "running"


def test_a_killed_process_leaves_a_run_the_next_start_marks_abandoned(
    store_url: str, now: datetime
) -> None:
    """A process killed mid-run (SIGKILL) is detected by the next run on this host."""
    code = (
        "import os, signal, datetime as d\n"
        "from icp_sync.store import Store\n"
        f"store = Store.open({store_url!r})\n"
        "store.runs.start('killed', 'sync', now=d.datetime.now(d.UTC))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code], check=False, timeout=120)
    assert killed.returncode == -signal.SIGKILL

    with Store.open(store_url) as store:
        store.runs.start("next", "sync", now=now)
        runs = {r.run_id: r.status for r in store.runs.recent()}

    assert runs == {"killed": "abandoned", "next": "running"}
