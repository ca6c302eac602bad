"""Salesforce field setup: owned fields derived from the one table, created idempotently."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.salesforce.config import SalesforceFieldsConfig
from connectors.salesforce.fields import tooling_metadata, wanted_fields
from icp_sync.model import OWNED, OWNED_FIELDS, WRITTEN_ACCOUNT_FIELDS, Access
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import (
    count,
    make_org,
)


def test_setup_fields_is_idempotent(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    """A second setup-fields creates nothing and costs only the two describe calls."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    org.reset_stats()
    connector = org.connector()
    result = connector.ensure_fields(dry_run=False)
    connector.close()

    assert result.created == []
    assert len(result.existing) == 14
    assert count("POST tooling/sobjects/CustomField", org.stats()) == 0
    assert org.stats()["calls"] == 3  # token and two describes


def test_setup_fields_wants_every_owned_field_of_the_table_under_its_default_name() -> None:
    """With default names, setup-fields ensures exactly the owned-field table, in its order."""
    wanted = wanted_fields(SalesforceFieldsConfig())

    assert list(wanted.values()) == list(OWNED_FIELDS)
    assert [name.split(".", 1)[1] for name in wanted] == [f.salesforce for f in OWNED_FIELDS]


def test_config_defaults_and_allow_list_come_from_the_table() -> None:
    """The write-back names and the read-only override attribute default from OWNED_FIELDS."""
    config = SalesforceFieldsConfig()

    assert config.writeback == {k: OWNED[k].salesforce for k in WRITTEN_ACCOUNT_FIELDS}
    assert config.account_attributes == {"icp_tier_override": "ICP_Tier_Override__c"}
    assert "tier_override" not in WRITTEN_ACCOUNT_FIELDS
    assert all(OWNED[k].access is Access.WRITTEN for k in config.writeback)


def test_a_renamed_override_is_created_under_its_configured_name() -> None:
    """Renaming the override attribute renames the field setup-fields creates."""
    config = SalesforceFieldsConfig(account_attributes={"icp_tier_override": "Tier_Lock__c"})

    assert wanted_fields(config)["Account.Tier_Lock__c"] is OWNED["tier_override"]
    assert "Account.ICP_Tier_Override__c" not in wanted_fields(config)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("tier", {"type": "Picklist"}),
        ("score", {"type": "Number", "precision": 3, "scale": 0}),
        ("reasons", {"type": "LongTextArea", "length": 32768, "visibleLines": 5}),
        ("tal", {"type": "Checkbox", "defaultValue": False}),
        ("scored_at", {"type": "DateTime"}),
    ],
    ids=["picklist", "number", "long-text", "checkbox", "datetime"],
)
def test_tooling_metadata_follows_the_field_kind(key: str, expected: dict[str, object]) -> None:
    """Each kind of owned field becomes the Tooling API CustomField metadata of its type."""
    metadata = tooling_metadata(OWNED[key])

    assert expected.items() <= metadata.items()
    assert metadata["label"] == OWNED[key].label
