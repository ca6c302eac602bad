"""Matching accounts across two CRMs: HubSpot companies onto Salesforce Accounts.

Pure. Each HubSpot company is matched, in order, by the Salesforce Account id HubSpot's
Salesforce integration stored on it, else by its normalised domain, else by normalised name
and country. A key that names more than one Salesforce Account is ambiguous: the company is
reported, not guessed. Several companies may match one Account (duplicates in HubSpot): each
gets the Account's values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["MatchReport", "domain_key", "match_accounts", "name_key"]

_LEGAL = re.compile(
    r"\b(inc|incorporated|llc|ltd|limited|gmbh|ag|sa|sas|bv|nv|plc|corp|corporation|co|"
    r"company|oy|ab|as|srl|spa|pty|kk)\b"
)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def domain_key(value: Any) -> str:
    """A domain reduced to its bare host (``https://www.Acme.com/x`` -> ``acme.com``)."""
    if _missing(value):
        return ""
    text = str(value).strip().casefold()
    text = re.sub(r"^[a-z]+://", "", text)
    text = re.sub(r"^www\.", "", text)
    return re.sub(r"[/?#:].*$", "", text)


def name_key(name: Any, country: Any) -> str:
    """Name without case, punctuation and legal-form words, with the country."""
    if _missing(name):
        return ""
    text = re.sub(r"[^\w\s]", " ", str(name).casefold())
    text = " ".join(_LEGAL.sub(" ", text).split())
    if not text:
        return ""
    place = "" if _missing(country) else str(country)
    return f"{text}|{place.strip().casefold()}"


@dataclass(frozen=True, slots=True)
class MatchReport:
    """Which HubSpot company is which Salesforce Account, and what could not be matched.

    Attributes:
        matched: HubSpot company id -> Salesforce Account id.
        by: How many were matched by each rule (``salesforce_id``, ``domain``, ``name_country``).
        ambiguous: HubSpot company id -> the rule whose key named several Accounts.
        unmatched_hubspot: HubSpot companies no rule matched.
        unmatched_salesforce: Salesforce Accounts no company matched.
    """

    matched: dict[str, str] = field(default_factory=dict)
    by: dict[str, int] = field(default_factory=dict)
    ambiguous: dict[str, str] = field(default_factory=dict)
    unmatched_hubspot: tuple[str, ...] = ()
    unmatched_salesforce: int = 0

    def counts(self) -> dict[str, Any]:
        """The JSON-ready counts."""
        return {
            "matched": len(self.matched),
            "by": dict(self.by),
            "ambiguous": len(self.ambiguous),
            "unmatched_hubspot": len(self.unmatched_hubspot),
            "unmatched_salesforce": self.unmatched_salesforce,
            "shared": len(self.matched) - len(set(self.matched.values())),
        }


def _index(keys: pd.Series, ids: pd.Series) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, account in zip(keys.tolist(), ids.tolist(), strict=True):
        if key:
            found.setdefault(key, []).append(str(account))
    return found


def match_accounts(
    accounts: pd.DataFrame, companies: Mapping[str, Mapping[str, Any]]
) -> MatchReport:
    """Match HubSpot companies onto Salesforce Accounts.

    Args:
        accounts: Live Salesforce Accounts (``account_id``, ``domain``, ``name``, ``country``).
        companies: HubSpot company id -> ``salesforce_id``, ``domain``, ``name``, ``country``.
    """
    ids = accounts["account_id"].astype(str)
    known = set(ids)
    by_id15 = {i[:15]: i for i in known}
    by_domain = _index(accounts["domain"].map(domain_key), ids)
    names = [name_key(n, c) for n, c in zip(accounts["name"], accounts["country"], strict=True)]
    by_name = _index(pd.Series(names, dtype=object), ids)
    matched: dict[str, str] = {}
    ambiguous: dict[str, str] = {}
    unmatched: list[str] = []
    by = {"salesforce_id": 0, "domain": 0, "name_country": 0}
    for company_id, company in sorted(companies.items()):
        sf = str(company.get("salesforce_id") or "").strip()
        account = sf if sf in known else by_id15.get(sf[:15]) if len(sf) >= 15 else None
        if account is not None:
            matched[company_id] = account
            by["salesforce_id"] += 1
            continue
        for rule, index, key in (
            ("domain", by_domain, domain_key(company.get("domain"))),
            ("name_country", by_name, name_key(company.get("name"), company.get("country"))),
        ):
            candidates = index.get(key, []) if key else []
            if len(candidates) == 1:
                matched[company_id] = candidates[0]
                by[rule] += 1
                break
            if len(candidates) > 1:
                ambiguous[company_id] = rule
                break
        else:
            unmatched.append(company_id)
    return MatchReport(
        matched=matched,
        by=by,
        ambiguous=ambiguous,
        unmatched_hubspot=tuple(unmatched),
        unmatched_salesforce=len(known - set(matched.values())),
    )
