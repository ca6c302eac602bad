"""Incremental scoring: a daemon cycle with k changed accounts scores and plans only those,
and leaves the CRM and the stored scores exactly as scoring every account would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from icp_sync.model import CrmObject
from icp_sync.pipeline import SyncResult
from icp_sync.pipeline.history import History
from icp_sync.pipeline.planning import plan_writes
from icp_sync.pipeline.session import SyncSession
from icp_sync.pipeline.versions import icp_in_force
from icp_sync.store import Store
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import Org, make_org
from tests.crm_clients import salesforce_client

_SCORE_COLUMNS = ["account_id", "tier", "rule_tier", "score", "segment", "reasons", "overridden"]


def _cycles(org: Org) -> tuple[SyncSession, Any]:
    session = SyncSession(org.settings, org.store, connector_factory=org.connector)

    def cycle(name: str) -> SyncResult:
        org.sandbox.org.advance(61)
        with org.store.lease.hold("sync", ttl=timedelta(seconds=60), wait=timedelta(0)) as lease:
            return session.cycle(run_id=name, now=datetime.now(UTC), lease=lease)

    return session, cycle


def _full_rescore(org: Org) -> tuple[pd.DataFrame, int]:
    """Every account scored from scratch (nothing stored), and the changes a full plan finds."""
    history = History.load(org.store)
    now = datetime.now(UTC)
    icp, _ = icp_in_force(org.settings, org.store, history, now=now)
    assert icp is not None
    connector = org.connector()
    try:
        writable = set(connector.writable_fields())
    finally:
        connector.close()
    proposal = plan_writes(
        org.settings, org.store, history, icp, writable=writable, now=now, keep=False
    )
    return proposal.scored.frame, len(proposal.planned.changes)


def _stored(store: Store, version: str) -> pd.DataFrame:
    frame = store.versions.load_scores(version)[_SCORE_COLUMNS]
    return frame.sort_values("account_id").reset_index(drop=True)


def test_k_changed_accounts_are_scored_and_planned_alone_with_the_full_result(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """After owners override 3 accounts, a deal moves and an account is deleted, the next
    daemon cycle scores only the accounts whose inputs changed, plans only those, and the
    CRM and the stored scores are what scoring all 1,000 accounts from scratch gives."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    session, cycle = _cycles(org)
    try:
        cycle("first")
        cycle("reads its own write-back")
        cycle("idle")
        sf = salesforce_client(org.sandbox)
        accounts = sf.query_all("SELECT Id, OwnerId FROM Account ORDER BY Id")["records"]
        edited = accounts[:3]
        for row in edited:
            org.sandbox.org.update(
                "Account", row["Id"], {"ICP_Tier_Override__c": "Red"}, user=row["OwnerId"]
            )
        gone = accounts[-1]["Id"]
        org.sandbox.org.delete("Account", gone, user=accounts[-1]["OwnerId"])
        deal = sf.query("SELECT Id, AccountId, OwnerId FROM Opportunity ORDER BY Id LIMIT 1")
        moved = deal["records"][0]
        target = accounts[10]["Id"]
        org.sandbox.org.update(
            "Opportunity", moved["Id"], {"AccountId": target}, user=moved["OwnerId"]
        )
        touched = {r["Id"] for r in edited} | {moved["AccountId"], target}

        result = cycle("after the edits")

        assert result.writeback is not None
        scoring = result.writeback["scoring"]
        assert scoring["mode"] == "incremental"
        assert scoring["accounts"] == len(accounts) - 1
        assert 3 <= scoring["accounts_scored"] <= len(touched)
        assert scoring["accounts_planned"] <= len(touched)
        assert result.records_written == 3  # the overridden accounts' tier moved to Red

        version = result.writeback["version"]
        full, changes = _full_rescore(org)
        assert changes == 0  # a full cycle now would write nothing: the CRM holds its values
        expected = full[_SCORE_COLUMNS].sort_values("account_id").reset_index(drop=True)
        stored = _stored(org.store, version)
        assert gone not in set(stored["account_id"])
        pd.testing.assert_frame_equal(stored, expected, check_dtype=False)
        crm = {
            r["Id"]: r["ICP_Tier__c"]
            for r in sf.query_all("SELECT Id, ICP_Tier__c FROM Account")["records"]
        }
        assert {a: crm[a] for a in expected["account_id"]} == dict(
            zip(expected["account_id"], expected["tier"], strict=True)
        )
    finally:
        session.close()


def test_reading_back_its_own_write_back_scores_and_plans_nothing(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """The cycle after a first write-back reads every written account again (its modified
    stamp moved) but scores and plans none of them, and the CRM keeps the full result."""
    org = make_org(sandbox_factory, tmp_path, accounts=300)
    org.setup_fields()
    session, cycle = _cycles(org)
    try:
        first = cycle("first")
        again = cycle("reads its own write-back")
    finally:
        session.close()

    assert first.writeback is not None
    written = first.writeback["records_written"]
    assert written > 0
    assert again.objects[CrmObject.ACCOUNT].extracted >= written
    assert again.writeback is not None
    scoring = again.writeback["scoring"]
    assert scoring["mode"] == "incremental"
    assert scoring["accounts_scored"] == 0
    assert scoring["accounts_planned"] == 0
    assert again.records_written == 0
    full, changes = _full_rescore(org)
    assert changes == 0
    stored = _stored(org.store, again.writeback["version"])
    expected = full[_SCORE_COLUMNS].sort_values("account_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(stored, expected, check_dtype=False)


def test_a_changed_setting_scores_every_account_again(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A cycle under other scoring settings scores all accounts, not only the changed ones."""
    org = make_org(sandbox_factory, tmp_path, accounts=300)
    org.setup_fields()
    session, cycle = _cycles(org)
    try:
        cycle("first")
        cycle("reads its own write-back")
        quiet = cycle("one account edited")
        assert quiet.writeback is not None
        assert quiet.writeback.get("unchanged") or quiet.writeback["scoring"]["mode"] == (
            "incremental"
        )
    finally:
        session.close()
    tiers = org.settings.tiers.model_copy(update={"green_min_score": 99})
    org.settings = org.settings.model_copy(update={"tiers": tiers})
    session, cycle = _cycles(org)
    try:
        again = cycle("new settings")
        assert again.writeback is not None
        live = org.store.mirror.counts()
        assert again.writeback["scoring"]["mode"] == "full"
        assert (
            again.writeback["scoring"]["accounts_scored"] == again.writeback["scoring"]["accounts"]
        )
        assert live  # the mirror is there to score
        assert CrmObject.ACCOUNT in again.objects
    finally:
        session.close()


def test_a_sync_reads_each_mirror_once(
    sandbox_factory: SandboxFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sync (derive, activate, score, plan, write) reads each object's mirror from the
    store once, and so does a sync after a user's edit."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    reads: list[str] = []
    load = org.store.mirror.load

    def counted(obj: CrmObject, **kwargs: bool) -> pd.DataFrame:
        reads.append(str(obj))
        return load(obj, **kwargs)

    monkeypatch.setattr(org.store.mirror, "load", counted)
    first = org.sync()
    first_reads = sorted(reads)
    reads.clear()
    sf = salesforce_client(org.sandbox)
    row = sf.query("SELECT Id, OwnerId FROM Account ORDER BY Id LIMIT 1")["records"][0]
    org.sandbox.org.update("Account", row["Id"], {"NumberOfEmployees": 7}, user=row["OwnerId"])
    org.sandbox.org.advance(61)
    second = org.sync()

    assert first.records_written > 900
    assert first_reads == ["account", "opportunity"]
    assert second.objects[CrmObject.ACCOUNT].updated >= 1
    assert sorted(reads) == ["account", "opportunity"]
