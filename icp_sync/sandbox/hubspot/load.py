"""Loading canonical frames into a sandbox HubSpot portal: companies, deals, owners.

Property strings are computed per column, vectorised.

Companies keep their canonical history and lifecycle fields (customer_since, churn_date,
ARR, NPS, adoption); deals land in the default pipeline (open deals spread over its open
stages), with HubSpot's deal types and a deal_source for the motion.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from icp_sync.sandbox.hubspot.portal import HubSpotPortal, Record
from icp_sync.sandbox.hubspot.properties import OPEN_STAGES, iso_ms

__all__ = ["company_values", "deal_values", "link", "load_canonical"]


def _ms(series: pd.Series) -> np.ndarray:
    values = pd.to_datetime(series, utc=True)
    return np.asarray((values.astype("int64") // 1_000_000).where(values.notna(), 0).to_numpy())


def _text(series: pd.Series, kind: str = "string") -> np.ndarray:
    values = series.to_numpy(dtype=object)
    out: list[str | None] = []
    for value in values:
        if (
            value is None
            or (isinstance(value, float) and np.isnan(value))
            or value is pd.NA
            or value is pd.NaT
        ):
            out.append(None)
        elif kind == "number":
            number = float(value)
            out.append(str(int(number)) if number.is_integer() else repr(number))
        elif kind == "date":
            out.append(pd.Timestamp(value).strftime("%Y-%m-%d"))
        elif kind == "datetime":
            out.append(iso_ms(int(pd.Timestamp(value).timestamp() * 1000)))
        else:
            out.append(str(value) if str(value) != "" else None)
    return np.asarray(out, dtype=object)


def _owner(series: pd.Series, ids: Mapping[str, str]) -> np.ndarray:
    return np.asarray(
        [
            ids.get(str(v)) if v is not None and v is not pd.NA else None
            for v in series.to_numpy(dtype=object)
        ],
        dtype=object,
    )


def company_values(frame: pd.DataFrame, ids: Mapping[str, str]) -> dict[str, Any]:
    customer = frame["customer_since"].notna() & frame["churned_at"].isna()
    return {
        "name": _text(frame["name"]),
        "domain": _text(frame["domain"]),
        "industry": _text(frame["industry"]),
        "numberofemployees": _text(frame["employees"], "number"),
        "annualrevenue": _text(frame["annual_revenue"], "number"),
        "country": _text(frame["country"]),
        "tech_stack": _text(frame["tech_stack"]),
        "hubspot_owner_id": _owner(frame["owner_id"], ids),
        "createdate": _text(frame["created_at"], "datetime"),
        "hs_lastmodifieddate": _text(frame["modified_at"].fillna(frame["created_at"]), "datetime"),
        "lifecyclestage": np.where(customer, "customer", "lead").astype(object),
        "customer_since": _text(frame["customer_since"], "date"),
        "churn_date": _text(frame["churned_at"], "date"),
        "arr": _text(frame["arr"], "number"),
        "nps": _text(frame["nps"], "number"),
        "adoption": _text(frame["adoption"], "number"),
        "_created": _ms(frame["created_at"]),
        "_updated": _ms(frame["modified_at"].fillna(frame["created_at"])),
        "_deleted": frame["is_deleted"].to_numpy(dtype=bool),
    }


def deal_values(frame: pd.DataFrame, ids: Mapping[str, str]) -> dict[str, Any]:
    positions = (
        frame["opportunity_id"].astype(str).map(lambda v: sum(map(ord, v)) % len(OPEN_STAGES))
    )
    open_stage = np.asarray(OPEN_STAGES, dtype=object)[positions.to_numpy()]
    stage = np.where(
        frame["stage"] == "won",
        "closedwon",
        np.where(frame["stage"] == "lost", "closedlost", open_stage),
    )
    dealtype = frame["deal_type"].map(
        {"new_business": "newbusiness", "expansion": "existingbusiness", "renewal": "renewal"}
    )
    source = frame["motion"].map(
        {"inbound": "Inbound", "outbound": "Outbound", "partner": "Partner", "other": "Other"}
    )
    return {
        "dealname": _text(frame["name"]),
        "dealstage": stage.astype(object),
        "pipeline": np.full(len(frame), "default", dtype=object),
        "amount": _text(frame["amount"], "number"),
        "closedate": _text(frame["close_date"], "datetime"),
        "createdate": _text(frame["created_at"].fillna(frame["close_date"]), "datetime"),
        "hs_lastmodifieddate": _text(frame["modified_at"].fillna(frame["created_at"]), "datetime"),
        "dealtype": _text(dealtype),
        "deal_source": _text(source),
        "hubspot_owner_id": _owner(frame["owner_id"], ids),
        "hs_is_closed": np.where(
            np.isin(stage, ["closedwon", "closedlost"]), "true", "false"
        ).astype(object),
        "hs_is_closed_won": np.where(stage == "closedwon", "true", "false").astype(object),
        "_created": _ms(frame["created_at"].fillna(frame["close_date"])),
        "_updated": _ms(frame["modified_at"].fillna(frame["created_at"])),
        "_deleted": frame["is_deleted"].to_numpy(dtype=bool),
    }


def load_canonical(
    portal: HubSpotPortal,
    accounts: pd.DataFrame,
    opportunities: pd.DataFrame,
    owners: pd.DataFrame | None = None,
) -> dict[str, str]:
    """Load canonical frames into a portal as companies, deals (associated) and owners.

    Returns:
        Canonical id (account, opportunity, owner) -> HubSpot id.
    """
    with portal.lock:
        ids: dict[str, str] = {}
        stamp = int(time.time() * 1000)
        if owners is not None:
            for row in owners.itertuples(index=False):
                owner_id = portal.new_id()
                first, _, last = str(row.name).partition(" ")
                portal.owners.append(
                    {
                        "id": owner_id,
                        "email": f"{str(row.owner_id).lower()}@sandbox.example",
                        "firstName": first,
                        "lastName": last,
                        "userId": int(owner_id),
                        "type": "PERSON",
                        "createdAt": iso_ms(stamp),
                        "updatedAt": iso_ms(stamp),
                        "archived": False,
                        "teams": [
                            {
                                "id": str(abs(hash(row.team)) % 10_000),
                                "name": str(row.team),
                                "primary": True,
                            }
                        ],
                    }
                )
                ids[str(row.owner_id)] = owner_id
        _add_records(
            portal,
            "companies",
            accounts,
            id_column="account_id",
            ids=ids,
            values=company_values(accounts, ids),
        )
        _add_records(
            portal,
            "deals",
            opportunities,
            id_column="opportunity_id",
            ids=ids,
            values=deal_values(opportunities, ids),
        )
        for deal, account in zip(
            opportunities["opportunity_id"].astype(str),
            opportunities["account_id"].astype(str),
            strict=True,
        ):
            company = ids.get(account)
            if company is not None:
                portal.deal_company[ids[deal]] = company
                portal.company_deals.setdefault(company, set()).add(ids[deal])
        return ids


def _add_records(
    portal: HubSpotPortal,
    kind: str,
    frame: pd.DataFrame,
    *,
    id_column: str,
    ids: dict[str, str],
    values: dict[str, Any],
) -> None:
    created = values.pop("_created")
    updated = values.pop("_updated")
    deleted = values.pop("_deleted")
    columns = {name: np.asarray(array).tolist() for name, array in values.items()}
    empty = dict.fromkeys(portal.properties[kind])
    for position, source in enumerate(frame[id_column].astype(str)):
        new_id = portal.new_id()
        ids[source] = new_id
        properties = empty | {n: column[position] for n, column in columns.items()}
        properties["hs_object_id"] = new_id
        record = Record(
            id=new_id,
            properties=properties,
            created=int(created[position]),
            updated=int(updated[position]),
            archived=bool(deleted[position]),
            archived_at=int(updated[position]) if deleted[position] else None,
        )
        portal.records[kind][new_id] = record
        portal.clock = max(portal.clock, record.updated)


def link(
    portal: HubSpotPortal,
    accounts: pd.DataFrame,
    salesforce_ids: Mapping[str, str],
    hubspot_ids: Mapping[str, str],
    *,
    seed: int = 0,
) -> None:
    """Make the portal the HubSpot side of a company that also runs the Salesforce org.

    6 in 10 companies carry their Account id in ``salesforceaccountid`` (HubSpot's
    Salesforce integration sets it), 3 in 10 share only the domain, 1 in 10 only the name
    and country (no domain); 2 in 100 more companies exist only in HubSpot.
    """
    rng = np.random.default_rng(seed + 7)
    with portal.lock:
        for account in accounts["account_id"].astype(str):
            record = portal.records["companies"].get(hubspot_ids.get(account, ""))
            if record is None:
                continue
            draw = rng.random()
            if draw < 0.6:
                record.properties["salesforceaccountid"] = salesforce_ids.get(account)
            elif draw >= 0.9:
                record.properties["domain"] = None
        stamp = portal.now_ms()
        for n in range(max(1, len(accounts) // 50)):
            new_id = portal.new_id()
            properties = dict.fromkeys(portal.properties["companies"]) | {
                "name": f"Hubspot Only Prospect {n}",
                "domain": f"hubspot-only-{n}.example",
                "country": "Germany",
                "industry": "Software",
                "hs_object_id": new_id,
                "createdate": iso_ms(stamp),
                "hs_lastmodifieddate": iso_ms(stamp),
            }
            portal.records["companies"][new_id] = Record(
                id=new_id, properties=properties, created=stamp, updated=stamp
            )
