"""Synthetic CRM history of a B2B SaaS company, with a planted ground truth.

Accounts (industry, size, revenue, country and region, tech stack, owner and team) go
through new-business attempts (won, lost or still open), yearly renewals (won while
retained, lost at churn) and expansions. Every outcome is driven by one latent *fit* per
account, so a segment that truly fits wins more, retains longer, expands more, rates the
product higher and adopts it more, all at once.

Planted truth (``signal=True``; realised figures are measured and stored in
``truth["effects"]``):

- Green segments (latent fit +1.2 on the logit scale, about 2x the baseline win rate and a
  third of its churn): ``{industry: Healthcare, employees_band: 200-999}``,
  ``{industry: Software, employees_band: 50-199}``,
  ``{industry: Financial Services, region: EMEA}``.
- Red segments (latent fit -1.2: about half the win rate, twice the churn):
  ``{industry: Government}`` and ``{industry: Education, employees_band: 1-49}``.
- Noise: every account has its own latent deviation; every industry x size cell carries a
  small random effect (sd 0.1 on the logit scale, about +/-10% on win rate) that means
  nothing; a Snowflake or AWS stack and a middling revenue per employee raise fit a little,
  which only a look-alike model can use.

``signal=False`` keeps every distribution but removes all effects: outcomes depend on the
accounts' own noise alone.

Pathologies of real exports, off by default (recorded in ``truth["pathologies"]``):

- ``history_end``: the history stops at this date while "today" stays ``as_of`` (an export
  that ended years ago).
- ``won_only_attributes``: that many attributes (``attr_lead_type``, ...) filled in only for
  accounts that became customers, as onboarding fields are; they carry no effect.
- ``tiny_segments``: an ``attr_micro_segment`` with that many values of Zipf-like sizes, most
  of them a handful of accounts; it carries no effect.

A planted drift, off by default (``drift=N``, recorded in ``truth["drift"]``): in the last 90
days sales closed ``N`` new-business deals with prospects of a Red segment
(``{industry: Government}``), the erosion the adherence report must reveal. Those deals and
accounts are appended after everything else (accounts become customers on the close date).

The pathologies and the drift draw from their own generators, so the rest of the data is
unchanged. Same
arguments, same data: everything is drawn from one seeded generator, vectorised (a million
accounts take well under a minute).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from icp_sync.model import CrmObject, DealType, Motion, Stage, conform

__all__ = ["BANDS", "GREEN", "RED", "SyntheticCrm", "generate", "write_dataset"]

DEFAULT_AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
BANDS = ("1-49", "50-199", "200-999", "1000-4999", "5000+")
_BAND_LOW = np.array([1, 50, 200, 1000, 5000])
_BAND_HIGH = np.array([50, 200, 1000, 5000, 60000])
_BAND_P = np.array([0.28, 0.28, 0.22, 0.13, 0.09])

_INDUSTRIES = {
    # name: (share, revenue per employee in USD)
    "Software": (0.15, 260_000),
    "Healthcare": (0.12, 180_000),
    "Financial Services": (0.11, 380_000),
    "Manufacturing": (0.10, 240_000),
    "Retail": (0.09, 160_000),
    "Education": (0.07, 90_000),
    "Media": (0.06, 210_000),
    "Logistics": (0.06, 200_000),
    "Energy": (0.05, 420_000),
    "Government": (0.07, 110_000),
    "Nonprofit": (0.05, 70_000),
    "Telecommunications": (0.07, 330_000),
}
_REGIONS = {
    "North America": (0.45, {"United States": 0.85, "Canada": 0.15}),
    "EMEA": (
        0.30,
        {
            "United Kingdom": 0.3,
            "Germany": 0.25,
            "France": 0.18,
            "Netherlands": 0.12,
            "Sweden": 0.08,
            "Spain": 0.07,
        },
    ),
    "APAC": (0.17, {"Australia": 0.35, "Japan": 0.25, "Singapore": 0.2, "India": 0.2}),
    "LATAM": (0.08, {"Brazil": 0.5, "Mexico": 0.35, "Argentina": 0.15}),
}
_TECH = {
    "Salesforce": 0.45,
    "HubSpot": 0.25,
    "Snowflake": 0.2,
    "AWS": 0.5,
    "Azure": 0.25,
    "GCP": 0.15,
    "SAP": 0.1,
    "Oracle": 0.1,
    "Slack": 0.4,
    "Zendesk": 0.2,
}
_TEAMS = ("SMB", "Mid-Market", "Enterprise")
_MOTIONS = (Motion.INBOUND, Motion.OUTBOUND, Motion.PARTNER, Motion.OTHER)
_MOTION_P = (0.45, 0.35, 0.12, 0.08)

GREEN: tuple[dict[str, str], ...] = (
    {"industry": "Healthcare", "employees_band": "200-999"},
    {"industry": "Software", "employees_band": "50-199"},
    {"industry": "Financial Services", "region": "EMEA"},
)
RED: tuple[dict[str, str], ...] = (
    {"industry": "Government"},
    {"industry": "Education", "employees_band": "1-49"},
)
_GREEN_EFFECT = 1.2
_RED_EFFECT = -1.2

_NAME_WORDS = (
    "Acme Apex Arbor Aster Atlas Aurora Beacon Birch Blue Bright Cedar Cobalt Comet Coral "
    "Crest Crown Delta Echo Ember Everest Falcon Fern Flint Forge Frontier Galaxy Garnet "
    "Glacier Granite Harbor Hawk Helix Horizon Indigo Iris Iron Jade Juniper Keystone Kinetic "
    "Lark Laurel Legacy Lumen Lunar Magnet Maple Marble Meridian Mesa Metro Mint Monarch "
    "Nimbus Noble North Nova Oak Onyx Orbit Orchid Pacific Peak Pearl Pine Pioneer Pixel "
    "Polar Prairie Prism Quartz Quest Radiant Raven Redwood Ridge River Rock Sable Sage "
    "Sapphire Sierra Silver Solar Spark Spruce Star Sterling Stone Summit Sun Swift Terra "
    "Thunder Timber Titan Topaz Trail True Tundra Union Unity Valley Vanguard Vector Velvet "
    "Vertex Violet Vista Wave West Willow Wind Zenith Zephyr Alder Amber Anchor Arrow Aspen "
    "Bay Bolt Bridge Brook Canyon Cardinal Castle Cinder Citadel Cliff Cloud Copper Cove "
    "Crane Crystal Dawn Dune Eagle Elm Emerald Field Fjord Fox Garden Gate Glen Golden "
    "Grove Haven Heath Highland Hill Holly Hudson Isle Ivy Lake Lantern Ledger Lighthouse "
    "Lotus Marsh Meadow Mill Mountain Oasis Ocean Olive Osprey Palm Path Plains Port Rain "
    "Reef Rose Saga Shore Sky Slate Sound Spring Stream Tide Tower Vale Wren Yarrow Zinc"
)
_SECTOR_WORDS = (
    "Health Care Labs Systems Networks Data Analytics Logistics Energy Capital Partners "
    "Holdings Works Dynamics Solutions Technologies Software Cloud Media Retail Foods Motors "
    "Robotics Bio Pharma Medical Learning Finance Insurance Bank Security Telecom Devices "
    "Materials Chemicals Foods Apparel Studios Games Travel Freight Marine Aero Power Water "
    "Farms Textiles Print Design Consulting Advisors Ventures Industries Manufacturing Tools "
    "Electric Digital Mobile Health Clinics Care Schools Academy Institute Foundation Trust "
    "Public Services Civic Commerce Markets Supply Goods Brands Outfitters Kitchens Homes "
    "Realty Estates Construction Builders Engineering Metals Mining Oil Gas Solar Wind Grid "
    "Telecom Wireless Fiber Signal Audio Vision Optics Sensors Chips Silicon Quantum Nano"
)
_WORDS_A = tuple(dict.fromkeys(_NAME_WORDS.split()))
_WORDS_B = tuple(dict.fromkeys(_SECTOR_WORDS.split()))
_WORDS_C = ("Inc", "LLC", "Group", "Co", "Corp", "Ltd", "GmbH", "SA", "Partners", "Holdings")
_TLDS = np.array([".com", ".io", ".co", ".net", ".ai"])


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticCrm:
    """A generated CRM: canonical frames plus the ground truth they were drawn from."""

    accounts: pd.DataFrame
    opportunities: pd.DataFrame
    owners: pd.DataFrame
    truth: dict[str, Any]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=float)


def _choice(rng: np.random.Generator, labels: list[str], p: list[float], n: int) -> np.ndarray:
    weights = np.asarray(p, dtype=float)
    return np.asarray(labels, dtype=object)[rng.choice(len(labels), n, p=weights / weights.sum())]


def _names(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    a, b, c = len(_WORDS_A), len(_WORDS_B), len(_WORDS_C)
    first = np.asarray(_WORDS_A, dtype=object)[order % a]
    second = np.asarray(_WORDS_B, dtype=object)[(order // a) % b]
    third = np.asarray(_WORDS_C, dtype=object)[(order // (a * b)) % c]
    round_ = order // (a * b * c)
    suffix = np.where(round_ > 0, " " + (round_ + 1).astype(str), "")
    names = pd.Series(first + " " + second + " " + third + suffix)
    domain_suffix = np.where(round_ > 0, (round_ + 1).astype(str), "")
    tld = _TLDS[(order // a) % len(_TLDS)]
    domains = pd.Series(first + second + third + domain_suffix + tld).str.lower()
    return names.to_numpy(dtype=object), domains.to_numpy(dtype=object)


def _days(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    # whole seconds, as CRMs keep them
    return (rng.uniform(low, high, n) * 86_400).astype("timedelta64[s]").astype("timedelta64[ns]")


@dataclass(slots=True)
class _World:
    """The per-account arrays every step reads (naive UTC datetimes inside)."""

    rng: np.random.Generator
    today: np.datetime64
    industry: np.ndarray
    band_index: np.ndarray
    employees: np.ndarray
    region: np.ndarray
    country: np.ndarray
    revenue: np.ndarray
    tech: np.ndarray
    created: np.ndarray
    owner: np.ndarray
    team_index: np.ndarray
    effect: np.ndarray
    latent: np.ndarray

    @property
    def n(self) -> int:
        return len(self.industry)

    @property
    def band(self) -> np.ndarray:
        return np.asarray(np.asarray(BANDS, dtype=object)[self.band_index])

    @property
    def fit(self) -> np.ndarray:
        return self.effect + 0.6 * self.latent


def generate(
    n_accounts: int,
    *,
    seed: int = 0,
    signal: bool = True,
    as_of: datetime | None = None,
    history_end: datetime | None = None,
    won_only_attributes: int = 0,
    tiny_segments: int = 0,
    drift: int = 0,
    opportunities_wanted: int = 0,
) -> SyntheticCrm:
    """Generate a CRM of ``n_accounts`` accounts (see the module docstring).

    Args:
        n_accounts: How many accounts (1,000 to 1,000,000 is the tested range).
        seed: Seed of every random draw.
        signal: Plant the true ICP; ``False`` gives data with no real segment effect.
        as_of: "Today" in the generated world (default 2026-11-01 UTC).
        history_end: Last day of recorded history (default: ``as_of``).
        won_only_attributes: How many attributes are recorded only for customers (0-3).
        tiny_segments: Values of an effect-free attribute with a long tail of tiny segments.
        drift: Recent won deals planted in a Red segment (sales drifting from the ICP).
        opportunities_wanted: Pad the history with earlier lost attempts up to this many
            opportunities (0: as drawn, about 3 per account); the truth is measured before.
    """
    rng = np.random.default_rng(seed)
    today = pd.Timestamp(as_of or DEFAULT_AS_OF).tz_convert("UTC")
    now = pd.Timestamp(history_end).tz_convert("UTC") if history_end else today
    world = _firmographics(rng, int(n_accounts), now)
    if signal:
        _plant(world)
    owners = _owners()
    _assign_owners(world, owners)
    deals, since, churned, arr = _history(world)
    accounts = _account_frame(world, since, churned, arr, deals)
    opportunities = _opportunity_frame(
        deals, accounts["account_id"].to_numpy(), accounts["name"].to_numpy(dtype=object), world
    )
    extra = np.random.default_rng([seed, 1])
    leaked = _won_only(extra, accounts, won_only_attributes)
    if tiny_segments > 0:
        # Zipf-like sizes: a few sizeable values and a long tail of tiny ones
        weights = 1.0 / np.arange(1, tiny_segments + 1)
        codes = extra.choice(tiny_segments, world.n, p=weights / weights.sum())
        accounts["attr_micro_segment"] = np.char.add("M", np.char.zfill(codes.astype(str), 4))
    accounts = conform(accounts, CrmObject.ACCOUNT)
    prospect = accounts["customer_since"].isna().to_numpy() & ~accounts["is_deleted"].to_numpy()
    true_fit = _sigmoid(1.2 * world.effect + 0.6 * world.latent)
    ids = accounts["account_id"].to_numpy()
    truth: dict[str, Any] = {
        "seed": seed,
        "n_accounts": world.n,
        "signal": signal,
        "as_of": today.isoformat(),
        "pathologies": {
            "history_end": now.isoformat() if history_end else None,
            "won_only_attributes": leaked,
            "tiny_segments": int(tiny_segments),
        },
        "employee_bands": list(BANDS),
        "green_segments": [dict(r) for r in GREEN] if signal else [],
        "red_segments": [dict(r) for r in RED] if signal else [],
        "prospect_fit": dict(
            zip(ids[prospect].tolist(), np.round(true_fit[prospect], 4).tolist(), strict=True)
        ),
        "effects": _effects(accounts, opportunities, world.band, now),
    }
    opportunities = conform(opportunities, CrmObject.OPPORTUNITY)
    if opportunities_wanted > len(opportunities):
        opportunities = _pad(np.random.default_rng([seed, 3]), opportunities, opportunities_wanted)
    if drift > 0:
        accounts, opportunities, truth["drift"] = _drift(
            np.random.default_rng([seed, 2]), accounts, opportunities, int(drift), now
        )
    return SyntheticCrm(accounts=accounts, opportunities=opportunities, owners=owners, truth=truth)


def _pad(rng: np.random.Generator, opportunities: pd.DataFrame, total: int) -> pd.DataFrame:
    """Earlier lost attempts at the same accounts, 1 to 3 years before a drawn deal."""
    k = total - len(opportunities)
    rows = opportunities.iloc[rng.integers(0, len(opportunities), k)].reset_index(drop=True)
    back = pd.to_timedelta(rng.integers(365, 3 * 365, k), unit="D")
    close = rows["close_date"] - back
    first = len(opportunities) + 1
    ids = np.char.add("O", np.char.zfill(np.arange(first, first + k).astype(str), 8))
    lost = rows.assign(
        opportunity_id=ids,
        stage=str(Stage.LOST),
        is_closed=True,
        is_won=False,
        created_at=rows["created_at"] - back,
        close_date=close,
        modified_at=close,
        is_deleted=False,
    )
    return pd.concat([opportunities, lost], ignore_index=True)


DRIFT_SEGMENT = {"industry": "Government"}
"""The Red segment a planted drift closes deals in."""
DRIFT_DAYS = 90


def _drift(
    rng: np.random.Generator,
    accounts: pd.DataFrame,
    opportunities: pd.DataFrame,
    count: int,
    now: pd.Timestamp,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Won new-business deals with ``count`` prospects of :data:`DRIFT_SEGMENT`, lately."""
    accounts = accounts.copy()
    candidates = np.flatnonzero(
        _match(accounts, DRIFT_SEGMENT)
        & accounts["customer_since"].isna().to_numpy()
        & ~accounts["is_deleted"].to_numpy()
    )
    chosen = rng.choice(candidates, min(count, len(candidates)), replace=False)
    k = len(chosen)
    close = now - pd.to_timedelta(rng.uniform(3, DRIFT_DAYS - 3, k), unit="D").round("s")
    created = close - pd.to_timedelta(rng.uniform(30, 80, k), unit="D").round("s")
    amount = np.round(8_000 * (accounts["employees"].to_numpy()[chosen] / 50) ** 0.45, -2)
    first = len(opportunities) + 1
    rows = accounts.iloc[chosen]
    deals = pd.DataFrame(
        {
            "opportunity_id": [f"O{i:08d}" for i in range(first, first + k)],
            "account_id": rows["account_id"].to_numpy(),
            "name": (rows["name"] + " - New Business " + close.year.astype(str)).to_numpy(),
            "stage": str(Stage.WON),
            "amount": amount,
            "created_at": created,
            "close_date": close,
            "is_closed": True,
            "is_won": True,
            "deal_type": str(DealType.NEW_BUSINESS),
            "motion": str(Motion.OUTBOUND),
            "owner_id": rows["owner_id"].to_numpy(),
            "modified_at": close,
            "is_deleted": False,
        }
    )
    index = accounts.index[chosen]
    accounts.loc[index, "customer_since"] = close
    accounts.loc[index, "arr"] = amount
    accounts.loc[index, "modified_at"] = np.maximum(accounts.loc[index, "modified_at"], close)
    opportunities = pd.concat([opportunities, conform(deals, CrmObject.OPPORTUNITY)])
    truth = {"segment": dict(DRIFT_SEGMENT), "won_deals": k, "window_days": DRIFT_DAYS}
    return accounts, opportunities.reset_index(drop=True), truth


WON_ONLY = {
    "attr_lead_type": ("Inbound", "Outbound", "Partner", "Event"),
    "attr_business_type": ("B2B", "B2B2C", "Marketplace"),
    "attr_onboarding_tier": ("Self-serve", "Assisted", "White-glove"),
}
"""Attributes an onboarding team fills in once a deal is won (no effect on outcomes)."""


def _won_only(rng: np.random.Generator, accounts: pd.DataFrame, count: int) -> list[str]:
    """Add ``count`` attributes recorded only for customers; their names."""
    names = list(WON_ONLY)[: max(0, count)]
    customer = accounts["customer_since"].notna().to_numpy()
    for name in names:
        values = np.asarray(WON_ONLY[name], dtype=object)
        drawn = values[rng.integers(0, len(values), len(accounts))]
        accounts[name] = pd.Series(drawn, index=accounts.index).where(customer)
    return names


def _firmographics(rng: np.random.Generator, n: int, now: pd.Timestamp) -> _World:
    today = now.tz_convert(None).to_datetime64().astype("datetime64[ns]")
    industry = _choice(rng, list(_INDUSTRIES), [v[0] for v in _INDUSTRIES.values()], n)
    band_index = rng.choice(len(BANDS), n, p=_BAND_P)
    low, high = _BAND_LOW[band_index], _BAND_HIGH[band_index]
    employees = np.floor(np.exp(rng.uniform(np.log(low), np.log(high)))).astype(float)
    region = _choice(rng, list(_REGIONS), [v[0] for v in _REGIONS.values()], n)
    country = np.empty(n, dtype=object)
    for name, (_, countries) in _REGIONS.items():
        mask = region == name
        country[mask] = _choice(rng, list(countries), list(countries.values()), int(mask.sum()))
    per_employee = np.array([_INDUSTRIES[i][1] for i in industry], dtype=float)
    revenue = np.round(employees * per_employee * rng.lognormal(0.0, 0.5, n), -3)
    tech = rng.random((n, len(_TECH))) < np.array(list(_TECH.values()))
    return _World(
        rng=rng,
        today=today,
        industry=industry,
        band_index=band_index,
        employees=employees,
        region=region,
        country=country,
        revenue=revenue,
        tech=tech,
        created=today - _days(rng, 30, 6 * 365, n),
        owner=np.empty(n, dtype=object),
        team_index=np.select([employees >= 1000, employees >= 200], [2, 1], default=0),
        effect=np.zeros(n),
        latent=rng.normal(0.0, 1.0, n),
    )


def _plant(world: _World) -> None:
    frame = pd.DataFrame(
        {"industry": world.industry, "employees_band": world.band, "region": world.region}
    )
    for rule in GREEN:
        world.effect[_match(frame, rule)] += _GREEN_EFFECT
    for rule in RED:
        world.effect[_match(frame, rule)] += _RED_EFFECT
    industries = list(_INDUSTRIES)
    cells = world.rng.normal(0.0, 0.1, (len(industries), len(BANDS)))
    position = pd.Index(industries).get_indexer(pd.Index(world.industry))
    world.effect += cells[position, world.band_index]
    ratio = world.revenue / world.employees
    middling = (ratio > np.quantile(ratio, 0.3)) & (ratio < np.quantile(ratio, 0.7))
    snowflake, aws = world.tech[:, 2], world.tech[:, 3]
    world.effect += 0.35 * snowflake + 0.2 * aws + 0.2 * middling


def _assign_owners(world: _World, owners: pd.DataFrame) -> None:
    reps = owners.groupby("team")["owner_id"].apply(list).to_dict()
    for index, team in enumerate(_TEAMS):
        mask = world.team_index == index
        pool = np.asarray(reps[team], dtype=object)
        world.owner[mask] = pool[world.rng.integers(0, len(pool), int(mask.sum()))]


def _account_frame(
    world: _World,
    since: np.ndarray,
    churned: np.ndarray,
    arr: np.ndarray,
    deals: pd.DataFrame,
) -> pd.DataFrame:
    rng, n, fit = world.rng, world.n, world.fit
    names, domains = _names(rng, n)
    is_customer = ~pd.isna(since)
    nps = np.clip(20 + 25 * fit + rng.normal(0, 25, n), -100, 100).round()
    adoption = np.round(_sigmoid(0.3 + 0.8 * fit + rng.normal(0, 0.5, n)), 3)
    last_touch = deals.groupby("account_index")["modified_at"].max().reindex(range(n)).to_numpy()
    modified = np.where(pd.isna(last_touch), world.created, last_touch).astype("datetime64[ns]")
    modified = np.minimum(modified + _days(rng, 0, 20, n), world.today)
    tokens = np.array(list(_TECH), dtype=object)
    plans = np.asarray(("Starter", "Growth", "Enterprise"), dtype=object)
    return pd.DataFrame(
        {
            "account_id": np.char.add("A", np.char.zfill(np.arange(1, n + 1).astype(str), 7)),
            "name": names,
            "domain": domains,
            "industry": world.industry,
            "employees": world.employees,
            "annual_revenue": world.revenue,
            "country": world.country,
            "region": world.region,
            "tech_stack": [";".join(tokens[row]) for row in world.tech],
            "owner_id": world.owner,
            "created_at": _utc(world.created),
            "modified_at": _utc(modified),
            "is_deleted": rng.random(n) < 0.002,
            "customer_since": _utc(since),
            "churned_at": _utc(churned),
            "arr": np.where(is_customer, arr, np.nan),
            "nps": np.where(is_customer & (rng.random(n) > 0.35), nps, np.nan),
            "adoption": np.where(is_customer & (rng.random(n) > 0.2), adoption, np.nan),
            "attr_plan": np.where(is_customer, plans[world.team_index], None),
        }
    )


def _utc(values: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(values).tz_localize("UTC")


def _match(frame: pd.DataFrame, rule: dict[str, str]) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in rule.items():
        mask &= (frame[column] == value).to_numpy()
    return mask


def _owners() -> pd.DataFrame:
    rows = []
    for index in range(30):
        team = _TEAMS[index % 3]
        rows.append({"owner_id": f"U{index + 1:03d}", "name": f"Rep {index + 1:02d}", "team": team})
    return pd.DataFrame(rows)


def _history(world: _World) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Deals per account: new-business attempts, then renewals and expansions."""
    rng, n, fit = world.rng, world.n, world.fit
    acv = 8_000 * (world.employees / 50) ** 0.45 * rng.lognormal(0, 0.3, n)
    acv = np.maximum(np.round(acv * (1 + 0.1 * world.effect), -2), 1_000.0)
    parts, since = _new_business(world, acv)
    churned = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    arr = acv.copy()
    p_churn = _sigmoid(-1.45 - 0.9 * fit)
    p_expand = _sigmoid(-0.1 + 0.8 * fit)
    for year in range(1, 8):
        alive = ~pd.isna(since) & pd.isna(churned)
        due = since + np.timedelta64(365 * year, "D")
        idx = np.flatnonzero(alive & (due <= world.today))
        if not len(idx):
            break
        mid = since[idx] + np.timedelta64(365 * year - 180, "D")
        pitched = rng.random(len(idx)) < 0.7
        expands = pitched & (rng.random(len(idx)) < p_expand[idx])
        grow = np.round(arr[idx] * rng.uniform(0.1, 0.3, len(idx)), -2)
        if pitched.any():
            parts.append(
                _deals(
                    world,
                    idx=idx[pitched],
                    deal_type=DealType.EXPANSION,
                    stage=np.where(expands[pitched], Stage.WON, Stage.LOST),
                    created=mid[pitched] - np.timedelta64(45, "D"),
                    close=mid[pitched],
                    amount=grow[pitched],
                )
            )
        arr[idx] = np.where(expands, arr[idx] + grow, arr[idx])
        churns = rng.random(len(idx)) < p_churn[idx]
        parts.append(
            _deals(
                world,
                idx=idx,
                deal_type=DealType.RENEWAL,
                stage=np.where(churns, Stage.LOST, Stage.WON),
                created=due[idx] - np.timedelta64(60, "D"),
                close=due[idx],
                amount=arr[idx],
            )
        )
        churned[idx[churns]] = due[idx[churns]]
    deals = pd.concat(parts, ignore_index=True).sort_values(
        ["account_index", "created_at", "deal_type"], kind="stable"
    )
    return deals.reset_index(drop=True), since, churned, np.where(pd.isna(churned), arr, 0.0)


def _new_business(world: _World, acv: np.ndarray) -> tuple[list[pd.DataFrame], np.ndarray]:
    rng, n = world.rng, world.n
    parts: list[pd.DataFrame] = []
    p_win = _sigmoid(-1.55 + 0.8 * world.fit)
    attempts = np.where(rng.random(n) < 0.1, 0, np.minimum(1 + rng.poisson(3.0, n), 8))
    start = world.created + _days(rng, 0, 300, n)
    since = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    trying = attempts > 0
    for attempt in range(8):
        now_trying = trying & (attempts > attempt) & pd.isna(since) & (start <= world.today)
        idx = np.flatnonzero(now_trying)
        if not len(idx):
            break
        cycle = np.clip(rng.lognormal(np.log(90) - 0.25 * world.effect[idx], 0.4), 15, 300)
        close = start[idx] + (cycle * 86_400).astype("timedelta64[s]").astype("timedelta64[ns]")
        won = rng.random(len(idx)) < p_win[idx]
        still_open = close > world.today
        parts.append(
            _deals(
                world,
                idx=idx,
                deal_type=DealType.NEW_BUSINESS,
                stage=np.where(still_open, Stage.OPEN, np.where(won, Stage.WON, Stage.LOST)),
                created=start[idx],
                close=close,
                amount=acv[idx],
            )
        )
        since[idx[won & ~still_open]] = close[won & ~still_open]
        start[idx] = close + _days(rng, 30, 300, len(idx))
        trying[idx[still_open]] = False
    idx = np.flatnonzero(pd.isna(since) & (rng.random(n) < 0.12))
    if len(idx):
        opened = world.today - _days(rng, 5, 180, len(idx))
        parts.append(
            _deals(
                world,
                idx=idx,
                deal_type=DealType.NEW_BUSINESS,
                stage=np.full(len(idx), Stage.OPEN, dtype=object),
                created=opened,
                close=opened + _days(rng, 60, 200, len(idx)),
                amount=acv[idx],
            )
        )
    return parts, since


def _deals(
    world: _World,
    *,
    idx: np.ndarray,
    deal_type: str,
    stage: np.ndarray,
    created: np.ndarray,
    close: np.ndarray,
    amount: np.ndarray,
) -> pd.DataFrame:
    stage = np.asarray(stage, dtype=object)
    closed = stage != Stage.OPEN
    touched = np.where(closed, close, created) + _days(world.rng, 0, 5, len(idx))
    pick = world.rng.choice(len(_MOTIONS), len(idx), p=_MOTION_P)
    return pd.DataFrame(
        {
            "account_index": idx,
            "deal_type": str(deal_type),
            "stage": stage.astype(str),
            "created_at": created,
            "close_date": close,
            "amount": amount,
            "motion": np.asarray(_MOTIONS, dtype=object)[pick].astype(str),
            "owner_id": world.owner[idx],
            "modified_at": touched,
        }
    )


def _opportunity_frame(
    deals: pd.DataFrame, account_ids: np.ndarray, names: np.ndarray, world: _World
) -> pd.DataFrame:
    n = len(deals)
    rng = world.rng
    year = pd.DatetimeIndex(deals["close_date"]).year.astype(str).to_numpy()
    label = deals["deal_type"].map(
        {"new_business": "New Business", "expansion": "Expansion", "renewal": "Renewal"}
    )
    stage = deals["stage"]
    as_utc = {
        c: pd.to_datetime(deals[c]).dt.tz_localize("UTC")
        for c in ("created_at", "close_date", "modified_at")
    }
    return pd.DataFrame(
        {
            "opportunity_id": np.char.add("O", np.char.zfill(np.arange(1, n + 1).astype(str), 8)),
            "account_id": account_ids[deals["account_index"].to_numpy()],
            "name": names[deals["account_index"].to_numpy()] + " - " + label + " " + year,
            "stage": stage,
            "amount": deals["amount"].to_numpy(),
            "created_at": as_utc["created_at"],
            "close_date": as_utc["close_date"],
            "is_closed": (stage != Stage.OPEN).to_numpy(),
            "is_won": (stage == Stage.WON).to_numpy(),
            "deal_type": deals["deal_type"],
            "motion": deals["motion"],
            "owner_id": deals["owner_id"],
            "modified_at": as_utc["modified_at"],
            "is_deleted": rng.random(n) < 0.001,
        }
    )


def _effects(
    accounts: pd.DataFrame, opportunities: pd.DataFrame, band: np.ndarray, now: pd.Timestamp
) -> dict[str, Any]:
    """Realised win rate, 12-month logo retention and NRR of each planted segment."""
    frame = accounts.assign(employees_band=band)
    year_ago = now - pd.DateOffset(years=1)
    nb = opportunities[
        (opportunities["deal_type"] == DealType.NEW_BUSINESS) & opportunities["is_closed"]
    ]
    won = nb[nb["is_won"]].groupby("account_id").size()
    closed = nb.groupby("account_id").size()
    alive = (frame["customer_since"] <= year_ago) & ~(frame["churned_at"] <= year_ago)
    kept = alive & ~(frame["churned_at"] <= now)
    recurring = opportunities[opportunities["is_won"]]

    def arr_at(moment: pd.Timestamp) -> pd.Series:
        window = recurring[
            (recurring["close_date"] > moment - pd.DateOffset(years=1))
            & (recurring["close_date"] <= moment)
        ]
        return window.groupby("account_id")["amount"].sum()

    arr_then, arr_now = arr_at(year_ago), arr_at(now)

    def measure(mask: np.ndarray) -> dict[str, float | int | None]:
        ids = frame.loc[mask, "account_id"]
        cohort = frame.loc[mask & alive.to_numpy(), "account_id"]
        start = arr_then.reindex(cohort).fillna(0)
        end = arr_now.reindex(cohort).fillna(0).where(kept[mask & alive.to_numpy()].to_numpy(), 0)
        closed_n = int(closed.reindex(ids).fillna(0).sum())
        return {
            "accounts": int(mask.sum()),
            "customers": int(frame.loc[mask, "customer_since"].notna().sum()),
            "win_rate": round(float(won.reindex(ids).fillna(0).sum() / closed_n), 4)
            if closed_n
            else None,
            "retention_12m": round(float(kept[mask & alive.to_numpy()].mean()), 4)
            if len(cohort)
            else None,
            "nrr": round(float(end.sum() / start.sum()), 4) if start.sum() > 0 else None,
        }

    everyone = np.ones(len(frame), dtype=bool)
    result: dict[str, Any] = {"baseline": measure(everyone)}
    for kind, rules in (("green", GREEN), ("red", RED)):
        for rule in rules:
            key = f"{kind}: " + ", ".join(f"{k}={v}" for k, v in rule.items())
            result[key] = measure(_match(frame, rule))
    return result


def write_dataset(crm: SyntheticCrm, out_dir: Path) -> dict[str, Path]:
    """Write the CSVs, ``truth.json`` and a ready ``icp-sync.toml`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "accounts": out_dir / "accounts.csv",
        "opportunities": out_dir / "opportunities.csv",
        "owners": out_dir / "owners.csv",
        "truth": out_dir / "truth.json",
        "config": out_dir / "icp-sync.toml",
    }
    _csv(crm.accounts, paths["accounts"])
    _csv(crm.opportunities, paths["opportunities"])
    crm.owners.to_csv(paths["owners"], index=False)
    paths["truth"].write_text(json.dumps(crm.truth, indent=1), encoding="utf-8")
    paths["config"].write_text(_config(crm), encoding="utf-8")
    return paths


def _csv(frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif out[column].dtype == bool:
            out[column] = np.where(out[column], "true", "false")
    out.to_csv(path, index=False)


def _config(crm: SyntheticCrm) -> str:
    def mapping(frame: pd.DataFrame) -> str:
        canonical = [c for c in frame.columns if not c.startswith("attr_")]
        return "\n".join(f'{c} = "{c}"' for c in canonical)

    attributes = "\n".join(
        f'{c.removeprefix("attr_")} = "{c}"' for c in crm.accounts.columns if c.startswith("attr_")
    )
    truth = crm.truth
    kind = "planted ICP" if truth["signal"] else "no planted signal"
    return f"""# Generated by `icp-sync sandbox generate`: {truth["n_accounts"]:,} accounts,
# seed {truth["seed"]}, {kind}.
# Ground truth: truth.json beside this file.

[crm]
connector = "files"

[store]
url = "sqlite:///icp-sync.db"

[files.accounts]
path = "accounts.csv"

[files.accounts.columns]
{mapping(crm.accounts)}

[files.accounts.attributes]
{attributes}

[files.opportunities]
path = "opportunities.csv"

[files.opportunities.columns]
{mapping(crm.opportunities)}

[segments]
dimensions = {json.dumps(["industry", "employees_band", "region", *_pathology_dimensions(truth)])}

[report]
owners = "owners.csv"
"""


def _pathology_dimensions(truth: dict[str, Any]) -> list[str]:
    pathologies = truth.get("pathologies", {})
    dims = list(pathologies.get("won_only_attributes", []))
    if pathologies.get("tiny_segments"):
        dims.append("attr_micro_segment")
    return dims
