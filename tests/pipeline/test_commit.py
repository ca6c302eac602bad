"""``icp-sync commit``: freeze the active ICP for a period, show it, supersede it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import icp_sync


def test_commit_records_shows_and_supersedes_with_history(example: Path) -> None:
    """A commitment freezes the active version and TAL; new terms supersede; history is kept;
    monitor reports against it, and --dry-run stores nothing."""
    config = str(example / "icp-sync.toml")
    assert icp_sync("sync", "--config", config).code == 0
    assert icp_sync("derive", "--config", config).code == 0
    assert icp_sync("activate", "v1", "--config", config).code == 0
    none = json.loads(icp_sync("commit", "--show", "--json", "--config", config).stdout)

    first = icp_sync(
        "commit", "--period", "2027", "--target-green-share", "0.7",
        "--signatory", "Sales: Dana Lee", "--signatory", "Finance: Sam Roe",
        "--target", "max_red_share=0.05", "--by", "revops", "--json", "--config", config,
    )  # fmt: skip
    again = icp_sync(
        "commit", "--period", "2027", "--target-green-share", "0.7",
        "--signatory", "Sales: Dana Lee", "--signatory", "Finance: Sam Roe",
        "--target", "max_red_share=0.05", "--json", "--config", config,
    )  # fmt: skip
    second = icp_sync(
        "commit", "--period", "2027", "--target-green-share", "0.8",
        "--signatory", "Sales: Dana Lee", "--json", "--config", config,
    )  # fmt: skip
    shown = json.loads(icp_sync("commit", "--show", "--json", "--config", config).stdout)
    history = json.loads(
        icp_sync("commit", "--history", "--period", "2027", "--json", "--config", config).stdout
    )

    assert none == {"commitment": None}
    assert first.code == 0, first.stderr
    recorded = json.loads(first.stdout)
    assert recorded["recorded"] is True
    assert recorded["commitment"]["icp_version"] == "v1"
    assert recorded["commitment"]["signatories"] == ["Sales: Dana Lee", "Finance: Sam Roe"]
    assert recorded["commitment"]["targets"] == {"max_red_share": 0.05}
    assert json.loads(again.stdout)["unchanged"] is True
    replaced = json.loads(second.stdout)["commitment"]
    assert replaced["supersedes"] == recorded["commitment"]["content_hash"]
    assert shown["commitment"]["content_hash"] == replaced["content_hash"]
    assert shown["commitment"]["target_green_share"] == 0.8
    assert [c["content_hash"] for c in history["commitments"]] == [
        recorded["commitment"]["content_hash"],
        replaced["content_hash"],
    ]

    dry = json.loads(icp_sync("monitor", "--dry-run", "--json", "--config", config).stdout)
    real = json.loads(icp_sync("monitor", "--json", "--config", config).stdout)
    assert dry["commitment"]["content_hash"] == replaced["content_hash"]
    assert {v["opportunity_id"] for v in dry["violations"]} == {
        v["opportunity_id"] for v in real["violations"]
    }
    # the dry run stored nothing: the real run sees every violation for the first time
    assert min(v["first_seen_at"] for v in real["violations"]) > max(
        v["first_seen_at"] for v in dry["violations"]
    )
    assert {v["status"] for v in real["violations"]} <= {"out_of_icp", "waived", "resolved"}


def test_commit_refuses_bad_terms_with_exit_2(example: Path) -> None:
    """A bad period, signatory or target is a usage error listing the problem."""
    config = str(example / "icp-sync.toml")
    assert icp_sync("sync", "--config", config).code == 0

    period = icp_sync("commit", "--period", "next year", "--config", config)
    signatory = icp_sync("commit", "--period", "2027", "--signatory", "Dana", "--config", config)
    target = icp_sync("commit", "--period", "2027", "--target", "x", "--config", config)

    assert (period.code, signatory.code, target.code) == (2, 2, 2)
    assert "period" in period.stderr
    assert "Function: Name" in signatory.stderr
    assert "NAME=NUMBER" in target.stderr
