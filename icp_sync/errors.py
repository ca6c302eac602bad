"""One exception tree, branched by what the caller must do.

::

    IcpSyncError
    ├── ConfigError                 bad config or usage: list every problem, exit 2
    ├── ConnectorError              a CRM (or export file) could not be used
    │   ├── RetriableConnectorError 429 / 5xx / timeout / row lock: back off and retry
    │   │   └── SessionExpiredError the access token died: re-authenticate, then retry
    │   ├── BudgetExhaustedError    API budget spent: stop cleanly, resume next cycle
    │   └── FatalConnectorError     permissions, missing objects: the job fails, RevOps told
    │       └── AuthError           credentials refused
    ├── StateStoreError             the state store cannot be opened or migrated
    └── PipelineError               a cycle cannot proceed (e.g. nothing to score)
        ├── LeaseHeldError          another process holds the write lease: write nothing
        └── CycleInterruptedError        asked to stop (SIGTERM): stopped between two committed
                                    steps; the next cycle resumes from there

A bad record is never an exception: normalisation reports it as a
:class:`~icp_sync.model.Reject` and write-back as a rejection in its
:class:`~connectors.base.ApplyBatch`; both are skipped, reported, and the cycle carries on.
``except Exception`` appears only at the job boundary of the daemon and the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AuthError",
    "BudgetExhaustedError",
    "ConfigError",
    "ConnectorError",
    "CycleInterruptedError",
    "FatalConnectorError",
    "IcpSyncError",
    "LeaseHeldError",
    "PipelineError",
    "RetriableConnectorError",
    "SessionExpiredError",
    "StateStoreError",
]


class IcpSyncError(Exception):
    """Root of every error icp-sync raises on purpose."""


class ConfigError(IcpSyncError, ValueError):
    """The configuration (or the command line) is wrong; ``problems`` lists every issue.

    Each problem is one line starting with its TOML path, e.g.
    ``store.url: must be a SQLAlchemy URL``.
    """

    def __init__(self, problems: Sequence[str], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} configuration {noun}{where}:\n  " + "\n  ".join(self.problems))


class ConnectorError(IcpSyncError):
    """A CRM or export could not be used. ``connector`` names which one."""

    def __init__(self, message: str, *, connector: str = "") -> None:
        self.connector = connector
        super().__init__(message)


class RetriableConnectorError(ConnectorError):
    """A transient fault (rate limit, 5xx, timeout, row lock): retry with backoff.

    Attributes:
        retry_after: Seconds the server asked us to wait, when it said.
    """

    def __init__(
        self, message: str, *, connector: str = "", retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, connector=connector)


class SessionExpiredError(RetriableConnectorError):
    """The access token expired or was revoked: re-authenticate, then retry."""


class BudgetExhaustedError(ConnectorError):
    """The API budget for this cycle (or the org's daily limit) is spent.

    The cycle stops cleanly; work not done is picked up by the next cycle.
    """


class FatalConnectorError(ConnectorError):
    """A fault retrying will not fix: permissions, missing objects, malformed requests."""


class AuthError(FatalConnectorError):
    """The CRM refused our credentials."""


class StateStoreError(IcpSyncError):
    """The state store cannot be opened, migrated or written."""


class PipelineError(IcpSyncError):
    """A cycle cannot proceed, for a reason the message states."""


class LeaseHeldError(PipelineError):
    """Another process holds the single-writer lease (or this one lost it): write nothing."""


class MassChangeError(PipelineError):
    """A sync would delete or re-tier more than the configured share; nothing was written.

    ``sync --allow-mass-change`` lets it through once the change is understood.
    """


class CycleInterruptedError(PipelineError):
    """A stop was requested (SIGTERM); the cycle stopped between two committed steps.

    Nothing is half-written: every mirrored batch and every write call before the stop is
    recorded, so the next cycle resumes from there.
    """
