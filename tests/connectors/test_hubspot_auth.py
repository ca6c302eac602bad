"""HubSpot OAuth: a rotated refresh token is kept in the state store and used next time."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.hubspot.auth import Grant, TokenSource
from connectors.hubspot.config import HubSpotConfig
from icp_sync.log import redact
from icp_sync.sections import SecretRef


class _State:
    def __init__(self) -> None:
        self.saved: dict[str, object] = {}

    def load(self) -> dict[str, object]:
        return dict(self.saved)

    def save(self, state: dict[str, object]) -> None:
        self.saved = dict(state)


def _config(tmp_path: Path, refresh: str) -> HubSpotConfig:
    secrets = {}
    for name, value in (("client_id", "app"), ("client_secret", "shh"), ("refresh_token", refresh)):
        path = tmp_path / name
        path.write_text(value)
        secrets[name] = SecretRef(value, f"file:{path}")
    return HubSpotConfig(auth="oauth", **secrets)


def test_a_rotated_refresh_token_is_kept_and_used_until_the_config_changes(
    tmp_path: Path,
) -> None:
    """HubSpot hands out a new refresh token: the next login uses it; a new config wins."""
    state = _State()
    used: list[str] = []

    def exchange(client_id: str, secret: str, refresh: str) -> Grant:
        used.append(refresh)
        return Grant(f"access-{len(used)}", f"rotated-{len(used)}")

    first = TokenSource(_config(tmp_path, "original-refresh"), state)
    assert first.token(exchange) == "access-1"
    first.expire()
    assert first.token(exchange) == "access-2"
    later = TokenSource(_config(tmp_path, "original-refresh"), state)
    assert later.token(exchange) == "access-3"
    reauthorised = TokenSource(_config(tmp_path, "new-refresh"), state)
    assert reauthorised.token(exchange) == "access-4"

    assert used == ["original-refresh", "rotated-1", "rotated-2", "new-refresh"]
    assert state.saved["oauth"]["refresh_token"] == "rotated-4"  # type: ignore[index]
    for secret in ("rotated-3", "access-3", "original-refresh"):
        assert secret not in redact(f"token {secret}")


def test_oauth_needs_the_app_and_its_refresh_token(tmp_path: Path) -> None:
    """auth = "oauth" without client_secret or refresh_token is a config error naming them."""
    (tmp_path / "id").write_text("app")
    with pytest.raises(ValueError, match=r"hubspot\.refresh_token: required value missing"):
        HubSpotConfig(auth="oauth", client_id=f"file:{tmp_path / 'id'}")
