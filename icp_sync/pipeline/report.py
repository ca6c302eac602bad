"""``report`` (and the dashboard's data): adherence to the commitment and the revealed ICP.

Loads what was committed for the period (the commitment, or without one the active ICP
version and its TAL), tiers the mirror's accounts with that version, runs the pure adherence
and revealed-ICP core, and writes the HTML report with one CSV per table beside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from icp_sync.adherence import Period, Terms, measure, parse_period
from icp_sync.alerts import make_sinks
from icp_sync.config import Settings
from icp_sync.errors import ConfigError, PipelineError
from icp_sync.icp import IcpDefinition, assign_tiers, from_toml, to_toml
from icp_sync.log import get_logger
from icp_sync.model import Tier
from icp_sync.period_review import predictions, refine, segment_changes
from icp_sync.pipeline.alerting import deliver_alerts
from icp_sync.pipeline.history import History
from icp_sync.report.digest import Digest, digest
from icp_sync.report.document import Report, records

if TYPE_CHECKING:
    from starlette.routing import Route
from icp_sync.revealed import RevealedSettings, revealed_icp
from icp_sync.segments import with_dimensions
from icp_sync.store import Alert, Store

__all__ = [
    "Committed",
    "build_report",
    "committed",
    "dashboard",
    "dashboard_loader",
    "period_review",
    "send_digest",
    "tiered_accounts",
    "write_report",
]

log = get_logger()


@dataclass(frozen=True, slots=True, kw_only=True)
class Committed:
    """The terms of a period and the ICP definition they froze."""

    terms: Terms
    definition: IcpDefinition


def _period(text: str | None, default: pd.Timestamp) -> Period:
    try:
        return parse_period(text if text is not None else str(default.year))
    except ValueError as exc:
        raise ConfigError([f"--period: {exc}"]) from None


def committed(
    settings: Settings, store: Store, *, period: str | None, history_end: pd.Timestamp
) -> Committed:
    """The commitment for ``period`` (default: the one whose period covers the end of the
    history, else the year the history ends in).

    Without a commitment for the period, the active ICP version (else the newest) with its
    TAL stands in, with the ``[report] target_green_share`` as target, and says so.
    """
    end = history_end.to_pydatetime()
    if period is not None:
        chosen = _period(period, history_end)
        commitment = store.commitments.active(period.strip())
    else:
        commitment = store.commitments.active(now=end)
        if commitment is not None and not commitment.covers(end):
            commitment = None
        chosen = _period(commitment.period if commitment else None, history_end)
    if commitment is not None:
        terms = Terms(
            period=chosen,
            version=commitment.icp_version,
            target_green_share=commitment.target_green_share,
            tal=frozenset(commitment.tal_account_ids),
            signatories=tuple(commitment.signatories),
            decided_at=pd.Timestamp(commitment.created_at),
            content_hash=commitment.content_hash,
        )
        source = f"commitment {commitment.period} ({commitment.content_hash[:12]})"
        return Committed(terms=terms, definition=from_toml(commitment.definition, source=source))
    activation = store.activations.current()
    stored = store.versions.get(activation.version if activation else None)
    if stored is None:
        raise PipelineError("no ICP version to report on: run `icp-sync derive` first")
    tal = (
        store.versions.tal(activation.tal_id)
        if activation is not None and activation.tal_id is not None
        else store.versions.latest_tal(stored.version)
    )
    members = frozenset(tal.members["account_id"].astype(str)) if tal is not None else frozenset()
    terms = Terms(
        period=chosen,
        version=stored.version,
        target_green_share=settings.report.target_green_share,
        tal=members,
        source="active version" if activation is not None else "newest version",
        decided_at=pd.Timestamp(tal.created_at) if tal is not None else None,
    )
    definition = from_toml(stored.definition, source=f"stored {stored.version}")
    return Committed(terms=terms, definition=definition)


def tiered_accounts(
    settings: Settings, history: History, definition: IcpDefinition
) -> pd.DataFrame:
    """The live accounts with their segment dimensions, ``tier`` and ``segment`` label."""
    accounts = with_dimensions(history.accounts, settings.segments).reset_index(drop=True)
    assignment = assign_tiers(accounts, definition)
    accounts["tier"] = assignment.frame["tier"].to_numpy()
    accounts["segment"] = assignment.frame["segment"].to_numpy()
    return accounts


def _owners(settings: Settings) -> pd.DataFrame | None:
    path = settings.report.owners
    if path is None:
        return None
    frame = pd.read_csv(path, dtype=str)
    missing = {"owner_id", "team"} - set(frame.columns)
    if missing:
        raise ConfigError([f"report.owners: {path} has no column(s) {', '.join(sorted(missing))}"])
    return frame


def _compliance_state(store: Store) -> tuple[pd.DataFrame | None, dict[str, str]]:
    """The compliance monitor's violations and frozen deal tiers."""
    found = [v.as_dict() for v in store.violations.all()]
    violations = pd.DataFrame(found) if found else None
    frozen = {key: str(item.tier) for key, item in store.violations.frozen_tiers().items()}
    return violations, frozen


def build_report(
    settings: Settings,
    store: Store,
    history: History,
    *,
    now: datetime,
    period: str | None = None,
) -> Report:
    """Measure adherence for ``period`` and the revealed ICP of the last 90 days."""
    if history.accounts.empty:
        raise PipelineError("the mirror holds no accounts: run `icp-sync sync` first")
    end = history.window(now).end
    terms = committed(settings, store, period=period, history_end=end)
    accounts = tiered_accounts(settings, history, terms.definition)
    violations, frozen = _compliance_state(store)
    adherence = measure(
        accounts,
        history.opportunities,
        terms.terms,
        now=end,
        owners=_owners(settings),
        violations=violations,
        frozen_tiers=frozen,
    )
    revealed = revealed_icp(
        accounts,
        history.opportunities,
        RevealedSettings(
            dimensions=tuple(terms.definition.dimensions),
            max_depth=settings.segments.max_depth,
            min_accounts=settings.segments.min_accounts,
            fdr=settings.icp.fdr,
            min_lift=settings.icp.min_lift,
        ),
        now=end,
    )
    log.info(
        "report_measured",
        period=terms.terms.period.name,
        version=terms.terms.version,
        new_deals=adherence.headline["new_deals"],
        green_share=adherence.headline["green_share"]["value"],
        disagreements=len(revealed.disagreements),
    )
    return Report(
        adherence=adherence,
        revealed=revealed,
        generated_at=pd.Timestamp(now),
        history_end=end,
        link=settings.dashboard.url,
    )


def write_report(report: Report, out: Path) -> dict[str, Path]:
    """Write the HTML page to ``out`` and each table as ``<stem>-<table>.csv`` beside it."""
    from icp_sync.report.html import csv_text, render

    if out.is_dir() or not out.name:
        raise ConfigError([f"--out: {out} is a folder; give the HTML file to write"])
    files = {"html": out}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for name, frame in report.tables().items():
            path = out.with_name(f"{out.stem}-{name}.csv")
            path.write_text(csv_text(frame), encoding="utf-8")
            files[name] = path
        out.write_text(render(report), encoding="utf-8")
    except OSError as exc:
        raise PipelineError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return files


def _utc_now() -> datetime:
    return datetime.now(UTC)


def dashboard_loader(
    settings: Settings,
    *,
    period: str | None = None,
    ttl_s: float = 300.0,
    clock: Callable[[], datetime] = _utc_now,
) -> Callable[[], Report]:
    """A loader for the dashboard: the report of ``period``, rebuilt at most every ``ttl_s``.

    Each rebuild opens the store, reads the mirror once and measures; requests in between
    share the last report (one rebuild at a time).
    """
    lock = threading.Lock()
    cached: list[tuple[float, Report]] = []

    def load() -> Report:
        with lock:
            if cached and time.monotonic() - cached[0][0] < ttl_s:
                return cached[0][1]
            with Store.open(settings.store.url) as store:
                report = build_report(
                    settings, store, History.load(store), now=clock(), period=period
                )
            cached[:] = [(time.monotonic(), report)]
            return report

    return load


def dashboard(settings: Settings, *, ttl_s: float = 300.0) -> list[Route]:
    """The dashboard's routes for the daemon's web app, over a cached report loader."""
    from icp_sync.report.dashboard import dashboard_routes

    return dashboard_routes(
        dashboard_loader(settings, ttl_s=ttl_s),
        token=settings.dashboard.token,
        trusted_header=settings.dashboard.trusted_header,
    )


def period_review(
    settings: Settings, store: Store, history: History, *, now: datetime, period: str
) -> dict[str, Any]:
    """The review of the commitment for ``period``: did its predictions hold, which segments
    should change tier, and a refined definition (written beside the derived ones)."""
    if history.accounts.empty:
        raise PipelineError("the mirror holds no accounts: run `icp-sync sync` first")
    end = history.window(now).end
    chosen = committed(settings, store, period=period, history_end=end)
    terms, definition = chosen.terms, chosen.definition
    accounts = tiered_accounts(settings, history, definition)
    tal, notes = _tal_at_start(settings, store, history, chosen, now=now)
    checks = predictions(accounts, history.opportunities, period=terms.period, tal=tal, now=end)
    changes = segment_changes(
        accounts,
        history.opportunities,
        definition,
        period=terms.period,
        now=end,
        max_depth=settings.segments.max_depth,
        min_accounts=settings.segments.min_accounts,
        fdr=settings.icp.fdr,
        min_lift=settings.icp.min_lift,
    )
    refined = refine(definition, changes, period=terms.period.name)
    folder = settings.resolve(settings.icp.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"review-{terms.period.name}.toml"
    path.write_text(to_toml(refined), encoding="utf-8")
    until = min(terms.period.end, end)
    if definition.as_of > terms.period.start.to_pydatetime():
        notes.append(
            f"ICP {definition.version} was derived as of {definition.as_of:%Y-%m-%d}, inside the "
            "period: its predictions are not out of sample"
        )
    months = max((until - terms.period.start).days / 30.44, 0.0)
    if months < 3:
        notes.append(f"only {months:.1f} months of the period observed: too early to judge")
    log.info(
        "period_reviewed",
        period=terms.period.name,
        version=terms.version,
        verdicts=[c["verdict"] for c in checks],
        changes=len(changes),
    )
    return {
        "period": {
            "name": terms.period.name,
            "start": terms.period.start.date().isoformat(),
            "end": terms.period.end.date().isoformat(),
            "observed_until": until.date().isoformat(),
        },
        "commitment": {
            "source": terms.source,
            "icp_version": terms.version,
            "as_of": definition.as_of.isoformat(),
            "tal_accounts": len(terms.tal),
            "tal_reviewed": len(tal),
        },
        "predictions": checks,
        "segment_changes": records(changes) if len(changes) else [],
        "refinement": {
            "file": str(path),
            "version": refined.version,
            "green_rules": len(refined.rules_of(Tier.GREEN)),
            "red_rules": len(refined.rules_of(Tier.RED)),
            "next": f"review it, then `icp-sync activate {path}`; the next `derive` is "
            "checked against it",
        },
        "notes": notes,
    }


def _tal_at_start(
    settings: Settings, store: Store, history: History, chosen: Committed, *, now: datetime
) -> tuple[frozenset[str], list[str]]:
    """The TAL to test: the committed one if fixed before the period began, else the TAL the
    committed version gives on the history before the period (a TAL built later holds only
    accounts that had not converted yet: its conversion would be no test)."""
    terms = chosen.terms
    start = terms.period.start
    if terms.tal and terms.decided_at is not None and terms.decided_at <= start:
        return terms.tal, []
    from icp_sync import tiering
    from icp_sync.pipeline.derive import load_model
    from icp_sync.pipeline.score import score

    stored = store.versions.get(terms.version)
    model = load_model(stored.model) if stored is not None else None
    then = score(
        settings,
        store,
        history,
        now=now,
        definition=chosen.definition,
        model=model,
        as_of=start.to_pydatetime(),
        keep=False,
    )
    size = len(terms.tal) or settings.tal.size
    members, _ = tiering.build_tal(then.frame, chosen.definition, size)
    note = (
        f"the TAL in force was fixed after {start:%Y-%m-%d}: TAL conversion is tested on the "
        f"{len(members)} accounts ICP {terms.version} ranks top on the history before the period"
    )
    return frozenset(members["account_id"].astype(str)), [note]


DigestSender = Callable[[Digest], None]
"""Delivers a digest (an e-mail, a Slack message)."""


def send_digest(
    settings: Settings,
    store: Store,
    now: datetime,
    *,
    senders: Sequence[DigestSender] = (),
) -> Digest:
    """Build the weekly leadership digest of the current period and send it (the daemon's
    weekly job).

    The digest goes through the alert outbox, one per configured channel, keyed by its ISO
    week: a restart or a second run in the same week sends nothing twice, and a channel that is
    down gets it once it is back. ``senders`` are called directly as well (tests, previews).
    """
    report = build_report(settings, store, History.load(store), now=now)
    message = digest(report)
    year, week, _ = now.isocalendar()
    channels = sorted(make_sinks(settings.alerts))
    store.outbox.add(
        [
            Alert(
                delivery_key=f"leadership-digest:{year}-W{week:02d}:{channel}",
                channel=channel,
                kind="digest",
                payload=message.as_dict(),
            )
            for channel in channels
        ],
        now=now,
    )
    if channels:
        deliver_alerts(settings, store, now)
    for send in senders:
        send(message)
    log.info("digest_sent", subject=message.subject, channels=channels, link=message.link)
    return message
