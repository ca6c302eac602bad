"""Salesforce cursors against the sandbox org: taken from the server, with a lookback overlap,
so a skewed client clock, an in-flight commit or an edit during write-back is never skipped."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import connectors.salesforce.write as write_module
from icp_sync.model import CrmObject
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import Org, make_org, override

ACCOUNT = CrmObject.ACCOUNT


def _mirrored_name(org: Org, record_id: str) -> str:
    accounts = org.store.mirror.load(ACCOUNT)
    return str(accounts.set_index("account_id").loc[record_id, "name"])


def _owner(org: Org, record_id: str) -> str:
    return str(org.sandbox.org.get("Account", record_id)["OwnerId"])


@pytest.mark.parametrize("skew", [30, -30], ids=["client-30s-fast", "client-30s-slow"])
def test_a_skewed_client_clock_misses_no_edit(
    sandbox_factory: SandboxFactory, tmp_path: Path, skew: int
) -> None:
    """With the client's clock 30 s off, an edit made just after a cycle is read next cycle."""
    org = make_org(sandbox_factory, tmp_path, accounts=200)
    shift = timedelta(seconds=skew)
    org.sync(dry_run=True, now=datetime.now(UTC) + shift)
    target = sorted(org.store.mirror.ids(ACCOUNT))[0]
    org.sandbox.org.update("Account", target, {"Name": "Edited Ltd"}, user=_owner(org, target))
    org.sync(dry_run=True, now=datetime.now(UTC) + shift)

    assert _mirrored_name(org, target) == "Edited Ltd"


def test_an_in_flight_commit_stamped_in_the_past_is_read(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A change that becomes visible with a SystemModstamp a minute old (a long transaction)
    is still read: each read overlaps the previous one."""
    org = make_org(sandbox_factory, tmp_path, accounts=200)
    org.sync(dry_run=True)
    target = sorted(org.store.mirror.ids(ACCOUNT))[0]
    sf_org = org.sandbox.org
    sf_org.update(
        "Account",
        target,
        {"Name": "Late Commit Ltd"},
        user=_owner(org, target),
        stamp=sf_org.now_ms() - 60_000,
    )
    org.sync(dry_run=True)

    assert _mirrored_name(org, target) == "Late Commit Ltd"


def test_a_cycle_without_change_writes_nothing_to_the_mirror(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Re-reading the overlap costs no mirror write: every re-read record is unchanged."""
    org = make_org(sandbox_factory, tmp_path, accounts=200)
    org.sync(dry_run=True)
    again = org.sync(dry_run=True)
    outcome = again.objects[ACCOUNT]

    assert outcome.inserted == outcome.updated == outcome.deleted == 0
    assert outcome.unchanged == outcome.extracted


def _edit_mid_apply(org: Org, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = write_module.collections_update

    def with_edit(
        client: Any, records: Mapping[str, Any], *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        org.sandbox.org.update(
            "Account", target, {"Name": "Edited Mid-Write"}, user=_owner(org, target)
        )
        yield from real(client, records, *args, **kwargs)

    monkeypatch.setattr(write_module, "collections_update", with_edit)


def _flow_on_write(org: Org, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sf_org = org.sandbox.org
    real = sf_org.update

    def update(sobject: str, record_id: str, values: Mapping[str, Any], **kw: Any) -> None:
        if record_id == target and "ICP_Tier__c" in values:
            values = {**values, "Name": "Edited Mid-Write"}  # a Flow in the same transaction
        real(sobject, record_id, values, **kw)

    monkeypatch.setattr(sf_org, "update", update)


@pytest.mark.parametrize(
    "interleave", [_edit_mid_apply, _flow_on_write], ids=["user-edit-mid-write", "flow-on-write"]
)
def test_a_foreign_change_inside_a_write_window_is_read(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    interleave: Any,
) -> None:
    """A user's edit after the conflict check, or a Flow run by icp-sync's own write, is
    mirrored by the next cycle, though the record was last modified by the integration user."""
    org = make_org(sandbox_factory, tmp_path, accounts=300)
    org.setup_fields()
    org.sync()
    current = org.icp_fields()
    target = sorted(r for r, f in current.items() if f["ICP_Tier__c"] != "Red")[0]
    override(org, [target], "Red")
    org.sync()  # reads the override
    org.sandbox.org.update(  # the owner clears it again: the next cycle writes this record
        "Account", target, {"ICP_Tier_Override__c": None}, user=_owner(org, target)
    )
    interleave(org, target, monkeypatch)
    written = org.sync()
    monkeypatch.undo()
    assert written.records_written >= 1
    assert (
        org.sandbox.org.get("Account", target)["LastModifiedById"]
        == org.sandbox.org.integration_user
    )
    org.sync()

    assert _mirrored_name(org, target) == "Edited Mid-Write"
