"""Saving a sandbox HubSpot portal to a gzipped JSON file and reading it back."""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict
from pathlib import Path

from icp_sync.sandbox.hubspot.portal import HubSpotPortal, Record
from icp_sync.sandbox.hubspot.properties import PropertyDef

__all__ = ["read_portal", "save_portal"]


def save_portal(portal: HubSpotPortal, path: Path) -> None:
    """Persist the portal to a gzipped JSON file."""
    with portal.lock:
        document = {
            "counter": portal.counter,
            "clock": portal.clock,
            "properties": {
                k: [asdict(p) for p in v.values()] for k, v in portal.properties.items()
            },
            "groups": portal.groups,
            "records": {k: [asdict(r) for r in v.values()] for k, v in portal.records.items()},
            "deal_company": portal.deal_company,
            "task_deals": {k: sorted(v) for k, v in portal.task_deals.items()},
            "owners": portal.owners,
        }
    temporary = path.with_suffix(path.suffix + ".tmp")
    with gzip.open(temporary, "wt", encoding="utf-8") as out:
        json.dump(document, out)
    temporary.replace(path)


def read_portal(path: Path) -> HubSpotPortal:
    """Read a portal saved with :func:`save_portal`."""
    with gzip.open(path, "rt", encoding="utf-8") as source:
        document = json.load(source)
    portal = HubSpotPortal()
    portal.counter = document["counter"]
    portal.clock = document["clock"]
    portal.properties = {
        k: {p["name"]: PropertyDef(**p) for p in v} for k, v in document["properties"].items()
    }
    portal.groups = document["groups"]
    portal.records = {k: {r["id"]: Record(**r) for r in v} for k, v in document["records"].items()}
    portal.owners = document["owners"]
    portal.task_deals = {k: set(v) for k, v in document.get("task_deals", {}).items()}
    for deal, company in document["deal_company"].items():
        portal.associate(deal, company)
    return portal
