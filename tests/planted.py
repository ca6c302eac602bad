"""A generated CRM tiered by its planted ICP, shared by the adherence and revealed-ICP tests."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import pandas as pd

from icp_sync.adherence import Terms, measure, parse_period
from icp_sync.config import SegmentsConfig
from icp_sync.icp import IcpDefinition, SegmentRule, assign_tiers
from icp_sync.model import Tier
from icp_sync.report.document import Report
from icp_sync.revealed import RevealedSettings, revealed_icp
from icp_sync.sandbox.generate import GREEN, RED, SyntheticCrm, generate
from icp_sync.segments import with_dimensions

END = pd.Timestamp("2026-11-01", tz="UTC")


def planted_definition() -> IcpDefinition:
    """The ICP the generator planted, as a definition (what a good derive finds)."""
    rules = [SegmentRule(rule=dict(r), tier=Tier.GREEN) for r in GREEN]
    rules += [SegmentRule(rule=dict(r), tier=Tier.RED) for r in RED]
    return IcpDefinition(
        version="v1",
        as_of=datetime(2026, 1, 1, tzinfo=UTC),
        derived_at=datetime(2026, 1, 1, tzinfo=UTC),
        dimensions=("industry", "employees_band", "region"),
        employee_bands=(1, 50, 200, 1000, 5000),
        revenue_bands=(0, 1e6, 1e7, 1e8, 1e9),
        rules=tuple(rules),
    )


@cache
def crm(drift: int = 0, accounts: int = 6000, seed: int = 11) -> SyntheticCrm:
    """A generated CRM (cached: the tests only read it)."""
    return generate(accounts, seed=seed, drift=drift)


def tiered(data: SyntheticCrm) -> pd.DataFrame:
    """The live accounts with dimensions, ``tier`` and ``segment`` under the planted ICP."""
    live = data.accounts[~data.accounts["is_deleted"]]
    accounts = with_dimensions(live, SegmentsConfig()).reset_index(drop=True)
    assignment = assign_tiers(accounts, planted_definition())
    accounts["tier"] = assignment.frame["tier"].to_numpy()
    accounts["segment"] = assignment.frame["segment"].to_numpy()
    return accounts


def live_opportunities(data: SyntheticCrm) -> pd.DataFrame:
    """The opportunities not deleted."""
    return data.opportunities[~data.opportunities["is_deleted"]].reset_index(drop=True)


@cache
def planted_report(drift: int = 40) -> Report:
    """The adherence report of 2026 on the planted CRM (target 10%, the first 200 prospects
    as TAL)."""
    data = crm(drift=drift)
    accounts, opportunities = tiered(data), live_opportunities(data)
    prospects = accounts[accounts["customer_since"].isna()]["account_id"].head(200)
    terms = Terms(
        period=parse_period("2026"),
        version="v1",
        target_green_share=0.1,
        tal=frozenset(prospects),
        signatories=("Sales: Dana <b>Lee</b>",),
    )
    settings = RevealedSettings(dimensions=("industry", "employees_band", "region"))
    return Report(
        adherence=measure(accounts, opportunities, terms, now=END, owners=data.owners),
        revealed=revealed_icp(accounts, opportunities, settings, now=END),
        generated_at=END,
        history_end=END,
    )
