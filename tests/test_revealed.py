"""The revealed ICP: a planted drift into a Red segment shows; planted data alone shows none."""

from __future__ import annotations

from icp_sync.revealed import RevealedSettings, revealed_icp
from tests.planted import END, crm, live_opportunities, tiered

SETTINGS = RevealedSettings(dimensions=("industry", "employees_band", "region"))


def test_a_red_segment_being_closed_is_reported() -> None:
    """Recent wins planted in Government (Red) are listed as the first disagreement."""
    data = crm(drift=40)
    result = revealed_icp(tiered(data), live_opportunities(data), SETTINGS, now=END)
    top = result.disagreements.iloc[0]
    assert top["finding"] == "Red segment being closed"
    assert top["rule"] == {"industry": "Government"}
    assert top["index"] > 1.15
    assert top["q_value"] <= 0.05


def test_without_a_drift_no_red_segment_is_being_closed() -> None:
    """The same world without the drift: no Red segment is closed above its share."""
    data = crm()
    result = revealed_icp(tiered(data), live_opportunities(data), SETTINGS, now=END)
    findings = set(result.disagreements["finding"])
    assert "Red segment being closed" not in findings
    assert "Red segment being pursued" not in findings


def test_a_narrower_segment_inside_a_listed_one_is_left_out() -> None:
    """Government is listed once, not again as Government x each band or region."""
    data = crm(drift=40)
    result = revealed_icp(tiered(data), live_opportunities(data), SETTINGS, now=END)
    closed = result.disagreements[result.disagreements["finding"] == "Red segment being closed"]
    assert all("Government" not in s or s == "Government" for s in closed["segment"])


def test_a_window_with_too_few_deals_is_not_judged() -> None:
    """A window before any deal: nothing tested, no disagreement, a note saying why."""
    data = crm()
    early = data.opportunities["created_at"].min()
    result = revealed_icp(tiered(data), live_opportunities(data), SETTINGS, now=early)
    assert result.disagreements.empty
    assert any("not judged" in note for note in result.notes)
