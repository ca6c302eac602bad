"""``icp-sync demo``: the whole product, end to end, on data that ships with it.

Each step prints the command a user would type and runs it for real, in a scratch folder, so
the demo never touches the user's own files.
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomlkit
from rich.table import Table

from icp_sync.console import stdout

if TYPE_CHECKING:
    from icp_sync.sandbox.service import Sandbox  # noqa: TID251

__all__ = ["examples_folder", "run"]

Invoke = Callable[[list[str]], object]
"""Runs one ``icp-sync`` command line in-process (the CLI passes its own app)."""


def examples_folder() -> Path:
    """The bundled example exports: inside the installed package, else in the source tree."""
    here = Path(__file__).resolve().parent
    installed = here / "examples"
    return installed if installed.is_dir() else here.parent / "examples"


def run(workdir: Path | None, *, invoke: Invoke) -> None:
    """Run every demo step in ``workdir`` (a fresh temporary folder by default)."""
    # absolute: the configs the demo writes name files relative to their own folder
    workdir = (workdir or Path(tempfile.mkdtemp(prefix="icp-sync-demo-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    stdout.rule("[bold]icp-sync demo[/]")
    stdout.print(f"working in {workdir}")

    def icp_sync(*args: str) -> None:
        stdout.print(f"\n[bold cyan]$ icp-sync {shlex.join(args)}[/]")
        invoke(list(args))

    _exports(workdir, icp_sync)
    _derivation(workdir, icp_sync)
    _salesforce(workdir, icp_sync)
    _both_crms(workdir, icp_sync)

    stdout.rule("[bold green]demo finished[/]")
    stdout.print(f"State stores, configs and reports are in {workdir}; rerun any command above.")


def _example(name: str, workdir: Path) -> Path:
    target = workdir / name
    shutil.copytree(examples_folder() / name, target, ignore=shutil.ignore_patterns("*.db*"))
    config = target / "icp-sync.toml"
    _quiet(config)
    return config


def _exports(workdir: Path, _icp_sync: Callable[..., None]) -> None:
    stdout.rule("1. A real, messy CRM export: Maven Analytics B2B pipeline")
    maven = _example("maven", workdir)
    _icp_sync("check", "--config", str(maven))
    _icp_sync("sync", "--config", str(maven))

    stdout.rule("2. Nothing changed since the last sync: nothing is read")
    _icp_sync("sync", "--config", str(maven))

    stdout.rule("3. Too little evidence is said plainly: 85 accounts propose no Green segment")
    _icp_sync("derive", "--config", str(maven))

    stdout.rule("4. A SaaS subscription and churn export: RavenStack")
    _icp_sync("sync", "--config", str(_example("ravenstack", workdir)))


def _derivation(workdir: Path, _icp_sync: Callable[..., None]) -> None:
    stdout.rule("5. Five years of a B2B SaaS CRM (synthetic, with a known true ICP)")
    data = workdir / "crm-export"
    _icp_sync(
        "sandbox", "generate", "--accounts", "20000", "--seed", "7", "--drift", "60",
        "--out", str(data),
    )  # fmt: skip
    _quiet(data / "icp-sync.toml")
    config = str(data / "icp-sync.toml")
    _icp_sync("sync", "--config", config)

    stdout.rule("6. The ICP, derived from which segments retain, expand and win (a proposal)")
    _icp_sync("derive", "--config", config)
    truth = json.loads((data / "truth.json").read_text(encoding="utf-8"))
    stdout.print("planted in the data (truth.json):")
    for tier in ("green", "red"):
        for rule in truth[f"{tier}_segments"]:
            stdout.print(f"  {tier.title():5} {_rule(rule)}")

    stdout.rule("7. A Target Account List proposal: best-fit prospects, with reasons")
    _icp_sync("tal", "--config", config, "--size", "15")

    stdout.rule("8. The falsifiable test: derive on history before 2025, see what happened after")
    _icp_sync("derive", "--config", config, "--as-of", "2025-01-01")
    _icp_sync("review", "--config", config)
    _leadership(workdir, config, _icp_sync)


def _leadership(workdir: Path, config: str, _icp_sync: Callable[..., None]) -> None:
    stdout.rule("9. Leadership: the ICP agreed for 2026, how sales kept to it, and the review")
    stdout.print(
        "planted in the data: in the last 90 days sales closed 60 deals in Government, a Red "
        "segment"
    )
    _icp_sync("derive", "--config", config, "--as-of", "2026-01-01")
    _icp_sync("activate", "v3", "--config", config)
    _icp_sync(
        "commit", "--config", config, "--period", "2026", "--target-green-share", "0.06",
        "--signatory", "Sales: Dana Lee", "--signatory", "Finance: Sam Roy",
    )  # fmt: skip
    report = workdir / "report" / "adherence-2026.html"
    _icp_sync("report", "--config", config, "--period", "2026", "--out", str(report))
    stdout.print(f"[bold]adherence report (open it in a browser): {report}[/]")
    _icp_sync("review", "--config", config, "--period", "2026")


def _salesforce(workdir: Path, _icp_sync: Callable[..., None]) -> None:
    from icp_sync.sandbox.service import Sandbox, SandboxSettings  # noqa: TID251

    stdout.rule("10. A Salesforce org (the built-in sandbox, driven over its real REST API)")
    stdout.print("[dim]$ icp-sync sandbox serve --accounts 3000 --write-config sf.toml[/]")
    settings = SandboxSettings(directory=workdir / "sandbox", accounts=3000, seed=3)
    with Sandbox(settings) as sandbox:
        config = sandbox.write_config(workdir / "sf.toml")
        _quiet(config)
        _icp_sync("check", "--config", str(config))
        _icp_sync("setup-fields", "--config", str(config))
        stdout.rule("11. First cycle: extract, derive and activate v1, write tier and TAL back")
        _icp_sync("sync", "--config", str(config))
        _show_records(sandbox, "What a sales rep now sees on the Account record")

        stdout.rule("12. A new derivation is a proposal: the CRM changes only once it is activated")
        _icp_sync("derive", "--config", str(config))
        _icp_sync("sync", "--config", str(config))
        _icp_sync("versions", "--config", str(config))
        _icp_sync("activate", "v2", "--dry-run", "--config", str(config))
        _icp_sync("activate", "v2", "--config", str(config))
        _icp_sync("sync", "--config", str(config))

        stdout.rule("13. Reps set tier overrides by hand; the next cycle writes only those")
        _override_by_hand(sandbox, count=3, tier="Red")
        _icp_sync("sync", "--config", str(config))
        stdout.rule("14. Nothing changed: a cycle costs a handful of API calls and writes nothing")
        _icp_sync("sync", "--config", str(config))
        _compliance(workdir, sandbox, config, _icp_sync)
        stdout.rule("17. The daemon: scheduled cycles, a rep's edit picked up, health and metrics")
        _daemon(sandbox, config)


def _compliance(
    workdir: Path, sandbox: Sandbox, config: Path, _icp_sync: Callable[..., None]
) -> None:
    stdout.rule("15. The annual ICP commitment: the live version and TAL, frozen for 2027")
    _icp_sync(
        "commit", "--period", "2027", "--target-green-share", "0.7",
        "--target", "max_out_of_icp_share=0.05", "--signatory", "Sales: Dana Lee",
        "--signatory", "Marketing: Ari Moss", "--signatory", "Finance: Sam Roe",
        "--config", str(config),
    )  # fmt: skip
    stdout.rule("16. A new deal on a Red account: flagged, alerted to RevOps, then resolved")
    receiver = _Receiver()
    secret = workdir / "webhook-secret"
    secret.write_text("demo-signing-key\n", encoding="utf-8")
    document = tomlkit.parse(config.read_text(encoding="utf-8"))
    alerts = document.setdefault("alerts", tomlkit.table())
    alerts["webhook"] = {"url": f"{receiver.url}/icp-alerts", "secret": f"file:{secret}"}
    config.write_text(tomlkit.dumps(document), encoding="utf-8")
    stdout.print(
        f"[dim]a webhook receiver listens on {receiver.url}; \\[alerts.webhook] points at it[/]"
    )
    try:
        deal = _red_deal(sandbox)
        _icp_sync("sync", "--config", str(config))
        _show_alerts(receiver, secret.read_text(encoding="utf-8").strip())
        _icp_sync("sync", "--config", str(config))
        stdout.print(f"alerts received after the next cycle: {len(receiver.received)} (no repeat)")
        _, rows = sandbox.org.query(
            f"SELECT OwnerId FROM Opportunity WHERE Id = '{deal}'", include_deleted=False
        )
        sandbox.org.update(
            "Opportunity", deal, {"StageName": "Closed Lost"}, user=rows[0]["OwnerId"]
        )
        stdout.print("  the rep closes the deal as lost")
        _icp_sync("sync", "--config", str(config))
        _icp_sync("monitor", "--config", str(config))
    finally:
        receiver.stop()


def _red_deal(sandbox: Sandbox) -> str:
    _, rows = sandbox.org.query(
        "SELECT Id, Name, OwnerId FROM Account WHERE ICP_Tier__c = 'Red' ORDER BY Name LIMIT 1",
        include_deleted=False,
    )
    account = rows[0]
    deal = sandbox.org.insert(
        "Opportunity",
        {
            "Name": f"{account['Name']} - platform",
            "AccountId": account["Id"],
            "StageName": "Prospecting",
            "CloseDate": "2027-03-31",
            "Type": "New Business",
            "LeadSource": "Outbound",
            "Amount": 48000,
        },
        user=account["OwnerId"],
    )
    stdout.print(f"  a rep opens a new-business deal on {account['Name']} (Red): {deal}")
    return deal


def _show_alerts(receiver: _Receiver, secret: str) -> None:
    import time

    from icp_sync.alerts import verify  # noqa: TID251

    for headers, body in receiver.received:
        payload = json.loads(body)
        valid = verify(secret, headers.get("X-ICP-Sync-Signature", ""), body, now=time.time())
        stdout.print(
            f"  webhook received: {payload['opportunity_name']} - {payload['reason']} "
            f"(tier at creation {payload['tier_at_creation']}; signature "
            f"{'valid' if valid else 'INVALID'}; delivery {headers.get('X-ICP-Sync-Delivery')})"
        )


class _Receiver:
    """A webhook receiver on 127.0.0.1 that keeps what it is sent."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[tuple[dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.received = received
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _both_crms(workdir: Path, _icp_sync: Callable[..., None]) -> None:
    from icp_sync.sandbox.service import Sandbox, SandboxSettings  # noqa: TID251

    stdout.rule("18. Marketing in HubSpot, sales in Salesforce: one ICP, the same tier in both")
    stdout.print(
        "[dim]$ icp-sync sandbox serve --accounts 1500 --crm salesforce+hubspot "
        "--write-config both.toml[/]"
    )
    settings = SandboxSettings(directory=workdir / "both", accounts=1500, seed=5, linked=True)
    with Sandbox(settings) as sandbox:
        # a folder of its own: the config's state store sits beside it
        config = sandbox.write_config(workdir / "both-crms" / "both.toml", crm="salesforce+hubspot")
        _quiet(config)
        document = tomlkit.parse(config.read_text(encoding="utf-8"))
        document["hubspot"]["native_icp"] = True
        config.write_text(tomlkit.dumps(document), encoding="utf-8")
        stdout.print("[dim]both.toml: [hubspot] native_icp = true[/]")
        _icp_sync("setup-fields", "--config", str(config))
        _icp_sync("sync", "--config", str(config))
        _show_both(sandbox)
        stdout.rule("19. Nothing changed in either CRM: nothing is written to either")
        _icp_sync("sync", "--config", str(config))


def _show_both(sandbox: Sandbox) -> None:
    _, rows = sandbox.org.query(
        "SELECT Id, Name, ICP_Tier__c, ICP_Score__c FROM Account WHERE ICP_TAL__c = true "
        "ORDER BY ICP_TAL_Rank__c LIMIT 40",
        include_deleted=False,
    )
    accounts = {str(r["Id"]): r for r in rows}
    table = Table(title="The same account in both CRMs (matched by HubSpot's Salesforce id)")
    for column in ("Company", "Salesforce tier", "HubSpot icp_tier", "hs_ideal_customer_profile"):
        table.add_column(column)
    with sandbox.portal.lock:
        companies = list(sandbox.portal.records["companies"].values())
    for company in companies:
        account = accounts.get(str(company.properties.get("salesforceaccountid")))
        if account is None or table.row_count >= 4:
            continue
        table.add_row(
            str(account["Name"]),
            str(account["ICP_Tier__c"]),
            str(company.properties.get("icp_tier")),
            str(company.properties.get("hs_ideal_customer_profile")),
        )
    stdout.print(table)


def _quiet(config: Path) -> None:
    """Keep the demo's output to what a user reads: warnings and errors only in the log."""
    document = tomlkit.parse(config.read_text(encoding="utf-8"))
    logging = document.setdefault("logging", tomlkit.table())
    logging["level"] = "warning"
    config.write_text(tomlkit.dumps(document), encoding="utf-8")


def _rule(rule: dict[str, Any]) -> str:
    return " & ".join(f"{k} = {v}" for k, v in rule.items())


def _accounts(sandbox: Sandbox) -> list[dict[str, Any]]:
    _, rows = sandbox.org.query(
        "SELECT Id, Name, OwnerId, Industry, ICP_Tier__c, ICP_Score__c, ICP_TAL__c, "
        "ICP_TAL_Rank__c, ICP_Reasons__c FROM Account WHERE ICP_TAL__c = true "
        "ORDER BY ICP_TAL_Rank__c LIMIT 3",
        include_deleted=False,
    )
    return rows


def _show_records(sandbox: Sandbox, title: str) -> None:
    table = Table(title=title, show_lines=True)
    for column in ("Account", "ICP Tier", "Score", "TAL rank", "Reasons"):
        table.add_column(column, overflow="fold")
    for row in _accounts(sandbox):
        table.add_row(
            str(row["Name"]),
            str(row["ICP_Tier__c"]),
            f"{row['ICP_Score__c']:.0f}",
            f"{row['ICP_TAL_Rank__c']:.0f}",
            str(row["ICP_Reasons__c"])[:300],
        )
    stdout.print(table)


def _override_by_hand(sandbox: Sandbox, *, count: int, tier: str) -> None:
    _, rows = sandbox.org.query(
        f"SELECT Id, Name, OwnerId FROM Account WHERE ICP_Tier__c != '{tier}' "
        f"ORDER BY Name LIMIT {count}",
        include_deleted=False,
    )
    for row in rows:
        sandbox.org.update(
            "Account", row["Id"], {"ICP_Tier_Override__c": tier}, user=row["OwnerId"]
        )
        stdout.print(f"  {row['Name']}: ICP Tier Override = {tier} (set by its owner)")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback URL)
            return int(response.status), response.read().decode()
    except OSError:
        return 0, ""


def _wait_cycles(base: str, cycles: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = _get(f"{base}/healthz")
        health = json.loads(body) if status == 200 else health
        if health.get("cycles", 0) >= cycles and health.get("status") == "ok":
            return health
        time.sleep(0.3)
    return health


def _daemon(sandbox: Sandbox, config: Path) -> None:
    """`icp-sync run` as a real process for a few cycles, then SIGTERM."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    args = ["run", "--config", str(config), "--interval", "2", "--listen", f"127.0.0.1:{port}"]
    stdout.print(f"\n[bold cyan]$ icp-sync {shlex.join(args)} &[/]")
    process = subprocess.Popen(  # noqa: S603 (this interpreter, our own CLI)
        [sys.executable, "-m", "icp_sync", *args], stdout=subprocess.DEVNULL
    )
    try:
        health = _wait_cycles(base, 2)
        stdout.print(f"GET {base}/healthz -> {json.dumps(health)}")
        _, rows = sandbox.org.query(
            "SELECT Id, Name, OwnerId, ICP_Tier__c FROM Account WHERE ICP_Tier__c = 'Green' "
            "AND ICP_Tier_Override__c = null ORDER BY Name LIMIT 1",
            include_deleted=False,
        )
        row = rows[0]
        sandbox.org.update(
            "Account", row["Id"], {"ICP_Tier_Override__c": "Yellow"}, user=row["OwnerId"]
        )
        stdout.print(
            f"  a rep sets ICP Tier Override = Yellow on {row['Name']} (tier {row['ICP_Tier__c']})"
        )
        _wait_cycles(base, int(health.get("cycles", 0)) + 2)
        _, after = sandbox.org.query(
            f"SELECT Name, ICP_Tier__c FROM Account WHERE Id = '{row['Id']}'",
            include_deleted=False,
        )
        stdout.print(
            f"  two cycles later the daemon has moved it: {after[0]['Name']} "
            f"{row['ICP_Tier__c']} -> {after[0]['ICP_Tier__c']}"
        )
        _, metrics = _get(f"{base}/metrics")
        wanted = ("icp_sync_cycles_total", "icp_sync_api_calls_total", "icp_sync_records_written")
        stdout.print(f"GET {base}/metrics (excerpt):")
        for line in metrics.splitlines():
            if line.startswith(wanted) and "_created" not in line and not line.endswith(" 0.0"):
                stdout.print(f"  {line}")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    stdout.print(f"  SIGTERM: the daemon finished its cycle and exited {code}")
    stdout.print(
        "Where to look: /healthz, /readyz and /metrics on the --listen address; on each "
        "Account, the ICP_Tier__c, ICP_Score__c, ICP_Reasons__c and ICP_TAL__c fields."
    )
