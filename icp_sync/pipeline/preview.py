"""The ``sync --dry-run`` preview a RevOps lead signs off before anything is written.

From the write plan: tier moves ("312 accounts Yellow -> Green"), TAL additions and
removals, a sample of records with each field's old and new value, and the API calls the
write would cost (asked of the connector when it can say, else estimated as one call per
200 records).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from connectors.base import WriteCost
from icp_sync.writeback import Plan, canonical_value

__all__ = ["SAMPLE_SIZE", "preview"]

SAMPLE_SIZE = 10


def preview(plan: Plan, scored: pd.DataFrame, connector: object) -> dict[str, Any]:
    """The preview of ``plan``; ``scored`` names the accounts (``account_id``, ``name``)."""
    names = dict(zip(scored["account_id"].astype(str), scored["name"].astype(str), strict=False))
    added = [c.record_id for c in plan.changes if c.field == "tal" and _true(c.new)]
    removed = [
        c.record_id for c in plan.changes if c.field == "tal" and _true(c.old) and not _true(c.new)
    ]
    grouped: dict[str, dict[str, dict[str, str]]] = {}
    for change in plan.changes:
        grouped.setdefault(change.record_id, {})[change.field] = {
            "old": canonical_value(change.old),
            "new": canonical_value(change.new),
        }
    # records whose tier moves first: those are what a reviewer wants to see
    order = sorted(grouped, key=lambda r: ("tier" not in grouped[r], names.get(r, r)))
    sample = [
        {"record_id": r, "name": names.get(r, ""), "fields": grouped[r]}
        for r in order[:SAMPLE_SIZE]
    ]
    records = plan.records
    if isinstance(connector, WriteCost):
        cost = connector.write_cost(records)
    else:
        cost = {"method": "batches of 200", "calls": math.ceil(records / 200)}
    return {
        "tier_moves": plan.tier_moves,
        "tal": {
            "added": len(added),
            "removed": len(removed),
            "added_sample": [names.get(r, r) for r in added[:SAMPLE_SIZE]],
            "removed_sample": [names.get(r, r) for r in removed[:SAMPLE_SIZE]],
        },
        "sample": sample,
        "api_calls": cost,
    }


def _true(value: Any) -> bool:
    return canonical_value(value) == "true"
