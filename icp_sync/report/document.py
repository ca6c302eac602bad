"""The report document: adherence and revealed ICP with what they were measured on (pure).

One :class:`Report` feeds every view: ``report --json``, the HTML file, the dashboard, the
weekly digest and the CSV exports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from icp_sync.adherence import Adherence
from icp_sync.revealed import Revealed

__all__ = ["Report", "records"]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON-ready rows (NaN becomes null)."""
    rows = frame.drop(columns=["rule"], errors="ignore").to_dict("records")
    return [{str(k): _clean(v) for k, v in row.items()} for row in rows]


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Everything the report shows.

    Attributes:
        adherence: The adherence measurement for the period.
        revealed: The revealed ICP against the committed one.
        generated_at: When the report was made.
        history_end: The end of the observed history (what "now" means for the data).
        link: Where the dashboard lives (for the digest), if configured.
    """

    adherence: Adherence
    revealed: Revealed
    generated_at: pd.Timestamp
    history_end: pd.Timestamp
    link: str | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table of the report, by its CSV name."""
        revealed = self.revealed.segments[self.revealed.segments["tested"]]
        return self.adherence.tables() | {
            "revealed_segments": revealed.drop(columns=["rule", "tested"]),
            "revealed_disagreements": self.revealed.disagreements.drop(columns=["rule"]),
        }

    def as_dict(self) -> dict[str, Any]:
        """The ``report --json`` document."""
        a = self.adherence
        terms = a.terms
        document: dict[str, Any] = _clean(
            {
                "period": {
                    "name": terms.period.name,
                    "start": terms.period.start.date().isoformat(),
                    "end": terms.period.end.date().isoformat(),
                    "observed_until": a.observed_until.date().isoformat(),
                },
                "commitment": {
                    "source": terms.source,
                    "icp_version": terms.version,
                    "target_green_share": terms.target_green_share,
                    "tal_accounts": len(terms.tal),
                    "signatories": list(terms.signatories),
                    "content_hash": terms.content_hash,
                },
                "generated_at": self.generated_at.isoformat(),
                "history_end": self.history_end.isoformat(),
                "headline": a.headline,
                "grouping": a.grouping,
                "out_of_icp": a.out_of_icp,
                "green_vs_rest": a.green_vs_rest,
                "concentration": a.concentration_summary,
                "tables": {name: records(frame) for name, frame in a.tables().items()},
                "revealed": self.revealed.as_dict(),
                "notes": [*a.notes, *self.revealed.notes],
                "link": self.link,
            }
        )
        return document
