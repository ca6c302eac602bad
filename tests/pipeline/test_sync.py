"""A sync cycle over the bundled exports: mirror contents, incrementality, deletions, history."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from icp_sync.config import Settings, load_settings
from icp_sync.model import CrmObject
from icp_sync.pipeline import sync
from icp_sync.store import Store


def _settings(example: Path, store_url: str) -> Settings:
    settings = load_settings(example / "icp-sync.toml")
    return settings.model_copy(
        update={"store": settings.store.model_copy(update={"url": store_url})}
    )


def test_maven_export_loads_with_its_quirks_repaired(
    example: Path, store: Store, now: datetime
) -> None:
    """Maven: 85 accounts, 7,375 attributable deals; typos fixed; the 1,425 orphans rejected."""
    result = sync(_settings(example, "unused"), store, run_id="r1", now=now)
    opps = result.objects[CrmObject.OPPORTUNITY]
    accounts = store.mirror.load(CrmObject.ACCOUNT)
    deals = store.mirror.load(CrmObject.OPPORTUNITY)

    assert result.mirror == {"account": 85, "opportunity": 7_375}
    assert opps.report is not None
    assert len(opps.report.rejects) == 1_425
    assert {r.reason for r in opps.report.rejects} == {
        "missing account_id: the deal cannot be attributed"
    }
    assert "technolgy" not in set(accounts["industry"])
    assert "Philippines" in set(accounts["country"])
    assert "GTXPro" not in set(deals["attr_product"])
    assert deals.loc[deals["stage"] == "lost", "amount"].isna().all()
    assert len(store.runs.rejects("r1")) == 1_425


@pytest.mark.parametrize("example", ["ravenstack"], indirect=True)
def test_ravenstack_export_loads(example: Path, store: Store, now: datetime) -> None:
    """RavenStack: 500 accounts, paid subscriptions as won deals, dated churn for flagged accounts.

    110 accounts carry the churn flag; 75 of them have a churn event to date it. The other 35
    have no churn event (and still-open subscriptions), so their churn cannot be dated.
    """
    result = sync(_settings(example, "unused"), store, run_id="r1", now=now)
    accounts = store.mirror.load(CrmObject.ACCOUNT)

    assert result.mirror == {"account": 500, "opportunity": 4_222}
    assert accounts["churned_at"].notna().sum() == 75
    assert set(accounts["region"]) == {"North America", "EMEA", "APAC"}
    assert accounts["attr_csat"].notna().any()


def test_second_sync_reads_nothing_and_changes_nothing(
    example: Path, store: Store, now: datetime
) -> None:
    """An unchanged export is skipped; the mirror and its counts stay put."""
    settings = _settings(example, "unused")
    sync(settings, store, run_id="r1", now=now)

    second = sync(settings, store, run_id="r2", now=now)

    assert all(o.source_unchanged for o in second.objects.values())
    assert second.mirror == {"account": 85, "opportunity": 7_375}
    assert [r.status for r in store.runs.recent()] == ["ok", "ok"]


def test_the_run_history_says_how_long_a_run_took(
    example: Path, store: Store, now: datetime
) -> None:
    """A run's finish is its start plus the time it took, not its start again."""
    result = sync(_settings(example, "unused"), store, run_id="r1", now=now)

    [run] = store.runs.recent()

    assert run.finished_at is not None
    took = (run.finished_at - run.started_at).total_seconds()
    assert 0 < took <= result.duration_s + 1


def test_edited_export_writes_only_changed_rows_and_flags_deletions(
    example: Path, store: Store, now: datetime
) -> None:
    """Editing one row and removing another costs one update and one deletion."""
    settings = _settings(example, "unused")
    sync(settings, store, run_id="r1", now=now)
    path = example / "accounts.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[frame["account"] == "Acme Corporation", "employees"] = "3000"
    frame = frame[frame["account"] != "Zoomit"]
    frame.to_csv(path, index=False)

    result = sync(settings, store, run_id="r2", now=now)
    accounts = result.objects[CrmObject.ACCOUNT]

    assert (accounts.inserted, accounts.updated, accounts.deleted) == (0, 1, 1)
    assert accounts.unchanged == 83
    assert result.mirror["account"] == 84
    mirrored = store.mirror.load(CrmObject.ACCOUNT).set_index("account_id")
    assert mirrored.loc["Acme Corporation", "employees"] == 3000


def test_full_refresh_rereads_everything(example: Path, store: Store, now: datetime) -> None:
    """``full`` ignores the cursors: the export is read again, nothing changes."""
    settings = _settings(example, "unused")
    sync(settings, store, run_id="r1", now=now)

    again = sync(settings, store, run_id="r2", now=now, full=True)

    assert again.objects[CrmObject.ACCOUNT].extracted == 85
    assert again.objects[CrmObject.ACCOUNT].unchanged == 85


def test_segment_summary_counts_win_rate_and_acv(
    example: Path, store: Store, now: datetime
) -> None:
    """The summary's figures add up to the mirror: accounts per dimension and won/lost deals."""
    result = sync(_settings(example, "unused"), store, run_id="r1", now=now)
    segments = result.segments
    industry = segments[segments["dimension"] == "industry"]
    deals = store.mirror.load(CrmObject.OPPORTUNITY)

    assert industry["accounts"].sum() == 85
    assert industry["won"].sum() == (deals["stage"] == "won").sum()
    assert industry["lost"].sum() == (deals["stage"] == "lost").sum()
    retail = industry.set_index("value").loc["retail"]
    assert retail["win_rate"] == pytest.approx(retail["won"] / (retail["won"] + retail["lost"]))
