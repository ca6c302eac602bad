"""The ledger repository, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from icp_sync.model import CrmObject
from icp_sync.store import Store, StoredConnectorState


def test_field_values_are_upserted_and_pivoted(store: Store, now: datetime) -> None:
    """Field values read back replace earlier ones per record and field; one row per record."""
    store.ledger.record_field_values(
        CrmObject.ACCOUNT,
        {"A1": {"ICP_Tier": "Green", "ICP_Score": "80"}, "A2": {"ICP_Tier": "Red"}},
        source="read",
        now=now,
    )
    store.ledger.record_field_values(
        CrmObject.ACCOUNT, {"A1": {"ICP_Tier": "Yellow"}}, source="written", now=now
    )
    store.ledger.record_field_values(CrmObject.ACCOUNT, {}, source="read", now=now)

    values = store.ledger.field_values(CrmObject.ACCOUNT)

    assert values.loc["A1", "ICP_Tier"] == "Yellow"
    assert values.loc["A1", "ICP_Score"] == "80"
    assert values.loc["A2", "ICP_Tier"] == "Red"
    assert store.ledger.field_values(CrmObject.OPPORTUNITY).empty
    only = store.ledger.field_values(CrmObject.ACCOUNT, ids=["A2", "A9"])
    assert only.index.tolist() == ["A2"]
    assert only.loc["A2", "ICP_Tier"] == "Red"


def test_many_field_values_are_all_kept(store: Store, now: datetime) -> None:
    """More field values than one write chunk are all stored."""
    values = {f"A{i}": {"ICP_Tier": "Green", "ICP_Score": str(i)} for i in range(3_000)}

    store.ledger.record_field_values(CrmObject.ACCOUNT, values, source="read", now=now)

    assert store.ledger.field_values(CrmObject.ACCOUNT).shape == (3_000, 2)


def test_write_log_counts_per_run(store: Store, now: datetime) -> None:
    """Logged writes are counted per run and status; an empty log writes nothing."""
    store.ledger.log_writes(
        "r1",
        CrmObject.ACCOUNT,
        [
            ("A1", "ok", {"ICP_Tier": "Green"}, ""),
            ("A2", "rejected", {"ICP_Tier": "Red"}, "locked"),
        ],
        now=now,
    )
    store.ledger.log_writes("r2", CrmObject.ACCOUNT, [("A3", "ok", {}, "")], now=now)
    store.ledger.log_writes("r3", CrmObject.ACCOUNT, [], now=now)

    assert store.ledger.counts("r1") == {"ok": 1, "rejected": 1}
    assert store.ledger.counts("r2") == {"ok": 1}
    assert store.ledger.counts("r3") == {}


def test_refused_writes_follow_the_latest_attempt(store: Store, now: datetime) -> None:
    """A record counts as refused only while its latest write attempt was rejected."""
    later = now + timedelta(minutes=1)
    store.ledger.log_writes(
        "r1",
        CrmObject.ACCOUNT,
        [("A1", "rejected", {"ICP_Tier": "Green"}, "x"), ("A2", "rejected", {"b": 1, "a": 2}, "")],
        now=now,
    )
    store.ledger.log_writes("r2", CrmObject.ACCOUNT, [("A1", "ok", {}, "")], now=later)
    store.ledger.log_writes("r2", CrmObject.OPPORTUNITY, [("O1", "rejected", {}, "")], now=later)

    refused = store.ledger.rejected_writes(CrmObject.ACCOUNT)

    assert refused == {"A2": '{"a": 2, "b": 1}'}
    assert store.ledger.rejected_writes(CrmObject.OPPORTUNITY) == {"O1": "{}"}


def test_connector_state_round_trips(store: Store, now: datetime) -> None:
    """A connector's state is replaced as a whole and kept apart from other connectors'."""
    state = StoredConnectorState(store.ledger, "salesforce")
    assert state.load() == {}

    state.save({"window": {"start": now}, "calls": 3})
    state.save({"calls": 4})
    store.ledger.save_connector_state("hubspot", {"cursor": "x"}, now=now)

    assert state.load() == {"calls": 4}
    assert store.ledger.load_connector_state("hubspot") == {"cursor": "x"}


def test_known_values_and_manual_fields(store: Store, now: datetime) -> None:
    """known_values returns what is held for the asked records; manual_fields lists the
    cells last recorded as manual edits, until a write replaces them."""
    ledger = store.ledger
    ledger.record_field_values(
        CrmObject.ACCOUNT, {"A1": {"tier": "Green"}, "A2": {"tier": "Red"}}, source="read", now=now
    )
    ledger.record_field_values(
        CrmObject.ACCOUNT, {"A2": {"tier": "Yellow"}}, source="manual", now=now
    )

    assert ledger.known_values(CrmObject.ACCOUNT, ["A2", "A9"]) == {"A2": {"tier": "Yellow"}}
    assert ledger.manual_fields(CrmObject.ACCOUNT) == {("A2", "tier")}
    ledger.record_field_values(
        CrmObject.ACCOUNT, {"A2": {"tier": "Red"}}, source="written", now=now
    )
    assert ledger.manual_fields(CrmObject.ACCOUNT) == set()


def test_rejections_count_the_refusals_since_the_last_write(store: Store, now: datetime) -> None:
    """Each refused record carries its refused values, how often in a row, and when last."""
    minute = timedelta(minutes=1)
    entries = [
        ("A1", "rejected", {"t": 1}),
        ("A1", "written", {"t": 1}),
        ("A1", "rejected", {"t": 2}),
        ("A1", "deferred", {}),
        ("A1", "rejected", {"t": 2}),
        ("A2", "rejected", {"t": 3}),
        ("A3", "rejected", {"t": 4}),
        ("A3", "written", {"t": 4}),
    ]
    for i, (record, status, values) in enumerate(entries):
        store.ledger.log_writes(
            f"r{i}", CrmObject.ACCOUNT, [(record, status, values, "")], now=now + i * minute
        )

    found = store.ledger.rejections(CrmObject.ACCOUNT)

    assert set(found) == {"A1", "A2"}
    assert found["A1"].times == 2
    assert found["A1"].values == '{"t": 2}'
    assert found["A1"].last_at == now + 4 * minute
    assert found["A2"].times == 1


def test_a_write_outcome_records_values_and_ledger_together(store: Store, now: datetime) -> None:
    """One write call's outcome stores what the CRM now holds and its ledger entries; an empty
    outcome stores nothing."""
    store.ledger.record_outcome(
        CrmObject.ACCOUNT,
        {"A1": {"ICP_Tier": "Green"}, "A2": {}},
        [("A1", "written", {"ICP_Tier": "Green"}, ""), ("A2", "rejected", {"x": 1}, "rule")],
        run_id="r1",
        now=now,
    )
    store.ledger.record_outcome(CrmObject.ACCOUNT, {"A3": {}}, [], run_id="r2", now=now)

    values = store.ledger.field_values(CrmObject.ACCOUNT)

    assert values.index.tolist() == ["A1"]
    assert values.loc["A1", "ICP_Tier"] == "Green"
    assert store.ledger.counts("r1") == {"written": 1, "rejected": 1}
    assert store.ledger.counts("r2") == {}
    assert store.ledger.rejected_writes(CrmObject.ACCOUNT) == {"A2": '{"x": 1}'}
