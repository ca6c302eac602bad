"""The Salesforce emulator, driven only through the real simple-salesforce client.

What a real org answers (shapes, paging, limits, errors) is what these tests hold the
sandbox to, so that connector tests against it mean something.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sandbox.service import Sandbox
from tests.conftest import SandboxFactory
from tests.crm_clients import salesforce_client


def _stats(sandbox: Sandbox) -> dict[str, Any]:
    stats: dict[str, Any] = sandbox.salesforce_stats.snapshot()
    return stats


def _calls(sandbox: Sandbox, endpoint: str) -> int:
    return int(_stats(sandbox)["by_endpoint"].get(endpoint, {}).get("calls", 0))


def _control(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> Any:
    session = requests.Session()
    session.trust_env = False
    response = session.request(
        method, f"{sandbox.salesforce.url}{path}", verify=str(sandbox.tls.ca_file), **kwargs
    )
    response.raise_for_status()
    return response.json()


@pytest.mark.parametrize("batch", [200, 500, 2000])
def test_query_pages_follow_the_batch_size_header(sandbox: Sandbox, batch: int) -> None:
    """query_all_iter pages by Sforce-Query-Options batchSize: ceil(N/batch) calls in all."""
    sf = salesforce_client(sandbox)
    total = sf.query("SELECT COUNT() FROM Opportunity")["totalSize"]
    sandbox.salesforce_stats.reset()
    headers = {"Sforce-Query-Options": f"batchSize={batch}"}
    rows = list(sf.query_all_iter("SELECT Id, Amount FROM Opportunity", headers=headers))

    assert len(rows) == total > 2000
    assert len({r["Id"] for r in rows}) == total
    assert _calls(sandbox, "GET query") + _calls(sandbox, "GET queryMore") == math.ceil(
        total / batch
    )


def test_query_more_follows_a_relative_next_records_url(sandbox: Sandbox) -> None:
    """A first page says done=false with a server-relative nextRecordsUrl for query_more."""
    sf = salesforce_client(sandbox)
    first = sf.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=200"})
    assert first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v")
    assert len(first["records"]) == 200
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert {r["Id"] for r in second["records"]}.isdisjoint({r["Id"] for r in first["records"]})
    assert second["records"][0]["attributes"]["type"] == "Account"


def test_query_all_includes_deleted_rows(sandbox: Sandbox) -> None:
    """queryAll returns soft-deleted records with IsDeleted = true; query does not."""
    sf = salesforce_client(sandbox)
    record = sf.Account.create({"Name": "Soon Gone Ltd"})
    sf.Account.delete(record["id"])
    soql = f"SELECT Id, IsDeleted FROM Account WHERE Id = '{record['id']}'"

    assert sf.query(soql)["totalSize"] == 0
    rows = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(record["id"], True)]
    deleted = sf.Account.deleted(_recent(), _recent(minutes=-1))
    assert record["id"] in {d["id"] for d in deleted["deletedRecords"]}


def _recent(minutes: int = 10) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(minutes=minutes)


def test_get_updated_lists_records_changed_in_a_window(sandbox: Sandbox) -> None:
    """getUpdated names a record changed within the window."""
    sf = salesforce_client(sandbox)
    record = sf.Account.create({"Name": "Fresh Co"})
    sf.Account.update(record["id"], {"Industry": "Software"})
    updated = sf.Account.updated(_recent(), _recent(minutes=-1))
    assert record["id"] in updated["ids"]


def test_crud_round_trip_and_errors(sandbox: Sandbox) -> None:
    """create/get/update/delete work; unknown fields and bad picklist values are refused."""
    sf = salesforce_client(sandbox)
    created = sf.Account.create({"Name": "Round Trip Inc", "Industry": "Healthcare"})
    assert created["success"] is True
    assert sf.Account.update(created["id"], {"NumberOfEmployees": 250}) == 204
    got = sf.Account.get(created["id"])
    assert (got["Name"], got["NumberOfEmployees"]) == ("Round Trip Inc", 250)

    with pytest.raises(SalesforceMalformedRequest) as unknown:
        sf.Account.update(created["id"], {"No_Such_Field__c": 1})
    assert unknown.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.Account.create({})
    assert bad.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_describe_lists_fields_with_types_and_picklists(sandbox: Sandbox) -> None:
    """describe() reports fields, types, lengths and picklist values as a real org does."""
    sf = salesforce_client(sandbox)
    described = sf.Opportunity.describe()
    fields = {f["name"]: f for f in described["fields"]}

    assert described["name"] == "Opportunity"
    assert {"Id", "AccountId", "StageName", "Amount", "CloseDate", "SystemModstamp"} <= set(fields)
    assert fields["Amount"]["type"] == "currency"
    assert fields["StageName"]["type"] == "picklist"
    assert "Closed Won" in {v["value"] for v in fields["StageName"]["picklistValues"]}
    assert any(s["name"] == "Account" for s in sf.describe()["sobjects"])


def test_a_task_defaults_status_and_priority_and_is_found_by_subject(sandbox: Sandbox) -> None:
    """A Task on a deal gets Status "Not Started" and Priority "Normal" when omitted (as a real
    org defaults them), refuses a Status outside its picklist, and LIKE on Subject finds it."""
    sf = salesforce_client(sandbox)
    account = sf.Account.create({"Name": "Task Holder Inc"})["id"]
    deal = sf.Opportunity.create(
        {"Name": "D", "AccountId": account, "StageName": "Prospecting", "CloseDate": "2027-01-31"}
    )["id"]
    created = sf.Task.create({"WhatId": deal, "Subject": "Call back [k:1]"})
    fields = {f["name"]: f for f in sf.Task.describe()["fields"]}

    got = sf.Task.get(created["id"])
    assert created["id"].startswith("00T")
    assert (got["Status"], got["Priority"], got["WhatId"]) == ("Not Started", "Normal", deal)
    assert fields["Status"]["defaultedOnCreate"] is True
    assert fields["Status"]["nillable"] is False
    assert fields["Subject"]["type"] == "combobox"
    found = sf.query(f"SELECT Id FROM Task WHERE WhatId = '{deal}' AND Subject LIKE '%[k:1]'")
    assert [r["Id"] for r in found["records"]] == [created["id"]]
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.Task.create({"WhatId": deal, "Subject": "x", "Status": "Started"})
    assert bad.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def _collection(records: list[dict[str, Any]], all_or_none: bool = False) -> dict[str, Any]:
    return {
        "allOrNone": all_or_none,
        "records": [{"attributes": {"type": "Account"}, **r} for r in records],
    }


def test_collections_report_per_record_results(sandbox: Sandbox) -> None:
    """A Collections PATCH answers one SaveResult per record, failures included."""
    sf = salesforce_client(sandbox)
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Account LIMIT 3")["records"]]
    body = _collection(
        [
            {"id": ids[0], "NumberOfEmployees": 10},
            {"id": ids[1], "Industry": "x" * 300},
            {"id": "001000000000000AAA", "NumberOfEmployees": 5},
        ]
    )
    results = sf.restful("composite/sobjects", method="PATCH", json=body)

    assert [r["success"] for r in results] == [True, False, False]
    assert results[0]["id"] == ids[0]
    assert results[1]["errors"][0]["statusCode"] in (
        "STRING_TOO_LONG",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    )
    assert results[2]["errors"][0]["statusCode"] in (
        "INVALID_CROSS_REFERENCE_KEY",
        "ENTITY_IS_DELETED",
        "MALFORMED_ID",
    )
    assert sf.Account.get(ids[0])["NumberOfEmployees"] == 10


def test_collections_all_or_none_rolls_back(sandbox: Sandbox) -> None:
    """With allOrNone, one bad record leaves every record untouched."""
    sf = salesforce_client(sandbox)
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Account LIMIT 2")["records"]]
    before = sf.Account.get(ids[0])["NumberOfEmployees"]
    body = _collection(
        [{"id": ids[0], "NumberOfEmployees": 77777}, {"id": ids[1], "No_Field__c": 1}],
        all_or_none=True,
    )
    results = sf.restful("composite/sobjects", method="PATCH", json=body)

    assert not any(r["success"] for r in results)
    assert sf.Account.get(ids[0])["NumberOfEmployees"] == before


def test_collections_refuse_more_than_200_records(sandbox: Sandbox) -> None:
    """201 records in one Collections call is refused with EXCEEDED_ID_LIMIT (400)."""
    sf = salesforce_client(sandbox)
    ids = [r["Id"] for r in sf.query_all("SELECT Id FROM Account LIMIT 201")["records"]]
    body = _collection([{"id": i, "NumberOfEmployees": 1} for i in ids])
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.restful("composite/sobjects", method="PATCH", json=body)
    assert refused.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_bulk2_query_and_update(sandbox: Sandbox) -> None:
    """Bulk 2.0: a query job returns every row as CSV; an update job reports failures per row."""
    sf = salesforce_client(sandbox)
    total = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    pages = list(sf.bulk2.Account.query("SELECT Id, Name FROM Account", max_records=400))
    rows = [line for page in pages for line in page.strip().splitlines()[1:]]
    assert len(rows) == total
    assert len(pages) == math.ceil(total / 400)

    ids = [r["Id"] for r in sf.query("SELECT Id FROM Account LIMIT 3")["records"]]
    records = [
        {"Id": ids[0], "NumberOfEmployees": "42"},
        {"Id": ids[1], "NumberOfEmployees": "not a number"},
        {"Id": ids[2], "NumberOfEmployees": "43"},
    ]
    results = sf.bulk2.Account.update(records=records, wait=0.1)
    assert results[0]["numberRecordsProcessed"] == 3
    assert results[0]["numberRecordsFailed"] == 1
    failed = sf.bulk2.Account.get_failed_records(results[0]["job_id"])
    assert ids[1] in failed
    assert "sf__Error" in failed
    assert sf.Account.get(ids[2])["NumberOfEmployees"] == 43


def test_limits_and_the_limit_header(sandbox_factory: SandboxFactory) -> None:
    """/limits and Sforce-Limit-Info agree; a spent quota answers 403 REQUEST_LIMIT_EXCEEDED."""
    sandbox = sandbox_factory(accounts=200, daily_api_limit=5)
    sf = salesforce_client(sandbox)
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 5
    sf.query("SELECT Id FROM Account LIMIT 1")
    assert sf.api_usage["api-usage"].total == 5
    assert sf.api_usage["api-usage"].used == 2
    for _ in range(3):  # calls 3, 4 and 5 of 5
        sf.query("SELECT Id FROM Account LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert "TotalRequests" in refused.value.content[0]["message"]


def test_a_custom_field_must_exist_before_it_is_queried_or_written(sandbox: Sandbox) -> None:
    """INVALID_FIELD until the Tooling API creates the field; then it can be written and read."""
    sf = salesforce_client(sandbox)
    soql = "SELECT Id, Fit_Grade__c FROM Account LIMIT 1"
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.query(soql)
    assert missing.value.content[0]["errorCode"] == "INVALID_FIELD"

    metadata = {
        "label": "Fit Grade",
        "type": "Picklist",
        "valueSet": {
            "restricted": True,
            "valueSetDefinition": {
                "value": [{"fullName": v, "default": False, "label": v} for v in ("A", "B")]
            },
        },
    }
    created = sf.toolingexecute(
        "sobjects/CustomField",
        method="POST",
        json={"FullName": "Account.Fit_Grade__c", "Metadata": metadata},
    )
    assert created["success"] is True
    found = sf.toolingexecute(
        "query/?q=SELECT+Id,DeveloperName+FROM+CustomField+WHERE+DeveloperName='Fit_Grade'"
    )
    assert found["totalSize"] == 1

    record = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    sf.Account.update(record, {"Fit_Grade__c": "A"})
    assert sf.Account.get(record)["Fit_Grade__c"] == "A"
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.Account.update(record, {"Fit_Grade__c": "Z"})
    assert bad.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.toolingexecute(
            "sobjects/CustomField",
            method="POST",
            json={"FullName": "Account.Fit_Grade__c", "Metadata": metadata},
        )
    assert duplicate.value.content[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"


class _ToSandbox(HTTPAdapter):
    """Sends https://*.salesforce.com to the sandbox, as a login redirect would."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = str(request.url)
        if ".salesforce.com" in url:
            path = url.split(".salesforce.com", 1)[1]
            request.url = self.base + path
        return super().send(request, **kwargs)


def _login_session(sandbox: Sandbox) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.tls.ca_file)
    session.mount("https://", _ToSandbox(sandbox.salesforce.url))
    return session


def _credentials(sandbox: Sandbox) -> dict[str, str]:
    import json

    document = json.loads((sandbox.directory / "credentials.json").read_text("utf-8"))
    credentials: dict[str, str] = document["salesforce"]
    return credentials


def test_oauth_client_credentials_login_and_refresh(sandbox_factory: SandboxFactory) -> None:
    """simple-salesforce's client-credentials login works and refreshes an expired token."""
    sandbox = sandbox_factory(accounts=200, faults=FaultProfile(session_expiry_after=3))
    creds = _credentials(sandbox)
    sf = Salesforce(
        consumer_key=creds["client_id"],
        consumer_secret=creds["client_secret"],
        domain="acme.my",
        session=_login_session(sandbox),
    )
    for _ in range(8):  # crosses the expiry twice
        assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    assert _calls(sandbox, "POST oauth2/token") >= 3

    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(
            consumer_key=creds["client_id"],
            consumer_secret="wrong",
            domain="acme.my",
            session=_login_session(sandbox),
        )


def test_password_login_over_soap(sandbox: Sandbox) -> None:
    """Username, password and security token log in through the SOAP login call."""
    creds = _credentials(sandbox)
    sf = Salesforce(
        username=creds["username"],
        password=creds["password"],
        security_token=creds["security_token"],
        domain="acme.my",
        session=_login_session(sandbox),
    )
    assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(
            username=creds["username"],
            password="wrong",
            security_token=creds["security_token"],
            domain="acme.my",
            session=_login_session(sandbox),
        )


def test_an_expired_session_id_is_answered_401(sandbox_factory: SandboxFactory) -> None:
    """With a plain session id, expiry raises SalesforceExpiredSession (nothing refreshes it)."""
    sandbox = sandbox_factory(accounts=200, faults=FaultProfile(session_expiry_after=2))
    sf = salesforce_client(sandbox)
    for _ in range(2):
        sf.query("SELECT Id FROM Account LIMIT 1")
    with pytest.raises(SalesforceExpiredSession) as expired:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert expired.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


@pytest.mark.parametrize(
    ("profile", "error", "code"),
    [
        pytest.param(
            FaultProfile(server_error=1.0), SalesforceGeneralError, 503, id="server_error"
        ),
        pytest.param(FaultProfile(rate_limit=1.0), SalesforceRefusedRequest, 403, id="rate_limit"),
    ],
)
def test_request_faults_answer_as_documented(
    sandbox: Sandbox, profile: FaultProfile, error: type[Exception], code: int
) -> None:
    """Injected 5xx and concurrency-limit refusals carry the documented status and body."""
    _control(sandbox, "POST", "/__sandbox/faults", json=profile.as_dict())
    sf = salesforce_client(sandbox)
    with pytest.raises(error) as raised:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert raised.value.status == code  # type: ignore[attr-defined]
    if code == 403:
        assert raised.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("profile", "code"),
    [
        pytest.param(FaultProfile(lock_row=1.0), "UNABLE_TO_LOCK_ROW", id="lock_row"),
        pytest.param(
            FaultProfile(validation=1.0), "FIELD_CUSTOM_VALIDATION_EXCEPTION", id="validation"
        ),
    ],
)
def test_record_faults_fail_single_records(
    sandbox: Sandbox, profile: FaultProfile, code: str
) -> None:
    """Row locks and validation rules fail records one by one inside a Collections call."""
    sf = salesforce_client(sandbox)
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Account LIMIT 3")["records"]]
    _control(sandbox, "POST", "/__sandbox/faults", json=profile.as_dict())
    body = _collection([{"id": i, "NumberOfEmployees": 9} for i in ids])
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert [r["errors"][0]["statusCode"] for r in results] == [code] * 3


def test_faults_are_deterministic_for_a_seed(sandbox_factory: SandboxFactory) -> None:
    """The same seed and the same calls fail at the same places."""

    def failures(seed: int) -> list[bool]:
        sandbox = sandbox_factory(accounts=100, faults=FaultProfile(seed=seed, server_error=0.3))
        sf = salesforce_client(sandbox)
        outcome = []
        for _ in range(30):
            try:
                sf.query("SELECT Id FROM Account LIMIT 1")
                outcome.append(False)
            except SalesforceGeneralError:
                outcome.append(True)
        return outcome

    first, again, other = failures(5), failures(5), failures(6)
    assert first == again
    assert first != other
    assert 3 <= sum(first) <= 20


def test_latency_is_added_per_request(sandbox_factory: SandboxFactory) -> None:
    """latency_ms slows every answer by at least that much."""
    import time

    sandbox = sandbox_factory(accounts=100, faults=FaultProfile(latency_ms=150))
    sf = salesforce_client(sandbox)
    started = time.perf_counter()
    sf.query("SELECT Id FROM Account LIMIT 1")
    assert time.perf_counter() - started >= 0.15


def test_stats_count_calls_and_records_and_reset(sandbox: Sandbox) -> None:
    """/__sandbox/stats counts calls, records read and written per endpoint; reset zeroes them."""
    sf = salesforce_client(sandbox)
    _control(sandbox, "POST", "/__sandbox/reset-stats")
    rows = sf.query("SELECT Id FROM Account LIMIT 5")["records"]
    sf.Account.update(rows[0]["Id"], {"NumberOfEmployees": 3})
    stats = _control(sandbox, "GET", "/__sandbox/stats")

    assert stats["calls"] == 2
    assert stats["records_read"] == 5
    assert stats["records_written"] == 1
    assert set(stats["by_endpoint"]) == {"GET query", "PATCH sobjects/record"}
    _control(sandbox, "POST", "/__sandbox/reset-stats")
    assert _control(sandbox, "GET", "/__sandbox/stats")["calls"] == 0


def test_a_persisted_org_keeps_its_writes_across_restarts(
    sandbox_factory: SandboxFactory, tmp_path: Any
) -> None:
    """With persist, a value written before a stop is there after the restart."""
    first = sandbox_factory(accounts=100, persist=True, directory=tmp_path / "org")
    sf = salesforce_client(first)
    record = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    sf.Account.update(record, {"NumberOfEmployees": 4321})
    first.stop()

    second = sandbox_factory(accounts=100, persist=True, directory=tmp_path / "org")
    assert salesforce_client(second).Account.get(record)["NumberOfEmployees"] == 4321
