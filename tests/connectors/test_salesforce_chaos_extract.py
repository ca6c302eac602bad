"""Extraction under chaos: hostile faults, killed processes, skewed clocks, edits and deletes
between cycles; afterwards the mirror equals the org."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from icp_sync.errors import ConnectorError
from icp_sync.model import CrmObject
from icp_sync.sandbox.faults import PROFILES, FaultProfile
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import Org, count, make_org

ACCOUNT = CrmObject.ACCOUNT
OPPORTUNITY = CrmObject.OPPORTUNITY


def _mutate(org: Org, rng: random.Random, cycle: int) -> None:
    """What users do between two cycles: edits (one back-dated), deletes, purges, inserts."""
    sf_org = org.sandbox.org
    records = sf_org.objects["Account"].records
    live = sorted(i for i, r in records.items() if not r["IsDeleted"])
    edited = rng.sample(live, 4)
    for n, record_id in enumerate(edited[:3]):
        owner = str(records[record_id]["OwnerId"])
        sf_org.update("Account", record_id, {"Name": f"Chaos {cycle}-{n}"}, user=owner)
    late = edited[3]
    sf_org.update(
        "Account",
        late,
        {"Name": f"Late {cycle}"},
        user=str(records[late]["OwnerId"]),
        stamp=sf_org.now_ms() - 90_000,  # committed now, stamped 90 s ago
    )
    soft, hard = rng.sample([i for i in live if i not in edited], 2)
    sf_org.delete("Account", soft, user=sf_org.loader_user)
    sf_org.hard_delete("Account", hard)
    if cycle % 3 == 2:
        sf_org.purge("Account")
    sf_org.insert("Account", {"Name": f"New {cycle}", "ICP_TAL__c": False}, user=sf_org.loader_user)
    deals = sorted(
        i for i, r in sf_org.objects["Opportunity"].records.items() if not r["IsDeleted"]
    )
    sf_org.hard_delete("Opportunity", rng.choice(deals))
    sf_org.advance(rng.uniform(61, 180))  # time passes between cycles


def _killed_sync(org: Org, config: Path, rng: random.Random) -> bool:
    """`icp-sync sync` in a subprocess, killed with SIGKILL at a random moment once its
    extraction has started; returns whether it was killed before it finished."""

    def reads_so_far() -> int:  # the first read of a cycle is its Composite call
        stats = org.stats()
        return count("GET queryAll*", stats) + count("POST composite", stats)

    reads = reads_so_far()
    process = subprocess.Popen(
        [sys.executable, "-m", "icp_sync", "sync", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while reads_so_far() == reads and process.poll() is None:
        assert time.monotonic() < deadline, "the subprocess never started extracting"
        time.sleep(0.01)
    try:
        process.wait(timeout=rng.uniform(0.0, 0.4))
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        return True
    return False


def _assert_mirror_equals_org(org: Org) -> None:
    sf_org = org.sandbox.org
    for obj, sobject in ((ACCOUNT, "Account"), (OPPORTUNITY, "Opportunity")):
        org_live = {i: r for i, r in sf_org.objects[sobject].records.items() if not r["IsDeleted"]}
        mirror = org.store.mirror
        assert mirror.ids(obj) == set(org_live), sobject
        everything = mirror.ids(obj, include_deleted=True)
        assert everything - mirror.ids(obj) == everything - set(org_live), sobject
    accounts = org.store.mirror.load(ACCOUNT).set_index("account_id")["name"].to_dict()
    names = {i: r["Name"] for i, r in sf_org.objects["Account"].records.items()}
    assert accounts == {i: names[i] for i in accounts}


@pytest.mark.slow
def test_the_mirror_ends_equal_to_the_org_after_chaos(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Five cycles under the hostile fault profile, two of them killed mid-extract (SIGKILL),
    clients 30 s fast or slow, edits, back-dated commits, soft and hard deletes, purges and
    inserts in between: one clean cycle later, ids, deleted flags and names match the org."""
    rng = random.Random(20261201)
    org = make_org(sandbox_factory, tmp_path, accounts=200)
    config = tmp_path / "icp-sync.toml"
    org.setup_fields()
    org.sync()
    org.faults(replace_seed(PROFILES["hostile"], 11))
    kills = 0
    for cycle in range(5):
        _mutate(org, rng, cycle)
        if cycle in (1, 3):
            kills += _killed_sync(org, config, rng)
            continue
        skew = timedelta(seconds=rng.choice((-30, 30)))
        with contextlib.suppress(ConnectorError):  # a cycle may fail; the next one resumes
            org.sync(now=datetime.now(UTC) + skew)
    org.faults(FaultProfile())
    org.sandbox.org.advance(120)
    org.sync()

    assert kills >= 1
    _assert_mirror_equals_org(org)


def replace_seed(profile: FaultProfile, seed: int) -> FaultProfile:
    """The profile drawing from another seed."""
    return replace(profile, seed=seed)
