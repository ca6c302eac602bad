"""Salesforce extraction against the sandbox org: query calls per page, bulk, SOQL escaping."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

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
    assert stats["calls"] == pages + 4  # token, limits, two describes
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
    """After a full cycle, an unchanged org costs 8 calls and writes nothing."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    first = org.sync()
    org.reset_stats()
    second = org.sync()
    stats = org.stats()

    assert first.records_written > 900
    assert second.records_written == 0
    assert second.status == "ok"
    assert stats["calls"] == 8, stats["by_endpoint"]
    assert stats["records_written"] == 0


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
