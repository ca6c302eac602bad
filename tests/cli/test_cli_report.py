"""``icp-sync report`` and ``icp-sync review --period`` end to end on a planted CRM.

The generated history plants a true ICP and a recent drift (sales closing Government deals);
the ICP is derived on the history before 2026 and activated, then 2026 is reported on and
reviewed: Green outperforms, and the drift shows in revealed-vs-committed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.clirun import icp_sync

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A planted CRM with a drift, synced, its ICP derived before 2026, activated and committed
    for 2026 (Green target: 5% of new pipeline amount)."""
    folder = tmp_path_factory.mktemp("report")
    steps = [
        ("sandbox", "generate", "--accounts", "6000", "--seed", "11", "--drift", "40",
         "--out", str(folder)),
        ("sync", "--config", str(folder / "icp-sync.toml")),
        ("derive", "--as-of", "2026-01-01", "--config", str(folder / "icp-sync.toml")),
        ("activate", "v1", "--config", str(folder / "icp-sync.toml")),
        ("commit", "--period", "2026", "--target-green-share", "0.05",
         "--signatory", "Sales: Dana Lee", "--config", str(folder / "icp-sync.toml")),
    ]  # fmt: skip
    for step in steps:
        done = icp_sync(*step)
        assert done.code == 0, done.stderr
    return folder / "icp-sync.toml"


def test_the_report_shows_green_outperforming_and_the_drift(config: Path) -> None:
    """report --json: Green's win-rate edge excludes zero; a Government segment is being closed."""
    out = config.parent / "out" / "adherence.html"
    done = icp_sync(
        "report", "--period", "2026", "--out", str(out), "--json", "--config", str(config)
    )
    assert done.code == 0, done.stderr
    document = json.loads(done.stdout)
    commitment = document["commitment"]
    assert commitment["source"] == "commitment"
    assert commitment["icp_version"] == "v1"
    assert commitment["target_green_share"] == 0.05
    assert commitment["signatories"] == ["Sales: Dana Lee"]
    assert len(commitment["content_hash"]) == 64
    head = document["headline"]
    assert head["verdict"] in ("on target", "below target", "within sampling noise of the target")
    assert document["green_vs_rest"]["win_rate"]["low"] > 0
    closed = [
        d
        for d in document["revealed"]["disagreements"]
        if d["finding"] == "Red segment being closed"
    ]
    assert closed
    assert all("Government" in d["segment"] for d in closed)
    assert document["grouping"] == "owner team"
    assert {row["team"] for row in document["tables"]["teams"]} == {
        "SMB",
        "Mid-Market",
        "Enterprise",
    }
    assert any("not observable yet" in n for n in document["notes"])


def test_the_html_is_self_contained_with_csv_beside_it(config: Path) -> None:
    """The page loads no script or style from the network; each table has its CSV file."""
    out = config.parent / "self" / "report.html"
    done = icp_sync("report", "--period", "2026", "--out", str(out), "--config", str(config))
    assert done.code == 0, done.stderr
    assert str(out) in done.stdout
    page = out.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?:", page)
    assert page.count("Plotly.newPlot") == 5
    assert page.count("plotly.js v") <= 2
    lift = out.with_name("report-lift.csv").read_text(encoding="utf-8").splitlines()
    assert lift[0].startswith("group,win_rate,")
    assert {line.split(",")[0] for line in lift[1:]} == {"Green", "Yellow", "Red", "rest"}
    assert 'href="data:text/csv' in page


def test_the_review_finds_the_planted_predictions_held(config: Path) -> None:
    """review --period --json: Green vs rest and TAL vs other prospects held; a refinement file."""
    done = icp_sync("review", "--period", "2026", "--json", "--config", str(config))
    assert done.code == 0, done.stderr
    document = json.loads(done.stdout)
    verdicts = {c["prediction"]: c["verdict"] for c in document["predictions"]}
    assert verdicts["Green wins more new business than the rest"] == "held"
    assert verdicts["TAL prospects convert more than other prospects"] == "held"
    refinement = Path(document["refinement"]["file"])
    assert refinement.is_file()
    assert 'version = "v1-review-2026"' in refinement.read_text(encoding="utf-8")


def test_review_without_period_is_still_the_backtest(config: Path) -> None:
    """The existing contract of review (a version's backtest) is unchanged."""
    done = icp_sync("review", "--json", "--config", str(config))
    assert done.code == 0, done.stderr
    document = json.loads(done.stdout)
    assert {"version", "win_rate_after", "retention_after", "tal_conversion"} <= set(document)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("report", "--period", "last-year"), id="report-bad-period"),
        pytest.param(("review", "--period", "2026-13"), id="review-bad-period"),
        pytest.param(("review", "--period", "2026", "--version", "v1"), id="period-and-version"),
    ],
)
def test_bad_usage_exits_2_with_one_line(config: Path, args: tuple[str, ...]) -> None:
    """A malformed period, or a period with a version, is bad usage: exit 2, no traceback."""
    done = icp_sync(*args, "--config", str(config))
    assert done.code == 2
    assert "Traceback" not in done.stderr
    assert "--period" in done.stderr


def test_an_out_that_is_a_folder_is_bad_usage(config: Path) -> None:
    """--out naming a folder: exit 2 with one line, nothing written."""
    done = icp_sync(
        "report", "--period", "2026", "--out", str(config.parent), "--config", str(config)
    )
    assert done.code == 2
    assert "is a folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_report_before_any_icp_version_says_what_to_run(tmp_path: Path) -> None:
    """A mirror without an ICP version: exit 1, pointing at derive."""
    folder = tmp_path / "fresh"
    assert icp_sync("sandbox", "generate", "--accounts", "500", "--out", str(folder)).code == 0
    assert icp_sync("sync", "--config", str(folder / "icp-sync.toml")).code == 0
    done = icp_sync("report", "--config", str(folder / "icp-sync.toml"))
    assert done.code == 1
    assert "icp-sync derive" in done.stderr


def test_send_digest_builds_the_current_period_and_hands_it_to_every_sender(config: Path) -> None:
    """The daemon's weekly job: the digest of the year the history ends in, to each channel."""
    from datetime import UTC, datetime

    from icp_sync.config import load_settings
    from icp_sync.pipeline import send_digest
    from icp_sync.store import Store

    settings = load_settings(config)
    received: list[object] = []
    with Store.open(settings.store.url) as store:
        message = send_digest(
            settings,
            store,
            datetime(2026, 12, 1, tzinfo=UTC),
            senders=[received.append, received.append],
        )
    assert received == [message, message]
    assert message.subject.startswith("ICP adherence 2026: Green ")
    assert any("Government" in line for line in message.lines)


def test_a_period_without_a_commitment_uses_the_active_version_and_says_so(config: Path) -> None:
    """2025 has no commitment: measured against the active version, without a target."""
    out = config.parent / "2025" / "adherence.html"
    done = icp_sync(
        "report", "--period", "2025", "--out", str(out), "--json", "--config", str(config)
    )
    assert done.code == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["commitment"]["source"] == "active version"
    assert document["headline"]["verdict"] == "no target committed"
    assert "No commitment is recorded for this period" in out.read_text(encoding="utf-8")


def test_the_weekly_digest_reaches_each_channel_once_a_week_even_after_an_outage(
    config: Path,
) -> None:
    """The digest goes through the outbox: down at first, delivered once when back, never twice."""
    from datetime import UTC, datetime, timedelta

    from pydantic import SecretStr

    from icp_sync.alerts import WebhookConfig
    from icp_sync.config import load_settings
    from icp_sync.pipeline import deliver_alerts, send_digest
    from icp_sync.store import Store
    from tests.alerts_support import WebhookReceiver

    receiver = WebhookReceiver()
    loaded = load_settings(config)
    alerts = loaded.alerts.model_copy(
        update={"webhook": WebhookConfig(url=f"{receiver.url}/digest", secret=SecretStr("k"))}
    )
    settings = loaded.model_copy(update={"alerts": alerts})
    monday = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    try:
        with Store.open(settings.store.url) as store:
            send_digest(settings, store, monday)  # the receiver is down
            assert receiver.received == []
            receiver.start()
            send_digest(settings, store, monday + timedelta(hours=2))  # same week: no new one
            deliver_alerts(settings, store, monday + timedelta(hours=3))
            send_digest(settings, store, monday + timedelta(days=7))  # the next week
    finally:
        receiver.stop()
    bodies = [r.json() for r in receiver.on("/digest")]
    assert len(bodies) == 2
    assert all(b["event"] == "icp.leadership_digest" for b in bodies)
    assert bodies[0]["subject"].startswith("ICP adherence 2026: Green ")
