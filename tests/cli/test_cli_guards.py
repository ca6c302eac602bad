"""What a user meets when something is off: one clear line, the right exit code, honest output."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from icp_sync import __version__
from icp_sync.cli import run
from icp_sync.console import print_tal
from icp_sync.sandbox.service import Sandbox
from tests.clirun import Outcome
from tests.conftest import ROOT

Cli = Callable[..., Outcome]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``icp-sync ARGS`` in-process; returns its exit code and both output streams."""

    def invoke(*args: str) -> Outcome:
        code = run(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return Outcome(code, out, err)

    return invoke


@pytest.fixture(scope="module")
def generated_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated CRM of 300 accounts, synced once into its SQLite store."""
    folder = tmp_path_factory.mktemp("generated")
    assert run(["sandbox", "generate", "--out", str(folder), "--accounts", "300"]) == 0
    assert run(["sync", "--config", str(folder / "icp-sync.toml"), "--json"]) == 0
    return folder


@pytest.fixture
def generated(generated_once: Path, tmp_path: Path) -> Path:
    """A private copy of the synced generated CRM; returns its config path."""
    target = tmp_path / "crm"
    shutil.copytree(generated_once, target)
    return target / "icp-sync.toml"


def test_version_flag_prints_the_version(cli: Cli) -> None:
    """``icp-sync --version`` prints ``icp-sync X.Y.Z`` and exits 0."""
    outcome = cli("--version")

    assert outcome.code == 0
    assert outcome.stdout.strip() == f"icp-sync {__version__}"


def test_boolean_flags_take_no_value(cli: Cli) -> None:
    """``--json`` is shown as a bare flag (no ``<bool>``); ``--json true`` is a usage error."""
    shown = cli("sync", "--help")
    misused = cli("sync", "--json", "true")

    flags = [
        line for line in shown.stdout.splitlines() if re.search(r"--(json|full|dry-run)\b", line)
    ]
    assert len(flags) == 3
    assert not [line for line in flags if "<bool>" in line]
    assert misused.code == 2


def _commands() -> list[list[str]]:
    from typer.main import get_command

    from icp_sync.cli import app

    root = get_command(app)
    found: list[list[str]] = [[]]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        found.append([name])
        found += [[name, sub] for sub in getattr(command, "commands", {})]
    return found


@pytest.mark.parametrize("words", _commands(), ids=lambda words: " ".join(words) or "icp-sync")
def test_no_help_screen_shows_a_flag_as_taking_a_value(cli: Cli, words: list[str]) -> None:
    """Every command's help, --help included, shows its boolean flags bare (no ``<bool>``)."""
    shown = cli(*words, "--help")

    assert shown.code == 0
    assert "--help" in shown.stdout
    assert "<bool>" not in shown.stdout


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda p: p.mkdir() or p, "is a folder, not a config file", id="directory"),
        pytest.param(
            lambda p: p.write_bytes(b"\x00\xff\xfe binary") and p, "not a text file", id="binary"
        ),
        pytest.param(lambda p: p, "config file not found", id="missing"),
    ],
)
def test_unusable_config_paths_are_usage_errors(
    cli: Cli, tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    """``--config`` naming a folder, a binary file or nothing: exit 2 and one line saying so."""
    path = make(tmp_path / "icp-sync.toml")

    outcome = cli("check", "--config", str(path))

    assert outcome.code == 2
    assert message in outcome.stderr


def test_derive_before_any_history_says_so(cli: Cli, generated: Path) -> None:
    """``derive --as-of`` before the first deal: exit 1 with the reason and the earliest date."""
    outcome = cli("derive", "--config", str(generated), "--as-of", "1990-01-01")

    assert outcome.code == 1
    assert "no customer and no closed deal before 1990-01-01" in outcome.stderr
    assert "the earliest deal closed on" in outcome.stderr


def test_review_right_after_derive_has_not_enough_data(cli: Cli, generated: Path) -> None:
    """Reviewing a version derived today reports the window and "not enough data", no rates."""
    assert cli("derive", "--config", str(generated), "--json").code == 0

    shown = cli("review", "--config", str(generated))
    document = json.loads(cli("review", "--config", str(generated), "--json").stdout)

    assert shown.code == 0
    assert "0.0 months observed" in shown.stdout
    assert "not enough data" in shown.stdout
    assert "100%" not in shown.stdout
    assert document["enough_data"] is False
    assert all(part["rate"] is None for part in document["retention_after"].values() if "n" in part)


@pytest.mark.parametrize(
    "words",
    [
        pytest.param(["review", "--version", "v99"], id="review"),
        pytest.param(["tal", "--version", "v99"], id="tal"),
        pytest.param(["activate", "v99"], id="activate"),
        pytest.param(["commit", "--period", "2027", "--version", "v99"], id="commit"),
    ],
)
def test_an_unknown_version_is_a_usage_error_listing_the_versions(
    cli: Cli, generated: Path, words: list[str]
) -> None:
    """Naming a version that does not exist exits 2 and lists the versions that do."""
    assert cli("derive", "--config", str(generated), "--json").code == 0

    outcome = cli(*words, "--config", str(generated))

    assert outcome.code == 2
    assert "no ICP version 'v99'; the versions that exist: v1" in outcome.stderr
    assert "run `icp-sync derive` first" not in outcome.stderr


def test_tal_heading_says_how_many_rows_are_shown(cli: Cli, generated: Path) -> None:
    """A 40-account TAL printed 15 rows deep is headed "top 15 of 40 accounts"."""
    assert cli("derive", "--config", str(generated), "--json").code == 0
    outcome = cli("tal", "--config", str(generated), "--size", "40")

    assert outcome.code == 0
    assert "top 15 of 40 accounts" in outcome.stdout
    assert "25 more on the list" in outcome.stdout
    assert "ICP as of" in outcome.stdout


def test_tal_states_the_as_of_date_and_the_history_it_scored(cli: Cli, generated: Path) -> None:
    """``tal --json`` names the version's as-of date and the observation window, like derive."""
    derived = json.loads(cli("derive", "--config", str(generated), "--json").stdout)
    document = json.loads(cli("tal", "--config", str(generated), "--json", "--size", "5").stdout)

    assert document["as_of"][:10] == derived["as_of"][:10]
    assert document["observation_window"] == derived["observation_window"]


def test_tal_without_prospects_says_why(cli: Cli, example: Path) -> None:
    """Where every account is a customer, ``tal`` says so instead of printing an empty table."""
    config = str(example / "icp-sync.toml")
    assert cli("sync", "--config", config, "--json").code == 0
    assert cli("derive", "--config", config, "--json").code == 0

    outcome = cli("tal", "--config", config)

    assert outcome.code == 0
    assert "every one of the 85 accounts is already a customer" in outcome.stdout.lower()


def test_tal_reasons_are_cut_at_a_word_boundary(capsys: pytest.CaptureFixture[str]) -> None:
    """A long reason in the TAL table ends with a whole word and an ellipsis."""
    words = [f"reason{i}" for i in range(40)]
    document = {
        "name": "TAL",
        "version": "v1",
        "size": 1,
        "coverage": {
            "green_share": 1.0,
            "green_segments": {},
            "green_segments_covered": 0,
            "prospects_considered": 1,
        },
        "accounts": [
            {
                "rank": 1,
                "name": "Acme",
                "account_id": "a",
                "score": 90,
                "tier": "Green",
                "segment": "Retail",
                "reasons": " ".join(words),
            }
        ],
    }

    print_tal(document)
    shown = " ".join(capsys.readouterr().out.split())

    cut = re.search(r"(\w+)…", shown)
    assert cut is not None
    assert cut.group(1) in words


def test_sync_counts_add_up_to_the_mirror(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    """Records read already deleted in the CRM are named, so new - deleted adds up to the mirror."""
    config = sandbox.write_config(tmp_path / "sandbox.toml")

    shown = cli("sync", "--config", str(config), "--dry-run")
    document = json.loads(cli("sync", "--config", str(config), "--dry-run", "--json").stdout)

    first = re.search(
        r"account: 0 live before \+ ([\d,]+) new - ([\d,]+) read already deleted in "
        r"the CRM - 0 deleted = ([\d,]+) live in the mirror",
        shown.stdout,
    )
    assert first is not None
    new, gone, live = (int(g.replace(",", "")) for g in first.groups())
    assert gone > 0
    assert new - gone == live
    assert f"mirror: {live:,} accounts" in shown.stdout
    account = document["objects"]["account"]
    assert account["mirror_before"] == live
    assert account["inserted"] == 0


def test_busy_port_is_a_clean_usage_error(cli: Cli, tmp_path: Path) -> None:
    """``sandbox serve`` on a taken port exits 2 naming the flag and the port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        outcome = cli("sandbox", "serve", "--salesforce-port", str(port), "--dir", str(tmp_path))

    assert outcome.code == 2
    assert f"--salesforce-port: port {port} on 127.0.0.1 is already in use" in outcome.stderr


def test_sandbox_secrets_stay_in_the_sandbox_folder(sandbox: Sandbox, tmp_path: Path) -> None:
    """``--write-config`` puts secrets under the sandbox's ``--dir``, never beside the config."""
    config = sandbox.write_config(tmp_path / "checkout" / "sandbox.toml")

    assert not (config.parent / "secrets").exists()
    secrets = sorted(p.name for p in (sandbox.directory / "secrets").iterdir())
    assert secrets == ["salesforce-client-id", "salesforce-client-secret"]
    assert f"file:{sandbox.directory / 'secrets'}" in config.read_text()


@pytest.mark.parametrize(
    "written",
    [
        "icp-sync.db",
        "sandbox.toml",
        "icp-sync.toml",
        ".sandbox/secrets/salesforce-client-secret",
        "secrets/hubspot-access-token",
        "icp/icp-v1.toml",
        "examples/maven/icp/icp-v1.toml",
        "examples/ravenstack/icp/icp-v1-evidence.md",
        "demo-output/icp-sync.toml",
    ],
)
def test_gitignore_covers_what_the_product_writes(written: str) -> None:
    """Files the product writes in a checkout (stores, configs, secrets, ICP files) are ignored."""
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", written], cwd=ROOT, check=False
    )

    assert checked.returncode == 0


def test_readme_commands_run_as_printed() -> None:
    """Every command line in the README calls ``.venv/bin/icp-sync``, which ``make`` creates."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]

    bare = [
        line for line in lines if re.match(r"(.*&& )?icp-sync ", line) or " && icp-sync " in line
    ]
    assert bare == []


def test_mangled_maven_close_dates_are_refused(cli: Cli, example: Path) -> None:
    """Close dates rewritten half day-first, half month-first: sync exits 2 naming the column."""
    pipeline = example / "sales_pipeline.csv"
    lines = pipeline.read_text().splitlines()
    for i in range(1, len(lines)):
        cells = lines[i].split(",")
        if cells[6]:
            year, month, day = cells[6].split("-")
            cells[6] = f"{day}/{month}/{year}" if i % 2 else f"{month}/{day}/{year}"
            lines[i] = ",".join(cells)
    pipeline.write_text("\n".join(lines) + "\n")

    outcome = cli("sync", "--config", str(example / "icp-sync.toml"))

    assert outcome.code == 2
    assert "files.opportunities.columns.close_date: sales_pipeline.csv column 'close_date'" in (
        outcome.stderr
    )
    assert "mixes day-first and month-first dates" in outcome.stderr


def test_latin1_export_error_names_the_encoding_key(cli: Cli, example: Path) -> None:
    """A latin-1 accounts export: one line naming the file, the byte and the ``encoding`` key."""
    accounts = example / "accounts.csv"
    accounts.write_bytes(accounts.read_text().replace("Cancity", "Cäncity").encode("latin-1"))

    outcome = cli("sync", "--config", str(example / "icp-sync.toml"))

    assert outcome.code == 1
    assert "accounts.csv: byte" in outcome.stderr
    assert 'files.accounts.encoding = "latin-1"' in outcome.stderr
