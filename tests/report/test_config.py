"""The [report], [dashboard] and [digest] config sections: validated with their TOML paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from icp_sync.config import Settings, parse_settings
from icp_sync.errors import ConfigError


def _settings(tmp_path: Path, extra: dict[str, object]) -> Settings:
    (tmp_path / "a.csv").write_text("account_id\n1\n")
    raw = {
        "crm": {"connector": "files"},
        "files": {"accounts": {"path": "a.csv", "columns": {"account_id": "account_id"}}},
        **extra,
    }
    return parse_settings(raw, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        pytest.param({"digest": {"at": "25:00"}}, "digest.at", id="digest-time"),
        pytest.param({"digest": {"weekday": "monday"}}, "digest.weekday", id="digest-day"),
        pytest.param(
            {"dashboard": {"trusted_header": "X User: me"}}, "dashboard.trusted_header", id="header"
        ),
        pytest.param(
            {"dashboard": {"token": "plain-secret"}}, "dashboard.token", id="token-inline"
        ),
        pytest.param({"report": {"owners": "missing.csv"}}, "report.owners", id="owners-missing"),
        pytest.param(
            {"report": {"target_green_share": 1.5}}, "report.target_green_share", id="target"
        ),
    ],
)
def test_bad_values_name_their_toml_path(
    tmp_path: Path, extra: dict[str, object], problem: str
) -> None:
    """Each bad value is reported with its TOML path (the CLI then exits 2)."""
    with pytest.raises(ConfigError) as caught:
        _settings(tmp_path, extra)
    assert problem in str(caught.value)
    assert "plain-secret" not in str(caught.value)


def test_the_dashboard_token_is_read_from_its_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """token = "env:NAME" resolves to a secret that never shows in the settings' repr."""
    monkeypatch.setenv("DASH_TOKEN", "tok-123")
    settings = _settings(tmp_path, {"dashboard": {"token": "env:DASH_TOKEN"}})
    token = settings.dashboard.token
    assert token is not None
    assert token.get_secret_value() == "tok-123"
    assert "tok-123" not in repr(settings)
