"""Tests of the local CRM sandbox, mirroring icp_sync/sandbox."""
