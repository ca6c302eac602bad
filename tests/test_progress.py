"""Progress of long steps: reported to a listener when one listens, shown only on a terminal."""

from __future__ import annotations

import io
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from icp_sync import progress
from icp_sync.cli.progress import bars, wanted
from icp_sync.config import load_settings
from icp_sync.pipeline import sync
from icp_sync.store import Store
from tests.clirun import icp_sync
from tests.conftest import EXAMPLES


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def started(self, key: int, description: str, total: float | None) -> None:
        self.events.append(("started", description))

    def advanced(self, key: int, amount: float) -> None:
        self.events.append(("advanced", amount))

    def finished(self, key: int) -> None:
        self.events.append(("finished", key))


def test_a_sync_reports_its_reading_steps_with_record_counts(tmp_path: Path) -> None:
    """Each object's read is a step advanced by the records read; every step finishes."""
    shutil.copytree(EXAMPLES / "maven", tmp_path / "maven", ignore=shutil.ignore_patterns("*.db*"))
    settings = load_settings(tmp_path / "maven" / "icp-sync.toml")
    recorder = _Recorder()
    with Store.open(settings.store.url) as store, progress.listening(recorder):
        result = sync(settings, store, run_id="p", now=datetime.now(UTC))
    started = [d for kind, d in recorder.events if kind == "started"]
    read = sum(a for kind, a in recorder.events if kind == "advanced")

    assert "reading account records" in started
    assert "reading opportunity records" in started
    assert read == sum(o.extracted for o in result.objects.values())
    assert len([e for e in recorder.events if e[0] == "finished"]) == len(started)


def test_without_a_listener_steps_cost_nothing_and_show_nothing() -> None:
    """No listener: a step is a no-op."""
    with progress.step("idle", total=3) as advance:
        advance(3)


def test_bars_are_wanted_only_when_every_stream_is_a_terminal() -> None:
    """A pipe or a file on either stream turns the bars off."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wanted(Tty(), Tty())
    assert not wanted(Tty(), io.StringIO())
    assert not wanted(io.StringIO(), Tty())
    out = Tty()
    with bars(out, enabled=True), progress.step("reading", total=10) as advance:
        advance(10)
    assert "reading" in out.getvalue()


def test_a_piped_sync_prints_no_progress_bar(tmp_path: Path) -> None:
    """`icp-sync sync` into pipes writes no bar characters to either stream."""
    shutil.copytree(EXAMPLES / "maven", tmp_path / "maven", ignore=shutil.ignore_patterns("*.db*"))
    outcome = icp_sync("sync", "--config", str(tmp_path / "maven" / "icp-sync.toml"))
    assert outcome.code == 0, outcome.stderr
    assert "reading account records" not in outcome.stdout + outcome.stderr
    assert "loading the mirror" not in outcome.stdout + outcome.stderr
