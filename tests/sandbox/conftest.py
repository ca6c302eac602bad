"""Fixtures of the HubSpot emulator tests: a shared read-only portal, a fresh one, the SDK."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hubspot import HubSpot

from icp_sync.sandbox.service import Sandbox, SandboxSettings
from tests.conftest import SandboxFactory
from tests.crm_clients import hubspot_client
from tests.sandbox.hubspot_support import SMALL, set_limits


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One small portal for tests that only read (rate limits lifted: they share it)."""
    sandbox = Sandbox(
        SandboxSettings(directory=tmp_path_factory.mktemp("hubspot-shared"), accounts=SMALL)
    ).start()
    set_limits(sandbox, ten_secondly=100_000, search_per_second=100_000)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def fresh(sandbox_factory: SandboxFactory) -> Sandbox:
    """A small portal of this test's own."""
    return sandbox_factory(accounts=SMALL)


@pytest.fixture
def client(shared: Sandbox) -> HubSpot:
    """The SDK on the shared portal."""
    return hubspot_client(shared)
