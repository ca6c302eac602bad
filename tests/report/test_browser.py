"""The dashboard in a real browser, served by a running daemon (``icp-sync run``).

Headless Chromium (Debian's ``chromium``) driven by Playwright loads the dashboard: the charts
render as SVG with data, a request without the token is refused, and a screenshot is kept in
``build/test-artifacts/``. Without Chromium the test is skipped, except in CI (``CI=true``),
where a missing browser is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.clirun import icp_sync

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "build" / "test-artifacts"
TOKEN = "browser-test-token"

pytestmark = pytest.mark.slow


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing in CI: install Debian's chromium package")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A synthetic CRM, derived, and ``icp-sync run`` serving it with a dashboard token."""
    _require_chromium()
    folder = tmp_path_factory.mktemp("dashboard")
    generated = icp_sync(
        "sandbox", "generate", "--accounts", "3000", "--seed", "5",
        "--out", str(folder),
    )  # fmt: skip
    assert generated.code == 0, generated.stderr
    config = folder / "icp-sync.toml"
    with config.open("a", encoding="utf-8") as file:
        file.write(
            '\n[dashboard]\ntoken = "env:ICP_SYNC_DASHBOARD_TOKEN"\n[digest]\nenabled = true\n'
        )
    env = {"ICP_SYNC_DASHBOARD_TOKEN": TOKEN}
    for step in (("sync",), ("derive",), ("tal", "--size", "100")):
        done = icp_sync(*step, "--config", str(config), env=env)
        assert done.code == 0, done.stderr
    port = _free_port()
    log = folder / "daemon.log"
    with log.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "icp_sync", "run", "--config", str(config),
             "--listen", f"127.0.0.1:{port}", "--interval", "3600"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert process.poll() is None, log.read_text(encoding="utf-8")
            try:
                if requests.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the daemon did not become ready"
            time.sleep(0.2)
        yield base
        assert '"digest"' in log.read_text(encoding="utf-8"), "the weekly digest is not scheduled"
    finally:
        process.terminate()
        process.wait(30)


def test_the_dashboard_renders_its_charts_in_chromium(daemon: str) -> None:
    """Logged in by token link: every chart draws SVG traces; a screenshot is saved."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1800})
            refused = page.goto(f"{daemon}/dashboard", timeout=120_000)
            assert refused is not None
            assert refused.status == 401
            assert page.locator(".main-svg").count() == 0
            response = page.goto(f"{daemon}/dashboard?token={TOKEN}", timeout=120_000)
            assert response is not None
            assert response.status == 200
            assert "token=" not in page.url
            page.wait_for_selector("#chart-green-share .main-svg", timeout=60_000)
            for chart in (
                "chart-green-share",
                "chart-tier-mix",
                "chart-leaderboard",
                "chart-tal-funnel",
                "chart-win-rate",
            ):
                traces = page.locator(f"#{chart} .main-svg .trace")
                assert traces.count() > 0, f"{chart} drew no trace"
                marks = page.locator(f"#{chart} .main-svg .trace path")
                assert marks.count() > 0, f"{chart} drew no data"
                drawn, room = page.evaluate(
                    f"[+document.querySelector('#{chart} .main-svg').getAttribute('width'), "
                    f"document.getElementById('{chart}').parentElement.clientWidth]"
                )
                assert 0 < drawn <= room, f"{chart} is {drawn}px wide in {room}px: clipped"
            assert page.locator("table[data-table=revealed_disagreements]").count() == 1
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
