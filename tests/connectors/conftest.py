"""Fixtures shared by the connector tests."""

from __future__ import annotations

from typing import Any

import pytest

from icp_sync.sandbox.service import Sandbox
from tests.connectors.salesforce_org import make_org


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The ICP fields a clean, fault-free run writes to the seed-0 org of 1,000 accounts."""
    from icp_sync.sandbox.service import SandboxSettings

    tmp = tmp_path_factory.mktemp("reference")
    sandbox = Sandbox(SandboxSettings(directory=tmp / "sandbox", accounts=1000)).start()
    try:
        org = make_org(lambda **kw: sandbox, tmp)
        org.setup_fields()
        assert org.sync().status == "ok"
        return org.icp_fields()
    finally:
        sandbox.stop()
