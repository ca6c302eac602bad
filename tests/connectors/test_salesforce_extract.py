"""Salesforce extraction against the sandbox org: query calls per page, bulk, SOQL escaping."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.salesforce.connector import soql_literal
from icp_sync.model import WRITTEN_ACCOUNT_FIELDS, CrmObject
from icp_sync.sandbox.service import Sandbox
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import (
    count,
    make_org,
    queries,
)
from tests.crm_clients import salesforce_client


def test_full_rest_extract_costs_one_query_call_per_page(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A full REST extract of N records costs ceil(N/2000) query calls per object, no more."""
    org = make_org(sandbox_factory, tmp_path, accounts=4_100)
    org.reset_stats()
    result = org.sync(dry_run=True)
    stats = org.stats()
    accounts = result.objects[CrmObject.ACCOUNT].extracted
    deals = result.objects[CrmObject.OPPORTUNITY].extracted

    assert accounts == 4_100
    pages = math.ceil(accounts / 2000) + math.ceil(deals / 2000)
    assert queries(stats) == pages
    assert stats["calls"] == pages + 3  # token, two describes (the budget comes from headers)
    assert result.records_written == 0


def test_bulk_extract_costs_a_constant_number_of_calls(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Above the bulk threshold, extraction is one Bulk 2.0 query job per object plus pages."""
    org = make_org(sandbox_factory, tmp_path, accounts=2_500, bulk_query_threshold=100)
    org.reset_stats()
    result = org.sync(dry_run=True)
    stats = org.stats()

    assert result.objects[CrmObject.ACCOUNT].extracted == 2_500
    assert count("POST jobs/query", stats) == 2  # one job per object
    assert count("GET jobs/query/results", stats) == 2  # each result set fits one 50k page
    assert count("GET queryAll", stats) == 2  # the size probe: one REST page per object
    assert stats["calls"] <= 16
    live = salesforce_client(org.sandbox).query("SELECT COUNT() FROM Account")["totalSize"]
    assert org.store.mirror.counts()["account"] == live  # deleted rows arrive as tombstones


def test_second_cycle_without_change_makes_a_handful_of_calls(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """After a full cycle, a one-shot sync of an unchanged org costs 4 calls (token, two
    describes, one Composite call with both queries and, once a minute has passed, both
    getDeleted windows), and writes nothing."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    first = org.sync()
    org.reset_stats()
    second = org.sync()
    stats = org.stats()

    assert first.records_written > 900
    assert second.records_written == 0
    assert second.status == "ok"
    assert stats["calls"] == 4, stats["by_endpoint"]
    assert count("POST composite", stats) == 1
    assert stats["records_written"] == 0
    org.sandbox.org.advance(61)
    org.reset_stats()
    assert org.sync().records_written == 0
    assert org.stats()["calls"] == 4, org.stats()["by_endpoint"]
    assert count("GET getDeleted", org.stats()) == 0  # read inside the Composite call


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("Acme", "'Acme'"),
        ("O'Brien & Sons", "'O\\'Brien & Sons'"),
        ("back\\slash", "'back\\\\slash'"),
        ("line\nbreak", "'line\\nbreak'"),
        ("x' OR Name != '", "'x\\' OR Name != \\''"),
    ],
)
def test_soql_literals_are_escaped(value: str, literal: str) -> None:
    """Strings put into SOQL are quoted and escaped, so a value can never become syntax."""
    assert soql_literal(value) == literal


def test_an_escaped_literal_round_trips_through_the_org(sandbox: Sandbox) -> None:
    """A name with quotes and backslashes, escaped, finds exactly its own record."""
    sf = salesforce_client(sandbox)
    name = "O'Brien \\ Partners' Ltd"
    created = sf.Account.create({"Name": name})
    rows = sf.query(f"SELECT Id FROM Account WHERE Name = {soql_literal(name)}")["records"]
    assert [r["Id"] for r in rows] == [created["id"]]


def test_owned_field_values_arrive_beside_the_records_not_among_them(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Read-back values of the owned fields travel in Batch.owned, keyed by account id."""
    org = make_org(sandbox_factory, tmp_path, accounts=300)
    org.setup_fields()
    org.sync()
    connector = org.connector()
    batches = list(connector.extract(CrmObject.ACCOUNT, since=None, now=datetime.now(UTC)))
    connector.close()
    batch = next(b for b in batches if not b.frame.empty)

    assert batch.owned is not None
    assert set(batch.owned.columns) == set(WRITTEN_ACCOUNT_FIELDS)
    assert list(batch.owned.index) == list(batch.frame["account_id"].astype(str))
    assert set(batch.owned["tier"].dropna()) <= {"Green", "Yellow", "Red"}
    assert [c for c in batch.frame.columns if c.startswith("attr_")] == ["attr_icp_tier_override"]


def test_a_bulk_query_is_mirrored_page_by_page_and_resumed_at_its_page(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Bulk results arrive one bounded page per batch; a run stopped after two pages resumes
    the same job at the page it was on (no new job, no page read twice but the last)."""
    org = make_org(
        sandbox_factory, tmp_path, accounts=2_500, bulk_query_threshold=100, bulk_page_records=1000
    )
    connector = org.connector()
    pages = connector.extract(CrmObject.ACCOUNT, since=None, now=datetime.now(UTC))
    first, second = next(pages), next(pages)
    pages.close()  # the process dies while the second page is mirrored
    connector.close()
    assert len(first.frame) == len(second.frame) == 1000
    assert first.cursor is None  # unordered bulk pages: the cursor is safe only at the end
    org.reset_stats()
    connector = org.connector()
    rest = list(connector.extract(CrmObject.ACCOUNT, since=None, now=datetime.now(UTC)))
    connector.close()
    stats = org.stats()

    records = [b for b in rest if not b.frame.empty]
    assert count("POST jobs/query", stats) == 0
    assert count("GET jobs/query/results", stats) == 2  # the second page again, then the third
    assert [len(b.frame) for b in records] == [1000, 500]
    assert records[-1].cursor is not None
    ids = {*first.frame["account_id"], *(i for b in records for i in b.frame["account_id"])}
    assert len(ids) == 2_500


def test_a_failed_bulk_job_is_a_one_line_retriable_error(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A bulk job that ends Failed leaves the client as a RetriableConnectorError with one
    line of text, never as a raw simple-salesforce traceback."""
    from simple_salesforce.exceptions import SalesforceBulkV2LoadError, SalesforceOperationError

    from connectors.salesforce.client import classify
    from icp_sync.errors import FatalConnectorError, RetriableConnectorError

    failed = classify(
        SalesforceOperationError("Job failure. Response content: {'state': 'Failed',\n 'x': 1}")
    )
    refused = classify(SalesforceBulkV2LoadError("Input file is too large\nmax 100 MB"))

    assert isinstance(failed, RetriableConnectorError)
    assert "\n" not in str(failed)
    assert "Job failure" in str(failed)
    assert isinstance(refused, FatalConnectorError)
    assert "\n" not in str(refused)

    def failing_job(_: Any) -> None:
        raise SalesforceOperationError("Job failure. Response content: Failed")

    org = make_org(sandbox_factory, tmp_path, accounts=200)
    connector = org.connector()
    with pytest.raises(RetriableConnectorError, match="bulk job"):
        connector._client.call("bulk query", failing_job)
    connector.close()
