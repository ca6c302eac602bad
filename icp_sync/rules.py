"""Compliance rules: which open deals are out of ICP, given tiers, waivers and the commitment.

Pure. Rules are structured config (``[compliance]``), never expressions. Defaults follow the
tiers: a new-business deal on a Red account is out of ICP; on a Yellow account only an
inbound deal (or one that fits a configured clear-fit rule) is in; with a commitment,
outbound deals belong on the committed TAL or on Green accounts; optional per-deal-type
rules name the tiers a deal type may be opened on. The tier a deal is judged by is the tier
of its account when the deal was first seen, frozen, so re-scoring never rewrites history.

A deal whose waiver reason and approver are both set is Waived instead of Out of ICP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

import pandas as pd
from pydantic import Field

from icp_sync.compliance import Commitment
from icp_sync.model import DealType, Motion, Tier
from icp_sync.sections import Section

__all__ = [
    "Compliance",
    "ComplianceConfig",
    "DealTypeRule",
    "Verdict",
    "evaluate",
]

WAIVER_REASON = "attr_icp_waiver_reason"
WAIVER_APPROVER = "attr_icp_waiver_approved_by"


class Compliance(StrEnum):
    """The value of ``ICP_Compliance__c``."""

    COMPLIANT = "Compliant"
    OUT_OF_ICP = "Out of ICP"
    WAIVED = "Waived"


class DealTypeRule(Section):
    """The tiers a deal type may be opened on (e.g. no expansion on Red accounts)."""

    deal_type: DealType
    allowed_tiers: list[Tier]


class ComplianceConfig(Section):
    """``[compliance]``: which open deals are out of ICP (defaults follow the tiers)."""

    enabled: bool = True
    deal_types: list[DealType] = Field(default_factory=lambda: [DealType.NEW_BUSINESS])
    """Deal types the tier rules apply to (a deal with no type counts as new business)."""
    red_out_of_icp: bool = True
    """A deal on a Red account is out of ICP."""
    yellow_motions: list[Motion] = Field(default_factory=lambda: [Motion.INBOUND])
    """On a Yellow account, only deals of these motions are in ICP ..."""
    yellow_clear_fit: list[dict[str, str | list[str]]] = Field(default_factory=list)
    """... or deals on accounts matching one of these rules (column = value or list),
    e.g. ``{industry = "Healthcare", country = ["US", "CA"]}``."""
    outbound_tal_or_green: bool = True
    """With a commitment: an outbound deal must be on the committed TAL or a Green account."""
    deal_type_rules: list[DealTypeRule] = Field(default_factory=list)
    """Per deal type, the tiers it may be opened on (checked for every deal type)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The compliance of one open deal.

    Attributes:
        opportunity_id: The deal.
        account_id: Its account.
        status: Compliant, Out of ICP or Waived.
        rule: The rule it breaks (also for a waived deal), ``None`` when compliant.
        reason: One line a sales rep understands (written to ``ICP_Compliance_Reason__c``).
        tier_at_creation: The frozen tier it is judged by.
    """

    opportunity_id: str
    account_id: str | None
    status: Compliance
    rule: str | None
    reason: str
    tier_at_creation: Tier | None


def evaluate(
    deals: pd.DataFrame,
    tiers: Mapping[str, Tier],
    accounts: pd.DataFrame,
    config: ComplianceConfig,
    commitment: Commitment | None,
) -> list[Verdict]:
    """The verdict on each deal of ``deals`` (open deals, canonical columns).

    Args:
        deals: The deals to judge (``opportunity_id``, ``account_id``, ``deal_type``,
            ``motion``, waiver ``attr_`` columns when read).
        tiers: Frozen tier at creation per opportunity id (deals without one are not judged).
        accounts: Accounts (``account_id`` and the columns clear-fit rules name).
        config: The rules.
        commitment: The commitment in force, if any (adds the TAL rule).
    """
    by_account = accounts.set_index("account_id", drop=False) if len(accounts) else accounts
    tal = set(commitment.tal_account_ids) if commitment is not None else set()
    verdicts = []
    for record in deals.to_dict("records"):
        row = {str(k): v for k, v in record.items()}
        opportunity_id = str(row["opportunity_id"])
        tier = tiers.get(opportunity_id)
        if tier is None:
            continue
        account_id = _text(row.get("account_id"))
        broken = _broken_rule(
            row,
            tier,
            partial(_account, by_account, account_id),
            config,
            tal if commitment else None,
        )
        waived = bool(_text(row.get(WAIVER_REASON)) and _text(row.get(WAIVER_APPROVER)))
        if broken is None:
            status, rule, reason = Compliance.COMPLIANT, None, f"{tier} account: within the ICP"
        elif waived:
            rule, why = broken
            status = Compliance.WAIVED
            reason = (
                f"{why}; waived by {_text(row.get(WAIVER_APPROVER))}: "
                f"{_text(row.get(WAIVER_REASON))}"
            )
        else:
            status, (rule, reason) = Compliance.OUT_OF_ICP, broken
        verdicts.append(
            Verdict(
                opportunity_id=opportunity_id,
                account_id=account_id,
                status=status,
                rule=rule,
                reason=reason[:255],
                tier_at_creation=tier,
            )
        )
    return verdicts


def _broken_rule(
    row: Mapping[str, object],
    tier: Tier,
    account: Callable[[], Mapping[str, object]],
    config: ComplianceConfig,
    tal: set[str] | None,
) -> tuple[str, str] | None:
    """(rule id, reason) of the first rule the deal breaks, or ``None``."""
    deal_type = _text(row.get("deal_type")) or DealType.NEW_BUSINESS
    motion = _text(row.get("motion"))
    for rule in config.deal_type_rules:
        if rule.deal_type == deal_type and tier not in rule.allowed_tiers:
            allowed = "/".join(str(t) for t in rule.allowed_tiers)
            return (
                f"deal_type_{deal_type}",
                f"{deal_type} deal on a {tier} account ({allowed} only)",
            )
    if deal_type not in config.deal_types:
        return None
    if tier is Tier.RED and config.red_out_of_icp:
        return "red_account", "new deal on a Red account (cannot serve)"
    if (
        tier is Tier.YELLOW
        and motion not in config.yellow_motions
        and not any(_matches(account(), fit) for fit in config.yellow_clear_fit)
    ):
        motions = "/".join(str(m) for m in config.yellow_motions) or "no"
        return (
            "yellow_not_inbound",
            f"{motion or 'unsourced'} deal on a Yellow account (only {motions} or clear fit)"
            if motion in (Motion.OUTBOUND, Motion.PARTNER, None)
            else f"deal of source '{motion}' on a Yellow account (only {motions} or clear fit)",
        )
    if (
        tal is not None
        and config.outbound_tal_or_green
        and motion == Motion.OUTBOUND
        and tier is not Tier.GREEN
        and _text(row.get("account_id")) not in tal
    ):
        return "outbound_off_target", f"outbound deal on a {tier} account off the committed TAL"
    return None


def _matches(account: Mapping[str, object], rule: Mapping[str, str | list[str]]) -> bool:
    if not account or not rule:
        return False
    for column, wanted in rule.items():
        value = _text(account.get(column))
        options = [wanted] if isinstance(wanted, str) else wanted
        if value is None or value.casefold() not in {o.casefold() for o in options}:
            return False
    return True


def _account(frame: pd.DataFrame, account_id: str | None) -> dict[str, object]:
    if account_id is None or not len(frame) or account_id not in frame.index:
        return {}
    found = frame.loc[account_id]
    if isinstance(found, pd.DataFrame):
        found = found.iloc[0]
    return {str(k): v for k, v in found.to_dict().items()}


def _text(value: object) -> str | None:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and value != value:  # noqa: PLR0124 (NaN is not equal to itself)
        return None
    text = str(value).strip()
    return text or None
