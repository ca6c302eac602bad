"""The import direction (README, Layout) is enforced by the linter, not by goodwill."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _banned(path: str, source: str) -> list[str]:
    """The TID251 (banned import) findings ruff reports for ``source`` placed at ``path``."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "TID251",
            "--output-format",
            "concise",
            "--stdin-filename",
            path,
            "-",
        ],
        input=f"from __future__ import annotations\n\n{source}\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return [line for line in completed.stdout.splitlines() if "TID251" in line]


@pytest.mark.parametrize(
    ("path", "source"),
    [
        pytest.param("icp_sync/lifecycle.py", "from icp_sync.store import Store", id="core-store"),
        pytest.param("icp_sync/tiering.py", "import connectors", id="core-connectors"),
        pytest.param("icp_sync/icp.py", "from icp_sync.pipeline import sync", id="core-pipeline"),
        pytest.param("icp_sync/segments.py", "import sqlalchemy", id="core-database"),
        pytest.param(
            "icp_sync/review.py", "from icp_sync.sandbox import generate", id="core-sandbox"
        ),
        pytest.param(
            "icp_sync/pipeline/sync.py", "import simple_salesforce", id="pipeline-salesforce"
        ),
        pytest.param("icp_sync/pipeline/derive.py", "import sqlalchemy", id="pipeline-database"),
        pytest.param(
            "connectors/salesforce/extract.py",
            "from simple_salesforce import Salesforce",
            id="salesforce-outside-its-client",
        ),
        pytest.param(
            "connectors/files/connector.py",
            "from icp_sync.store import Store",
            id="connector-store",
        ),
        pytest.param("icp_sync/store/mirror.py", "import connectors", id="store-connectors"),
        pytest.param(
            "icp_sync/rules.py", "from icp_sync.alerts import make_sinks", id="core-alerts"
        ),
        pytest.param(
            "icp_sync/alerts/webhook.py", "from icp_sync.store import Store", id="alerts-store"
        ),
        pytest.param("icp_sync/alerts/slack.py", "import connectors", id="alerts-connectors"),
        pytest.param(
            "icp_sync/sandbox/service.py", "from connectors import base", id="sandbox-connectors"
        ),
        pytest.param("icp_sync/cli/__init__.py", "import simple_salesforce", id="cli-salesforce"),
        pytest.param("icp_sync/cli/compliance.py", "import sqlalchemy", id="cli-database"),
        pytest.param(
            "icp_sync/cli/__init__.py", "from connectors import make_connector", id="cli-connectors"
        ),
        pytest.param(
            "icp_sync/cli/options.py", "from icp_sync.sandbox import service", id="cli-sandbox"
        ),
        pytest.param("icp_sync/daemon.py", "import hubspot", id="daemon-hubspot"),
        pytest.param("icp_sync/demo.py", "import sqlalchemy", id="demo-database"),
        pytest.param("icp_sync/console.py", "from icp_sync.store import Store", id="console-store"),
        pytest.param("icp_sync/config.py", "import simple_salesforce", id="config-salesforce"),
    ],
)
def test_a_forbidden_import_fails_the_lint(path: str, source: str) -> None:
    """A deliberate violation of the import direction is reported by `make lint`."""
    assert _banned(path, source), f"ruff let {source!r} into {path}"


@pytest.mark.parametrize(
    ("path", "source"),
    [
        pytest.param(
            "icp_sync/pipeline/sync.py", "from icp_sync.store import Store", id="pipeline"
        ),
        pytest.param("icp_sync/cli/__init__.py", "from icp_sync.pipeline import sync", id="cli"),
        pytest.param("icp_sync/cli/options.py", "from icp_sync.store import Store", id="cli-store"),
        pytest.param("icp_sync/tiering.py", "from icp_sync.icp import derive", id="core-core"),
        pytest.param(
            "connectors/salesforce/client.py",
            "from simple_salesforce import Salesforce",
            id="salesforce-client",
        ),
        pytest.param("icp_sync/store/mirror.py", "import sqlalchemy", id="store-database"),
        pytest.param(
            "icp_sync/pipeline/alerting.py",
            "from icp_sync.alerts import make_sinks",
            id="pipeline-alerts",
        ),
    ],
)
def test_an_allowed_import_passes_the_lint(path: str, source: str) -> None:
    """The shell may import the store, connectors and pipeline; the core may import the core."""
    assert _banned(path, source) == []
