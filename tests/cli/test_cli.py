"""The command line as users and scripts meet it: exit codes, JSON on stdout, logs on stderr."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import icp_sync


def test_check_reports_a_valid_setup(example: Path) -> None:
    """``check`` on a good config exits 0 and says what it found."""
    outcome = icp_sync("check", "--config", str(example / "icp-sync.toml"), "--json")
    report = json.loads(outcome.stdout)

    assert outcome.code == 0
    assert report["ok"] is True
    assert {i["name"] for i in report["items"]} >= {"config", "state store", "accounts file"}


def test_broken_config_exits_2_listing_every_problem(tmp_path: Path) -> None:
    """Several mistakes: exit code 2 and one line per problem with its TOML path."""
    config = tmp_path / "icp-sync.toml"
    config.write_text(
        '[crm]\nconnector = "files"\nspeed = 3\n[logging]\nlevel = "chatty"\n'
        '[files.accounts]\npath = "nope.csv"\n'
    )

    outcome = icp_sync("check", "--config", str(config))

    assert outcome.code == 2
    assert "crm.speed: unknown key" in outcome.stderr
    assert "logging.level:" in outcome.stderr
    assert "files.accounts.path: file not found" in outcome.stderr
    assert "files.accounts.columns.account_id: required value missing" in outcome.stderr
    assert outcome.stdout == ""


def test_config_comes_from_the_environment_when_not_given(example: Path, tmp_path: Path) -> None:
    """Without --config and without ./icp-sync.toml, $ICP_SYNC_CONFIG is used."""
    outcome = icp_sync(
        "check", "--json", cwd=tmp_path, env={"ICP_SYNC_CONFIG": str(example / "icp-sync.toml")}
    )

    assert outcome.code == 0
    assert json.loads(outcome.stdout)["config"] == str(example / "icp-sync.toml")


def test_sync_json_is_one_document_and_logs_carry_the_run_id(example: Path) -> None:
    """``sync --json`` prints one JSON document; every stderr log line is JSON with run_id."""
    outcome = icp_sync("sync", "--config", str(example / "icp-sync.toml"), "--json")
    document = json.loads(outcome.stdout)
    lines = [json.loads(line) for line in outcome.stderr.splitlines()]

    assert outcome.code == 0
    assert document["mirror"] == {"account": 85, "opportunity": 7375}
    assert document["objects"]["opportunity"]["rejected"] == 1425
    assert {s["dimension"] for s in document["segments"]} == {
        "industry",
        "employees_band",
        "revenue_band",
        "region",
    }
    assert {line["run_id"] for line in lines} == {document["run_id"]}
    finished = [line for line in lines if line["event"] == "command_finished"]
    assert len(finished) == 1
    assert finished[0]["status"] == "ok"


def test_sync_table_output_names_what_was_repaired(example: Path) -> None:
    """Without --json, sync prints tables a RevOps user can read."""
    outcome = icp_sync("sync", "--config", str(example / "icp-sync.toml"))

    assert outcome.code == 0
    assert "data quality" in outcome.stdout
    assert "missing account_id" in outcome.stdout
    assert "segments by industry" in outcome.stdout


def test_unknown_command_is_a_usage_error() -> None:
    """A typo in the command is bad usage: exit 2."""
    outcome = icp_sync("synk")

    assert outcome.code == 2
    assert "synk" in outcome.stderr


def test_versions_and_activate_speak_json_and_record_who(example: Path) -> None:
    """derive proposes v1; activate --dry-run changes nothing; activate --by records who."""
    config = str(example / "icp-sync.toml")
    assert icp_sync("sync", "--config", config).code == 0
    assert icp_sync("derive", "--config", config).code == 0

    proposed = json.loads(icp_sync("versions", "--config", config, "--json").stdout)
    preview = icp_sync("activate", "v1", "--dry-run", "--config", config, "--json")
    still = json.loads(icp_sync("versions", "--config", config, "--json").stdout)
    done = icp_sync("activate", "v1", "--by", "Dana", "--config", config, "--json")
    active = json.loads(icp_sync("versions", "--config", config, "--json").stdout)
    unknown = icp_sync("activate", "v9", "--config", config)

    assert [v["status"] for v in proposed["versions"]] == ["proposed"]
    assert preview.code == 0
    assert json.loads(preview.stdout)["activated"] is False
    assert [v["status"] for v in still["versions"]] == ["proposed"]
    assert done.code == 0
    assert json.loads(done.stdout)["activated"] is True
    assert active["versions"][0]["status"] == "active"
    assert active["versions"][0]["activated_by"] == "Dana"
    assert unknown.code == 2
    assert "no ICP version 'v9'; the versions that exist: v1; nor is it a definition file" in (
        unknown.stderr
    )
