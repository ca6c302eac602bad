"""Text leaving icp-sync: formulas from exports made inert, long text cut at a word boundary."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from icp_sync.icp import IcpDefinition, SegmentRule
from icp_sync.model import Tier
from icp_sync.reasons import compose
from icp_sync.text import neutralize, neutralize_list, shorten
from icp_sync.writeback import desired_account_values

FORMULA = '=HYPERLINK("http://evil.example","click")'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(FORMULA, "'" + FORMULA, id="equals"),
        pytest.param("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0", id="plus"),
        pytest.param("-2+3", "'-2+3", id="minus-formula"),
        pytest.param("@SUM(A1)", "'@SUM(A1)", id="at"),
        pytest.param("-12%", "-12%", id="negative-percent"),
        pytest.param("-1,234.5", "-1,234.5", id="negative-number"),
        pytest.param("+3.5", "+3.5", id="signed-number"),
        pytest.param("Healthcare", "Healthcare", id="plain"),
        pytest.param("", "", id="empty"),
    ],
)
def test_neutralize_makes_formulas_inert_and_keeps_numbers(value: str, expected: str) -> None:
    """Values starting with = + - @ get a leading apostrophe; numbers such as -12% do not."""
    assert neutralize(value) == expected


def test_neutralize_list_treats_each_item() -> None:
    """Every item of a segment label is neutralised, the rest kept as is."""
    assert neutralize_list(f"Retail, {FORMULA}") == f"Retail, '{FORMULA}"


@pytest.mark.parametrize(
    ("value", "width", "expected"),
    [
        pytest.param(
            "Healthcare, 200-999 employees: 95% logo retention",
            30,
            "Healthcare, 200-999…",
            id="words",
        ),
        pytest.param("short", 30, "short", id="fits"),
        pytest.param("Supercalifragilistic", 8, "Superca…", id="one-long-word"),
    ],
)
def test_shorten_cuts_at_a_word_boundary_with_an_ellipsis(
    value: str, width: int, expected: str
) -> None:
    """Text longer than the width ends at a whole word followed by an ellipsis."""
    result = shorten(value, width)

    assert result == expected
    assert len(result) <= width


def _definition() -> IcpDefinition:
    return IcpDefinition(
        version="v1",
        as_of=datetime(2026, 1, 1, tzinfo=UTC),
        derived_at=datetime(2026, 1, 2, tzinfo=UTC),
        dimensions=("industry",),
        employee_bands=(1, 50),
        revenue_bands=(0, 1e6),
        rules=(
            SegmentRule(
                rule={"industry": FORMULA},
                tier=Tier.GREEN,
                metrics={"win_rate": 0.4, "nrr": -0.12},
                lift=1.5,
            ),
        ),
        baseline={"win_rate": 0.2, "nrr": 0.9},
    )


def test_reasons_never_echo_a_formula_from_the_export() -> None:
    """A formula-like industry, signal or customer name reaches the reasons neutralised."""
    tiers = pd.DataFrame(
        {"tier": ["Green"], "rule_tier": ["Green"], "segment": [FORMULA], "overridden": [False]}
    )

    [text] = compose(
        tiers,
        _definition(),
        signals=pd.Series(["@SUM(1)"]),
        similar=pd.Series([f"Acme, {FORMULA}"]),
    ).tolist()

    assert not text.startswith(("=", "+", "-", "@"))
    assert f" {FORMULA}" not in text
    assert f"'{FORMULA}: 40% win rate, -12% NRR" in text
    assert "'@SUM(1)" in text
    assert f"Acme, '{FORMULA}" in text


def test_crm_text_fields_are_safe_and_cut_at_their_length() -> None:
    """Segment and reasons written to the CRM are formula-safe and fit their field lengths."""
    scores = pd.DataFrame(
        {
            "account_id": ["a"],
            "tier": ["Green"],
            "score": [90],
            "segment": [FORMULA + ", " + "word " * 80],
            "reasons": ["-2+3 " + "because " * 5000],
        }
    )

    desired = desired_account_values(scores, None, version="v1", scored_at=datetime.now(UTC))

    segment, reasons = desired.loc["a", "segment"], desired.loc["a", "reasons"]
    assert segment.startswith("'=HYPERLINK")
    assert len(segment) <= 255
    assert segment.endswith("word…")
    assert reasons.startswith("'-2+3")
    assert len(reasons) <= 32768
    assert reasons.endswith("because…")
