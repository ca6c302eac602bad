"""``python -m icp_sync`` runs the command line."""

from __future__ import annotations

from icp_sync.cli import main

main()
