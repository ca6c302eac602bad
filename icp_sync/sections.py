"""What every config section is built from: a frozen base, secret references, config paths.

Kept apart from :mod:`icp_sync.config` so that each connector's own section model
(``connectors/<crm>/config.py``) can use them while ``icp_sync.config`` composes the sections.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, ValidationInfo

__all__ = ["Secret", "SecretRef", "Section", "base_dir", "existing_file", "resolve_secret"]


class Section(BaseModel):
    """A config section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_secret(reference: str) -> str:
    """Resolve an ``env:NAME`` or ``file:PATH`` reference to the secret it names.

    Raises:
        ValueError: If the reference is not one of those forms or cannot be resolved.
    """
    kind, _, target = reference.partition(":")
    if kind == "env" and target:
        value = os.environ.get(target)
        if value is None:
            raise ValueError(f"environment variable {target} is not set")
        return value
    if kind == "file" and target:
        try:
            return Path(target).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {target}: {exc.strerror}") from None
    raise ValueError(
        "must be a reference, env:NAME or file:PATH; the secret itself never goes in the file"
    )


def base_dir(info: ValidationInfo) -> Path:
    """The folder of the config file being validated (relative paths start there)."""
    context = info.context or {}
    return Path(context.get("base_dir", "."))


def existing_file(value: Path, info: ValidationInfo) -> Path:
    """``value`` resolved against the config folder; a ``ValueError`` when it is no file."""
    path = value if value.is_absolute() else base_dir(info) / value
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path.resolve()


class SecretRef(SecretStr):
    """A secret resolved from its ``env:`` / ``file:`` reference, which it remembers.

    :meth:`reload` resolves the reference again, so a rotated secret file or variable is
    picked up without a restart.
    """

    def __init__(self, secret_value: str, reference: str = "") -> None:
        super().__init__(secret_value)
        self.reference = reference

    def reload(self) -> str:
        """Resolve the reference again and return the current secret."""
        return resolve_secret(self.reference) if self.reference else self.get_secret_value()


def _secret(value: object) -> SecretStr:
    if isinstance(value, SecretStr):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string reference, env:NAME or file:PATH")
    return SecretRef(resolve_secret(value), reference=value)


Secret = Annotated[SecretStr, BeforeValidator(_secret)]
"""A secret given as an ``env:NAME`` or ``file:PATH`` reference, resolved at load time."""
