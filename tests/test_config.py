"""Config loading: defaults, paths, secrets, and every mistake reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from icp_sync.config import load_settings, resolve_secret
from icp_sync.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "accounts.csv").write_text("id,name\n1,Acme\n")
    path = tmp_path / "icp-sync.toml"
    path.write_text(text)
    return path


MINIMAL = """
[files.accounts]
path = "accounts.csv"
[files.accounts.columns]
account_id = "id"
name = "name"
"""


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    """A config naming only the accounts file is valid and filled with defaults."""
    settings = load_settings(_write(tmp_path, MINIMAL))

    assert settings.crm.connector == "files"
    assert settings.segments.dimensions == ["industry", "employees_band", "region"]
    assert settings.segments.employee_bands == [1, 50, 200, 1000, 5000]
    assert settings.logging.format == "auto"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    """Files and SQLite databases are found relative to the config file, not the cwd."""
    settings = load_settings(_write(tmp_path, MINIMAL + '[store]\nurl = "sqlite:///state.db"\n'))

    assert settings.files is not None
    assert settings.files.accounts.path == (tmp_path / "accounts.csv").resolve()
    assert settings.store.url.get_secret_value() == f"sqlite:///{(tmp_path / 'state.db').resolve()}"


def test_every_mistake_is_listed_with_its_toml_path(tmp_path: Path) -> None:
    """Unknown keys, wrong types, missing values, bad references and files: all at once."""
    text = """
[crm]
connector = "files"
colour = "blue"

[store]
url = "env:ICP_SYNC_TEST_SURELY_UNSET"

[logging]
level = "loud"

[files.accounts]
path = "missing.csv"
[files.accounts.columns]
name = "name"
shoe_size = "size"

[segments]
employee_bands = [50, 10]
dimensions = ["industry", "favourite_colour"]
"""
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, text))
    problems = "\n".join(caught.value.problems)

    assert "crm.colour: unknown key" in problems
    assert "store.url: environment variable ICP_SYNC_TEST_SURELY_UNSET is not set" in problems
    assert "logging.level:" in problems
    assert "files.accounts.path: file not found" in problems
    assert "files.accounts.columns.shoe_size: not a canonical account column" in problems
    assert "files.accounts.columns.account_id: required value missing" in problems
    assert "segments.employee_bands: needs at least two strictly increasing" in problems
    assert "segments.dimensions: unknown dimension(s) favourite_colour" in problems
    assert len(caught.value.problems) >= 7


def test_missing_files_section_is_reported(tmp_path: Path) -> None:
    """The file connector without a [files] section names the missing section."""
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, '[crm]\nconnector = "files"\n'))

    assert caught.value.problems == ["files: section required when crm.connector = 'files'"]


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    """Unreadable configs fail as configuration problems, not crashes."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[store\nurl=")

    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_secret_references_resolve_from_env_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """env:NAME and file:PATH give the secret; a literal secret is refused."""
    monkeypatch.setenv("ICP_SYNC_TEST_SECRET", "s3cr3t-value")
    secret_file = tmp_path / "token"
    secret_file.write_text("from-file\n")

    assert resolve_secret("env:ICP_SYNC_TEST_SECRET") == "s3cr3t-value"
    assert resolve_secret(f"file:{secret_file}") == "from-file"
    with pytest.raises(ValueError, match="never goes in the file"):
        resolve_secret("hunter2")
    with pytest.raises(ValueError, match="cannot read secret file"):
        resolve_secret(f"file:{tmp_path / 'absent'}")


def test_store_password_from_a_reference_is_known_as_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store URL given by reference resolves, and its password is registered for masking."""
    monkeypatch.setenv("ICP_SYNC_TEST_DB", "postgresql+psycopg://app:pa55word@db.internal/icp")
    settings = load_settings(_write(tmp_path, MINIMAL + '[store]\nurl = "env:ICP_SYNC_TEST_DB"\n'))

    assert settings.store.url.get_secret_value().startswith("postgresql+psycopg://app:pa55word@")
    assert "pa55word" in settings.secrets()
    assert "pa55word" not in repr(settings)
    assert "pa55word" not in str(settings)
    assert "pa55word" not in settings.model_dump_json()
    assert settings.store.display_url == "postgresql+psycopg://app:***@db.internal/icp"


def test_a_malformed_store_url_is_not_echoed_in_the_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store URL that does not parse is reported without its text (it may hold a password)."""
    monkeypatch.setenv("ICP_SYNC_TEST_DB", "postgresql+psycopg//app:pa55word@db/icp")
    path = _write(tmp_path, MINIMAL + '[store]\nurl = "env:ICP_SYNC_TEST_DB"\n')

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert "store.url" in str(caught.value)
    assert "pa55word" not in str(caught.value)


def test_settings_are_frozen(tmp_path: Path) -> None:
    """Settings cannot be changed after loading."""
    settings = load_settings(_write(tmp_path, MINIMAL))

    with pytest.raises(ValueError, match="frozen"):
        settings.crm.connector = "hubspot"  # type: ignore[misc]


def test_the_documented_example_config_is_valid(tmp_path: Path) -> None:
    """config.example.toml, which documents every key, loads as it is."""
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    (tmp_path / "accounts.csv").write_text("Id,Name\n1,Acme\n")
    copy = tmp_path / "icp-sync.toml"
    copy.write_text(example.read_text())

    settings = load_settings(copy)

    assert settings.files is not None
    assert settings.files.accounts.columns["account_id"].column == "Id"
