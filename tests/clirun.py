"""Running the real ``icp-sync`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Outcome:
    """Exit code and the two output streams of one command."""

    code: int
    stdout: str
    stderr: str


def icp_sync(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Outcome:
    """Run ``python -m icp_sync ARGS`` and capture everything."""
    completed = subprocess.run(
        [sys.executable, "-m", "icp_sync", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )
    return Outcome(completed.returncode, completed.stdout, completed.stderr)
