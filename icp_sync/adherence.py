"""Adherence to the ICP commitment: what leadership reads (pure).

For a commitment period this measures, from the mirror's accounts (tiered by the committed
ICP version) and opportunities:

- the share of new pipeline (new-business deals created in the period; count and amount) by
  tier against the committed Green target (a share of the amount), overall, by month, by
  team and by owner;
- out-of-ICP deals (a violation record when there is one, else a deal whose tier at creation
  is Red): open, waived, won and lost;
- TAL coverage: the committed TAL's accounts engaged, with new pipeline, won;
- outcome lift by tier (win rate, sales cycle, ACV, 12-month logo retention once observable),
  each with a 95% interval, and Green against the rest;
- the concentration of new customers in the top Green segments (do wins cluster where peers
  can refer each other?).

A deal's tier is its tier at creation (``attr_icp_tier_at_creation``, frozen on the record)
where the CRM holds one, else its account's tier under the committed version. Time is passed
in (``now`` is the end of the observed history); what the data cannot support (too few deals,
retention not yet observable) is said in ``notes`` and left out as ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from icp_sync.compliance import period_bounds
from icp_sync.estimates import (
    MIN_RATE_N,
    amount_share_estimate,
    compare_rates,
    mean_estimate,
    rate_estimate,
)
from icp_sync.model import DealType, Tier

__all__ = ["Adherence", "Period", "Terms", "deal_tiers", "measure", "parse_period"]

TIER_AT_CREATION = "attr_icp_tier_at_creation"
WAIVER_COLUMNS = ("attr_icp_waiver_reason", "attr_icp_waiver_approved_by")
NO_TEAM = "(no team)"
TOP_SEGMENTS = 3
_TIERS = [str(t) for t in Tier]


@dataclass(frozen=True, slots=True, kw_only=True)
class Period:
    """A commitment period: ``name`` (``2027``, ``2027-Q1``, ``2027-03``), from ``start``
    (inclusive) to ``end`` (exclusive), UTC."""

    name: str
    start: pd.Timestamp
    end: pd.Timestamp


def parse_period(text: str) -> Period:
    """A commitment period (:func:`icp_sync.compliance.period_bounds`: ``2027``, ``FY2027``,
    ``2027-Q2``, ``2027-02-01..2028-02-01``) or a month (``2027-03``).

    Raises:
        ValueError: On any other form.
    """
    value = text.strip()
    if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        start = pd.Timestamp(f"{value}-01", tz="UTC")
        return Period(name=value, start=start, end=start + pd.DateOffset(months=1))
    try:
        start_at, end_at = period_bounds(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a period: use 2027, 2027-Q1, 2027-03 or 2027-02-01..2028-02-01"
        ) from None
    return Period(name=value.upper(), start=pd.Timestamp(start_at), end=pd.Timestamp(end_at))


@dataclass(frozen=True, slots=True, kw_only=True)
class Terms:
    """What was committed for the period (or, without a commitment, what is in force).

    Attributes:
        period: The period.
        version: The committed ICP version.
        target_green_share: The committed share of new pipeline on Green accounts (None: no
            target agreed).
        tal: Account ids of the committed TAL.
        source: ``commitment`` or ``active version`` (no commitment for the period).
        signatories: Who signed, as given.
        decided_at: When the terms (the TAL) were fixed; a TAL fixed after the period began
            is no out-of-sample prediction of it.
        content_hash: The commitment's content hash (its name), if committed.
    """

    period: Period
    version: str
    target_green_share: float | None
    tal: frozenset[str]
    source: str = "commitment"
    signatories: tuple[str, ...] = ()
    decided_at: pd.Timestamp | None = None
    content_hash: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Adherence:
    """The adherence measurement (see the module docstring); tables are DataFrames."""

    terms: Terms
    observed_until: pd.Timestamp
    headline: dict[str, Any]
    monthly: pd.DataFrame
    tier_mix: pd.DataFrame
    teams: pd.DataFrame
    owners: pd.DataFrame
    out_of_icp: dict[str, int]
    tal_funnel: pd.DataFrame
    lift: pd.DataFrame
    green_vs_rest: dict[str, Any]
    concentration: pd.DataFrame
    concentration_summary: dict[str, Any]
    grouping: str
    notes: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables, by the name their CSV export takes."""
        return {
            "monthly": self.monthly,
            "tier_mix": self.tier_mix,
            "teams": self.teams,
            "owners": self.owners,
            "tal_funnel": self.tal_funnel,
            "lift": self.lift,
            "concentration": self.concentration,
        }


def deal_tiers(
    opportunities: pd.DataFrame, tiers: pd.Series, frozen: Mapping[str, str] | None = None
) -> pd.Series:
    """Each deal's tier: frozen when first seen (``frozen``, by opportunity id, as the
    compliance monitor stores it), else as the CRM holds it at creation, else its account's."""
    by_account = opportunities["account_id"].map(tiers)
    if TIER_AT_CREATION in opportunities.columns:
        held = opportunities[TIER_AT_CREATION].astype("string").str.strip().str.capitalize()
        by_account = held.where(held.isin(_TIERS), by_account)
    if frozen:
        ids = opportunities["opportunity_id"].astype(object)
        stored = ids.map(frozen).astype(object).map(lambda t: str(t).capitalize())
        by_account = stored.where(stored.isin(_TIERS).to_numpy(dtype=bool), by_account)
    return by_account.fillna(str(Tier.YELLOW)).astype(str)


def _share_row(frame: pd.DataFrame) -> dict[str, Any]:
    deals = len(frame)
    green = frame["tier"] == str(Tier.GREEN)
    amount = float(frame["amount"].fillna(0).sum())
    green_amount = float(frame.loc[green, "amount"].fillna(0).sum())
    share = rate_estimate(int(green.sum()), deals)
    row: dict[str, Any] = {"deals": deals, "amount": round(amount, 2)}
    row |= {t: int((frame["tier"] == t).sum()) for t in _TIERS}
    row |= {
        "green_share": share["value"],
        "green_share_low": share["low"],
        "green_share_high": share["high"],
        "green_amount_share": round(green_amount / amount, 4)
        if amount > 0 and deals >= MIN_RATE_N
        else None,
        "out_of_icp": int(frame["out_of_icp"].sum()),
        "won": int(frame["is_won"].sum()),
    }
    return row


def _grouped(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rows = [
        dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)) | _share_row(part)
        for key, part in frame.groupby(keys, sort=True, dropna=False)
    ]
    columns = [*keys, *_share_row(frame.iloc[:0]).keys()]
    return pd.DataFrame(rows, columns=columns)


def _verdict(share: dict[str, Any], target: float | None) -> str:
    if target is None:
        return "no target committed"
    if share["value"] is None:
        return "not enough new pipeline to judge"
    if share["low"] >= target:
        return "on target"
    if share["high"] < target:
        return "below target"
    return "within sampling noise of the target"


def measure(
    accounts: pd.DataFrame,
    opportunities: pd.DataFrame,
    terms: Terms,
    *,
    now: pd.Timestamp,
    owners: pd.DataFrame | None = None,
    violations: pd.DataFrame | None = None,
    frozen_tiers: Mapping[str, str] | None = None,
) -> Adherence:
    """Measure adherence to ``terms`` (see the module docstring).

    Args:
        accounts: One row per account: ``account_id``, ``tier`` (under the committed version),
            ``segment`` (its label) and optionally ``team``.
        opportunities: Canonical opportunities (optionally ``attr_icp_tier_at_creation`` and
            the waiver attributes).
        terms: The commitment (or the version in force).
        now: The end of the observed history; nothing after it is counted.
        owners: ``owner_id``, ``name``, ``team`` of the deal owners, if known.
        violations: Stored violations (``opportunity_id``, ``status``, optionally
            ``resolution``), if any: each is out of ICP whatever its tier.
        frozen_tiers: Deal tiers frozen when first seen, by opportunity id.
    """
    period = terms.period
    until = min(period.end, now)
    notes: list[str] = []
    if now < period.start:
        notes.append(f"the observed history ends on {now:%Y-%m-%d}, before the period starts")
    tiers = accounts.set_index("account_id")["tier"].astype(str)
    opps = opportunities.copy()
    opps["tier"] = deal_tiers(opps, tiers, frozen_tiers)
    opps["out_of_icp"] = _out_of_icp(opps, violations)
    created = opps["created_at"]
    in_period = (created >= period.start) & (created < until)
    new_business = opps["deal_type"] == str(DealType.NEW_BUSINESS)
    new = opps[in_period & new_business].copy()
    new["month"] = new["created_at"].dt.strftime("%Y-%m")
    team_of, grouping = _teams(owners, accounts)
    new["team"] = new["owner_id"].map(team_of).fillna(NO_TEAM) if team_of is not None else NO_TEAM
    if team_of is None:
        notes.append(
            "no owner team in the data (give [report] owners = a CSV of owner_id, name, team): "
            "the leaderboard groups by owner only"
        )
    green_new = new["tier"] == str(Tier.GREEN)
    share = rate_estimate(int(green_new.sum()), len(new))
    amount_share = amount_share_estimate(new["amount"], green_new)
    total_amount = float(new["amount"].fillna(0).sum())
    headline = {
        "new_deals": len(new),
        "new_amount": round(total_amount, 2),
        "green_share": share,
        "green_amount_share": amount_share,
        "target_green_share": terms.target_green_share,
        # the commitment's target is a share of new pipeline amount
        "verdict": _verdict(amount_share, terms.target_green_share),
    }
    if share["value"] is None:
        notes.append(f"green share: {share['note']} new-business deals in the period")
    monthly = _grouped(new, ["month"])
    monthly["target"] = terms.target_green_share
    mix = pd.DataFrame(
        [
            {
                "tier": t,
                "deals": int((new["tier"] == t).sum()),
                "amount": round(float(new.loc[new["tier"] == t, "amount"].fillna(0).sum()), 2),
            }
            for t in _TIERS
        ]
    )
    mix["share"] = (mix["deals"] / max(len(new), 1)).round(4)
    mix["amount_share"] = (mix["amount"] / total_amount).round(4) if total_amount else 0.0
    teams = _grouped(new, ["team"]).sort_values("green_share", ascending=False, na_position="last")
    owner_table = _grouped(new, ["owner_id", "team"])
    if owners is not None and "name" in owners.columns:
        names = owners.drop_duplicates("owner_id").set_index("owner_id")["name"]
        owner_table.insert(1, "owner", owner_table["owner_id"].map(names).fillna(""))
    owner_table = owner_table.sort_values("green_share", ascending=False, na_position="last")
    flagged = new[new["out_of_icp"]]
    waived = _waived(flagged, violations)
    out_of_icp = {
        "deals": len(flagged),
        "open": int((~flagged["is_closed"] & ~waived).sum()),
        "waived": int(waived.sum()),
        "won": int((flagged["is_won"] & ~waived).sum()),
        "lost": int((flagged["is_closed"] & ~flagged["is_won"] & ~waived).sum()),
    }
    if not terms.tal:
        notes.append("no TAL was committed (or proposed) for this version: no TAL coverage")
    lift, green_vs_rest = _lift(
        opps, accounts=accounts, period=period, until=until, now=now, notes=notes
    )
    concentration, summary = _concentration(opps, accounts, period, until)
    return Adherence(
        terms=terms,
        observed_until=until,
        headline=headline,
        monthly=monthly.reset_index(drop=True),
        tier_mix=mix,
        teams=teams.reset_index(drop=True),
        owners=owner_table.reset_index(drop=True),
        out_of_icp=out_of_icp,
        tal_funnel=_tal_funnel(opps, terms.tal, period, until),
        lift=lift,
        green_vs_rest=green_vs_rest,
        concentration=concentration,
        concentration_summary=summary,
        grouping=grouping,
        notes=notes,
    )


def _teams(owners: pd.DataFrame | None, accounts: pd.DataFrame) -> tuple[pd.Series | None, str]:
    if owners is not None and {"owner_id", "team"} <= set(owners.columns) and len(owners):
        return owners.drop_duplicates("owner_id").set_index("owner_id")["team"], "owner team"
    del accounts
    return None, "owner"


def _out_of_icp(opps: pd.DataFrame, violations: pd.DataFrame | None) -> pd.Series:
    flagged = (opps["tier"] == str(Tier.RED)).to_numpy(dtype=bool)
    if violations is not None and len(violations):
        recorded = opps["opportunity_id"].astype(object).isin(set(violations["opportunity_id"]))
        flagged = flagged | recorded.to_numpy(dtype=bool)
    new_business = (opps["deal_type"] == str(DealType.NEW_BUSINESS)).to_numpy(dtype=bool)
    return pd.Series(flagged & new_business, index=opps.index)


def _waived(flagged: pd.DataFrame, violations: pd.DataFrame | None) -> pd.Series:
    waived = np.zeros(len(flagged), dtype=bool)
    if all(c in flagged.columns for c in WAIVER_COLUMNS):
        for column in WAIVER_COLUMNS:
            text = flagged[column].astype(object).where(flagged[column].notna(), "")
            waived_part = text.astype(str).str.strip().ne("").to_numpy(dtype=bool)
            waived = waived_part if column == WAIVER_COLUMNS[0] else waived & waived_part
    if violations is not None and len(violations):
        ids = flagged["opportunity_id"].astype(object)
        for column in ("status", "resolution"):
            if column in violations.columns:
                values = violations.drop_duplicates("opportunity_id").set_index("opportunity_id")
                said = ids.map(values[column].astype(object)).eq("waived")
                waived |= said.fillna(False).to_numpy(dtype=bool)
    return pd.Series(waived, index=flagged.index)


def _tal_funnel(
    opps: pd.DataFrame, tal: frozenset[str], period: Period, until: pd.Timestamp
) -> pd.DataFrame:
    on_tal = opps[opps["account_id"].isin(tal)]
    touched = ((on_tal["created_at"] >= period.start) & (on_tal["created_at"] < until)) | (
        (on_tal["modified_at"] >= period.start) & (on_tal["modified_at"] < until)
    )
    nb = on_tal["deal_type"] == str(DealType.NEW_BUSINESS)
    created = (on_tal["created_at"] >= period.start) & (on_tal["created_at"] < until)
    closed = (on_tal["close_date"] >= period.start) & (on_tal["close_date"] < until)
    stages = {
        "TAL accounts": len(tal),
        "engaged": on_tal.loc[touched, "account_id"].nunique(),
        "with new pipeline": on_tal.loc[nb & created, "account_id"].nunique(),
        "won": on_tal.loc[nb & closed & on_tal["is_won"], "account_id"].nunique(),
    }
    frame = pd.DataFrame({"stage": list(stages), "accounts": list(stages.values())})
    frame["share_of_tal"] = (frame["accounts"] / max(len(tal), 1)).round(4)
    return frame


def _lift(
    opps: pd.DataFrame,
    *,
    accounts: pd.DataFrame,
    period: Period,
    until: pd.Timestamp,
    now: pd.Timestamp,
    notes: list[str],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    nb = opps["deal_type"] == str(DealType.NEW_BUSINESS)
    closed = opps[
        nb & opps["is_closed"] & (opps["close_date"] >= period.start) & (opps["close_date"] < until)
    ]
    won = closed[closed["is_won"]]
    cycle = (won["close_date"] - won["created_at"]).dt.total_seconds() / 86_400
    churned = accounts.set_index("account_id").get("churned_at")
    horizon = pd.DateOffset(months=12)
    first_win = won.groupby("account_id")["close_date"].min()
    observable = first_win[first_win + horizon <= now]
    rows = []
    groups = {t: closed["tier"] == t for t in _TIERS} | {"rest": closed["tier"] != str(Tier.GREEN)}
    for name, mask in groups.items():
        part = closed[mask]
        wins = part[part["is_won"]]
        kept = observable[observable.index.isin(wins["account_id"])]
        if churned is not None:
            lost = churned.reindex(kept.index)
            retained = ~(lost <= kept + horizon)
        else:
            retained = pd.Series(True, index=kept.index)
        rates = {
            "win_rate": rate_estimate(int(part["is_won"].sum()), len(part)),
            "cycle_days": mean_estimate(cycle[mask & closed["is_won"]]),
            "acv": mean_estimate(wins["amount"]),
            "retention_12m": rate_estimate(int(retained.sum()), len(retained)),
        }
        row: dict[str, Any] = {"group": name}
        for metric, est in rates.items():
            row |= {
                metric: est["value"],
                f"{metric}_low": est["low"],
                f"{metric}_high": est["high"],
            }
            row[f"{metric}_n"] = est["n"]
        rows.append(row)
    if observable.empty:
        earliest = first_win.min() if len(first_win) else period.start
        notes.append(
            "12-month retention of the period's new customers is not observable yet: the first "
            f"can be judged on {(earliest + horizon):%Y-%m-%d}"
        )
    if len(closed) < 2 * MIN_RATE_N:
        notes.append(f"only {len(closed)} new-business deals closed in the period: no lift")
    green = closed["tier"] == str(Tier.GREEN)
    comparison = {
        "win_rate": compare_rates(
            int(closed.loc[green, "is_won"].sum()),
            int(green.sum()),
            int(closed.loc[~green, "is_won"].sum()),
            int((~green).sum()),
        )
    }
    return pd.DataFrame(rows), comparison


def _concentration(
    opps: pd.DataFrame, accounts: pd.DataFrame, period: Period, until: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, Any]]:
    nb = opps["deal_type"] == str(DealType.NEW_BUSINESS)
    won = opps[
        nb & opps["is_won"] & (opps["close_date"] >= period.start) & (opps["close_date"] < until)
    ]
    new_customers = accounts[accounts["account_id"].isin(won["account_id"])]
    green_base = accounts[accounts["tier"] == str(Tier.GREEN)]
    green_new = new_customers[new_customers["tier"] == str(Tier.GREEN)]
    counts = green_new.groupby("segment").size().rename("new_customers")
    base = green_base.groupby("segment").size().rename("accounts")
    frame = pd.concat([counts, base], axis=1).fillna(0).astype(int)
    frame = frame.sort_values(["new_customers", "accounts"], ascending=False)
    total_new = max(len(new_customers), 1)
    frame["share_of_new_customers"] = (frame["new_customers"] / total_new).round(4)
    frame["share_of_accounts"] = (frame["accounts"] / max(len(accounts), 1)).round(4)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["index"] = (frame["share_of_new_customers"] / frame["share_of_accounts"]).round(3)
    frame = frame.reset_index(names="segment")
    top = frame.head(TOP_SEGMENTS)
    green_share = rate_estimate(len(green_new), len(new_customers))
    shares = frame["new_customers"] / max(len(green_new), 1)
    summary = {
        "new_customers": len(new_customers),
        "green_new_customers": len(green_new),
        "green_share_of_new_customers": green_share,
        "green_share_of_accounts": round(len(green_base) / max(len(accounts), 1), 4),
        "top_segments": top["segment"].tolist(),
        "top_segments_share_of_new_customers": round(
            float(top["new_customers"].sum()) / total_new, 4
        )
        if len(new_customers) >= MIN_RATE_N
        else None,
        "top_segments_share_of_accounts": round(
            float(top["accounts"].sum()) / max(len(accounts), 1), 4
        ),
        "herfindahl_green": round(float((shares**2).sum()), 4) if len(green_new) else None,
    }
    return frame, summary
