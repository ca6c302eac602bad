"""structlog, configured once: JSON lines when stderr is not a terminal, pretty when it is.

Every line carries the ``run_id`` (and ``command``) bound through contextvars; secrets are
masked twice: values of secret-looking keys before rendering, and every known secret value in
the rendered line itself (so exception text and tracebacks with locals are covered too).
Secrets from the config are known from :func:`configure`; those obtained at run time (access
tokens) are registered with :func:`mask` as soon as they exist.
Each command ends with one summary line (``command_finished``) with counts and duration.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["MASK", "Redactor", "bind_run", "configure", "get_logger", "mask", "redact"]

MASK = "***"

_SECRET_KEY = re.compile(
    r"(password|passwd|secret|token|authorization|api[_-]?key|session[_-]?id|private[_-]?key)",
    re.IGNORECASE,
)


class _Secrets:
    """The secret values known to this process: configured ones and runtime ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._configured: set[str] = set()
        self._runtime: set[str] = set()
        self.ordered: tuple[str, ...] = ()

    def configure(self, values: Iterable[str]) -> None:
        with self._lock:
            self._configured = {v for v in values if len(v) >= 4}
            self._order()

    def add(self, value: str) -> None:
        with self._lock:
            if len(value) >= 4 and value not in self._runtime:
                self._runtime.add(value)
                self._order()

    def _order(self) -> None:
        # longest first, so a secret that contains another is masked whole
        forms = {form for value in self._configured | self._runtime for form in _forms(value)}
        self.ordered = tuple(sorted(forms, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for secret in self.ordered:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def _forms(secret: str) -> set[str]:
    """Every way ``secret`` can appear in a rendered line: as is, escaped by ``repr`` (a logged
    exception or local), by JSON (ASCII-only), by both, and each line of a multi-line secret
    (a private key) on its own."""
    parts = {secret}
    if "\n" in secret:
        parts |= {line.strip() for line in secret.splitlines() if len(line.strip()) >= 8}
    forms: set[str] = set()
    for part in parts:
        quoted = repr(part)[1:-1]
        forms |= {part, quoted, json.dumps(part)[1:-1], json.dumps(quoted)[1:-1]}
    return {form for form in forms if len(form) >= 4}


_SECRETS = _Secrets()


def mask(secret: str) -> None:
    """Register a secret obtained at run time (an access token): masked in every later line."""
    _SECRETS.add(secret)


def redact(text: str) -> str:
    """``text`` with every known secret masked (for output that bypasses logging)."""
    return _SECRETS.scrub(text)


def _mask_rendered(_: object, __: str, rendered: Any) -> Any:
    """Last processor: every known secret masked in the rendered line, tracebacks included."""
    if isinstance(rendered, str):
        return _SECRETS.scrub(rendered)
    if isinstance(rendered, bytes):
        return _SECRETS.scrub(rendered.decode("utf-8", "replace")).encode("utf-8")
    return rendered


class Redactor:
    """Processor that masks secret values anywhere in an event, and values of secret keys."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._extra = _Secrets()
        self._extra.configure(secrets)

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
            return _SECRETS.scrub(self._extra.scrub(value))
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
        secrets: Secret values to mask wherever they appear (replaces those given before;
            runtime ones registered with :func:`mask` stay).
    """
    _SECRETS.configure(secrets)
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
    processors += [renderer, _mask_rendered]
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
