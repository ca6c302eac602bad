"""Every table of the state store, declared in one place.

Tables, by the repository that owns them:

- ``icp_meta`` (the facade): key/value facts about the database itself; ``schema_version``.
- ``mirror_accounts``, ``mirror_opportunities`` (mirror): the CRM mirror, one row per record
  in canonical columns, extra ``attr_`` columns as JSON in ``attrs``, a content hash
  ``row_hash`` (0 once deleted in the CRM) and ``synced_at``. Datetimes are integer
  microseconds since the epoch (UTC): exact, portable between both databases, fast to load.
- ``sync_watermarks`` (watermarks): the sync cursor per connector and object.
- ``runs`` (runs): run history, one row per command run with status and JSON summary.
- ``rejects`` (runs): records a run refused to mirror, with the reason.
- ``icp_versions`` (versions): derived ICP versions: TOML definition, evidence, model.
- ``account_scores`` (versions): score, tier and reasons per account and ICP version.
- ``tals``, ``tal_members`` (versions): Target Account Lists and their ranked members.
- ``icp_activations`` (activations): which ICP version (and TAL) is live: one row per
  activation, who and when, and the version it replaced; the newest row is the one in force.
- ``run_owners`` (runs): the host and process id of each run, to tell a killed run from a
  live one.
- ``field_state`` (ledger): what the CRM holds in each owned field, as last read or written.
- ``write_ledger`` (ledger): every write attempt per record: status, values, detail.
- ``connector_state`` (ledger): a connector's own persistent state (write windows and such).
- ``leases`` (lease): who may write (one row per lease name): owner, host, pid, since, expiry.
- ``commitments`` (commitments): annual ICP commitments, one immutable row each, named by
  their content hash; the full content as canonical JSON in ``body``. The database refuses
  UPDATE and DELETE on it (triggers), and a read re-checks the hash.
- ``deal_tiers`` (violations): the tier of each opportunity's account when the deal was first
  seen, frozen (never changed by re-scoring).
- ``violations`` (violations): out-of-ICP deals by a stable key (opportunity and rule), with
  status, first-seen and resolved times.
- ``alert_outbox`` (violations): alerts to deliver, one row per channel and event, enqueued in
  the transaction that records the violation; attempts, next try, delivered time.

A new table is declared here and created by a new step in :mod:`icp_sync.store.migrations`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from icp_sync.model import BOOLEAN, COLUMNS, DATETIME, ID_COLUMN, NUMBER, CrmObject

metadata = sa.MetaData()

meta_table = sa.Table(
    "icp_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def _mirror_table(obj: CrmObject, name: str) -> sa.Table:
    columns: list[sa.Column[Any]] = []
    for column, dtype in COLUMNS[obj].items():
        if column == ID_COLUMN[obj]:
            columns.append(sa.Column(column, sa.String(255), primary_key=True))
        elif dtype == DATETIME:
            columns.append(sa.Column(column, sa.BigInteger))
        elif dtype == NUMBER:
            columns.append(sa.Column(column, sa.Float))
        elif dtype == BOOLEAN:
            columns.append(sa.Column(column, sa.Boolean, nullable=False))
        else:
            columns.append(sa.Column(column, sa.Text))
    columns += [
        sa.Column("attrs", sa.Text),
        sa.Column("row_hash", sa.BigInteger, nullable=False),
        sa.Column("synced_at", sa.BigInteger, nullable=False),
    ]
    return sa.Table(name, metadata, *columns)


MIRROR: dict[CrmObject, sa.Table] = {
    CrmObject.ACCOUNT: _mirror_table(CrmObject.ACCOUNT, "mirror_accounts"),
    CrmObject.OPPORTUNITY: _mirror_table(CrmObject.OPPORTUNITY, "mirror_opportunities"),
}

watermarks = sa.Table(
    "sync_watermarks",
    metadata,
    sa.Column("connector", sa.String(64), primary_key=True),
    sa.Column("object", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("command", sa.String(64), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text),
)

rejects = sa.Table(
    "rejects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("object", sa.String(32), nullable=False),
    sa.Column("record_id", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

icp_versions = sa.Table(
    "icp_versions",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("model_summary", sa.Text, nullable=False),
    sa.Column("model", sa.LargeBinary),
)

account_scores = sa.Table(
    "account_scores",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(255), primary_key=True),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("rule_tier", sa.String(16), nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("segment", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("overridden", sa.Boolean, nullable=False),
    sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
)

tals = sa.Table(
    "tals",
    metadata,
    sa.Column("tal_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("coverage", sa.Text, nullable=False),
)

tal_members = sa.Table(
    "tal_members",
    metadata,
    sa.Column("tal_id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.String(255), primary_key=True),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("segment", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
)

connector_state = sa.Table(
    "connector_state",
    metadata,
    sa.Column("connector", sa.String(64), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

field_state = sa.Table(
    "field_state",
    metadata,
    sa.Column("object", sa.String(32), primary_key=True),
    sa.Column("record_id", sa.String(255), primary_key=True),
    sa.Column("field", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

write_ledger = sa.Table(
    "write_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("object", sa.String(32), nullable=False),
    sa.Column("record_id", sa.String(255), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("values", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

icp_activations = sa.Table(
    "icp_activations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("tal_id", sa.Integer),
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("activated_by", sa.String(255), nullable=False),
    sa.Column("previous_version", sa.String(64)),
    sa.Column("note", sa.Text, nullable=False),
)

run_owners = sa.Table(
    "run_owners",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
)

commitments = sa.Table(
    "commitments",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("period", sa.String(64), nullable=False, index=True),
    sa.Column("icp_version", sa.String(64), nullable=False),
    sa.Column("supersedes", sa.String(64)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)

deal_tiers = sa.Table(
    "deal_tiers",
    metadata,
    sa.Column("opportunity_id", sa.String(255), primary_key=True),
    sa.Column("account_id", sa.String(255)),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("icp_version", sa.String(64), nullable=False),
    sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=False),
)

violations = sa.Table(
    "violations",
    metadata,
    sa.Column("violation_key", sa.String(400), primary_key=True),
    sa.Column("opportunity_id", sa.String(255), nullable=False, index=True),
    sa.Column("account_id", sa.String(255)),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("tier_at_creation", sa.String(16)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("resolution", sa.String(32)),
    sa.Column("commitment_hash", sa.String(64)),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

alert_outbox = sa.Table(
    "alert_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_key", sa.String(500), nullable=False, unique=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
)
