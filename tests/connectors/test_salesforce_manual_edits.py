"""Manual edits of owned fields in the sandbox org: reported, then reverted or kept."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from icp_sync.config import WritebackConfig
from icp_sync.model import CrmObject
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import Org, make_org, override


def _hand_edit(org: Org) -> tuple[str, str, str]:
    """A rep sets another tier on one account by hand; returns (id, ICP tier, their tier)."""
    current = org.icp_fields()
    target = sorted(r for r, f in current.items() if f["ICP_Tier__c"] in ("Yellow", "Green"))[0]
    icp_tier = str(current[target]["ICP_Tier__c"])
    theirs = "Red"
    owner = str(org.sandbox.org.get("Account", target)["OwnerId"])
    org.sandbox.org.update("Account", target, {"ICP_Tier__c": theirs}, user=owner)
    return target, icp_tier, theirs


def test_a_manual_tier_edit_is_reported_and_reverted_by_default(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A rep's edit of ICP_Tier__c is counted, logged with record and field, and reverted
    with a log line that says so."""
    org = make_org(sandbox_factory, tmp_path, accounts=300)
    org.setup_fields()
    org.sync()
    target, icp_tier, theirs = _hand_edit(org)
    with capture_logs() as logs:
        result = org.sync()

    assert result.objects[CrmObject.ACCOUNT].manual_edits == 1
    edits = [e for e in logs if e["event"] == "manual_edit"]
    assert [(e["record_id"], e["field"], e["now"]) for e in edits] == [(target, "tier", theirs)]
    assert "reverted" in edits[0]["action"]
    reverted = [e for e in logs if e["event"] == "manual_edit_reverted"]
    assert [(e["record_id"], e["field"]) for e in reverted] == [(target, "tier")]
    assert result.writeback is not None
    assert result.writeback["manual_edits"] == {"policy": "revert", "kept": 0, "reverting": 1}
    assert org.icp_fields()[target]["ICP_Tier__c"] == icp_tier


def test_a_manual_edit_is_kept_as_an_override_when_configured(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """With writeback.manual_edits = "keep", the hand-set tier stays, cycle after cycle."""
    org = make_org(sandbox_factory, tmp_path, accounts=300)
    org.settings = org.settings.model_copy(
        update={"writeback": WritebackConfig(manual_edits="keep")}
    )
    org.setup_fields()
    org.sync()
    target, _, theirs = _hand_edit(org)
    first = org.sync()
    org.sandbox.org.advance(61)
    second = org.sync()

    assert first.objects[CrmObject.ACCOUNT].manual_edits == 1
    assert second.objects[CrmObject.ACCOUNT].manual_edits == 0
    assert first.writeback is not None
    assert second.writeback is not None
    assert first.writeback["manual_edits"]["kept"] == 1
    assert second.records_written == 0
    assert org.icp_fields()[target]["ICP_Tier__c"] == theirs


def test_the_integration_users_own_writes_are_not_manual_edits(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Reading back what icp-sync wrote reports no manual edit."""
    org = make_org(sandbox_factory, tmp_path, accounts=300)
    org.setup_fields()
    org.sync()
    result = org.sync()

    assert result.objects[CrmObject.ACCOUNT].manual_edits == 0


@pytest.mark.parametrize("policy", ["keep", "revert"])
def test_the_manual_edits_setting_accepts_keep_and_revert(policy: str) -> None:
    """writeback.manual_edits takes "keep" or "revert" ("revert" by default)."""
    assert WritebackConfig(manual_edits=policy).manual_edits == policy  # type: ignore[arg-type]
    assert WritebackConfig().manual_edits == "revert"


@pytest.mark.parametrize("policy", ["keep", "revert"])
def test_an_edit_made_while_icp_sync_writes_other_fields_of_the_record_is_seen(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
) -> None:
    """A rep sets ICP_Score__c just before icp-sync's Collections call writes the record's
    tier: icp-sync is then its last modifier, yet the next cycle reports the hand edit and
    keeps it (keep) or reverts it with a log line (revert)."""
    import connectors.salesforce.write as write_module

    org = make_org(sandbox_factory, tmp_path, accounts=300)
    org.settings = org.settings.model_copy(
        update={"writeback": WritebackConfig(manual_edits=policy)}
    )
    org.setup_fields()
    org.sync()
    current = org.icp_fields()
    target = sorted(r for r, f in current.items() if f["ICP_Tier__c"] != "Red")[0]
    score = current[target]["ICP_Score__c"]
    owner = str(org.sandbox.org.get("Account", target)["OwnerId"])
    override(org, [target], "Red")  # the next sync writes this record's tier
    real = write_module.collections_update

    def rep_edits_first(client: Any, records: Mapping[str, Any], *a: Any, **k: Any) -> Any:
        assert "ICP_Score__c" not in records[target]
        org.sandbox.org.update("Account", target, {"ICP_Score__c": 1}, user=owner)
        yield from real(client, records, *a, **k)

    monkeypatch.setattr(write_module, "collections_update", rep_edits_first)
    org.sync()
    monkeypatch.undo()
    record = org.sandbox.org.get("Account", target)
    assert record["LastModifiedById"] == org.sandbox.org.integration_user
    with capture_logs() as logs:
        result = org.sync()

    edits = [e for e in logs if e["event"] == "manual_edit"]
    assert result.objects[CrmObject.ACCOUNT].manual_edits == 1
    assert [(e["record_id"], e["field"], e["now"]) for e in edits] == [(target, "score", "1")]
    final = org.icp_fields()[target]["ICP_Score__c"]
    assert final == (1 if policy == "keep" else score)
