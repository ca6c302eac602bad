"""The sandbox's Composite resource, driven through simple-salesforce's ``restful`` as a client
would: one counted call, per-subrequest answers, references, limits and allOrNone."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from icp_sync.sandbox.salesforce.org import format_datetime
from icp_sync.sandbox.service import Sandbox
from tests.crm_clients import salesforce_client

V = "/services/data/v59.0"


def _composite(sandbox: Sandbox, subrequests: list[dict[str, Any]], **options: Any) -> Any:
    sf = salesforce_client(sandbox, version="59.0")
    body = {"allOrNone": False, "compositeRequest": subrequests, **options}
    return sf.restful("composite", method="POST", json=body)


def _calls(sandbox: Sandbox) -> dict[str, Any]:
    stats: dict[str, Any] = sandbox.salesforce_stats.snapshot()
    return stats


def test_queries_and_get_deleted_run_as_one_counted_call(sandbox: Sandbox) -> None:
    """queryAll on two objects and getDeleted come back in order, for one API call."""
    sf = salesforce_client(sandbox)
    victim = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    sf.Account.delete(victim)
    sandbox.org.advance(120)
    soql = quote("SELECT Id, Name FROM Account ORDER BY Id LIMIT 3")
    deals = quote("SELECT Id FROM Opportunity LIMIT 2")
    now = sandbox.org.now_ms()
    start, end = format_datetime(now - 300_000), format_datetime(now)
    sandbox.salesforce_stats.reset()
    answer = _composite(
        sandbox,
        [
            {"method": "GET", "url": f"{V}/queryAll/?q={soql}", "referenceId": "acc"},
            {"method": "GET", "url": f"{V}/query/?q={deals}", "referenceId": "opp"},
            {
                "method": "GET",
                "url": f"{V}/sobjects/Account/deleted/?start={quote(start)}&end={quote(end)}",
                "referenceId": "gone",
            },
        ],
    )
    stats = _calls(sandbox)

    results = answer["compositeResponse"]
    assert [r["referenceId"] for r in results] == ["acc", "opp", "gone"]
    assert [r["httpStatusCode"] for r in results] == [200, 200, 200]
    assert len(results[0]["body"]["records"]) == 3
    assert results[0]["body"]["records"][0]["attributes"]["type"] == "Account"
    assert results[1]["body"]["totalSize"] == 2
    assert victim in [d["id"] for d in results[2]["body"]["deletedRecords"]]
    assert stats["calls"] == 1
    assert list(stats["by_endpoint"]) == ["POST composite"]


def test_a_reference_feeds_a_later_subrequest_and_a_failure_stays_its_own(
    sandbox: Sandbox,
) -> None:
    """@{ref.records[0].Id} resolves; a bad subrequest fails alone without allOrNone."""
    soql = quote("SELECT Id FROM Account ORDER BY Id LIMIT 1")
    answer = _composite(
        sandbox,
        [
            {"method": "GET", "url": f"{V}/query/?q={soql}", "referenceId": "first"},
            {
                "method": "PATCH",
                "url": f"{V}/sobjects/Account/@{{first.records[0].Id}}",
                "referenceId": "rename",
                "body": {"Name": "Renamed Through Composite"},
            },
            {
                "method": "GET",
                "url": f"{V}/query/?q={quote('SELECT Nope FROM Account')}",
                "referenceId": "bad",
            },
            {
                "method": "GET",
                "url": f"{V}/sobjects/Account/@{{bad.records[0].Id}}",
                "referenceId": "after_bad",
            },
        ],
    )
    results = {r["referenceId"]: r for r in answer["compositeResponse"]}
    first_id = results["first"]["body"]["records"][0]["Id"]

    assert results["rename"]["httpStatusCode"] == 204
    assert salesforce_client(sandbox).Account.get(first_id)["Name"] == "Renamed Through Composite"
    assert results["bad"]["httpStatusCode"] == 400
    assert results["bad"]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert results["after_bad"]["body"][0]["errorCode"] == "PROCESSING_HALTED"


def test_all_or_none_halts_the_other_subrequests(sandbox: Sandbox) -> None:
    """With allOrNone, one failure turns every other answer into PROCESSING_HALTED."""
    good = quote("SELECT Id FROM Account LIMIT 1")
    bad = quote("SELECT Nope FROM Account")
    answer = _composite(
        sandbox,
        [
            {"method": "GET", "url": f"{V}/query/?q={good}", "referenceId": "good"},
            {"method": "GET", "url": f"{V}/query/?q={bad}", "referenceId": "bad"},
        ],
        allOrNone=True,
    )
    codes = {r["referenceId"]: r["body"][0]["errorCode"] for r in answer["compositeResponse"]}
    assert codes == {"good": "PROCESSING_HALTED", "bad": "INVALID_FIELD"}


@pytest.mark.parametrize(
    ("count", "query"),
    [pytest.param(26, False, id="26-subrequests"), pytest.param(6, True, id="6-queries")],
)
def test_too_many_subrequests_are_refused(sandbox: Sandbox, count: int, query: bool) -> None:
    """More than 25 subrequests, or more than 5 queries, is a 400 for the whole call."""
    url = (
        f"{V}/query/?q={quote('SELECT Id FROM Account LIMIT 1')}"
        if query
        else (f"{V}/sobjects/Account/describe")
    )
    subrequests = [{"method": "GET", "url": url, "referenceId": f"r{i}"} for i in range(count)]
    with pytest.raises(SalesforceMalformedRequest):
        _composite(sandbox, subrequests)
