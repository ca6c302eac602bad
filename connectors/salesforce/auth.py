"""Salesforce authentication: OAuth flows that can be repeated whenever a session dies.

simple-salesforce only refreshes a session in some login modes and always sends logins to
``*.salesforce.com``; icp-sync obtains tokens itself, from the configured login URL, so every
mode re-authenticates the same way: client credentials, username-password (with security
token), JWT bearer, or a given session id re-read from its secret reference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlparse

import jwt
import requests

from connectors.salesforce.config import SalesforceConfig
from icp_sync.errors import AuthError, RetriableConnectorError
from icp_sync.sections import SecretRef

__all__ = ["Token", "http_session", "obtain_token"]

_TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 (a URL path, not a secret)


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """An access token and where to use it.

    Attributes:
        access_token: The session id sent as a bearer token.
        instance_url: The org's base URL (``https://host[:port]``).
        user_id: The integration user's id, when the login said (from the identity URL).
    """

    access_token: str
    instance_url: str
    user_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"Token(access_token='***', instance_url={self.instance_url!r}, "
            f"user_id={self.user_id!r})"
        )

    __str__ = __repr__


def http_session(config: SalesforceConfig) -> requests.Session:
    """A requests session that verifies TLS exactly as configured.

    ``trust_env`` is off so that ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` cannot silently
    replace the configured CA, and proxies come only from the config.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = str(config.ca_file) if config.ca_file else True
    if config.proxy:
        session.proxies = {"https": config.proxy, "http": config.proxy}
    return session


def obtain_token(config: SalesforceConfig, session: requests.Session) -> Token:
    """Log in with the configured flow.

    Raises:
        AuthError: The credentials were refused (or cannot be used).
        RetriableConnectorError: The login server failed or could not be reached.
    """
    if config.auth == "session":
        return _session_token(config)
    if config.auth == "client_credentials":
        base = str(config.instance_url)
        data = {"grant_type": "client_credentials"}
        auth = (_secret(config.client_id), _secret(config.client_secret))
        return _post(session, base, data, auth=auth, timeout=config.timeout_s)
    if config.auth == "password":
        data = {
            "grant_type": "password",
            "client_id": _secret(config.client_id),
            "client_secret": _secret(config.client_secret),
            "username": str(config.username),
            "password": _secret(config.password) + _secret(config.security_token, default=""),
        }
        return _post(session, config.login_url, data, timeout=config.timeout_s)
    assertion = jwt.encode(
        {
            "iss": _secret(config.client_id),
            "sub": str(config.username),
            "aud": config.login_url.rstrip("/"),
            "exp": int(time.time()) + 180,
        },
        _secret(config.private_key),
        algorithm="RS256",
    )
    data = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    return _post(session, config.login_url, data, timeout=config.timeout_s)


def _secret(value: object, default: str | None = None) -> str:
    if value is None:
        if default is not None:
            return default
        raise AuthError("a required credential is not configured", connector="salesforce")
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter else value)


def _session_token(config: SalesforceConfig) -> Token:
    # re-read the reference: a rotated secret file or variable is picked up on expiry
    secret = config.session_id
    token = secret.reload() if isinstance(secret, SecretRef) else _secret(secret)
    return Token(access_token=token, instance_url=str(config.instance_url).rstrip("/"))


def _post(
    session: requests.Session,
    base: str,
    data: dict[str, str],
    *,
    timeout: float,
    auth: tuple[str, str] | None = None,
) -> Token:
    url = base.rstrip("/") + _TOKEN_PATH
    try:
        response = session.post(url, data=data, auth=auth, timeout=timeout)
    except requests.RequestException as exc:
        raise RetriableConnectorError(
            f"cannot reach the Salesforce login server {_host(url)}: {type(exc).__name__}",
            connector="salesforce",
        ) from exc
    if response.status_code >= 500:
        raise RetriableConnectorError(
            f"Salesforce login failed with HTTP {response.status_code}", connector="salesforce"
        )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        error = body.get("error_description") or body.get("error") or f"HTTP {response.status_code}"
        raise AuthError(f"Salesforce refused the login: {error}", connector="salesforce")
    identity = str(body.get("id", ""))
    user_id = identity.rstrip("/").rsplit("/", 1)[-1] if "/id/" in identity else None
    return Token(
        access_token=str(body["access_token"]),
        instance_url=str(body.get("instance_url") or base).rstrip("/"),
        user_id=user_id,
    )


def _host(url: str) -> str:
    return urlparse(url).netloc
