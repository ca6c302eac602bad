"""The state store package: the :class:`Store` facade, its record types and schema version.

SQLAlchemy Core over SQLite (default) or PostgreSQL. ``Store.open(url)`` creates or upgrades
the schema (:mod:`.migrations`, tables in :mod:`.schema`) and exposes one repository per
concern: ``store.mirror``, ``store.watermarks``, ``store.runs``, ``store.versions``,
``store.ledger``, ``store.lease``, ``store.activations``, ``store.commitments``.
"""

from __future__ import annotations

from icp_sync.store.activations import Activation, ActivationRepository
from icp_sync.store.commitments import CommitmentRepository
from icp_sync.store.facade import Store
from icp_sync.store.lease import HeldLease, LeaseHolder, LeaseRepository
from icp_sync.store.ledger import LedgerRepository, Rejection, StoredConnectorState
from icp_sync.store.migrations import SCHEMA_VERSION
from icp_sync.store.mirror import MirrorRepository, MirrorResult
from icp_sync.store.runs import RunRecord, RunRepository
from icp_sync.store.versions import IcpVersion, StoredTal, VersionRepository
from icp_sync.store.watermarks import WatermarkRepository

__all__ = [
    "SCHEMA_VERSION",
    "Activation",
    "ActivationRepository",
    "CommitmentRepository",
    "HeldLease",
    "IcpVersion",
    "LeaseHolder",
    "LeaseRepository",
    "LedgerRepository",
    "MirrorRepository",
    "MirrorResult",
    "Rejection",
    "RunRecord",
    "RunRepository",
    "Store",
    "StoredConnectorState",
    "StoredTal",
    "VersionRepository",
    "WatermarkRepository",
]
