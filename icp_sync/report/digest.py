"""The weekly leadership digest: the report's headline numbers and a link (pure).

One :class:`Digest` renders as an e-mail (subject and plain text) and as Slack Block Kit; the
sending goes through the alert channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from icp_sync.report.document import Report

__all__ = ["Digest", "digest"]


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Digest:
    """The digest: a subject line, the headline lines, and the dashboard link."""

    subject: str
    lines: tuple[str, ...]
    link: str | None

    @property
    def text(self) -> str:
        """Plain text (the e-mail body)."""
        body = "\n".join(f"- {line}" for line in self.lines)
        return f"{self.subject}\n\n{body}\n" + (f"\nDashboard: {self.link}\n" if self.link else "")

    def slack_blocks(self) -> list[dict[str, Any]]:
        """The digest as Slack Block Kit blocks."""
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": self.subject[:150]}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "\n".join(f"• {line}" for line in self.lines)},
            },
        ]
        if self.link:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Open the dashboard"},
                            "url": self.link,
                        }
                    ],
                }
            )
        return blocks

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (an alert payload: ``event`` ``icp.leadership_digest``)."""
        return {
            "event": "icp.leadership_digest",
            "subject": self.subject,
            "lines": list(self.lines),
            "link": self.link,
        }


def digest(report: Report) -> Digest:
    """The headline numbers of ``report``: green share against target, out-of-ICP deals, TAL
    coverage, Green's win-rate edge and the revealed-ICP drift."""
    a = report.adherence
    head = a.headline
    amount = head["green_amount_share"]
    target = head["target_green_share"]
    subject = (
        f"ICP adherence {a.terms.period.name}: Green {_pct(amount['value'])} of new pipeline "
        + (f"(target {_pct(target)}, {head['verdict']})" if target is not None else "(no target)")
    )
    out = a.out_of_icp
    funnel = dict(zip(a.tal_funnel["stage"], a.tal_funnel["accounts"], strict=True))
    lines = [
        (
            f"{head['new_deals']:,} new-business deals, {head['new_amount']:,.0f} in amount, "
            f"up to {a.observed_until:%Y-%m-%d}"
        ),
        (
            f"Out of ICP: {out['deals']} deals ({out['open']} open, {out['waived']} waived, "
            f"{out['won']} won, {out['lost']} lost)"
        ),
        (
            f"TAL: {funnel.get('engaged', 0)} of {funnel.get('TAL accounts', 0)} accounts engaged, "
            f"{funnel.get('with new pipeline', 0)} with new pipeline, {funnel.get('won', 0)} won"
        ),
    ]
    test = a.green_vs_rest["win_rate"]
    if test.get("supported"):
        lines.append(
            f"Green win rate vs the rest: {test['difference']:+.1%} "
            f"(95% CI {test['low']:+.1%} to {test['high']:+.1%})"
        )
    drift = report.revealed.disagreements
    if len(drift):
        shown = "; ".join(f"{r.segment} ({r.finding})" for r in drift.head(3).itertuples())
        lines.append(f"Revealed ICP drifting from the commitment: {shown}")
    else:
        lines.append("Revealed ICP: sales pursue and close what was committed")
    return Digest(subject=subject, lines=tuple(lines), link=report.link)
