"""Salesforce deletes against the sandbox org: their own cursor, the retention window, and
reconciliation by ids on a full sync and on schedule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.base import Batch
from connectors.salesforce.connector import SalesforceConnector
from icp_sync.errors import RetriableConnectorError
from icp_sync.model import CrmObject
from icp_sync.pipeline import sync
from icp_sync.sandbox.salesforce.org import RecordError
from icp_sync.store import StoredConnectorState
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import Org, count, make_org

ACCOUNT = CrmObject.ACCOUNT


def _deleted(org: Org, record_id: str) -> bool:
    mirror = org.store.mirror
    return record_id in mirror.ids(ACCOUNT, include_deleted=True) - mirror.ids(ACCOUNT)


def _some_account(org: Org) -> str:
    return sorted(org.store.mirror.ids(ACCOUNT))[0]


def _control(org: Org, path: str, body: dict[str, Any]) -> dict[str, Any]:
    url = f"{org.sandbox.salesforce.url}/__sandbox/{path}"
    response = requests.post(url, json=body, verify=str(org.sandbox.tls.ca_file), timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def test_a_hard_delete_reaches_the_mirror_through_get_deleted(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A record deleted for good (gone from queryAll) is marked deleted by the next cycle."""
    org = make_org(sandbox_factory, tmp_path, accounts=200)
    org.sync(dry_run=True)
    gone = _some_account(org)
    org.sandbox.org.hard_delete("Account", gone)
    org.sandbox.org.advance(90)
    org.reset_stats()
    result = org.sync(dry_run=True)

    assert _deleted(org, gone)
    assert result.objects[ACCOUNT].deleted == 1
    stats = org.stats()
    # both getDeleted windows ride in the cycle's one Composite call, beside the queries
    assert count("POST composite", stats) == 1
    assert count("GET getDeleted", stats) == 0


def test_a_window_covered_only_in_part_is_asked_again_from_where_coverage_ended(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """When getDeleted's latestDateCovered trails the window's end (replication lag), the
    delete cursor stops there: a hard delete after it is fetched by a later cycle, not lost."""
    org = make_org(sandbox_factory, tmp_path, accounts=200)
    org.sync(dry_run=True)
    gone = _some_account(org)
    org.sandbox.org.advance(90)
    org.sandbox.org.hard_delete("Account", gone)
    org.sandbox.org.replication_lag_ms = 10 * 60_000
    org.sandbox.org.advance(120)
    org.sync(dry_run=True)
    lagging = StoredConnectorState(org.store.ledger, "salesforce").load()["deleted_cursor"]

    assert not _deleted(org, gone)
    org.sandbox.org.replication_lag_ms = 0
    org.sandbox.org.advance(90)
    org.sync(dry_run=True)
    caught_up = StoredConnectorState(org.store.ledger, "salesforce").load()["deleted_cursor"]

    assert _deleted(org, gone)
    assert caught_up["Account"] > lagging["Account"]


def _network_error(org: Org) -> Callable[[], None]:
    real = org.sandbox.org.deleted_between

    def failing(*_: Any) -> Any:
        raise RecordError("SERVER_UNAVAILABLE", "getDeleted is down")

    org.sandbox.org.deleted_between = failing  # type: ignore[method-assign]
    return lambda: setattr(org.sandbox.org, "deleted_between", real)


def _budget_stop(org: Org) -> Callable[[], None]:
    real = org.sandbox.org.query

    def spend_all(soql: str, *, include_deleted: bool) -> Any:
        answer = real(soql, include_deleted=include_deleted)
        org.sandbox.org.api_used = org.sandbox.org.daily_api_limit
        return answer

    org.sandbox.org.query = spend_all  # type: ignore[method-assign]

    def restore() -> None:
        org.sandbox.org.query = real  # type: ignore[method-assign]
        org.sandbox.org.api_used = 0

    return restore


@pytest.mark.parametrize(
    "fault", [_network_error, _budget_stop], ids=["getDeleted-fails", "budget-stop-after-query"]
)
def test_a_delete_window_is_fetched_again_after_a_stopped_cycle(
    sandbox_factory: SandboxFactory, tmp_path: Path, fault: Callable[[Org], Callable[[], None]]
) -> None:
    """When getDeleted fails, or the budget runs out during the cycle's reads, the deletes of
    that window reach the mirror: in the same cycle when their answer was already read (in
    the Composite call), else in the next (the delete cursor only moves once they are
    mirrored)."""
    org = make_org(sandbox_factory, tmp_path, accounts=200)
    org.sync(dry_run=True)
    gone = _some_account(org)
    org.sandbox.org.hard_delete("Account", gone)
    org.sandbox.org.advance(90)
    restore = fault(org)
    try:
        org.sync(dry_run=True)
    except RetriableConnectorError:
        assert fault is _network_error
        assert not _deleted(org, gone)
    finally:
        restore()
    org.sandbox.org.advance(90)
    org.sync(dry_run=True)

    assert _deleted(org, gone)


def test_a_window_under_a_minute_waits_instead_of_calling(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Within a minute of the delete cursor, no getDeleted call is made (Salesforce would
    refuse it); once a minute has passed, both windows are read in the cycle's Composite call."""
    org = make_org(sandbox_factory, tmp_path, accounts=200)
    org.sync(dry_run=True)
    org.reset_stats()
    org.sync(dry_run=True)
    assert count("GET getDeleted", org.stats()) == 0
    hard = sorted(org.store.mirror.ids(ACCOUNT))[0]
    org.sandbox.org.hard_delete("Account", hard)
    org.sandbox.org.advance(61)
    org.reset_stats()
    org.sync(dry_run=True)
    assert count("GET getDeleted", org.stats()) == 0  # asked inside the Composite call
    assert count("POST composite", org.stats()) == 1
    assert _deleted(org, hard)


def test_a_pause_past_the_retention_window_falls_back_to_reconciliation(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """After a pause longer than getDeleted's retention, deletes come from listing live ids
    (no INVALID_REPLICATION_DATE failure, no lost delete)."""
    org = make_org(sandbox_factory, tmp_path, accounts=200, reconcile_every_hours=10_000)
    org.sync(dry_run=True)
    gone = _some_account(org)
    org.sandbox.org.hard_delete("Account", gone)
    org.sandbox.org.advance(16 * 86_400)  # the org keeps 15 days
    org.reset_stats()
    result = org.sync(dry_run=True)

    assert result.status == "ok"
    assert _deleted(org, gone)
    assert count("GET getDeleted", org.stats()) == 0


def test_a_refused_replication_window_falls_back_to_reconciliation(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """When the org's retention is shorter than configured, INVALID_REPLICATION_DATE leads to
    a reconciliation instead of a failed cycle."""
    org = make_org(sandbox_factory, tmp_path, accounts=200, reconcile_every_hours=10_000)
    org.sync(dry_run=True)
    assert _control(org, "replication", {"retention_days": 0.5}) == {"retention_days": 0.5}
    gone = _some_account(org)
    org.sandbox.org.hard_delete("Account", gone)
    org.sandbox.org.advance(86_400)
    org.reset_stats()
    result = org.sync(dry_run=True)

    assert result.status == "ok"
    assert _deleted(org, gone)
    stats = org.stats()
    assert count("GET getDeleted", stats) == 0  # refused inside the Composite call, not again
    assert count("POST composite", stats) == 1


def test_a_full_sync_marks_purged_and_hidden_records_deleted(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """`sync --full` repairs the mirror: records purged from the recycle bin and records the
    integration user can no longer see are marked deleted."""
    org = make_org(sandbox_factory, tmp_path, accounts=200)
    org.sync(dry_run=True)
    purged, hidden = sorted(org.store.mirror.ids(ACCOUNT))[:2]
    sf_org = org.sandbox.org
    sf_org.delete("Account", purged, user=sf_org.loader_user)
    assert _control(org, "purge", {"sobject": "Account"}) == {"purged": 1}
    del sf_org.objects["Account"].records[hidden]  # sharing changed: invisible, never deleted
    org.sandbox.org.advance(90)
    result = org.sync(dry_run=True, full=True)

    assert _deleted(org, purged)
    assert _deleted(org, hidden)
    assert result.objects[ACCOUNT].deleted == 2


class _Killed(BaseException):
    """Stands for kill -9: nothing after it runs."""


def test_a_full_sync_stopped_before_its_reconciliation_is_applied_keeps_the_cursor(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """The live ids a full read yields cover deletes only once the mirror has applied them:
    a run stopped in between leaves the delete cursor and reconciliation time as they were,
    and the next full sync marks the invisible record deleted."""
    org = make_org(sandbox_factory, tmp_path, accounts=200)
    org.sync(dry_run=True)
    hidden = sorted(org.store.mirror.ids(ACCOUNT))[0]
    del org.sandbox.org.objects["Account"].records[hidden]
    org.sandbox.org.advance(90)
    state = StoredConnectorState(org.store.ledger, "salesforce")
    before = state.load()

    class DiesAtReconciliation(SalesforceConnector):
        def extract(self, obj: CrmObject, *, since: str | None, now: datetime) -> Iterator[Batch]:
            for batch in super().extract(obj, since=since, now=now):
                if batch.live is not None:
                    raise _Killed
                yield batch

    connector = DiesAtReconciliation(
        org.settings.salesforce, state=state, sleep=lambda _: None, bulk_wait=0.01
    )
    with pytest.raises(_Killed):
        sync(
            org.settings,
            org.store,
            run_id="killed",
            now=datetime.now(UTC),
            connector=connector,
            compliance=False,
            dry_run=True,
            full=True,
        )
    connector.close()
    after = state.load()

    assert after.get("deleted_cursor") == before.get("deleted_cursor")
    assert after.get("reconciled_at") == before.get("reconciled_at")
    assert not _deleted(org, hidden)
    org.sync(dry_run=True, full=True)
    assert _deleted(org, hidden)


def test_scheduled_reconciliation_costs_one_id_page_per_2000_records(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Every reconcile_every_hours the live ids are listed (one SELECT Id page per 2,000
    records), and a record that silently became invisible leaves the mirror."""
    org = make_org(sandbox_factory, tmp_path, accounts=2_500, reconcile_every_hours=1)
    org.sync(dry_run=True)
    hidden = _some_account(org)
    del org.sandbox.org.objects["Account"].records[hidden]
    org.sandbox.org.advance(30 * 60)
    org.sync(dry_run=True)
    assert not _deleted(org, hidden)  # not due yet
    org.sandbox.org.advance(31 * 60)
    org.reset_stats()
    org.sync(dry_run=True)
    stats = org.stats()

    assert _deleted(org, hidden)
    live = len(org.store.mirror.ids(ACCOUNT)) + len(org.store.mirror.ids(CrmObject.OPPORTUNITY))
    pages = math.ceil(len(org.store.mirror.ids(ACCOUNT)) / 2000) + math.ceil(
        len(org.store.mirror.ids(CrmObject.OPPORTUNITY)) / 2000
    )
    assert live > 0
    assert count("GET getDeleted", stats) == 0
    assert count("GET query", stats) + count("GET queryMore", stats) == pages
