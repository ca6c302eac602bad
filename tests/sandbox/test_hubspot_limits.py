"""HubSpot emulator guards: OAuth, tokens, rate limits, injected faults, accounting, saving.

Plain ``requests`` only reaches the sandbox's control endpoints (``/__sandbox/...``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.companies.exceptions import ApiException as CompaniesError
from hubspot.crm.properties import PropertyCreate

from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sandbox.service import Sandbox
from tests.conftest import SandboxFactory
from tests.crm_clients import hubspot_client
from tests.sandbox.hubspot_support import (
    control_call,
    header_map,
    read_stats,
    refused_call,
    reset_stats,
    set_limits,
)


def test_oauth_refresh_issues_tokens_that_expire(sandbox_factory: SandboxFactory) -> None:
    """The refresh grant issues tokens; after the set number of calls they answer 401 expired."""
    sandbox = sandbox_factory(accounts=100, faults=FaultProfile(session_expiry_after=2))
    creds = json.loads((sandbox.directory / "credentials.json").read_text("utf-8"))["hubspot"]
    tokens = hubspot_client(sandbox).oauth.tokens_api

    def refresh(refresh_token: str = creds["refresh_token"]) -> str:
        token = tokens.create(
            grant_type="refresh_token",
            client_id=creds["client_id"],
            client_secret=creds["client_secret"],
            refresh_token=refresh_token,
        )
        assert token.expires_in > 0
        assert token.token_type == "bearer"
        return str(token.access_token)

    client = hubspot_client(sandbox, access_token=refresh())
    for _ in range(2):
        client.crm.companies.basic_api.get_page(limit=1)
    for _ in range(2):  # and it stays expired
        expired = refused_call(lambda: client.crm.companies.basic_api.get_page(limit=1))
        assert expired.status == 401
        assert expired.body["category"] == "EXPIRED_AUTHENTICATION"
    fresh_client = hubspot_client(sandbox, access_token=refresh())
    assert fresh_client.crm.companies.basic_api.get_page(limit=1).results
    for _ in range(3):  # the private-app token never expires
        hubspot_client(sandbox).crm.companies.basic_api.get_page(limit=1)

    bad = refused_call(lambda: refresh("not-the-refresh-token"))
    assert bad.status == 400
    assert bad.body["status"] == "BAD_REFRESH_TOKEN"


def test_an_unknown_token_is_answered_401(shared: Sandbox) -> None:
    """A token the portal never issued is answered 401 INVALID_AUTHENTICATION."""
    client = hubspot_client(shared, access_token="pat-na1-not-a-token")
    refused = refused_call(lambda: client.crm.companies.basic_api.get_page(limit=1))
    assert refused.status == 401
    assert refused.body["category"] == "INVALID_AUTHENTICATION"


def test_every_answer_carries_the_rate_limit_headers(fresh: Sandbox) -> None:
    """X-HubSpot-RateLimit-* headers count down the burst window and the daily budget."""
    client = hubspot_client(fresh)
    answers = [
        header_map(client.crm.companies.basic_api.get_page_with_http_info(limit=1)[2])
        for _ in range(2)
    ]
    assert answers[0]["x-hubspot-ratelimit-max"] == "190"
    assert answers[0]["x-hubspot-ratelimit-interval-milliseconds"] == "10000"
    assert answers[0]["x-hubspot-ratelimit-daily"] == "1000000"
    for name in ("x-hubspot-ratelimit-remaining", "x-hubspot-ratelimit-daily-remaining"):
        assert int(answers[0][name]) - int(answers[1][name]) == 1


def test_the_ten_secondly_limit_answers_429(fresh: Sandbox) -> None:
    """Past the burst limit calls answer 429 TEN_SECONDLY_ROLLING with the remaining at 0."""
    set_limits(fresh, ten_secondly=3, window_ms=60_000)
    client = hubspot_client(fresh)
    for _ in range(3):
        client.crm.companies.basic_api.get_page(limit=1)
    refused = refused_call(lambda: client.crm.companies.basic_api.get_page(limit=1))

    assert refused.status == 429
    assert refused.body["errorType"] == "RATE_LIMIT"
    assert refused.body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert refused.body["message"] == "You have reached your ten_secondly_rolling limit."
    assert refused.headers["x-hubspot-ratelimit-max"] == "3"
    assert refused.headers["x-hubspot-ratelimit-remaining"] == "0"


def test_the_daily_limit_answers_429_for_every_call(fresh: Sandbox) -> None:
    """Once the daily budget is spent every call, search included, answers 429 DAILY."""
    set_limits(fresh, daily=2)
    client = hubspot_client(fresh)
    client.crm.companies.basic_api.get_page(limit=1)
    client.crm.deals.basic_api.get_page(limit=1)
    calls: list[Callable[[], object]] = [
        lambda: client.crm.companies.basic_api.get_page(limit=1),
        lambda: client.crm.companies.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(limit=1)
        ),
    ]
    for call in calls:
        refused = refused_call(call)
        assert refused.status == 429
        assert refused.body["policyName"] == "DAILY"
        assert refused.body["message"] == "You have reached your daily limit."
        assert refused.headers["x-hubspot-ratelimit-daily-remaining"] == "0"


def test_search_has_its_own_per_second_limit(fresh: Sandbox) -> None:
    """Search is exempt from the burst window but limited per second (429 SECONDLY)."""
    set_limits(fresh, ten_secondly=1, window_ms=60_000, search_per_second=2)
    client = hubspot_client(fresh)
    client.crm.companies.basic_api.get_page(limit=1)
    assert refused_call(lambda: client.crm.companies.basic_api.get_page(limit=1)).status == 429

    def search() -> object:
        return client.crm.companies.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(limit=1)
        )

    search()
    search()
    refused = refused_call(search)
    assert refused.status == 429
    assert refused.body["policyName"] == "SECONDLY"
    assert refused.body["errorType"] == "RATE_LIMIT"


@pytest.mark.parametrize(
    ("profile", "status", "policy"),
    [
        pytest.param({"server_error": 1.0}, 502, None, id="server_error"),
        pytest.param({"rate_limit": 1.0}, 429, "TEN_SECONDLY_ROLLING", id="rate_limit"),
    ],
)
def test_request_faults_answer_as_documented(
    fresh: Sandbox, profile: dict[str, float], status: int, policy: str | None
) -> None:
    """Injected faults answer 502 (HTML, like HubSpot's gateway) or a documented 429 body."""
    control_call(fresh, "POST", "/__sandbox/faults", json=profile)
    client = hubspot_client(fresh)
    refused = refused_call(lambda: client.crm.companies.basic_api.get_page(limit=1))
    assert refused.status == status
    assert "x-hubspot-ratelimit-max" in refused.headers
    if policy is None:
        assert "Bad Gateway" in refused.body["raw"]
        return
    assert refused.body["policyName"] == policy
    searched = refused_call(
        lambda: client.crm.companies.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(limit=1)
        )
    )
    assert searched.body["policyName"] == "SECONDLY"


@pytest.mark.parametrize("fault", ["server_error", "rate_limit"])
def test_faults_are_deterministic_for_a_seed(fresh: Sandbox, fault: str) -> None:
    """The same seed fails the same calls; another seed fails others."""
    client = hubspot_client(fresh)

    def failures(seed: int) -> list[bool]:
        control_call(fresh, "POST", "/__sandbox/faults", json={"seed": seed, fault: 0.3})
        outcome = []
        for _ in range(30):
            try:
                client.crm.companies.basic_api.get_page(limit=1)
                outcome.append(False)
            except CompaniesError:
                outcome.append(True)
        return outcome

    first, again, other = failures(5), failures(5), failures(6)
    assert first == again
    assert first != other
    assert 3 <= sum(first) <= 20


def test_latency_is_added_to_every_call(fresh: Sandbox) -> None:
    """latency_ms slows every answer by at least that much."""
    control_call(fresh, "POST", "/__sandbox/faults", json={"latency_ms": 150})
    client = hubspot_client(fresh)
    started = time.perf_counter()
    client.crm.companies.basic_api.get_page(limit=1)
    assert time.perf_counter() - started >= 0.15


def test_the_validation_fault_refuses_the_same_records_every_time(fresh: Sandbox) -> None:
    """validation fails a seeded, stable set of records on the property being written."""
    control_call(fresh, "POST", "/__sandbox/faults", json={"validation": 0.5, "seed": 3})
    client = hubspot_client(fresh)
    ids = [c.id for c in client.crm.companies.basic_api.get_page(limit=20).results]

    def refused_ids() -> set[str]:
        answer = client.crm.companies.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    {"id": i, "objectWriteTraceId": i, "properties": {"numberofemployees": "9"}}
                    for i in ids
                ]
            )
        )
        assert {e.context["propertyName"][0] for e in answer.errors or []} <= {"numberofemployees"}
        return {e.context["ids"][0] for e in answer.errors or []}

    first = refused_ids()
    assert 0 < len(first) < len(ids)
    assert refused_ids() == first
    control_call(fresh, "POST", "/__sandbox/faults", json={"validation": 0.5, "seed": 4})
    assert refused_ids() != first
    control_call(fresh, "POST", "/__sandbox/faults", json={"validation": 0.5, "seed": 3})
    single = refused_call(
        lambda: client.crm.companies.basic_api.update(
            sorted(first)[0], SimplePublicObjectInput(properties={"name": "x"})
        )
    )
    assert single.status == 400
    assert single.body["errors"][0]["context"]["propertyName"] == ["name"]


def test_lock_row_is_a_salesforce_fault_only(fresh: Sandbox) -> None:
    """HubSpot has no row locks: lock_row=1 leaves HubSpot writes alone."""
    control_call(fresh, "POST", "/__sandbox/faults", json={"lock_row": 1.0})
    client = hubspot_client(fresh)
    company = client.crm.companies.basic_api.get_page(limit=1).results[0].id
    client.crm.companies.basic_api.update(
        company, SimplePublicObjectInput(properties={"numberofemployees": "8"})
    )
    got = client.crm.companies.basic_api.get_by_id(company, properties=["numberofemployees"])
    assert got.properties["numberofemployees"] == "8"


def test_stats_count_calls_and_records_by_endpoint(fresh: Sandbox) -> None:
    """/__sandbox/stats counts calls, records read and written per endpoint; reset zeroes it."""
    client = hubspot_client(fresh)
    reset_stats(fresh)
    ids = [c.id for c in client.crm.companies.basic_api.get_page(limit=7).results]
    client.crm.objects.basic_api.get_page("0-2", limit=3)
    client.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": i, "properties": {"numberofemployees": "3"}} for i in ids[:4]]
        )
    )
    client.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"name": "A"})
    )
    client.crm.companies.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(limit=5)
    )
    stats = read_stats(fresh)

    assert stats["calls"] == 5
    assert stats["records_read"] == 7 + 3 + 5
    assert stats["records_written"] == 4 + 1
    assert stats["by_endpoint"] == {
        "GET objects/companies": {"calls": 2, "records_read": 10, "records_written": 0},
        "POST objects/companies": {"calls": 1, "records_read": 0, "records_written": 1},
        "POST objects/companies/batch/update": {
            "calls": 1,
            "records_read": 0,
            "records_written": 4,
        },
        "POST objects/companies/search": {"calls": 1, "records_read": 5, "records_written": 0},
    }
    assert read_stats(fresh)["calls"] == 5  # control calls are not counted
    reset_stats(fresh)
    assert read_stats(fresh) == {
        "calls": 0,
        "by_endpoint": {},
        "records_read": 0,
        "records_written": 0,
    }


def test_a_persisted_portal_keeps_its_writes(
    sandbox_factory: SandboxFactory, tmp_path: Any
) -> None:
    """With persist, values, new properties and associations written before a stop survive."""
    first = sandbox_factory(accounts=100, persist=True, directory=tmp_path / "portal")
    client = hubspot_client(first)
    client.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name="icp_score",
            label="ICP Score",
            type="number",
            field_type="number",
            group_name="companyinformation",
        ),
    )
    company = client.crm.companies.basic_api.get_page(limit=1).results[0].id
    client.crm.companies.basic_api.update(
        company,
        SimplePublicObjectInput(properties={"numberofemployees": "4321", "icp_score": "87"}),
    )
    deal = client.crm.deals.basic_api.get_page(limit=1).results[0].id
    client.crm.associations.v4.basic_api.create_default("deals", deal, "companies", company)
    first.stop()

    second = sandbox_factory(accounts=100, persist=True, directory=tmp_path / "portal")
    again = hubspot_client(second)
    got = again.crm.companies.basic_api.get_by_id(
        company, properties=["numberofemployees", "icp_score"]
    )
    assert got.properties["numberofemployees"] == "4321"
    assert got.properties["icp_score"] == "87"
    assert again.crm.properties.core_api.get_by_name("companies", "icp_score").type == "number"
    linked = again.crm.associations.v4.basic_api.get_page("deals", deal, "companies").results
    assert [r.to_object_id for r in linked] == [company]


def test_limits_report_the_calls_each_policy_refused(sandbox_factory: SandboxFactory) -> None:
    """GET /__sandbox/limits counts refusals by policy, so a client's pacing can be checked."""
    sandbox = sandbox_factory(accounts=100)
    set_limits(sandbox, ten_secondly=2, window_ms=60_000)
    companies = hubspot_client(sandbox).crm.companies.basic_api
    for _ in range(2):
        companies.get_page(limit=1)
    refused = refused_call(lambda: companies.get_page(limit=1))

    assert refused.status == 429
    limits = control_call(sandbox, "GET", "/__sandbox/limits")
    assert limits["refused"] == {"TEN_SECONDLY_ROLLING": 1}
    assert limits["ten_secondly"] == 2
    assert limits["search_cap"] == 10_000
