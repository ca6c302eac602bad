"""structlog, configured once: JSON lines when stderr is not a terminal, pretty when it is.

Every line carries the ``run_id`` (and ``command``) bound through contextvars; secrets are
masked by a processor that knows every resolved secret value and every secret-looking key.
Each command ends with one summary line (``command_finished``) with counts and duration.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["MASK", "Redactor", "bind_run", "configure", "get_logger"]

MASK = "***"

_SECRET_KEY = re.compile(
    r"(password|passwd|secret|token|authorization|api[_-]?key|session[_-]?id|private[_-]?key)",
    re.IGNORECASE,
)


class Redactor:
    """Processor that masks secret values anywhere in an event, and values of secret keys."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first, so a secret that contains another is masked whole
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(
        self, _: object, __: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            event_dict[key] = self._clean(key, event_dict[key])
        return event_dict

    def _clean(self, key: str, value: Any) -> Any:
        if _SECRET_KEY.search(key) and value not in (None, ""):
            return MASK
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(key, v) for v in value]
        return value


def configure(
    *,
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Configure structlog for the process; safe to call again (the last call wins).

    Args:
        level: Minimum level name (debug, info, warning, error).
        fmt: ``json``, ``console`` or ``auto`` (console on a terminal, JSON otherwise).
        stream: Where log lines go; stderr by default, so stdout stays for ``--json`` output.
        secrets: Secret values to mask wherever they appear.
    """
    out = stream or sys.stderr
    pretty = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if pretty
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        Redactor(secrets),
    ]
    if not pretty:
        processors.append(structlog.processors.dict_tracebacks)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def bind_run(command: str, run_id: str | None = None) -> str:
    """Start a run: bind a fresh ``run_id`` and the ``command`` to every following log line."""
    run_id = run_id or uuid.uuid4().hex[:12]
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(run_id=run_id, command=command)
    return run_id


def get_logger(**initial: Any) -> structlog.stdlib.BoundLogger:
    """A logger, optionally with initial key-value pairs bound."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(**initial)
    return logger
