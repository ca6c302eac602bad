"""Saving a sandbox Salesforce org to a gzipped JSON file and reading it back."""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from icp_sync.sandbox.salesforce.org import SalesforceOrg, SfField, SObject

__all__ = ["read_org", "save_org"]


def save_org(org: SalesforceOrg, path: Path) -> None:
    """Persist the org (records, custom fields, usage) to a gzipped JSON file."""
    with org.lock:
        document = {
            "api_version": org.api_version,
            "daily_api_limit": org.daily_api_limit,
            "api_used": org.api_used,
            "counter": org.counter,
            "clock": org.clock,
            "integration_user": org.integration_user,
            "loader_user": org.loader_user,
            "objects": {
                name: {
                    "prefix": obj.prefix,
                    "fields": [asdict(f) for f in obj.fields.values()],
                    "custom_ids": obj.custom_ids,
                    "deleted": obj.deleted,
                    "records": list(obj.records.values()),
                }
                for name, obj in org.objects.items()
            },
        }
    temporary = path.with_suffix(path.suffix + ".tmp")
    with gzip.open(temporary, "wt", encoding="utf-8") as out:
        json.dump(document, out, default=_json_default)
    temporary.replace(path)


def read_org(path: Path) -> SalesforceOrg:
    """Read an org saved with :func:`save_org`."""
    with gzip.open(path, "rt", encoding="utf-8") as source:
        document = json.load(source)
    org = SalesforceOrg(
        api_version=document["api_version"], daily_api_limit=document["daily_api_limit"]
    )
    org.api_used = document["api_used"]
    org.counter = document["counter"]
    org.clock = document["clock"]
    org.integration_user = document["integration_user"]
    org.loader_user = document["loader_user"]
    for name, saved in document["objects"].items():
        fields = {}
        for stored in saved["fields"]:
            meta = {
                **stored,
                "values": tuple(stored["values"]),
                "reference_to": tuple(stored["reference_to"]),
            }
            fields[stored["name"]] = SfField(**meta)
        org.objects[name] = SObject(
            prefix=saved["prefix"],
            fields=fields,
            records={r["Id"]: r for r in saved["records"]},
            custom_ids=saved["custom_ids"],
            deleted=[tuple(d) for d in saved["deleted"]],
        )
    return org


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot save {type(value).__name__}")
