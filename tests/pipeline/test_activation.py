"""The ICP lifecycle against a sandbox org: proposals never reach the CRM; activation does.

CRM writes are counted by the sandbox's own accounting, not by the connector.
"""

from __future__ import annotations

import dataclasses
import getpass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from icp_sync.icp import from_toml, to_toml
from icp_sync.pipeline import History, activate, derive_icp, tal, version_list
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import Org, make_org


@pytest.fixture
def org(sandbox_factory: SandboxFactory, tmp_path: Path) -> Org:
    """A 1,000-account org after its first sync (which activated v1 by itself)."""
    made = make_org(sandbox_factory, tmp_path)
    made.setup_fields()
    assert made.sync().records_written > 900
    return made


def _now() -> datetime:
    return datetime.now(UTC)


def _tal_members(org: Org) -> int:
    return sum(1 for fields in org.icp_fields().values() if fields["ICP_TAL__c"])


def test_first_sync_activates_v1_by_itself_and_says_so(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """On an empty store the first sync derives v1, activates it, and reports that."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()

    result = org.sync()

    assert result.writeback is not None
    assert result.writeback["activated"]["version"] == "v1"
    assert result.writeback["as_of"] == org.store.versions.get("v1").as_of.isoformat()
    assert "automatically" in result.writeback["activated"]["reason"]
    assert [(v["version"], v["status"]) for v in version_list(org.store)] == [("v1", "active")]


def test_derive_backtest_and_a_small_tal_are_proposals_that_write_nothing(org: Org) -> None:
    """derive, derive --as-of and tal --size 3 change nothing in the CRM at the next sync."""
    before = org.icp_fields()
    history = History.load(org.store)
    derive_icp(org.settings, org.store, history, now=_now())
    derive_icp(org.settings, org.store, history, now=_now(), as_of=_now() - timedelta(days=400))
    tal(org.settings, org.store, history, now=_now(), size=3)
    org.reset_stats()

    result = org.sync()

    assert result.records_written == 0
    assert org.stats()["records_written"] == 0
    assert org.icp_fields() == before
    statuses = {v["version"]: v["status"] for v in version_list(org.store)}
    assert statuses == {"v1": "active", "v2": "proposed", "v3": "proposed"}


def test_activation_preview_counts_equal_what_the_next_sync_writes(org: Org) -> None:
    """activate --dry-run shows records and fields; after activate, sync writes exactly those."""
    history = History.load(org.store)
    derive_icp(org.settings, org.store, history, now=_now())
    tal(org.settings, org.store, history, now=_now(), size=50, version="v2")

    preview = activate(org.settings, org.store, history, "v2", now=_now(), dry_run=True)
    assert not preview["activated"]
    assert version_list(org.store)[0]["status"] == "active"
    done = activate(org.settings, org.store, history, "v2", now=_now(), by="Dana (RevOps)")
    org.reset_stats()
    result = org.sync()

    assert preview["plan"]["records"] > 0
    assert done["plan"] == preview["plan"]
    assert result.writeback is not None
    assert result.writeback["plan"]["records"] == preview["plan"]["records"]
    assert result.writeback["plan"]["field_changes"] == preview["plan"]["field_changes"]
    assert result.records_written == org.stats()["records_written"] == preview["plan"]["records"]
    assert _tal_members(org) == 50 == preview["tal"]["size"]
    rows = {v["version"]: v for v in version_list(org.store)}
    assert (rows["v1"]["status"], rows["v2"]["status"]) == ("retired", "active")
    assert rows["v2"]["activated_by"] == "Dana (RevOps)"
    assert rows["v2"]["replaced"] == "v1"


def test_activating_an_older_version_rolls_back(org: Org) -> None:
    """Activating v1 again after v2 puts v1's values back in the CRM; v2 is retired."""
    first = org.icp_fields()
    history = History.load(org.store)
    derive_icp(org.settings, org.store, history, now=_now())
    activate(org.settings, org.store, history, "v2", now=_now())
    org.sync()

    back = activate(org.settings, org.store, history, "v1", now=_now())
    org.sync()

    assert back["rollback"] is True
    assert back["by"] == getpass.getuser()
    assert org.icp_fields() == first
    statuses = {v["version"]: v["status"] for v in version_list(org.store)}
    assert statuses == {"v1": "active", "v2": "retired"}


def test_an_edited_definition_file_is_imported_as_a_new_version_when_activated(
    org: Org, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """activate FILE.toml stores the edit as v2 and makes it live; naming the file does not."""
    stored = org.store.versions.get("v1")
    assert stored is not None
    edited = dataclasses.replace(from_toml(stored.definition, source="v1"), notes="by hand")
    edited_file = tmp_path / "icp-v1-edited.toml"
    edited_file.write_text(to_toml(edited), encoding="utf-8")
    settings = org.settings.model_copy(
        update={"icp": org.settings.icp.model_copy(update={"definition": edited_file})}
    )
    org.settings = settings
    capsys.readouterr()
    assert org.sync().records_written == 0
    assert "icp_definition_not_live" in capsys.readouterr().out

    history = History.load(org.store)
    document = activate(settings, org.store, history, str(edited_file), now=_now())
    result = org.sync()

    assert "icp_definition_not_live" not in capsys.readouterr().out
    assert document["version"] == "v2"
    assert {v["version"]: v["status"] for v in version_list(org.store)}["v2"] == "active"
    assert result.records_written == org.store.mirror.counts()["account"]
    assert {f["ICP_Version__c"] for f in org.icp_fields().values()} - {None} == {"v2"}
