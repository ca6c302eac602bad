"""HubSpot extraction against the sandbox portal: the search cap, ties, deletes, deals."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.hubspot.extract import parse_moment
from icp_sync.model import CrmObject
from icp_sync.sandbox.hubspot.properties import iso_ms
from tests.conftest import SandboxFactory
from tests.connectors.hubspot_portal import Portal, calls, make_portal

CAP = 400


def _portal(factory: SandboxFactory, tmp_path: Path, accounts: int = 1000) -> Portal:
    """A portal whose search stops at 400 results a query, as HubSpot does at 10,000."""
    portal = make_portal(factory, tmp_path, accounts=accounts, search_result_cap=CAP)
    portal.limits(search_cap=CAP)
    return portal


def _live_companies(portal: Portal) -> list[str]:
    records = portal.sandbox.portal.records["companies"].values()
    return sorted((r.id for r in records if not r.archived), key=int)


def test_incremental_read_past_the_cap_reads_every_change_exactly_once(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """900 companies changed in one window (cap 400) are all read, each exactly once."""
    portal = _portal(sandbox_factory, tmp_path)
    assert portal.sync().status == "ok"
    changed = _live_companies(portal)[:900]
    portal.touch(changed, industry="Re-anchored")
    portal.reset_stats()

    result = portal.sync()

    search = portal.stats()["by_endpoint"]["POST objects/companies/search"]
    # one query reaches 400 results at most: reading 900 needed re-anchored windows, and
    # they cost no call beyond the pages themselves
    assert search["records_read"] == len(changed)
    assert search["calls"] == math.ceil(len(changed) / 200)
    accounts = portal.store.mirror.load(CrmObject.ACCOUNT)
    assert set(accounts.loc[accounts["industry"] == "Re-anchored", "account_id"]) == set(changed)
    assert result.objects[CrmObject.ACCOUNT].updated == len(changed)


def test_more_ties_at_one_stamp_than_the_cap_are_drained_by_id(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """600 companies sharing one hs_lastmodifieddate (a bulk import) are each read once."""
    portal = _portal(sandbox_factory, tmp_path)
    assert portal.sync().status == "ok"
    tied = _live_companies(portal)[:600]
    hub = portal.sandbox.portal
    stamp = hub.now_ms() + 5_000
    with hub.lock:
        for record_id in tied:
            record = hub.records["companies"][record_id]
            record.properties["industry"] = "Imported"
            record.properties["hs_lastmodifieddate"] = iso_ms(stamp)
            record.updated = stamp
    portal.reset_stats()

    portal.sync()

    search = portal.stats()["by_endpoint"]["POST objects/companies/search"]
    assert search["records_read"] == len(tied)
    accounts = portal.store.mirror.load(CrmObject.ACCOUNT)
    assert set(accounts.loc[accounts["industry"] == "Imported", "account_id"]) == set(tied)


def test_archived_and_purged_companies_leave_the_mirror(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Archived companies are deletes every cycle; purged ones go at the next --full."""
    portal = _portal(sandbox_factory, tmp_path, accounts=300)
    assert portal.sync().status == "ok"
    live = _live_companies(portal)
    hub = portal.sandbox.portal
    for record_id in live[:3]:
        assert hub.archive("companies", record_id)

    incremental = portal.sync()

    assert incremental.objects[CrmObject.ACCOUNT].deleted == 3
    with hub.lock:
        del hub.records["companies"][live[3]]  # purged: gone from the archive as well
    full = portal.sync(full=True)
    assert full.objects[CrmObject.ACCOUNT].deleted == 1
    mirrored = set(portal.store.mirror.load(CrmObject.ACCOUNT)["account_id"])
    assert mirrored == set(live[4:])


def test_deals_carry_their_company_and_stage_outcome(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Deals read by search get their company (v4 batch read) and open/won/lost stage."""
    portal = _portal(sandbox_factory, tmp_path, accounts=300)
    assert portal.sync().status == "ok"
    hub = portal.sandbox.portal
    deals = sorted(
        (r for r in hub.records["deals"].values() if not r.archived and r.id in hub.deal_company),
        key=lambda r: int(r.id),
    )
    won, lost = deals[0].id, deals[1].id
    for deal_id, stage in ((won, "closedwon"), (lost, "closedlost")):
        hub.write("deals", deal_id, hub.checked("deals", {"dealstage": stage}))
    portal.reset_stats()

    portal.sync()

    stats = portal.stats()
    assert calls(stats, "POST associations/batch/") == 1, stats["by_endpoint"]
    opportunities = portal.store.mirror.load(CrmObject.OPPORTUNITY).set_index("opportunity_id")
    assert opportunities.at[won, "stage"] == "won"
    assert opportunities.at[lost, "stage"] == "lost"
    assert opportunities.at[won, "account_id"] == hub.deal_company[won]
    everything = opportunities.loc[[d.id for d in deals]]
    assert (everything["account_id"] == [hub.deal_company[d.id] for d in deals]).all()


def test_ties_beyond_what_ids_can_exclude_are_drained(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """950 companies at one stamp, 200 a query: past 900 excluded ids the tie is drained by id."""
    portal = make_portal(sandbox_factory, tmp_path, search_result_cap=200)
    portal.limits(search_cap=200)
    assert portal.sync().status == "ok"
    tied = _live_companies(portal)[:950]
    hub = portal.sandbox.portal
    stamp = hub.now_ms() + 5_000
    with hub.lock:
        for record_id in tied:
            record = hub.records["companies"][record_id]
            record.properties["industry"] = "Imported"
            record.properties["hs_lastmodifieddate"] = iso_ms(stamp)

    result = portal.sync()

    assert result.objects[CrmObject.ACCOUNT].updated == len(tied)
    accounts = portal.store.mirror.load(CrmObject.ACCOUNT)
    assert set(accounts.loc[accounts["industry"] == "Imported", "account_id"]) == set(tied)


def test_a_fast_local_clock_never_moves_the_cursor_past_the_portal(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Cursors come from the portal's stamps and clock: a client two days ahead loses nothing."""
    portal = make_portal(sandbox_factory, tmp_path, accounts=300)
    ahead = datetime.now(UTC) + timedelta(days=2)
    assert portal.sync(now=ahead).status == "ok"
    cursor = portal.store.watermarks.get("hubspot", CrmObject.ACCOUNT)
    assert cursor is not None
    assert parse_moment(cursor) < datetime.now(UTC) + timedelta(minutes=1)
    company = _live_companies(portal)[0]
    portal.touch([company], industry="Seen")

    portal.sync(now=ahead + timedelta(minutes=5))

    accounts = portal.store.mirror.load(CrmObject.ACCOUNT).set_index("account_id")
    assert accounts.at[company, "industry"] == "Seen"
