"""Canonical frames as sandbox Salesforce records: field values per API name, vectorised.

Accounts keep their canonical history (created and modified times, deletions); lifecycle
fields land in the org's custom fields, adoption as a percent; open deals are spread over
the open stages; deal types and motions use the org's picklist values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from icp_sync.sandbox.salesforce.schema import OPEN_STAGES

__all__ = ["account_columns", "opportunity_columns"]


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
