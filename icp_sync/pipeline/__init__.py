"""The only wiring of connectors, the state store and the pure core; the CLI calls it.

One module per command: ``sync`` (with its write-back step in ``apply``, the compliance
``monitor`` after it, alerts through the outbox in ``alerting``, the second CRM of a
``salesforce+hubspot`` config in ``dual``, and the daemon's kept connector in ``session``),
``commitment`` (``commit``, the commitments shown), ``derive``, ``score`` (``tal``,
``review``, derive with its backtest), ``report`` (adherence, dashboard data, digest),
``versions`` (``activate``, ``versions``; the plan it shares with the sync is in
``planning``), ``check`` and ``fields`` (``setup-fields``). The daemon's jobs are wired from
these in :mod:`icp_sync.daemon`.
Each run loads the mirror once (:class:`~icp_sync.pipeline.history.History`).
"""

from __future__ import annotations

from icp_sync.pipeline.alerting import DeliveryResult, deliver_alerts
from icp_sync.pipeline.check import CheckReport, check
from icp_sync.pipeline.commitment import commit
from icp_sync.pipeline.derive import DeriveResult, derive_icp
from icp_sync.pipeline.dual import sync
from icp_sync.pipeline.fields import setup_fields
from icp_sync.pipeline.history import History
from icp_sync.pipeline.monitor import MonitorResult, monitor
from icp_sync.pipeline.report import (
    build_report,
    dashboard,
    period_review,
    send_digest,
    write_report,
)
from icp_sync.pipeline.score import derive_report, review, score, tal
from icp_sync.pipeline.sync import ObjectSync, SyncResult
from icp_sync.pipeline.versions import activate, active_definition, version_list

__all__ = [
    "CheckReport",
    "DeliveryResult",
    "DeriveResult",
    "History",
    "MonitorResult",
    "ObjectSync",
    "SyncResult",
    "activate",
    "active_definition",
    "build_report",
    "check",
    "commit",
    "dashboard",
    "deliver_alerts",
    "derive_icp",
    "derive_report",
    "monitor",
    "period_review",
    "review",
    "score",
    "send_digest",
    "setup_fields",
    "sync",
    "tal",
    "version_list",
    "write_report",
]
