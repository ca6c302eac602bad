"""No configured or runtime secret reaches any output channel: logs, --json, errors, the store."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sandbox.salesforce.api import SalesforceApi
from icp_sync.sandbox.service import Sandbox
from tests.clirun import icp_sync
from tests.conftest import POSTGRES_ENV, SandboxFactory, _postgres_schema_url


def _config(sandbox: Sandbox, tmp_path: Path, mode: str, store_url: str) -> tuple[Path, list[str]]:
    """A config with every secret of ``mode`` in files; returns it and the secret values."""
    creds = json.loads((sandbox.directory / "credentials.json").read_text())["salesforce"]
    secrets: list[str] = []

    def secret(name: str, value: str, *, hidden: bool = True) -> str:
        path = tmp_path / f"{name}.secret"
        path.write_text(value, encoding="utf-8")
        if hidden:
            lines = value.splitlines()
            secrets.extend(line for line in lines if len(line) > 8 and "-----" not in line)
        return f"file:{path}"

    if mode == "password":
        auth = f"""auth = "password"
username = "{creds["username"]}"
password = "{secret("password", creds["password"])}"
security_token = "{secret("token", creds["security_token"])}"
"""
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        auth = f"""auth = "jwt"
username = "{creds["username"]}"
private_key = "{secret("key", pem)}"
"""
    path = tmp_path / "icp-sync.toml"
    path.write_text(
        f"""[crm]
connector = "salesforce"

[salesforce]
{auth}login_url = "{sandbox.salesforce.url}"
client_id = "{secret("client-id", creds["client_id"])}"
client_secret = "{secret("client-secret", creds["client_secret"])}"
ca_file = "{sandbox.tls.ca_file}"

[logging]
level = "debug"
format = "json"

[store]
url = "{secret("store-url", store_url, hidden=False)}"
""",
        encoding="utf-8",
    )
    return path, secrets


@pytest.fixture
def store_url_with_password(tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """SQLite, or a private PostgreSQL schema reached by a URL with a password in it when a
    test database is configured (trust auth ignores the password; the masking must not)."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        yield f"sqlite:///{tmp_path / 'state.db'}", None
        return
    for private in _postgres_schema_url(base):
        url = sa.engine.make_url(private).set(password="pg-pa55-word-778899")
        yield url.render_as_string(hide_password=False), "pg-pa55-word-778899"


def _tables_text(url: str) -> str:
    engine = sa.create_engine(url)
    parts: list[str] = []
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            rows = conn.execute(sa.text(f'SELECT * FROM "{name}"'))
            parts.extend(repr(tuple(row)) for row in rows)
    engine.dispose()
    return "\n".join(parts)


@pytest.mark.parametrize("mode", ["password", "jwt"])
def test_no_secret_appears_in_any_output_channel(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store_url_with_password: tuple[str, str | None],
    mode: str,
) -> None:
    """Debug logs, --json output, error messages and store tables hold none of the secrets."""
    issued: list[str] = []
    original = SalesforceApi.issue_token

    def issue(api: SalesforceApi) -> str:
        token = original(api)
        issued.append(token)
        return token

    monkeypatch.setattr(SalesforceApi, "issue_token", issue)
    sandbox = sandbox_factory(accounts=1000)
    store_url, store_password = store_url_with_password
    config, secrets = _config(sandbox, tmp_path, mode, store_url)
    ca = str(sandbox.tls.ca_file)
    requests.post(
        f"{sandbox.salesforce.url}/__sandbox/faults",
        json=FaultProfile(session_expiry_after=25).as_dict(),
        verify=ca,
        timeout=10,
    ).raise_for_status()

    outputs = [
        icp_sync("setup-fields", "--json", "--config", str(config)),
        icp_sync("sync", "--json", "--config", str(config)),
        icp_sync("check", "--json", "--config", str(config)),
    ]
    assert [o.code for o in outputs] == [0, 0, 0], outputs[-1].stderr
    # a refused login: the failure goes through the error channel
    wrong = "wrong-client-secret-value" if mode == "password" else "not-a-pem-wrong-key-value"
    (tmp_path / ("client-secret" if mode == "password" else "key")).with_suffix(
        ".secret"
    ).write_text(wrong, encoding="utf-8")
    secrets.append(wrong)
    failed = icp_sync("sync", "--json", "--config", str(config))
    assert failed.code == 1
    outputs.append(failed)
    text = "\n".join(o.stdout + o.stderr for o in outputs) + _tables_text(store_url)

    assert len(issued) > 2  # sessions expired and were renewed: several tokens to hide
    assert '"event": "salesforce_authenticated"' in text
    leaked = [s for s in [*secrets, *issued, *filter(None, [store_password])] if s in text]
    assert leaked == []
