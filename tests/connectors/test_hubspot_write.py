"""HubSpot write-back against the sandbox portal: call costs, 207s, allow-list, native ICP."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.hubspot.write import NATIVE_TIERS
from icp_sync.errors import FatalConnectorError
from icp_sync.model import CrmObject
from icp_sync.sandbox.faults import FaultProfile
from icp_sync.writeback import FieldChange, Plan
from tests.conftest import SandboxFactory
from tests.connectors.hubspot_portal import Portal, calls, make_portal

UPDATE = "POST objects/companies/batch/update"


@pytest.fixture
def portal(sandbox_factory: SandboxFactory, tmp_path: Path) -> Portal:
    """A 500-company portal with the ICP properties, synced twice (steady state)."""
    portal = make_portal(sandbox_factory, tmp_path, accounts=500, lookback_seconds=0)
    portal.setup_fields()
    assert portal.sync().status == "ok"
    assert portal.sync().records_written == 0
    return portal


def test_first_sync_writes_every_company_at_100_a_call(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """k companies to write cost ceil(k/100) batch updates, each one traced; then nothing."""
    portal = make_portal(sandbox_factory, tmp_path, accounts=500)
    portal.setup_fields()
    portal.reset_stats()

    first = portal.sync()

    written = first.records_written
    assert written > 400
    stats = portal.stats()
    assert calls(stats, UPDATE) == math.ceil(written / 100)
    assert stats["by_endpoint"][UPDATE]["records_written"] == written
    held = portal.icp_values()
    assert sum(1 for v in held.values() if v["icp_tier"]) == written
    portal.reset_stats()
    assert portal.sync().records_written == 0
    assert calls(portal.stats(), UPDATE) == 0


def test_k_overrides_cost_ceil_k_over_100_calls(portal: Portal) -> None:
    """Owners override 150 tiers by hand: the next sync writes 150 companies in 2 calls."""
    held = portal.icp_values()
    targets = sorted(rid for rid, v in held.items() if v["icp_tier"] != "Red")[:150]
    portal.touch(targets, icp_tier_override="Red")
    portal.reset_stats()

    result = portal.sync()

    assert result.records_written == len(targets)
    assert calls(portal.stats(), UPDATE) == math.ceil(len(targets) / 100)
    now = portal.icp_values()
    assert all(now[rid]["icp_tier"] == "Red" for rid in targets)


def test_a_no_change_cycle_costs_four_calls(portal: Portal) -> None:
    """With nothing changed, a cycle is one search and one archive list per object."""
    portal.reset_stats()

    result = portal.sync()

    assert result.records_written == 0
    stats = portal.stats()
    assert stats["calls"] == 4, stats["by_endpoint"]


def test_207_partial_failures_are_rejected_and_the_rest_written(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A validation rule refusing some companies: those are reported, every other is written."""
    portal = make_portal(sandbox_factory, tmp_path, accounts=500)
    portal.setup_fields()
    portal.faults(FaultProfile(validation=0.05, seed=3))

    result = portal.sync()

    assert result.writeback is not None
    rejected = result.writeback["rejected"]
    assert rejected > 0
    assert result.records_written + rejected == result.writeback["plan"]["records"]
    held = portal.icp_values()
    assert sum(1 for v in held.values() if v["icp_tier"]) == result.records_written
    logged = portal.store.ledger.rejections(CrmObject.ACCOUNT)
    assert len(logged) == rejected
    assert all(held[rid]["icp_tier"] is None for rid in logged)


def test_nothing_outside_the_allow_list_is_sent(portal: Portal) -> None:
    """A plan naming a property icp-sync does not own is refused before any call."""
    company = next(iter(portal.icp_values()))
    plan = Plan(
        changes=(
            FieldChange(
                crm_object=CrmObject.ACCOUNT, record_id=company, field="name", old="A", new="B"
            ),
        )
    )
    connector = portal.connector()
    portal.reset_stats()

    with pytest.raises(FatalConnectorError, match="refusing to write name"):
        list(connector.apply(plan))

    assert calls(portal.stats(), UPDATE) == 0
    connector.close()


def test_native_icp_properties_follow_tier_and_tal(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """With native_icp on, hs_ideal_customer_profile and hs_is_target_account match."""
    portal = make_portal(sandbox_factory, tmp_path, accounts=500, native_icp=True)
    portal.setup_fields()

    assert portal.sync().records_written > 0

    hub = portal.sandbox.portal
    with hub.lock:
        companies = [r for r in hub.records["companies"].values() if not r.archived]
    tiered = [r for r in companies if r.properties.get("icp_tier")]
    assert tiered
    for record in tiered:
        props = record.properties
        assert props["hs_ideal_customer_profile"] == NATIVE_TIERS[str(props["icp_tier"])]
        assert (props["hs_is_target_account"] or "false") == (props["icp_tal"] or "false")


def test_a_manual_tier_edit_is_detected_and_reverted(portal: Portal) -> None:
    """A user's edit of icp_tier is logged as a manual edit and written back once."""
    held = portal.icp_values()
    company = sorted(rid for rid, v in held.items() if v["icp_tier"])[0]
    tier = held[company]["icp_tier"]
    portal.touch([company], icp_tier="Red" if tier != "Red" else "Green")
    portal.reset_stats()

    result = portal.sync()

    assert result.writeback is not None
    assert result.objects[CrmObject.ACCOUNT].manual_edits == 1
    assert result.writeback["manual_edits"]["reverting"] == 1
    assert result.records_written == 1
    assert portal.icp_values()[company]["icp_tier"] == tier


def test_archived_lists_can_be_spaced_out_to_two_calls_a_cycle(portal: Portal) -> None:
    """archived_every_minutes = 60: a no-change cycle is 2 searches; a delete waits the hour."""
    connector = portal.connector(archived_every_minutes=60)
    start = datetime.now(UTC)
    portal.sync(now=start, connector=connector)  # lists the archive, notes when
    company = next(iter(portal.icp_values()))
    assert portal.sandbox.portal.archive("companies", company)
    portal.reset_stats()

    quiet = portal.sync(
        now=start + timedelta(minutes=5), connector=portal.connector(archived_every_minutes=60)
    )

    assert portal.stats()["calls"] == 2
    assert quiet.objects[CrmObject.ACCOUNT].deleted == 0
    later = portal.sync(
        now=start + timedelta(minutes=61), connector=portal.connector(archived_every_minutes=60)
    )
    assert later.objects[CrmObject.ACCOUNT].deleted == 1
