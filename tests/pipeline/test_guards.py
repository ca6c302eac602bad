"""Mass-change guards: a sync that would delete or re-tier too much stops before writing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from icp_sync.config import Settings, load_settings
from icp_sync.errors import MassChangeError
from icp_sync.model import CrmObject
from icp_sync.pipeline import sync
from icp_sync.store import Store
from tests.clirun import icp_sync
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import make_org


def _settings(example: Path, store_url: str) -> Settings:
    settings = load_settings(example / "icp-sync.toml")
    return settings.model_copy(
        update={"store": settings.store.model_copy(update={"url": store_url})}
    )


def _header_only(example: Path) -> None:
    path = example / "accounts.csv"
    header = path.read_text(encoding="utf-8").splitlines()[0]
    path.write_text(header + "\n", encoding="utf-8")


def test_a_header_only_export_stops_the_sync_before_anything_is_deleted(
    example: Path, store: Store, now: datetime
) -> None:
    """An accounts export with no rows deletes nothing, raises, and is retried next time."""
    settings = _settings(example, "unused")
    sync(settings, store, run_id="r1", now=now)
    _header_only(example)

    with pytest.raises(MassChangeError, match=r"85 of 85 .*100%.*max_delete_share = 0\.2"):
        sync(settings, store, run_id="r2", now=now + timedelta(hours=1))

    assert store.mirror.counts()["account"] == 85
    assert store.runs.recent()[0].status == "failed"
    with pytest.raises(MassChangeError):
        sync(settings, store, run_id="r3", now=now)


def test_allow_mass_change_lets_the_deletions_through(
    example: Path, store: Store, now: datetime
) -> None:
    """With allow_mass_change the header-only export is taken at its word."""
    settings = _settings(example, "unused")
    sync(settings, store, run_id="r1", now=now)
    _header_only(example)

    result = sync(settings, store, run_id="r2", now=now, allow_mass_change=True)

    assert result.objects[CrmObject.ACCOUNT].deleted == 85
    assert store.mirror.counts()["account"] == 0


def test_a_first_sync_into_an_empty_mirror_is_not_a_mass_change(
    example: Path, store: Store, now: datetime
) -> None:
    """A header-only export on a fresh mirror deletes nothing and is no reason to stop."""
    _header_only(example)

    result = sync(_settings(example, "unused"), store, run_id="r1", now=now)

    assert result.objects[CrmObject.ACCOUNT].deleted == 0


def test_the_cli_explains_a_stopped_sync_and_exits_1(example: Path) -> None:
    """`sync` prints counts, share, threshold and the flag; `--allow-mass-change` passes."""
    config = str(example / "icp-sync.toml")
    assert icp_sync("sync", "--config", config).code == 0
    _header_only(example)

    stopped = icp_sync("sync", "--config", config)
    allowed = icp_sync("sync", "--config", config, "--allow-mass-change", "--json")

    assert stopped.code == 1
    assert "85 of 85 mirrored account records deleted (100%)" in stopped.stderr
    assert "guards.max_delete_share = 0.2" in stopped.stderr
    assert "--allow-mass-change" in stopped.stderr
    assert allowed.code == 0
    assert json.loads(allowed.stdout)["objects"]["account"]["deleted"] == 85


def test_a_re_tier_above_the_share_writes_nothing_to_the_crm(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Moving many accounts to another tier under the same version stops before any write."""
    # 3,000 accounts: enough history for the derivation to find Green segments to demote
    org = make_org(sandbox_factory, tmp_path, accounts=3000)
    org.setup_fields()
    org.sync()
    org.settings = org.settings.model_copy(
        update={
            "tiers": org.settings.tiers.model_copy(update={"green_min_score": 100}),
            "guards": org.settings.guards.model_copy(update={"max_retier_share": 0.01}),
        }
    )
    before = org.icp_fields()
    org.reset_stats()

    with pytest.raises(MassChangeError, match=r"max_retier_share = 0\.01"):
        org.sync()
    assert org.stats()["records_written"] == 0
    assert org.icp_fields() == before
    allowed = org.sync(allow_mass_change=True)

    assert allowed.records_written > 0
    assert {f["ICP_Tier__c"] for f in org.icp_fields().values()} <= {"Yellow", "Red", None}


def test_guard_settings_are_validated_with_their_toml_path(example: Path) -> None:
    """A share outside 0..1 is a config problem: exit 2 naming guards.max_delete_share."""
    config = example / "icp-sync.toml"
    with config.open("a", encoding="utf-8") as handle:
        handle.write("\n[guards]\nmax_delete_share = 1.5\nmax_retier = 0.1\n")

    outcome = icp_sync("check", "--config", str(config))

    assert outcome.code == 2
    assert "guards.max_delete_share:" in outcome.stderr
    assert "guards.max_retier: unknown key" in outcome.stderr
