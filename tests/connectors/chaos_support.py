"""Chaos helpers: `icp-sync` with a skewed clock, and a journal of what happens in the org.

:func:`skewed_cli` runs the real command line with this process's wall clock off by
``$ICP_SYNC_CHAOS_SKEW_S`` seconds (run it as ``python -c SKEWED_CLI sync ...``). It imports
nothing but the standard library before it has installed the skew, so every ``icp_sync`` and
``connectors`` module, however late it is imported, sees the skewed clock.

:class:`Journal` wraps the sandbox org's ``update``, ``query`` and ``get``: every write is kept
field by field (value before and after, who, in which cycle) and every read by record, each
with a sequence number, so a test can tell what icp-sync had read when it wrote; :func:`judge`
says from it what became of each hand edit. :func:`mirror_problems` compares the mirror with
the org, :func:`skews_seen` reads the skews back from the run history and
:func:`count_faults` counts the faults the sandbox injects, by kind.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

    import pytest

    from icp_sync.sandbox.salesforce.org import SalesforceOrg
    from icp_sync.store import Store

__all__ = [
    "SKEWED_CLI",
    "SKEW_ENV",
    "HandEdit",
    "Journal",
    "Verdict",
    "count_faults",
    "judge",
    "mirror_problems",
    "skewed_cli",
    "skews_seen",
]

SKEW_ENV = "ICP_SYNC_CHAOS_SKEW_S"
SKEWED_CLI = "from tests.connectors.chaos_support import skewed_cli; skewed_cli()"
"""``python -c`` code that runs the icp-sync command line with a skewed clock."""

_PATCHED = ("icp_sync", "connectors")


def skewed_cli() -> None:
    """Run the icp-sync command line (``sys.argv[1:]``) with the clock off by the skew."""
    import datetime as dt
    import importlib.machinery

    skew = float(os.environ.get(SKEW_ENV, "0"))
    delta = dt.timedelta(seconds=skew)
    real_datetime, real_time = dt.datetime, time.time

    class _Meta(type):
        # a real datetime (from pandas, the driver, ...) is still an instance of the class
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, real_datetime)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, real_datetime)

    class Skewed(dt.datetime, metaclass=_Meta):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
            return real_datetime.now(tz) + delta

        @classmethod
        def utcnow(cls) -> dt.datetime:  # type: ignore[override]
            return real_datetime.now(dt.UTC).replace(tzinfo=None) + delta

    def patch(module: ModuleType) -> None:
        if getattr(module, "datetime", None) is real_datetime:
            module.datetime = Skewed  # type: ignore[attr-defined]

    class Finder:
        """Hands out the usual specs, with a loader that skews the module it executes."""

        @staticmethod
        def find_spec(name: str, path: Any, target: Any = None) -> Any:
            if name.partition(".")[0] not in _PATCHED:
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path, target)
            loader = getattr(spec, "loader", None)
            if loader is not None and hasattr(loader, "exec_module"):
                execute = loader.exec_module

                def exec_module(module: ModuleType) -> None:
                    execute(module)
                    patch(module)

                loader.exec_module = exec_module
            return spec

    time.time = lambda: real_time() + skew
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in _PATCHED:
            patch(module)
    sys.meta_path.insert(0, Finder)
    from icp_sync.cli import main

    sys.argv[0] = "icp-sync"
    main()


@dataclass(frozen=True, slots=True)
class Write:
    """One update of one record in the org.

    Attributes:
        changed: Field -> (value before, value after), for the fields it changed.
        unchanged: Fields it set to the value they already held.
        rewrites: Of ``unchanged``, those whose value the integration user had put there.
    """

    seq: int
    cycle: int
    running: bool
    user: str
    sobject: str
    record_id: str
    changed: dict[str, tuple[Any, Any]]
    unchanged: tuple[str, ...]
    rewrites: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HandEdit:
    """A user's edit of an owned field (``running``: while a sync process was running)."""

    seq: int
    cycle: int
    running: bool
    record_id: str
    field: str
    value: Any


class Journal:
    """Every write and read in the org, in order; installs itself on ``org``."""

    def __init__(self, org: SalesforceOrg) -> None:
        self.org = org
        self.integration = org.integration_user
        self.cycle = -1
        self.running = False
        self.seq = 0
        self.writes: list[Write] = []
        self.by_record: defaultdict[str, list[Write]] = defaultdict(list)
        self.reads: defaultdict[str, list[int]] = defaultdict(list)
        self.read_calls: defaultdict[int, list[int]] = defaultdict(list)  # cycle -> seqs
        self.marks: list[tuple[int, str]] = []  # cycle starts, kills and ends
        self.on_read: Callable[[int], None] | None = None
        """Called in the org's read, with the cycle's reads so far (a test kills there)."""
        self._changed_by: dict[tuple[str, str], str] = {}
        self._lock = threading.RLock()
        self._install()

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _install(self) -> None:
        org = self.org
        update, query, get = org.update, org.query, org.get

        def recorded_update(
            sobject: str,
            record_id: str,
            values: Any,
            *,
            user: str,
            stamp: int | None = None,
        ) -> None:
            with org.lock, self._lock:
                name = org.canonical_name(sobject)
                before = dict(org.objects[name].records.get(record_id) or {})
                update(sobject, record_id, values, user=user, stamp=stamp)
                after = org.objects[name].records[record_id]
                self._note(
                    user=user,
                    sobject=name,
                    record_id=record_id,
                    values=values,
                    before=before,
                    after=after,
                )

        def recorded_query(soql: str, *, include_deleted: bool) -> Any:
            with org.lock, self._lock:
                parsed, rows = query(soql, include_deleted=include_deleted)
                self._read(str(r["Id"]) for r in rows if r.get("Id"))
            return parsed, rows

        def recorded_get(sobject: str, record_id: str, select: Iterable[str] | None = None) -> Any:
            with org.lock, self._lock:
                record = get(sobject, record_id, select)
                self._read([str(record.get("Id") or record_id)])
            return record

        org.update = recorded_update  # type: ignore[method-assign]
        org.query = recorded_query  # type: ignore[method-assign]
        org.get = recorded_get  # type: ignore[method-assign]

    def _read(self, ids: Iterable[str]) -> None:
        seq = self._next()
        self.read_calls[self.cycle].append(seq)
        for record_id in ids:
            self.reads[record_id].append(seq)
        if self.on_read is not None:
            self.on_read(len(self.read_calls[self.cycle]))

    def _note(
        self,
        *,
        user: str,
        sobject: str,
        record_id: str,
        values: Any,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        fields = [k for k in values if k not in ("Id", "attributes")]
        changed = {
            k: (before.get(k), after.get(k)) for k in fields if before.get(k) != after.get(k)
        }
        unchanged = tuple(k for k in fields if k not in changed)
        rewrites = tuple(
            k
            for k in unchanged
            if user == self.integration and self._changed_by.get((record_id, k)) == self.integration
        )
        write = Write(
            seq=self._next(),
            cycle=self.cycle,
            running=self.running,
            user=user,
            sobject=sobject,
            record_id=record_id,
            changed=changed,
            unchanged=unchanged,
            rewrites=rewrites,
        )
        self.writes.append(write)
        self.by_record[record_id].append(write)
        for k in changed:
            self._changed_by[(record_id, k)] = user

    def mark(self, text: str) -> None:
        """Note an event (a sync started, was killed, ended) in the sequence."""
        with self._lock:
            self.marks.append((self._next(), text))

    def integration_writes(self, cycle: int | None = None) -> list[Write]:
        """The integration user's record writes (of one cycle, or all)."""
        with self._lock:
            return [
                w
                for w in self.writes
                if w.user == self.integration and (cycle is None or w.cycle == cycle)
            ]

    def reads_in(self, cycle: int) -> int:
        """Read calls (queries, record GETs) the org served in a cycle."""
        with self._lock:
            return len(self.read_calls.get(cycle, ()))

    def timeline(self, record_id: str, start: int, end: int) -> list[str]:
        """What happened to a record between two sequence numbers, one line per event."""
        with self._lock:
            events = [(s, f"#{s} {text}") for s, text in self.marks]
            events += [(s, f"#{s} read by icp-sync") for s in self.reads.get(record_id, ())]
            for w in self.by_record.get(record_id, ()):
                who = "icp-sync" if w.user == self.integration else f"user {w.user}"
                fields = {k: f"{_short(b)}->{_short(a)}" for k, (b, a) in sorted(w.changed.items())}
                events.append((w.seq, f"#{w.seq} cycle {w.cycle} {who} writes {fields}"))
        return [text for seq, text in sorted(events) if start <= seq <= end]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def same(a: Any, b: Any) -> bool:
    """Equal as CRM values (numbers compare as numbers)."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of one hand edit: ``kept``, ``gone`` (record deleted), ``race`` or
    ``lost``; ``why`` and ``timeline`` explain a race or a loss."""

    edit: HandEdit
    outcome: str
    now: Any = None
    why: str = ""
    timeline: tuple[str, ...] = ()


def judge(journal: Journal, edits: list[HandEdit]) -> list[Verdict]:
    """Judge the last hand edit of each (record, field) against the org as it is now.

    A changed value is a ``race`` only when icp-sync could not have known: the edit landed
    while a cycle ran, after that cycle had started reading, and the cycle wrote that same
    field without reading the record again in between. Anything else is ``lost``.
    """
    last: dict[tuple[str, str], HandEdit] = {}
    for edit in sorted(edits, key=lambda e: e.seq):
        last[(edit.record_id, edit.field)] = edit
    verdicts = []
    records = journal.org.objects["Account"].records
    for edit in last.values():
        record = records.get(edit.record_id)
        if record is None or record["IsDeleted"]:
            verdicts.append(Verdict(edit, "gone"))
            continue
        now = record.get(edit.field)
        if same(now, edit.value):
            verdicts.append(Verdict(edit, "kept", now))
            continue
        later = [
            w
            for w in journal.by_record[edit.record_id]
            if w.seq > edit.seq and edit.field in w.changed
        ]
        first = later[0] if later else None
        end = first.seq if first else journal.seq
        cycle_reads = journal.read_calls.get(edit.cycle, [])
        reread = [s for s in journal.reads.get(edit.record_id, ()) if edit.seq < s < end]
        if first is None or first.user != journal.integration:
            why = "changed by someone other than icp-sync"
        elif first.cycle != edit.cycle or not edit.running:
            why = f"overwritten by cycle {first.cycle} (edit made "
            why += (
                f"while cycle {edit.cycle} ran)" if edit.running else f"before cycle {edit.cycle})"
            )
        elif not cycle_reads or cycle_reads[0] > edit.seq:
            why = "overwritten by the cycle running, which read nothing before the edit"
        elif reread:
            why = f"overwritten by the cycle running, after it read the record again (#{reread[0]})"
        else:
            why = ""
        if why and first is not None:
            mine = [w for w in journal.by_record[edit.record_id] if w.user == journal.integration]
            if not [w for w in mine if w.seq < edit.seq]:
                why += "; icp-sync had written nothing to the record before the edit"
            elif not [w for w in mine if w.seq < edit.seq and edit.field in w.changed]:
                why += "; icp-sync had never written this field of the record"
            if others := [w for w in mine if edit.seq < w.seq < end]:
                why += (
                    f"; icp-sync wrote other fields of the record after the edit (#{others[0].seq}"
                    f", cycle {others[0].cycle}) and was its last modifier"
                )
        start = min(journal.read_calls.get(edit.cycle, [edit.seq])[0], edit.seq)
        timeline = tuple(journal.timeline(edit.record_id, start, end))
        if why:
            verdicts.append(Verdict(edit, "lost", now, why, timeline))
        else:
            why = "landed after the cycle read the record, before it wrote the same field"
            verdicts.append(Verdict(edit, "race", now, why, timeline))
    return verdicts


VALUES = {  # Salesforce object -> mirror column -> org field, compared on every live record
    "Account": {
        "name": "Name",
        "industry": "Industry",
        "employees": "NumberOfEmployees",
        "owner_id": "OwnerId",
        "modified_at": "SystemModstamp",
        "attr_icp_tier_override": "ICP_Tier_Override__c",
    },
    "Opportunity": {
        "name": "Name",
        "account_id": "AccountId",
        "amount": "Amount",
        "owner_id": "OwnerId",
        "modified_at": "SystemModstamp",
    },
}


def plain(value: Any) -> Any:
    """A mirror or org value in one comparable form (ms for times, float for numbers)."""
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return int(pd.Timestamp(value).value // 1_000_000)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def mirror_problems(store: Store, org: SalesforceOrg) -> list[str]:
    """Where the mirror and the org differ: live ids both ways, deleted flags, values."""
    from icp_sync.model import ID_COLUMN, CrmObject

    problems = []
    for sobject, columns in VALUES.items():
        obj = CrmObject(sobject.lower())
        records = org.objects[sobject].records
        org_live = {i for i, r in records.items() if not r["IsDeleted"]}
        mirror_live = store.mirror.ids(obj)
        everything = store.mirror.ids(obj, include_deleted=True)
        for what, ids in (
            ("live in the org, not live in the mirror", org_live - mirror_live),
            ("live in the mirror, not live in the org", mirror_live - org_live),
            ("in the org (recycle bin too), missing from the mirror", set(records) - everything),
            ("deleted in the org, not flagged deleted", (set(records) - org_live) & mirror_live),
        ):
            if ids:
                problems.append(f"{sobject}: {len(ids)} {what}: {sorted(ids)[:5]}")
        frame = store.mirror.load(obj).set_index(ID_COLUMN[obj])
        for rid in sorted(org_live & set(frame.index)):
            for column, name in columns.items():
                mine, theirs = plain(frame.at[rid, column]), plain(records[rid].get(name))
                if mine != theirs:
                    problems.append(f"{sobject} {rid}.{name}: mirror {mine!r}, org {theirs!r}")
    return problems


def skews_seen(store: Store, launches: Iterable[tuple[datetime, float]]) -> Counter[float]:
    """Skews the run history confirms: a run that started at launch + skew (+ start-up)."""
    starts = [r.started_at for r in store.runs.recent(limit=1000) if r.command == "sync"]
    return Counter(
        skew
        for launched, skew in launches
        if any(0 <= (s - launched).total_seconds() - skew <= 5 for s in starts)
    )


def count_faults(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count every fault the sandbox's Salesforce API injects, by kind (until teardown)."""
    from icp_sync.sandbox.faults import FaultInjector
    from icp_sync.sandbox.salesforce import api

    seen: Counter[str] = Counter()
    for name in ("server_error", "rate_limited", "lock_row"):
        real = getattr(FaultInjector, name)

        def counted(self: Any, _real: Any = real, _name: str = name) -> bool:
            hit = bool(_real(self))
            seen[_name] += hit
            return hit

        monkeypatch.setattr(FaultInjector, name, counted)
    validation = api.SalesforceApi.fails_validation

    def refused(self: Any, record_id: str) -> bool:
        hit = validation(self, record_id)
        seen["validation"] += hit
        return hit

    monkeypatch.setattr(api.SalesforceApi, "fails_validation", refused)
    authenticate = api._authenticate

    def expired(served: Any, request: Any) -> Any:
        refusal = authenticate(served, request)
        seen["session_expired"] += refusal is not None and refusal.status_code == 401
        return refusal

    monkeypatch.setattr(api, "_authenticate", expired)
    return seen
