"""Compliance rules on open deals: tiers, motions, clear fit, the committed TAL, waivers."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from icp_sync.compliance import Commitment, make_commitment
from icp_sync.model import Tier
from icp_sync.rules import Compliance, ComplianceConfig, DealTypeRule, Verdict, evaluate

ACCOUNTS = pd.DataFrame(
    {"account_id": ["A", "B", "C"], "industry": ["Healthcare", "Retail", "Retail"]}
)


def _deal(**values: object) -> pd.DataFrame:
    row = {"opportunity_id": "O1", "account_id": "A", "deal_type": "new_business",
           "motion": "inbound"} | values  # fmt: skip
    return pd.DataFrame([row])


def _one(
    deals: pd.DataFrame,
    tier: Tier,
    config: ComplianceConfig | None = None,
    *,
    commitment: Commitment | None,
) -> Verdict:
    [verdict] = evaluate(deals, {"O1": tier}, ACCOUNTS, config or ComplianceConfig(), commitment)
    return verdict


@pytest.mark.parametrize(
    ("tier", "motion", "status", "rule"),
    [
        (Tier.RED, "inbound", Compliance.OUT_OF_ICP, "red_account"),
        (Tier.YELLOW, "inbound", Compliance.COMPLIANT, None),
        (Tier.YELLOW, "outbound", Compliance.OUT_OF_ICP, "yellow_not_inbound"),
        (Tier.GREEN, "outbound", Compliance.COMPLIANT, None),
    ],
    ids=["red", "yellow-inbound", "yellow-outbound", "green-outbound"],
)
def test_default_rules_follow_the_tiers_without_a_commitment(
    tier: Tier, motion: str, status: Compliance, rule: str | None
) -> None:
    """No commitment needed: Red new business is out; Yellow only inbound; Green always in."""
    verdict = _one(_deal(motion=motion), tier, commitment=None)

    assert (verdict.status, verdict.rule, verdict.tier_at_creation) == (status, rule, tier)


def test_a_renewal_on_a_red_account_is_not_new_business() -> None:
    """The tier rules apply to new business only, unless configured otherwise."""
    verdict = _one(_deal(deal_type="renewal"), Tier.RED, commitment=None)

    assert verdict.status is Compliance.COMPLIANT


def test_a_deal_without_a_type_counts_as_new_business() -> None:
    """A blank deal type is judged as new business."""
    assert _one(_deal(deal_type=None), Tier.RED, commitment=None).rule == "red_account"


def test_clear_fit_lets_a_yellow_outbound_deal_in() -> None:
    """A Yellow account matching a configured clear-fit rule may be pursued outbound."""
    config = ComplianceConfig(yellow_clear_fit=[{"industry": ["healthcare"]}])

    inside = _one(_deal(motion="outbound"), Tier.YELLOW, config, commitment=None)
    outside = _one(_deal(motion="outbound", account_id="B"), Tier.YELLOW, config, commitment=None)

    assert inside.status is Compliance.COMPLIANT
    assert outside.rule == "yellow_not_inbound"


def test_with_a_commitment_outbound_must_be_on_the_tal_or_green(now: datetime) -> None:
    """Outbound on a Yellow clear-fit account off the committed TAL breaks the TAL rule."""
    commitment = make_commitment(
        period="2027", icp_version="v1", definition="", tal_name="TAL", tal_account_ids=["C"],
        target_green_share=0.7, created_at=now, created_by="me",
    )  # fmt: skip
    config = ComplianceConfig(yellow_clear_fit=[{"industry": "Healthcare"}])

    off = _one(_deal(motion="outbound"), Tier.YELLOW, config, commitment=commitment)
    on = _one(_deal(motion="outbound", account_id="C"), Tier.GREEN, config, commitment=commitment)
    without = _one(_deal(motion="outbound"), Tier.YELLOW, config, commitment=None)

    assert off.rule == "outbound_off_target"
    assert on.status is Compliance.COMPLIANT
    assert without.status is Compliance.COMPLIANT


def test_a_deal_type_rule_limits_its_tiers() -> None:
    """An expansion rule allowing Green and Yellow flags an expansion on a Red account."""
    config = ComplianceConfig(
        deal_type_rules=[DealTypeRule(deal_type="expansion", allowed_tiers=["Green", "Yellow"])]
    )

    verdict = _one(_deal(deal_type="expansion"), Tier.RED, config, commitment=None)

    assert verdict.rule == "deal_type_expansion"


@pytest.mark.parametrize(
    ("reason", "approver", "status"),
    [("Strategic", "CRO", Compliance.WAIVED), ("Strategic", None, Compliance.OUT_OF_ICP),
     (None, "CRO", Compliance.OUT_OF_ICP)],
    ids=["both", "no-approver", "no-reason"],
)  # fmt: skip
def test_a_waiver_needs_reason_and_approver(
    reason: str | None, approver: str | None, status: Compliance
) -> None:
    """Waived only when both waiver fields are set; the rule broken is still named."""
    deal = _deal(attr_icp_waiver_reason=reason, attr_icp_waiver_approved_by=approver)

    verdict = _one(deal, Tier.RED, commitment=None)

    assert (verdict.status, verdict.rule) == (status, "red_account")


def test_a_deal_without_a_frozen_tier_is_not_judged() -> None:
    """Deals whose account has no tier yet get no verdict (judged once it has one)."""
    assert evaluate(_deal(), {}, ACCOUNTS, ComplianceConfig(), None) == []
