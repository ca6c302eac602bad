"""Loading canonical frames into a sandbox Salesforce org: Accounts, Opportunities, Users.

Field values are computed per API name, vectorised.

Accounts keep their canonical history (created and modified times, deletions); lifecycle
fields land in the org's custom fields, adoption as a percent; open deals are spread over
the open stages; deal types and motions use the org's picklist values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from icp_sync.sandbox.salesforce.org import SalesforceOrg, make_id
from icp_sync.sandbox.salesforce.schema import OPEN_STAGES

__all__ = ["account_columns", "load_canonical", "opportunity_columns"]


def _ms(series: pd.Series) -> np.ndarray:
    values = pd.to_datetime(series, utc=True)
    ms = (values.astype("int64") // 1_000_000).astype(object)
    return np.asarray(ms.where(values.notna(), None).to_numpy(dtype=object))


def _dates(series: pd.Series) -> np.ndarray:
    values = pd.to_datetime(series, utc=True)
    text = values.dt.strftime("%Y-%m-%d").astype(object)
    return np.asarray(text.where(values.notna(), None).to_numpy(dtype=object))


def _nullable(series: pd.Series, cast: type = float) -> np.ndarray:
    values = series.to_numpy(dtype=object)
    return np.array([None if pd.isna(v) else cast(v) for v in values], dtype=object)


def account_columns(
    frame: pd.DataFrame, ids: Mapping[str, str], loader: str
) -> dict[str, np.ndarray]:
    owner = (
        frame["owner_id"]
        .astype("string")
        .map(lambda v: ids.get(str(v), loader) if pd.notna(v) else loader)
    )
    modified = _ms(frame["modified_at"].fillna(frame["created_at"]))
    return {
        "Name": frame["name"].astype(str).to_numpy(dtype=object),
        "Website": _nullable(frame["domain"], str),
        "Industry": _nullable(frame["industry"], str),
        "NumberOfEmployees": _nullable(frame["employees"], int),
        "AnnualRevenue": _nullable(frame["annual_revenue"]),
        "BillingCountry": _nullable(frame["country"], str),
        "Tech_Stack__c": _nullable(frame["tech_stack"].replace("", None), str),
        "OwnerId": owner.to_numpy(dtype=object),
        "CreatedDate": _ms(frame["created_at"]),
        "CreatedById": np.full(len(frame), loader, dtype=object),
        "LastModifiedDate": modified,
        "LastModifiedById": np.full(len(frame), loader, dtype=object),
        "SystemModstamp": modified,
        "IsDeleted": frame["is_deleted"].to_numpy(dtype=bool),
        "Customer_Since__c": _dates(frame["customer_since"]),
        "Churn_Date__c": _dates(frame["churned_at"]),
        "ARR__c": _nullable(frame["arr"]),
        "NPS__c": _nullable(frame["nps"]),
        "Adoption__c": _nullable(frame["adoption"] * 100),
    }


def opportunity_columns(
    frame: pd.DataFrame, ids: Mapping[str, str], loader: str
) -> dict[str, np.ndarray]:
    digest = frame["opportunity_id"].astype(str).map(lambda v: hashlib.md5(v.encode()).digest()[0])  # noqa: S324 (spreads open deals over stages)
    open_stage = np.asarray(OPEN_STAGES, dtype=object)[digest.to_numpy() % len(OPEN_STAGES)]
    stage = np.where(
        frame["stage"] == "won",
        "Closed Won",
        np.where(frame["stage"] == "lost", "Closed Lost", open_stage),
    )
    deal_type = frame["deal_type"].map(
        {"new_business": "New Business", "expansion": "Expansion", "renewal": "Renewal"}
    )
    source = frame["motion"].map(
        {"inbound": "Web", "outbound": "Outbound", "partner": "Partner Referral", "other": "Other"}
    )
    owner = (
        frame["owner_id"]
        .astype("string")
        .map(lambda v: ids.get(str(v), loader) if pd.notna(v) else loader)
    )
    account = frame["account_id"].astype(str).map(ids.get)
    modified = _ms(frame["modified_at"].fillna(frame["created_at"]))
    close = frame["close_date"].fillna(frame["created_at"])
    return {
        "AccountId": account.to_numpy(dtype=object),
        "Name": frame["name"]
        .fillna("Opportunity")
        .astype(str)
        .str.slice(0, 120)
        .to_numpy(dtype=object),
        "StageName": stage.astype(object),
        "Amount": _nullable(frame["amount"]),
        "CloseDate": _dates(close),
        "IsClosed": np.isin(stage, ["Closed Won", "Closed Lost"]),
        "IsWon": stage == "Closed Won",
        "Type": _nullable(deal_type, str),
        "LeadSource": _nullable(source, str),
        "OwnerId": owner.to_numpy(dtype=object),
        "CreatedDate": _ms(frame["created_at"].fillna(frame["close_date"])),
        "CreatedById": np.full(len(frame), loader, dtype=object),
        "LastModifiedDate": modified,
        "LastModifiedById": np.full(len(frame), loader, dtype=object),
        "SystemModstamp": modified,
        "IsDeleted": frame["is_deleted"].to_numpy(dtype=bool),
    }


def load_canonical(
    org: SalesforceOrg,
    accounts: pd.DataFrame,
    opportunities: pd.DataFrame,
    owners: pd.DataFrame | None = None,
) -> dict[str, str]:
    """Load canonical frames into an org as Accounts, Opportunities and Users.

    Returns:
        Canonical id (account, opportunity, owner) -> Salesforce id.
    """
    with org.lock:
        ids: dict[str, str] = {}
        if owners is not None:
            for row in owners.itertuples(index=False):
                user_id = org.new_user(str(row.name), f"{row.owner_id}@sandbox.example".lower())
                org.objects["User"].records[user_id]["Department"] = str(row.team)
                ids[str(row.owner_id)] = user_id
        _add_records(
            org,
            "Account",
            accounts,
            id_column="account_id",
            ids=ids,
            values=account_columns(accounts, ids, org.loader_user),
        )
        _add_records(
            org,
            "Opportunity",
            opportunities,
            id_column="opportunity_id",
            ids=ids,
            values=opportunity_columns(opportunities, ids, org.loader_user),
        )
        return ids


def _add_records(
    org: SalesforceOrg,
    sobject: str,
    frame: pd.DataFrame,
    *,
    id_column: str,
    ids: dict[str, str],
    values: dict[str, np.ndarray],
) -> None:
    obj = org.objects[sobject]
    new_ids = [make_id(obj.prefix, org.next_number()) for _ in range(len(frame))]
    ids.update(zip(frame[id_column].astype(str), new_ids, strict=True))
    # plain Python values: records are served as JSON and saved as JSON
    columns = {name: np.asarray(array).tolist() for name, array in values.items()}
    empty = dict.fromkeys(obj.fields)
    for position, record_id in enumerate(new_ids):
        record = empty | {n: column[position] for n, column in columns.items()}
        record["Id"] = record_id
        obj.records[record_id] = record
        if record["IsDeleted"]:
            obj.deleted.append((record_id, int(record["SystemModstamp"] or 0)))
    stamps = values.get("SystemModstamp")
    if stamps is not None and len(stamps):
        org.clock = max(org.clock, int(np.max(stamps)))
