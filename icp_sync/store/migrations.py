"""Versioned schema creation and upgrade: one step per schema version, applied in order.

A database records its version in ``icp_meta.schema_version``. Opening a store applies every
step above that version, and records each one, in the opener's transaction. Steps are never
edited once released: a schema change is a new step appended to :data:`STEPS`, its tables
declared in :mod:`icp_sync.store.schema`.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from icp_sync.errors import StateStoreError
from icp_sync.store import schema
from icp_sync.store._base import upsert


def _v1(conn: Connection) -> None:
    """The mirror, sync watermarks, run history and rejects."""
    tables = [schema.meta_table, *schema.MIRROR.values(), schema.watermarks]
    schema.metadata.create_all(conn, tables=[*tables, schema.runs, schema.rejects])


def _v2(conn: Connection) -> None:
    """ICP versions, account scores and Target Account Lists."""
    tables = [schema.icp_versions, schema.account_scores, schema.tals, schema.tal_members]
    schema.metadata.create_all(conn, tables=tables)


def _v3(conn: Connection) -> None:
    """Connector state, CRM field state and the write ledger."""
    tables = [schema.connector_state, schema.field_state, schema.write_ledger]
    schema.metadata.create_all(conn, tables=tables)


def _v4(conn: Connection) -> None:
    """The single-writer lease."""
    schema.metadata.create_all(conn, tables=[schema.leases])


def _v5(conn: Connection) -> None:
    """ICP activations (which version is live) and the process that owns each run."""
    schema.metadata.create_all(conn, tables=[schema.icp_activations, schema.run_owners])


def _v6(conn: Connection) -> None:
    """ICP commitments (immutable), frozen deal tiers, violations and the alert outbox."""
    tables = [schema.commitments, schema.deal_tiers, schema.violations, schema.alert_outbox]
    schema.metadata.create_all(conn, tables=tables)
    for statement in _IMMUTABLE.get(conn.dialect.name, ()):
        conn.execute(sa.text(statement))


_REFUSAL = "commitments are immutable: record a superseding commitment instead"
_IMMUTABLE: dict[str, tuple[str, ...]] = {
    "sqlite": tuple(
        f"CREATE TRIGGER commitments_no_{op.lower()} BEFORE {op} ON commitments "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
        for op in ("UPDATE", "DELETE")
    ),
    "postgresql": (
        (
            "CREATE FUNCTION commitments_immutable() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_REFUSAL}'; END $$"
        ),
        (
            "CREATE TRIGGER commitments_immutable BEFORE UPDATE OR DELETE ON commitments "
            "FOR EACH ROW EXECUTE FUNCTION commitments_immutable()"
        ),
    ),
}
"""Database-level refusal of any change to a stored commitment, per dialect."""


STEPS: tuple[Callable[[Connection], None], ...] = (_v1, _v2, _v3, _v4, _v5, _v6)
"""Step ``n`` (1-based) brings a database from version ``n - 1`` to ``n``."""

SCHEMA_VERSION = len(STEPS)


def current_version(conn: Connection) -> int:
    """The schema version of the database (0 when it is empty)."""
    if not sa.inspect(conn).has_table(schema.meta_table.name):
        return 0
    value = conn.execute(
        sa.select(schema.meta_table.c.value).where(schema.meta_table.c.key == "schema_version")
    ).scalar_one_or_none()
    return int(value) if value is not None else 0


def migrate(conn: Connection, *, target: int = SCHEMA_VERSION) -> None:
    """Bring the database up to ``target`` (the current version unless told otherwise).

    Raises:
        StateStoreError: If the database was written by a newer version of icp-sync.
    """
    current = current_version(conn)
    if current > SCHEMA_VERSION:
        raise StateStoreError(
            f"the state store has schema version {current}, newer than this "
            f"icp-sync understands ({SCHEMA_VERSION}); upgrade icp-sync"
        )
    for version in range(current + 1, target + 1):
        STEPS[version - 1](conn)
        row = {"key": "schema_version", "value": str(version)}
        conn.execute(upsert(conn, schema.meta_table, "key"), [row])
