"""The Salesforce sandbox's replication model: hard deletes, purge, the getDeleted retention
window and its INVALID_REPLICATION_DATE refusals, and the org clock behind the Date header."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceMalformedRequest

from icp_sync.sandbox.service import Sandbox
from tests.crm_clients import salesforce_client


def _control(sandbox: Sandbox, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"{sandbox.salesforce.url}/__sandbox/{path}"
    verify = str(sandbox.tls.ca_file)
    if body is None:
        response = requests.get(url, verify=verify, timeout=10)
    else:
        response = requests.post(url, json=body, verify=verify, timeout=10)
    response.raise_for_status()
    return response.json()


def test_a_hard_delete_leaves_query_all_but_not_get_deleted(sandbox: Sandbox) -> None:
    """A record deleted for good is gone from queryAll and still listed by getDeleted."""
    sf = salesforce_client(sandbox)
    record = sf.Account.create({"Name": "Gone For Good Ltd"})["id"]
    sandbox.org.hard_delete("Account", record)
    soql = f"SELECT Id FROM Account WHERE Id = '{record}'"

    assert sf.query_all(soql, include_deleted=True)["totalSize"] == 0
    now = datetime.now(UTC)
    deleted = sf.Account.deleted(now - timedelta(minutes=5), now + timedelta(minutes=1))
    assert record in {d["id"] for d in deleted["deletedRecords"]}


def test_purge_empties_the_recycle_bin(sandbox: Sandbox) -> None:
    """After POST /__sandbox/purge, soft-deleted records leave queryAll."""
    sf = salesforce_client(sandbox)
    record = sf.Account.create({"Name": "Binned Ltd"})["id"]
    sf.Account.delete(record)
    purged = _control(sandbox, "purge", {"sobject": "Account"})["purged"]
    soql = f"SELECT Id FROM Account WHERE Id = '{record}'"

    assert purged >= 1
    assert sf.query_all(soql, include_deleted=True)["totalSize"] == 0


@pytest.mark.parametrize(
    ("start_ago", "end_ago"),
    [(timedelta(days=16), timedelta(0)), (timedelta(seconds=30), timedelta(seconds=0))],
    ids=["before-earliest-date-available", "window-under-a-minute"],
)
def test_get_deleted_refuses_invalid_replication_dates(
    sandbox: Sandbox, start_ago: timedelta, end_ago: timedelta
) -> None:
    """getDeleted answers INVALID_REPLICATION_DATE for a start older than the retention window
    or a window shorter than a minute (seconds are ignored)."""
    sf = salesforce_client(sandbox)
    now = datetime.now(UTC).replace(second=40)
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_REPLICATION_DATE"):
        sf.Account.deleted(now - start_ago, now - end_ago)


def test_the_retention_window_is_set_through_the_control_api(sandbox: Sandbox) -> None:
    """POST /__sandbox/replication changes earliestDateAvailable."""
    assert _control(sandbox, "replication") == {"retention_days": 15.0}
    _control(sandbox, "replication", {"retention_days": 2})
    sf = salesforce_client(sandbox)
    now = datetime.now(UTC)
    answer = sf.Account.deleted(now - timedelta(days=1), now)
    earliest = datetime.fromisoformat(answer["earliestDateAvailable"].replace("+0000", "+00:00"))

    assert abs(earliest - (now - timedelta(days=2))) < timedelta(minutes=1)


def test_the_date_header_follows_the_org_clock(sandbox: Sandbox) -> None:
    """Moving the org clock (POST /__sandbox/clock) moves the Date header and record stamps."""
    _control(sandbox, "clock", {"advance_seconds": 3600})
    sf = salesforce_client(sandbox)
    response = sf.session.get(
        f"{sandbox.salesforce.url}/services/data/v59.0/limits",
        headers=sf.headers,
    )
    served = parsedate_to_datetime(response.headers["Date"])
    record = sf.Account.create({"Name": "Future Ltd"})["id"]
    stamp = sf.Account.get(record)["SystemModstamp"]

    assert served - datetime.now(UTC) > timedelta(minutes=59)
    stamped = datetime.fromisoformat(stamp.replace("+0000", "+00:00"))
    assert abs(stamped - served) < timedelta(seconds=5)  # one Date header, on the org clock
