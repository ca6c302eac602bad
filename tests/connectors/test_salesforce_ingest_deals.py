"""Deal compliance fields by Bulk API 2.0 ingest above the threshold: cost, crash, per-object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.salesforce import ingest
from icp_sync.model import CrmObject
from icp_sync.pipeline import SyncResult
from icp_sync.writeback import FieldChange, Plan, canonical_value
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import Org, count, make_org
from tests.crm_clients import salesforce_client

DEAL_FIELDS = {
    "tier_at_creation": "ICP_Tier_At_Creation__c",
    "compliance": "ICP_Compliance__c",
    "compliance_reason": "ICP_Compliance_Reason__c",
}


class Killed(BaseException):
    """Stands in for a kill -9 at one point of the bulk job's life."""


def _die(*_: object, **__: object) -> None:
    raise Killed


def _org(factory: SandboxFactory, tmp_path: Path) -> Org:
    """A 1,000-account org (about 180 open deals) after an Account-only first sync."""
    org = make_org(factory, tmp_path, bulk_write_threshold=50)
    org.setup_fields()
    org.sync()
    org.reset_stats()
    return org


def _deal_writes(result: SyncResult) -> int:
    return int(((result.compliance or {}).get("writes") or {}).get("records_written", 0))


def _deals_held(org: Org) -> dict[str, dict[str, str]]:
    """Deal id -> the compliance fields as the org holds them (canonical text)."""
    sf = salesforce_client(org.sandbox)
    rows = sf.query_all(f"SELECT Id, {', '.join(DEAL_FIELDS.values())} FROM Opportunity")
    return {
        r["Id"]: {owned: canonical_value(r[api]) for owned, api in DEAL_FIELDS.items()}
        for r in rows["records"]
    }


def _recorded(org: Org) -> dict[str, dict[str, str]]:
    """Deal id -> the compliance fields the store's ledger says the org holds."""
    frame = org.store.ledger.field_values(CrmObject.OPPORTUNITY)
    return {
        str(rid): {f: canonical_value(row.get(f)) for f in DEAL_FIELDS}
        for rid, row in frame.to_dict(orient="index").items()
    }


def _ingest_jobs(org: Org) -> list[dict[str, Any]]:
    listing = salesforce_client(org.sandbox).restful("jobs/ingest")
    return list((listing or {}).get("records", []))


def test_deal_fields_above_the_threshold_are_written_by_one_ingest_job(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Above bulk_write_threshold the monitor's deal writes take one Opportunity ingest job."""
    org = _org(sandbox_factory, tmp_path)
    result = org.sync(compliance=True)
    stats = org.stats()
    written = _deal_writes(result)

    assert written > 50
    assert stats["records_written"] == written
    assert count("PATCH composite/sobjects", stats) == 0
    assert count("POST jobs/ingest", stats) == 1
    assert count("PUT jobs/ingest/batches", stats) == 1
    assert count("GET jobs/ingest*", stats) + count("PATCH jobs/ingest*", stats) <= 7
    assert [j["object"] for j in _ingest_jobs(org) if j["state"] == "JobComplete"][-1] == (
        "Opportunity"
    )
    held, recorded = _deals_held(org), _recorded(org)
    assert len(recorded) == written
    assert all(held[rid] == values for rid, values in recorded.items())
    assert all(values["compliance"] for values in recorded.values())


@pytest.mark.parametrize("killed_at", ["after-close", "after-create"])
def test_a_deal_job_left_by_a_killed_run_is_settled_and_nothing_is_written_twice(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    killed_at: str,
) -> None:
    """A killed run's Opportunity job is resumed or aborted next run; every deal written once."""
    org = _org(sandbox_factory, tmp_path)
    point = "_outcome" if killed_at == "after-close" else "_upload"
    with monkeypatch.context() as patch:
        patch.setattr(ingest, point, _die)
        with pytest.raises(Killed):
            org.sync(compliance=True)
    state = org.connector_state()
    assert ingest.JobJournal(state, "Opportunity").pending()
    assert not ingest.JobJournal(state).pending()
    assert "bulk_jobs:Opportunity" in state.load()

    recovered = org.sync(compliance=True)
    again = org.sync(compliance=True)
    stats = org.stats()
    written = _deal_writes(recovered)

    assert written > 50
    assert _deal_writes(again) == 0
    assert stats["records_written"] == written
    assert count("POST jobs/ingest", stats) == (1 if killed_at == "after-close" else 2)
    assert count("PATCH composite/sobjects", stats) == 0
    assert not ingest.JobJournal(org.connector_state(), "Opportunity").pending()
    held, recorded = _deals_held(org), _recorded(org)
    assert len(recorded) == written
    assert all(held[rid] == values for rid, values in recorded.items())


def test_account_and_deal_jobs_pending_together_are_each_settled_with_their_own_fields(
    sandbox_factory: SandboxFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed Account and Opportunity jobs of killed runs: each object's next apply resumes
    its own job only, reporting its own records and owned fields; nothing is sent again."""
    org = make_org(sandbox_factory, tmp_path, bulk_write_threshold=50)
    org.setup_fields()
    sf = salesforce_client(org.sandbox)
    accounts = [r["Id"] for r in sf.query("SELECT Id FROM Account LIMIT 120")["records"]]
    deals = [r["Id"] for r in sf.query("SELECT Id FROM Opportunity LIMIT 80")["records"]]

    def plan(obj: CrmObject, ids: list[str], values: dict[str, str]) -> Plan:
        return Plan(
            changes=tuple(
                FieldChange(crm_object=obj, record_id=i, field=f, old=None, new=v)
                for i in ids
                for f, v in values.items()
            )
        )

    tier = plan(CrmObject.ACCOUNT, accounts, {"tier": "Red"})
    flag = plan(CrmObject.OPPORTUNITY, deals, {"compliance": "Out of ICP"})
    with monkeypatch.context() as patch:
        patch.setattr(ingest, "_outcome", _die)
        for planned in (tier, flag):
            killed = org.connector()
            with pytest.raises(Killed):
                list(killed.apply(planned))
            killed.close()
    state = org.connector_state()
    assert len(ingest.JobJournal(state).pending()) == 1
    assert len(ingest.JobJournal(state, "Opportunity").pending()) == 1
    org.reset_stats()

    connector = org.connector()
    settled_deals = list(connector.apply(flag))
    settled_accounts = list(connector.apply(tier))
    connector.close()
    stats = org.stats()

    deal_writes = {rid: v for b in settled_deals for rid, v in b.written.items()}
    account_writes = {rid: v for b in settled_accounts for rid, v in b.written.items()}
    assert deal_writes == {d: {"compliance": "Out of ICP"} for d in deals}
    assert account_writes == {a: {"tier": "Red"} for a in accounts}
    assert stats["records_written"] == len(accounts) + len(deals)
    assert count("POST jobs/ingest", stats) == 0
    assert count("PATCH composite/sobjects", stats) == 0
    assert not ingest.JobJournal(org.connector_state()).pending()
    assert not ingest.JobJournal(org.connector_state(), "Opportunity").pending()
    held = _deals_held(org)
    assert all(held[d]["compliance"] == "Out of ICP" for d in deals)
    assert all(org.icp_fields()[a]["ICP_Tier__c"] == "Red" for a in accounts)
