"""Salesforce logins: every flow syncs and renews an expired session; bad credentials shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.salesforce.auth import Token
from connectors.salesforce.connector import SalesforceConnector
from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sandbox.service import Sandbox
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import (
    count,
    make_org,
)


def _credentials(sandbox: Sandbox) -> dict[str, str]:
    document = json.loads((sandbox.directory / "credentials.json").read_text(encoding="utf-8"))
    credentials: dict[str, str] = document["salesforce"]
    return credentials


def _auth(sandbox: Sandbox, tmp_path: Path, mode: str) -> dict[str, Any]:
    """Config values for one login flow, secrets in files as a user would keep them."""
    creds = _credentials(sandbox)
    url = sandbox.salesforce.url

    def secret(name: str, value: str) -> str:
        path = tmp_path / f"{name}.secret"
        path.write_text(value, encoding="utf-8")
        return f"file:{path}"

    if mode == "password":
        return {
            "auth": "password",
            "login_url": url,
            "instance_url": None,
            "username": creds["username"],
            "password": secret("password", creds["password"]),
            "security_token": secret("token", creds["security_token"]),
        }
    if mode == "jwt":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "auth": "jwt",
            "login_url": url,
            "instance_url": None,
            "username": creds["username"],
            "private_key": secret("key", pem),
        }
    return {"auth": "session", "session_id": secret("session", creds["access_token"])}


@pytest.mark.parametrize("mode", ["client_credentials", "password", "jwt", "session"])
def test_every_login_flow_syncs_and_renews_an_expired_session(
    sandbox_factory: SandboxFactory, tmp_path: Path, mode: str
) -> None:
    """Each auth mode logs in, and an expiring session is renewed and the cycle completes."""
    org = make_org(sandbox_factory, tmp_path)
    if mode != "client_credentials":
        assert org.settings.salesforce is not None
        raw = _auth(org.sandbox, tmp_path, mode)
        merged = org.settings.salesforce.model_dump() | raw
        org.settings = org.settings.model_copy(
            update={"salesforce": type(org.settings.salesforce).model_validate(merged)}
        )
    expiry = 0 if mode == "session" else 6  # a given session id cannot be renewed by us
    org.faults(FaultProfile(session_expiry_after=expiry))
    org.setup_fields()
    result = org.sync()

    assert result.status == "ok"
    assert result.records_written > 900
    logins = count("POST oauth2/token", org.stats())
    if mode == "session":
        assert logins == 0
    else:
        assert logins > 2  # logged in again after every expiry


def test_wrong_credentials_are_reported_by_check_without_the_secret(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A refused login is a plain 'check' line that never shows the secret."""
    org = make_org(sandbox_factory, tmp_path)
    assert org.settings.salesforce is not None
    (tmp_path / "bad.secret").write_text("not-the-secret", encoding="utf-8")
    merged = org.settings.salesforce.model_dump() | {
        "client_secret": f"file:{tmp_path / 'bad.secret'}"
    }
    config = type(org.settings.salesforce).model_validate(merged)
    connector = SalesforceConnector(config, sleep=lambda _: None)
    items = connector.check()
    connector.close()

    assert [i.name for i in items] == ["salesforce login"]
    assert not items[0].ok
    assert "refused" in items[0].detail
    assert "not-the-secret" not in items[0].detail


def test_a_token_never_shows_its_access_token() -> None:
    """repr and str of a Token mask the access token."""
    token = Token(access_token="00D!secret-session-id", instance_url="https://x", user_id="005")

    assert "secret-session-id" not in repr(token)
    assert "secret-session-id" not in str(token)
    assert token.access_token == "00D!secret-session-id"
