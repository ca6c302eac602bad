"""What the pipeline needs from a CRM: one protocol, every connector implements it.

Connectors hand over records as frames with canonical column names (values still raw: the
pipeline normalises them), in batches, each with the sync cursor that becomes valid once the
batch is safely mirrored, and the owned fields' values read back apart from the records.
Vendor SDK types never leave their connector package.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from icp_sync.model import CrmObject
from icp_sync.writeback import Plan

__all__ = [
    "ApiUsage",
    "ApplyBatch",
    "Batch",
    "CheckItem",
    "Connector",
    "ConnectorState",
    "CrmTask",
    "FieldSetup",
    "LongLived",
    "Prefetching",
    "TaskCreator",
    "WritableConnector",
    "WriteCost",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """A batch of extracted records.

    Attributes:
        frame: Canonical column names (plus ``attr_`` columns), raw values.
        cursor: The watermark to store once this batch is mirrored; ``None`` when the
            position only becomes safe after a later batch.
        snapshot: The batch holds every live record of the object, so mirrored records
            missing from it were deleted in the source.
        deleted: Ids the source reports as deleted (beyond rows flagged in ``frame``).
        live: Every id the source holds live right now (a reconciliation): mirrored records
            missing from it were deleted, purged or became invisible; ``None`` when unknown.
        edited_by_others: Ids of records in ``frame`` someone other than the integration
            user modified last (a changed owned value there is a manual edit); ``None``
            when the connector cannot tell.
        owned: The owned fields' values as the CRM holds them, raw (index: record id;
            columns: owned-field keys, see :data:`icp_sync.model.OWNED_FIELDS`); ``None``
            when the connector reads none back. The write-back planner compares with them.
        unrecorded: Record id -> owned field -> canonical value of writes icp-sync may have
            made without recording them yet (a write interrupted between the call and its
            record). When given, any other changed owned value is someone else's, even on a
            record icp-sync modified last (it wrote other fields after a rep's edit);
            ``None`` when the connector cannot tell, so only ``edited_by_others`` can hold
            manual edits.
    """

    frame: pd.DataFrame
    cursor: str | None = None
    snapshot: bool = False
    deleted: tuple[str, ...] = ()
    live: frozenset[str] | None = None
    edited_by_others: frozenset[str] | None = None
    owned: pd.DataFrame | None = None
    unrecorded: Mapping[str, Mapping[str, str]] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckItem:
    """One finding of ``icp-sync check``.

    Attributes:
        name: What was checked, e.g. ``"accounts file"``.
        ok: Whether it is usable.
        detail: What was found.
        fix: What to do about it, when not ok (or when optional and missing).
        required: A failed required item makes ``check`` fail; an optional one only warns.
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiUsage:
    """CRM API calls this connector made, and the org's remaining allowance when known."""

    calls: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    limit: int | None = None
    remaining: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyBatch:
    """The outcome of one write call (or one bulk job).

    Attributes:
        written: Record id -> owned fields now holding the planned values.
        rejected: Record id -> why the CRM refused it (skipped, reported, not retried now).
        deferred: Record id -> why it was not attempted this cycle (picked up next cycle).
        method: ``collections`` or ``bulk``.
    """

    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    deferred: dict[str, str] = field(default_factory=dict)
    method: str = "collections"


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSetup:
    """What ``setup-fields`` found and did, by API name (``Account.ICP_Tier__c``)."""

    existing: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False


class ConnectorState(Protocol):
    """**Protocol**: a connector's own small persistent state (kept in the state store)."""

    def load(self) -> dict[str, Any]:
        """The stored state (empty when none)."""
        ...

    def save(self, state: dict[str, Any]) -> None:
        """Replace the stored state; committed before this returns."""
        ...


@runtime_checkable
class Connector(Protocol):
    """**Protocol**: a source of CRM records (and, for CRMs, a target of write-back)."""

    name: str
    """Stable identifier used to key sync watermarks, e.g. ``"files"``, ``"salesforce"``."""

    def check(self) -> list[CheckItem]:
        """Verify access and mapping without changing anything."""
        ...

    def extract(self, obj: CrmObject, *, since: str | None, now: datetime) -> Iterator[Batch]:
        """Records of ``obj`` changed since the cursor ``since`` (all of them when ``None``).

        Args:
            obj: Which object to read.
            since: The cursor stored after the last mirrored batch, or ``None``.
            now: Start of the run; cursors never move past it.
        """
        ...

    def usage(self) -> ApiUsage:
        """API calls made so far by this connector instance."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class WritableConnector(Connector, Protocol):
    """**Protocol**: a CRM icp-sync can write tier, score, reasons and TAL membership to."""

    def writable_fields(self) -> dict[str, str]:
        """Owned field -> CRM field name, for the owned fields that exist in the CRM."""
        ...

    def ensure_fields(self, *, dry_run: bool) -> FieldSetup:
        """Create the owned fields that are missing (idempotent)."""
        ...

    def apply(self, plan: Plan) -> Iterator[ApplyBatch]:
        """Write a plan, one batch of results per call or job; the only writer."""
        ...


@runtime_checkable
class LongLived(Protocol):
    """**Protocol**: a connector the daemon keeps across cycles (token, describes cached).

    ``refresh_metadata`` forgets what was described about the CRM (field lists), so that the
    next cycle describes again: the daemon calls it on a schedule, not every cycle.
    """

    def refresh_metadata(self) -> None:
        """Forget cached descriptions of the CRM; the next use describes again."""
        ...


@runtime_checkable
class Prefetching(Protocol):
    """**Protocol**: a connector that can read the start of a cycle ahead in fewer calls.

    The pipeline calls :meth:`prefetch` once before extracting; each ``extract`` then uses
    what was read ahead for it, or reads as usual.
    """

    def prefetch(self, cursors: dict[CrmObject, str | None], *, now: datetime) -> int:
        """Read ahead the cycle's first requests for objects at ``cursors``; answers kept."""
        ...


@runtime_checkable
class WriteCost(Protocol):
    """**Protocol**: a connector that can say what writing ``records`` records would cost."""

    def write_cost(self, records: int) -> dict[str, Any]:
        """``{"method": ..., "calls": n}``: the API calls a write of ``records`` would make."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CrmTask:
    """A task to open in the CRM for a deal's owner, linked to the deal.

    Attributes:
        key: Unique per alert (its delivery key); stored in the task so a retry finds it.
        deal_id: The opportunity / deal the task is linked to.
        owner_id: The deal's owner the task is assigned to (``None``: the CRM's default).
        subject: The task's subject line (the connector appends the key).
        body: The task's description.
        due: The due date.
        priority: ``High``, ``Normal`` or ``Low``.
    """

    key: str
    deal_id: str
    owner_id: str | None
    subject: str
    body: str
    due: date
    priority: str = "Normal"


@runtime_checkable
class TaskCreator(Protocol):
    """**Protocol**: a CRM that can open a task for a deal's owner."""

    def create_task(self, task: CrmTask) -> str:
        """Create ``task`` unless a task with its key exists already; returns the task's id.

        Idempotent: a retry after a crash between the create and its recording finds the
        task created the first time instead of creating a second one.
        """
        ...
