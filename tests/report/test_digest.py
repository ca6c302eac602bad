"""The weekly digest: the headline numbers, the drift, the link; as text and Slack blocks."""

from __future__ import annotations

import dataclasses

from icp_sync.report.digest import digest
from tests.planted import planted_report


def test_the_digest_carries_the_headline_numbers_and_the_drift() -> None:
    """Green share against the target in the subject; deals, out-of-ICP, TAL, drift in lines."""
    report = dataclasses.replace(planted_report(), link="https://icp.example.com/dashboard")
    message = digest(report)
    head = report.adherence.headline
    assert f"{head['green_amount_share']['value']:.1%}" in message.subject
    assert "target 10.0%" in message.subject
    text = message.text
    assert f"{head['new_deals']:,} new-business deals" in text
    assert f"Out of ICP: {report.adherence.out_of_icp['deals']} deals" in text
    assert "Government (Red segment being closed)" in text
    assert text.rstrip().endswith("Dashboard: https://icp.example.com/dashboard")


def test_slack_blocks_link_the_dashboard() -> None:
    """The Slack form is a header, the lines and a button to the dashboard."""
    report = dataclasses.replace(planted_report(), link="https://icp.example.com/dashboard")
    blocks = digest(report).slack_blocks()
    assert blocks[0]["type"] == "header"
    assert blocks[-1]["elements"][0]["url"] == "https://icp.example.com/dashboard"


def test_without_drift_the_digest_says_sales_follow_the_commitment() -> None:
    """No disagreement: one line saying so, not an empty list."""
    report = planted_report(drift=0)
    assert report.revealed.disagreements.empty
    assert "sales pursue and close what was committed" in digest(report).text
