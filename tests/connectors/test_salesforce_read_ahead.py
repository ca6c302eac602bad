"""Salesforce read-ahead: the next object's bulk job runs at the org while the first is read."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from icp_sync.errors import CycleInterruptedError
from icp_sync.model import CrmObject
from icp_sync.pipeline.sync import sync
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import count, make_org


def test_the_next_objects_job_starts_while_the_first_is_read_at_no_extra_call(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """The opportunity bulk job is created while the first account page is mirrored (its
    size probe is the first page its own read would make: the call counts of a bulk
    extract are those of test_bulk_extract_costs_a_constant_number_of_calls)."""
    org = make_org(
        sandbox_factory, tmp_path, accounts=2_500, bulk_query_threshold=100, bulk_page_records=1000
    )
    connector = org.connector()
    org.reset_stats()
    now = datetime.now(UTC)
    connector.prefetch(dict.fromkeys(CrmObject), now=now)  # a first cycle: no cursors
    pages = connector.extract(CrmObject.ACCOUNT, since=None, now=now)
    next(pages)
    deadline = time.monotonic() + 30
    while count("POST jobs/query", org.stats()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the accounts' first page is being mirrored
    jobs_while_accounts_are_read = count("POST jobs/query", org.stats())
    pages.close()
    connector.close()

    assert jobs_while_accounts_are_read == 2


def test_a_cycle_stopped_while_the_first_object_is_read_ends_as_a_clean_run(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A cycle stopped mid-accounts, with the opportunity job started ahead, resumes: the
    next cycle mirrors exactly what a clean run mirrors, reading no record twice but the
    stopped page's."""
    settings = {"bulk_query_threshold": 100, "bulk_page_records": 1000}
    clean = make_org(sandbox_factory, tmp_path / "clean", accounts=2_500, **settings)
    clean.sync(dry_run=True)
    org = make_org(sandbox_factory, tmp_path / "stopped", accounts=2_500, **settings)
    asked = iter([False, False, True])
    connector = org.connector()
    with pytest.raises(CycleInterruptedError):
        sync(
            org.settings,
            org.store,
            run_id="stopped",
            now=datetime.now(UTC),
            connector=connector,
            dry_run=True,
            compliance=False,
            stop=lambda: next(asked, True),
        )
    connector.close()
    org.reset_stats()
    org.sync(dry_run=True)

    assert org.store.mirror.counts() == clean.store.mirror.counts()
    assert count("POST jobs/query", org.stats()) == 1  # the accounts' job was resumed
