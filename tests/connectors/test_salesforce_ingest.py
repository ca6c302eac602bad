"""Bulk API 2.0 write-back lifecycle: jobs journaled before upload, resumed or aborted, split."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response

from connectors.salesforce import ingest
from icp_sync.sandbox.salesforce.bulk import BulkError, BulkJobs
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import Org, count, make_org, names_not_in_tier, override


class Killed(BaseException):
    """Stands in for a kill -9 at one point of the bulk job's life."""


def _org_with_changes(factory: SandboxFactory, tmp_path: Path, **salesforce: Any) -> Org:
    org = make_org(factory, tmp_path, accounts=1_500, bulk_write_threshold=300, **salesforce)
    org.setup_fields()
    org.sync()
    override(org, names_not_in_tier(org, "Red", 700), "Red")
    org.reset_stats()
    return org


def test_an_upload_above_the_size_limit_is_split_into_several_jobs(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Each job's CSV stays below bulk_upload_max_bytes; every record is written once."""
    org = _org_with_changes(sandbox_factory, tmp_path, bulk_upload_max_bytes=40_000)
    result = org.sync()
    stats = org.stats()

    jobs = count("POST jobs/ingest", stats)
    assert result.records_written == 700
    assert stats["records_written"] == 700
    assert jobs > 1
    assert count("PUT jobs/ingest/batches", stats) == jobs
    assert jobs <= math.ceil(700 * 300 / 40_000) + 1


@pytest.mark.parametrize("killed_at", ["after-close", "after-create"])
def test_a_bulk_job_left_by_a_killed_run_is_resumed_or_aborted(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    killed_at: str,
) -> None:
    """A closed job is resumed (its results read, nothing sent again); an open one is aborted."""
    org = _org_with_changes(sandbox_factory, tmp_path)
    point = "_outcome" if killed_at == "after-close" else "_upload"

    def die(*_: object, **__: object) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(ingest, point, die)
        with pytest.raises(Killed):
            org.sync()
    assert ingest.JobJournal(org.connector_state()).pending()

    recovered = org.sync()
    again = org.sync()
    stats = org.stats()

    assert recovered.records_written == 700
    assert again.records_written == 0
    assert stats["records_written"] == 700
    assert count("POST jobs/ingest", stats) == (1 if killed_at == "after-close" else 2)
    # a closed job's results are read before the mirror is updated (what it wrote is icp-sync's
    # own, not a hand edit) and once more to record them: 3 result sets, twice
    assert count("GET jobs/ingest/results", stats) == (6 if killed_at == "after-close" else 3)
    assert not ingest.JobJournal(org.connector_state()).pending()
    ledger = org.store.ledger.counts(recovered.run_id)
    assert ledger.get("written") == 700


def test_a_retried_job_create_leaves_no_open_job_behind(
    sandbox_factory: SandboxFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create whose answer was lost (the job exists) and was retried leaves no orphan open job."""
    original = BulkJobs.create_ingest
    lost: list[str] = []
    armed: list[bool] = []
    emulator: list[BulkJobs] = []

    async def lose_first_answer(jobs: BulkJobs, request: Request) -> Response:
        emulator.append(jobs)
        response = await original(jobs, request)
        if armed and not lost:
            lost.append(json.loads(bytes(response.body))["id"])
            raise BulkError(503, "SERVER_UNAVAILABLE", "the answer was lost")
        return response

    monkeypatch.setattr(BulkJobs, "create_ingest", lose_first_answer)
    org = _org_with_changes(sandbox_factory, tmp_path)
    armed.append(True)
    result = org.sync()
    jobs = [j for j in emulator[0].jobs.values() if j.kind == "ingest"]

    assert lost
    assert result.records_written == 700
    assert org.stats()["records_written"] == 700
    assert [j.state for j in jobs if j.id == lost[0]] == ["Aborted"]
    assert not [j for j in jobs if j.state == "Open"]


def test_a_job_created_by_a_run_killed_before_journaling_it_is_aborted(
    sandbox_factory: SandboxFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 between a job's create and its journal entry leaves an Open job nobody knows:
    the next run finds it, aborts it, and writes every record exactly once."""
    original = BulkJobs.create_ingest
    emulator: list[BulkJobs] = []

    async def remember(jobs: BulkJobs, request: Request) -> Response:
        emulator.append(jobs)
        return await original(jobs, request)

    monkeypatch.setattr(BulkJobs, "create_ingest", remember)
    org = _org_with_changes(sandbox_factory, tmp_path)
    earlier = {j.id for j in emulator[0].jobs.values()} if emulator else set()

    def die(*_: object, **__: object) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(ingest.JobJournal, "add", die)
        with pytest.raises(Killed):
            org.sync()
    [orphan] = [j for j in emulator[-1].jobs.values() if j.kind == "ingest" and j.id not in earlier]
    assert orphan.state == "Open"
    assert not ingest.JobJournal(org.connector_state()).pending()

    recovered = org.sync()
    again = org.sync()
    jobs = [j for j in emulator[-1].jobs.values() if j.kind == "ingest"]

    assert orphan.state == "Aborted"
    assert not [j for j in jobs if j.state == "Open"]
    assert recovered.records_written == 700
    assert again.records_written == 0
    assert org.stats()["records_written"] == 700
