"""HubSpot authentication: a private-app token, or OAuth access tokens from a refresh token.

HubSpot may rotate an OAuth app's refresh token (a refresh answer carries the one to use
next). The rotated token is kept in the connector's state (the state store) and used from
then on; it is registered with the log masker before anything can print it, and never
logged. When the configured reference later names a different refresh token (the app was
re-authorised), the configured one wins again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from connectors.base import ConnectorState
from connectors.hubspot.config import HubSpotConfig
from icp_sync.errors import AuthError
from icp_sync.log import get_logger, mask

__all__ = ["Exchange", "Grant", "TokenSource"]

log = get_logger(connector="hubspot")


@dataclass(frozen=True, slots=True)
class Grant:
    """What a refresh answered: the access token and the refresh token to use next."""

    access_token: str
    refresh_token: str

    def __repr__(self) -> str:
        return "Grant(access_token='***', refresh_token='***')"

    __str__ = __repr__


Exchange = Callable[[str, str, str], Grant]
"""``exchange(client_id, client_secret, refresh_token) -> Grant`` (runs the token call)."""


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class TokenSource:
    """The bearer token to send, renewed on demand.

    Args:
        config: The ``[hubspot]`` section.
        state: Where a rotated refresh token is kept.
    """

    def __init__(self, config: HubSpotConfig, state: ConnectorState) -> None:
        self._config = config
        self._state = state
        self._token: str | None = None

    @property
    def refreshable(self) -> bool:
        """Whether a new access token can be obtained (OAuth)."""
        return self._config.auth == "oauth"

    def token(self, exchange: Exchange) -> str:
        """The current access token, obtaining one first when needed."""
        if self._token is None:
            self._token = self._obtain(exchange)
            mask(self._token)
        return self._token

    def expire(self) -> None:
        """Forget the access token (the next call obtains a new one)."""
        self._token = None

    def _obtain(self, exchange: Exchange) -> str:
        config = self._config
        if config.auth == "private_app":
            assert config.access_token is not None  # checked by the config
            return config.access_token.get_secret_value()
        assert config.client_id is not None
        assert config.client_secret is not None
        assert config.refresh_token is not None
        configured = config.refresh_token.get_secret_value()
        mask(configured)
        stored = self._state.load().get("oauth", {})
        refresh = configured
        if stored.get("configured") == _fingerprint(configured) and stored.get("refresh_token"):
            refresh = str(stored["refresh_token"])  # rotated since: the configured one is spent
            mask(refresh)
        grant = exchange(
            config.client_id.get_secret_value(), config.client_secret.get_secret_value(), refresh
        )
        mask(grant.access_token)
        mask(grant.refresh_token)
        if not grant.access_token:
            raise AuthError("HubSpot answered the refresh without a token", connector="hubspot")
        if grant.refresh_token and grant.refresh_token != refresh:
            state = self._state.load()
            state["oauth"] = {
                "configured": _fingerprint(configured),
                "refresh_token": grant.refresh_token,
            }
            self._state.save(state)
            log.info("hubspot_refresh_token_rotated", kept="state store")
        log.info("hubspot_authenticated", auth="oauth")
        return grant.access_token
