"""Salesforce write-back against the sandbox org: Collections and Bulk costs, rejections."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.salesforce.write import salesforce_value
from icp_sync.model import CrmObject
from icp_sync.sandbox.faults import FaultProfile
from icp_sync.writeback import FieldChange, Plan
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import (
    count,
    make_org,
    names_not_in_tier,
    override,
)


@pytest.mark.parametrize("k", [1, 200, 450])
def test_writing_k_accounts_costs_ceil_k_over_200_collection_calls(
    sandbox_factory: SandboxFactory, tmp_path: Path, k: int
) -> None:
    """k changed accounts are written with ceil(k/200) sObject Collections calls."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    org.sync()
    names = names_not_in_tier(org, "Red", k)
    override(org, names, "Red")
    org.reset_stats()
    result = org.sync()
    stats = org.stats()

    assert result.records_written == k
    assert count("PATCH composite/sobjects", stats) == math.ceil(k / 200)
    assert stats["records_written"] == k
    after = org.icp_fields()
    assert all(after[n]["ICP_Tier__c"] == "Red" for n in names)


def test_writing_above_the_bulk_threshold_costs_a_constant_number_of_calls(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Above bulk_write_threshold, k changed accounts take one Bulk 2.0 ingest job."""
    org = make_org(sandbox_factory, tmp_path, accounts=1_500, bulk_write_threshold=300)
    org.setup_fields()
    org.sync()
    names = names_not_in_tier(org, "Red", 700)
    override(org, names, "Red")
    org.reset_stats()
    result = org.sync()
    stats = org.stats()

    assert result.records_written == 700
    assert count("PATCH composite/sobjects", stats) == 0
    assert count("POST jobs/ingest", stats) == 1
    assert count("PUT jobs/ingest/batches", stats) == 1
    # create, upload, close, status poll(s), three result sets: independent of k
    assert count("GET jobs/ingest*", stats) + count("PATCH jobs/ingest*", stats) <= 7
    assert all(org.icp_fields()[n]["ICP_Tier__c"] == "Red" for n in names)


def test_validation_rule_rejections_are_reported_and_only_those_records_differ(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    reference: dict[str, dict[str, Any]],
) -> None:
    """Records a validation rule refuses are reported per record; every other one is written."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    org.faults(FaultProfile(seed=7, validation=0.05))
    result = org.sync()

    writeback = result.writeback or {}
    assert result.status == "ok"
    assert 0 < writeback["rejected"] < 200
    rejected = set(org.store.ledger.rejected_writes(CrmObject.ACCOUNT))
    assert len(rejected) == writeback["rejected"]
    now = org.icp_fields()
    differing = {n for n in now if now[n] != reference[n]}
    assert differing == rejected
    # the rule still refuses them: the next cycle tries once more; then they wait (1 h first)
    again = org.sync()
    assert (again.writeback or {})["retried_rejects"] == len(rejected)
    assert (again.writeback or {})["rejected"] == len(rejected)
    assert again.records_written == 0
    later = org.sync()
    assert (later.writeback or {})["skipped_known_rejects"] == len(rejected)
    assert (later.writeback or {})["retried_rejects"] == 0
    assert later.records_written == 0


def test_refused_records_are_written_once_after_the_rule_is_fixed(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    reference: dict[str, dict[str, Any]],
) -> None:
    """Once the validation rule is fixed the next cycle retries the refused records, once."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    org.faults(FaultProfile(seed=7, validation=0.05))
    refused = (org.sync().writeback or {})["rejected"]
    org.faults(FaultProfile())
    org.reset_stats()

    fixed = org.sync()
    written = org.stats()["records_written"]
    quiet = org.sync()

    assert refused > 0
    assert (fixed.writeback or {})["retried_rejects"] == refused
    assert fixed.records_written == refused
    assert written == refused
    assert quiet.records_written == 0
    assert org.icp_fields() == reference


def test_without_icp_fields_sync_reads_scores_and_writes_nothing(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """An org whose admin has not created the ICP fields still syncs; check says what to do."""
    org = make_org(sandbox_factory, tmp_path)
    result = org.sync()
    connector = org.connector()
    items = {i.name: i for i in connector.check()}
    connector.close()

    assert result.status == "ok"
    assert result.records_written == 0
    assert "setup-fields" in (result.writeback or {})["skipped"]
    assert org.stats()["records_written"] == 0
    assert not items["write-back fields"].ok
    assert "icp-sync setup-fields" in items["write-back fields"].fix
    assert "ICP_Tier_Override__c" in items["Account fields"].detail


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("score", 91.0, 91),
        ("tal_rank", 3.0, 3),
        ("tal", 1, True),
        ("version", "v" * 40, "v" * 32),
        ("scored_at", datetime(2026, 11, 1, 12, 30, tzinfo=UTC), "2026-11-01T12:30:00.000Z"),
        ("tier", None, None),
    ],
    ids=["number", "rank", "checkbox", "text-cut-to-length", "datetime", "clear"],
)
def test_planned_values_take_the_form_of_their_salesforce_field(
    key: str, value: Any, expected: Any
) -> None:
    """Values are converted by the owned field's kind and length in the table."""
    assert salesforce_value(key, value) == expected


def test_a_collections_call_cut_off_before_its_results_were_recorded_is_not_sent_again(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A run killed between a Collections call and recording it: the next checks, not resends."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    ids = sorted(org.icp_fields())[:300]
    planned = Plan(
        changes=tuple(
            FieldChange(
                crm_object=CrmObject.ACCOUNT, record_id=i, field="tier", old=None, new="Red"
            )
            for i in ids
        )
    )
    org.reset_stats()
    first = org.connector()
    cut_off = first.apply(planned)
    assert len(next(cut_off).written) == 200  # sent and answered; the run dies here
    del cut_off
    first.close()

    second = org.connector()
    batches = list(second.apply(planned))
    second.close()

    assert sum(len(b.written) for b in batches) == 300
    assert org.stats()["records_written"] == 300
    assert all(org.icp_fields()[i]["ICP_Tier__c"] == "Red" for i in ids)
