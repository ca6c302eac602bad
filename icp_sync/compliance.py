"""The annual ICP commitment: a frozen ICP version, the named TAL, targets and signatories.

Pure. A :class:`Commitment` is what Sales, Marketing, CS, Product and Finance agreed to for a
period: the ICP definition as it was (its TOML text), the Target Account List by account id
in rank order, numeric targets (the share of new pipeline on Green accounts and any others)
and who signed. Its :attr:`~Commitment.content_hash` (SHA-256 of a canonical JSON form of
every other field) names it: a stored commitment whose fields no longer hash to its name was
altered after the fact. A commitment is never changed; a new one for the same period
*supersedes* it (names its hash) and the old one stays in the history.

The compliance rules that judge open deals against the commitment are in
:mod:`icp_sync.rules`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Commitment",
    "commitment_hash",
    "make_commitment",
    "parse_signatory",
    "period_bounds",
    "same_terms",
]

_YEAR = re.compile(r"^(?:FY)?(\d{4})$", re.IGNORECASE)
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of a commitment period.

    ``2027`` (or ``FY2027``) is the calendar year, ``2027-Q2`` a quarter, and
    ``2027-02-01..2028-02-01`` any range (end exclusive, e.g. a fiscal year).

    Raises:
        ValueError: If ``period`` is none of those forms, or the range is empty.
    """
    text = period.strip()
    if match := _YEAR.match(text):
        year = int(match.group(1))
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    if match := _QUARTER.match(text):
        year, quarter = int(match.group(1)), int(match.group(2))
        start = datetime(year, 3 * quarter - 2, 1, tzinfo=UTC)
        end = (
            datetime(year + 1, 1, 1, tzinfo=UTC)
            if quarter == 4
            else start.replace(month=3 * quarter + 1)
        )
        return start, end
    if match := _RANGE.match(text):
        try:
            start = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
            end = datetime.fromisoformat(match.group(2)).replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(f"period {period!r}: not a valid date range") from None
        if end <= start:
            raise ValueError(f"period {period!r}: the range ends before it starts")
        return start, end
    raise ValueError(
        f"period {period!r}: expected a year (2027), a quarter (2027-Q1) or a date range "
        "(2027-02-01..2028-02-01)"
    )


def parse_signatory(text: str) -> str:
    """A signatory as ``"Function: Name"`` (whitespace tidied).

    Raises:
        ValueError: If the text has no function or no name.
    """
    function, sep, name = text.partition(":")
    function, name = " ".join(function.split()), " ".join(name.split())
    if not sep or not function or not name:
        raise ValueError(f"signatory {text!r}: expected 'Function: Name', e.g. 'Sales: Dana Lee'")
    return f"{function}: {name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Commitment:
    """An annual ICP commitment, frozen.

    Attributes:
        period: The period it covers (see :func:`period_bounds`), e.g. ``"2027"``.
        icp_version: The ICP version committed to (``v3``).
        definition: That version's definition (rules snapshot) as TOML text.
        tal_name: The name of the committed Target Account List.
        tal_account_ids: The TAL's account ids, best rank first.
        target_green_share: Share of new pipeline (by amount) to come from Green accounts.
        targets: Any other numeric targets by name (``max_out_of_icp_share = 0.05``).
        signatories: Who agreed, each ``"Function: Name"``.
        created_at: When it was recorded.
        created_by: Who recorded it.
        supersedes: The content hash of the commitment it replaces, if any.
        content_hash: SHA-256 (hex) of every other field; names the commitment.
    """

    period: str
    icp_version: str
    definition: str
    tal_name: str
    tal_account_ids: tuple[str, ...]
    target_green_share: float | None
    targets: Mapping[str, float] = field(default_factory=dict)
    signatories: tuple[str, ...] = ()
    created_at: datetime
    created_by: str
    supersedes: str | None = None
    content_hash: str

    @property
    def starts_at(self) -> datetime:
        """Start of the period (inclusive)."""
        return period_bounds(self.period)[0]

    @property
    def ends_at(self) -> datetime:
        """End of the period (exclusive)."""
        return period_bounds(self.period)[1]

    def covers(self, when: datetime) -> bool:
        """Whether ``when`` falls in the period."""
        start, end = period_bounds(self.period)
        return start <= when < end

    def tal_rank(self, account_id: str) -> int | None:
        """The rank (1 = best) of an account on the committed TAL, ``None`` when not on it."""
        try:
            return self.tal_account_ids.index(account_id) + 1
        except ValueError:
            return None

    @property
    def intact(self) -> bool:
        """Whether the fields still hash to :attr:`content_hash` (not altered after the fact)."""
        return commitment_hash(_content(self)) == self.content_hash

    def as_dict(self, *, tal_members: bool = False) -> dict[str, Any]:
        """JSON-ready form; the TAL as its size unless ``tal_members``."""
        start, end = period_bounds(self.period)
        document: dict[str, Any] = {
            "period": self.period,
            "starts_at": start.isoformat(),
            "ends_at": end.isoformat(),
            "icp_version": self.icp_version,
            "tal_name": self.tal_name,
            "tal_size": len(self.tal_account_ids),
            "target_green_share": self.target_green_share,
            "targets": dict(self.targets),
            "signatories": list(self.signatories),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "supersedes": self.supersedes,
            "content_hash": self.content_hash,
            "intact": self.intact,
        }
        if tal_members:
            document["tal_account_ids"] = list(self.tal_account_ids)
        return document


def _content(commitment: Commitment) -> dict[str, Any]:
    return {
        "period": commitment.period,
        "icp_version": commitment.icp_version,
        "definition": commitment.definition,
        "tal_name": commitment.tal_name,
        "tal_account_ids": list(commitment.tal_account_ids),
        "target_green_share": commitment.target_green_share,
        "targets": {k: float(v) for k, v in sorted(commitment.targets.items())},
        "signatories": list(commitment.signatories),
        "created_at": _instant(commitment.created_at),
        "created_by": commitment.created_by,
        "supersedes": commitment.supersedes,
    }


def _instant(when: datetime) -> str:
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


def commitment_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a commitment's content (keys sorted)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_commitment(
    *,
    period: str,
    icp_version: str,
    definition: str,
    tal_name: str,
    tal_account_ids: Sequence[str],
    target_green_share: float | None,
    targets: Mapping[str, float] | None = None,
    signatories: Sequence[str] = (),
    created_at: datetime,
    created_by: str,
    supersedes: str | None = None,
) -> Commitment:
    """A new commitment with its content hash.

    Raises:
        ValueError: On a bad period, signatory, or a share outside 0..1.
    """
    period_bounds(period)
    people = tuple(parse_signatory(s) for s in signatories)
    if target_green_share is not None and not 0 <= target_green_share <= 1:
        raise ValueError("target_green_share: must be between 0 and 1")
    draft = Commitment(
        period=period.strip(),
        icp_version=icp_version,
        definition=definition,
        tal_name=tal_name,
        tal_account_ids=tuple(str(a) for a in tal_account_ids),
        target_green_share=target_green_share,
        targets={str(k): float(v) for k, v in sorted((targets or {}).items())},
        signatories=people,
        created_at=created_at.astimezone(UTC),
        created_by=created_by,
        supersedes=supersedes,
        content_hash="",
    )
    return _with_hash(draft)


def _with_hash(draft: Commitment) -> Commitment:
    return replace(draft, content_hash=commitment_hash(_content(draft)))


def same_terms(a: Commitment, b: Commitment) -> bool:
    """Whether two commitments agree on everything but when, by whom and what they replace."""
    ignore = ("created_at", "created_by", "supersedes")
    left, right = _content(a), _content(b)
    return all(left[k] == right[k] for k in left if k not in ignore)
