"""`sync --dry-run`: the preview of tier moves, TAL changes, sample values and the write's cost
matches what the real write then does."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import count, make_org


@pytest.mark.parametrize(
    "threshold", [pytest.param(2_000, id="collections"), pytest.param(100, id="bulk")]
)
def test_the_dry_run_preview_names_moves_tal_sample_and_the_calls_the_write_costs(
    sandbox_factory: SandboxFactory, tmp_path: Path, threshold: int
) -> None:
    """The preview's counts, sample and API cost are what the following real sync writes."""
    org = make_org(sandbox_factory, tmp_path, accounts=400, bulk_write_threshold=threshold)
    org.setup_fields()
    dry = org.sync(dry_run=True)
    assert dry.writeback is not None
    preview = dry.writeback["preview"]
    plan = dry.writeback["plan"]
    assert org.icp_fields()  # nothing written yet:
    assert all(f["ICP_Tier__c"] is None for f in org.icp_fields().values())

    assert sum(preview["tier_moves"].values()) == plan["records"]
    assert preview["tal"]["removed"] == 0
    assert 0 < preview["tal"]["added"] <= plan["by_field"]["tal"]
    assert 0 < len(preview["sample"]) <= 10
    first = preview["sample"][0]
    assert first["fields"]["tier"]["old"] == ""
    assert first["fields"]["tier"]["new"] in ("Green", "Yellow", "Red")

    org.reset_stats()
    real = org.sync()
    stats = org.stats()
    written = real.records_written
    assert written == plan["records"]
    write_calls = count("GET query", stats) + sum(  # the conflict check, then the writes
        v["calls"]
        for name, v in stats["by_endpoint"].items()
        if "composite/sobjects" in name or "jobs/ingest" in name
    )
    if threshold >= written:
        assert preview["api_calls"]["method"] == "collections"
        assert preview["api_calls"]["calls"] == 1 + math.ceil(written / 200)
        assert write_calls == preview["api_calls"]["calls"], stats["by_endpoint"]
    else:
        assert preview["api_calls"]["method"] == "bulk"
        # status polls vary with the job's speed; the rest is fixed
        assert abs(write_calls - preview["api_calls"]["calls"]) <= 2, stats["by_endpoint"]
    fields = org.icp_fields()
    for record in preview["sample"]:
        assert fields[record["record_id"]]["ICP_Tier__c"] == record["fields"]["tier"]["new"]
