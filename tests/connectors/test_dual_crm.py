"""Salesforce and HubSpot at once: matched accounts hold the same tier, score and TAL on both."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from icp_sync.config import load_settings
from icp_sync.matching import domain_key, name_key
from icp_sync.pipeline import setup_fields, sync
from icp_sync.sandbox.faults import FaultProfile
from icp_sync.store import Store
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import ICP_FIELDS
from tests.crm_clients import salesforce_client

PAIRS = {
    "ICP_Tier__c": "icp_tier",
    "ICP_Score__c": "icp_score",
    "ICP_TAL__c": "icp_tal",
    "ICP_TAL_Rank__c": "icp_tal_rank",
    "ICP_Version__c": "icp_version",
    "ICP_Segment__c": "icp_segment",
}


def _same(salesforce: Any, hubspot: Any) -> bool:
    if salesforce is None or salesforce is False:
        return bool(hubspot in (None, "", "false"))
    if isinstance(salesforce, bool):
        return bool(hubspot == "true")
    if isinstance(salesforce, int | float):
        return hubspot is not None and abs(float(hubspot) - float(salesforce)) < 1e-6
    return bool(str(salesforce) == hubspot)


def test_both_crms_get_the_same_values_for_every_matched_account(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Scored once from Salesforce; every matched HubSpot company holds its Account's values."""
    sandbox = sandbox_factory(accounts=500, linked=True, directory=tmp_path / "sandbox")
    settings = load_settings(sandbox.write_config(tmp_path / "icp.toml", crm="salesforce+hubspot"))
    store = Store.open(settings.store.url)
    assert not setup_fields(settings, store, dry_run=False)["failed"]

    first = sync(settings, store, run_id="r1", now=datetime.now(UTC))
    second = sync(settings, store, run_id="r2", now=datetime.now(UTC))

    assert first.status == "ok"
    assert first.writeback is not None
    match = first.writeback["hubspot"]["match"]
    sf = salesforce_client(sandbox)
    fields = ", ".join(ICP_FIELDS)
    accounts = sf.query_all(f"SELECT Id, Name, Website, BillingCountry, {fields} FROM Account")
    by_id = {r["Id"]: r for r in accounts["records"]}
    by_domain = {domain_key(r["Website"]): r for r in by_id.values() if r["Website"]}
    by_name: dict[str, list[dict[str, Any]]] = {}
    for record in by_id.values():
        by_name.setdefault(name_key(record["Name"], record["BillingCountry"]), []).append(record)
    hub = sandbox.portal
    companies = [r for r in hub.records["companies"].values() if not r.archived]
    checked = unmatched = 0
    for company in companies:
        props = company.properties
        account = by_id.get(props.get("salesforceaccountid") or "") or by_domain.get(
            domain_key(props.get("domain"))
        )
        if account is None:
            named = by_name.get(name_key(props.get("name"), props.get("country")), [])
            account = named[0] if len(named) == 1 else None
        if account is None:
            unmatched += 1
            assert props.get("icp_tier") is None, company.id
            continue
        for salesforce_field, hubspot_property in PAIRS.items():
            assert _same(account[salesforce_field], props.get(hubspot_property)), (
                company.id,
                salesforce_field,
                account[salesforce_field],
                props.get(hubspot_property),
            )
        checked += 1
    assert checked == match["matched"] > 0
    assert match["by"]["salesforce_id"] > match["by"]["domain"] > match["by"]["name_country"] > 0
    assert match["unmatched_hubspot"] + match["ambiguous"] == unmatched > 0
    assert first.writeback["by_crm"]["hubspot"] > 0
    assert second.records_written == 0
    assert second.writeback is not None
    assert second.writeback["by_crm"] == {"salesforce": 0, "hubspot": 0}
    store.close()


def test_hubspot_refusals_are_reported_and_wait_before_a_retry(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Refused companies are counted, retried the next cycle, then wait (1 h, 6 h, daily)."""
    sandbox = sandbox_factory(
        accounts=300,
        linked=True,
        directory=tmp_path / "sandbox",
    )
    sandbox.hubspot_faults.set_profile(FaultProfile(validation=0.05, seed=4))
    settings = load_settings(sandbox.write_config(tmp_path / "icp.toml", crm="salesforce+hubspot"))
    store = Store.open(settings.store.url)
    assert not setup_fields(settings, store, dry_run=False)["failed"]

    first = sync(settings, store, run_id="r1", now=datetime.now(UTC))
    second = sync(settings, store, run_id="r2", now=datetime.now(UTC))
    sandbox.hubspot_stats.reset()
    third = sync(settings, store, run_id="r3", now=datetime.now(UTC))

    assert first.writeback is not None
    part = first.writeback["hubspot"]
    assert part["rejected"] > 0
    assert part["records_written"] + part["rejected"] == part["plan"]["records"]
    assert second.writeback is not None
    assert second.writeback["hubspot"]["rejected"] == part["rejected"]  # the same rule again
    assert third.writeback is not None
    assert third.writeback["hubspot"]["plan"]["records"] == 0
    assert (
        "POST objects/companies/batch/update" not in sandbox.hubspot_stats.snapshot()["by_endpoint"]
    )
    store.close()
