"""The report as one self-contained HTML page, and its tables as CSV (pure: strings out).

The page needs no network: plotly.js is embedded once (or, on the dashboard, served beside
the page), every table has a CSV export (a ``data:`` link in the file, a URL on the
dashboard), and every value from the CRM is HTML-escaped; CSV cells that a spreadsheet would
read as a formula are neutralised.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import quote

import pandas as pd
from plotly.offline import get_plotlyjs

from icp_sync.report.charts import figures, fragment
from icp_sync.report.document import Report
from icp_sync.text import neutralize

__all__ = ["TABLE_TITLES", "csv_text", "data_links", "render"]

TABLE_TITLES = {
    "lift": "Outcome lift by tier (95% intervals)",
    "monthly": "New pipeline by month",
    "tier_mix": "Tier mix of new pipeline",
    "teams": "Team leaderboard",
    "owners": "Owner leaderboard",
    "tal_funnel": "TAL coverage",
    "concentration": "New customers in the Green segments",
    "revealed_disagreements": "Revealed ICP against the committed ICP: disagreements",
    "revealed_segments": "Revealed ICP: every tested segment (last 90 days)",
}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{margin-bottom:4px} .sub{color:#666;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #ddd;border-radius:8px;padding:12px 16px;min-width:180px}
.card b{display:block;font-size:1.6em}
.charts{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}
@media (max-width:900px){.charts{grid-template-columns:minmax(0,1fr)}}
.chart{min-width:0;overflow:hidden}
table{border-collapse:collapse;margin:8px 0 24px;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
.warn{background:#fff6e0;border:1px solid #e0b000;padding:8px 12px;border-radius:6px}
.bad{color:#c8453c} .good{color:#2e9e5b}
"""


def csv_text(frame: pd.DataFrame) -> str:
    """A table as CSV, with formula-like text cells neutralised."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(lambda v: neutralize(v) if isinstance(v, str) else v)
    buffer = io.StringIO()
    out.to_csv(buffer, index=False)
    return buffer.getvalue()


def data_links(report: Report) -> dict[str, str]:
    """Each table's CSV as a ``data:`` URL, so a file on its own still exports its tables."""
    return {
        name: "data:text/csv;charset=utf-8," + quote(csv_text(frame))
        for name, frame in report.tables().items()
    }


def _pct(value: Any) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{float(value):.1%}"


def _ci(estimate: dict[str, Any]) -> str:
    if estimate["value"] is None:
        return escape(str(estimate.get("note", "not enough data")))
    return f"95% CI {_pct(estimate['low'])} – {_pct(estimate['high'])}"


def _cell(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        shares = ("share", "rate", "retention", "_low", "_high")
        if any(s in column for s in shares) and abs(value) <= 1.0 and "index" not in column:
            return f"{value:.1%}"
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return escape(str(value))


def _table(name: str, frame: pd.DataFrame, link: str | None, limit: int = 40) -> str:
    shown = frame.drop(columns=["rule"], errors="ignore").head(limit)
    head = "".join(f"<th>{escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v, str(c))}</td>" for c, v in row.items()) + "</tr>"
        for _, row in shown.iterrows()
    )
    if frame.empty:
        body = f'<tr><td colspan="{max(len(shown.columns), 1)}">none</td></tr>'
    more = f" (first {limit} of {len(frame)})" if len(frame) > limit else ""
    export = f' <a href="{escape(link)}" download="{name}.csv">CSV</a>' if link else ""
    return (
        f'<h3 id="table-{name}">{escape(TABLE_TITLES.get(name, name))}{more}{export}</h3>'
        f'<table class="data" data-table="{name}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _cards(report: Report) -> str:
    a = report.adherence
    head = a.headline
    share, amount = head["green_share"], head["green_amount_share"]
    target = head["target_green_share"]
    test = a.green_vs_rest["win_rate"]
    lift = "n/a" if test.get("ratio") is None else f"{test['ratio']:.2f}×"
    out = a.out_of_icp
    cards = [
        ("New-business deals", f"{head['new_deals']:,}", f"{head['new_amount']:,.0f} amount"),
        ("Green share of new amount", _pct(amount["value"]), _ci(amount)),
        ("Committed target (amount)", _pct(target), escape(head["verdict"])),
        ("Green share of new deals", _pct(share["value"]), _ci(share)),
        (
            "Out-of-ICP deals",
            f"{out['deals']:,}",
            f"open {out['open']} · waived {out['waived']} · won {out['won']} · lost {out['lost']}",
        ),
        (
            "Green win rate vs rest",
            lift,
            f"p = {test['p_value']:.2g}" if test.get("p_value") is not None else "",
        ),
        ("Revealed-ICP disagreements", f"{len(report.revealed.disagreements)}", "last 90 days"),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card" data-card="{escape(title)}">{escape(title)}<b>{value}</b>'
            f"<small>{detail}</small></div>"
            for title, value, detail in cards
        )
        + "</div>"
    )


def render(
    report: Report,
    *,
    links: Mapping[str, str] | None = None,
    plotly_src: str | None = None,
) -> str:
    """The report page.

    Args:
        report: What to show.
        links: CSV link per table name (default: ``data:`` URLs).
        plotly_src: URL of plotly.js; default: embedded in the page (no network needed).
    """
    links = dict(links) if links is not None else data_links(report)
    a = report.adherence
    terms = a.terms
    script = (
        f'<script src="{escape(plotly_src)}"></script>'
        if plotly_src
        else f"<script>{get_plotlyjs()}</script>"
    )
    warn = ""
    if terms.source != "commitment":
        warn = (
            '<p class="warn">No commitment is recorded for this period: measured against the '
            f"{escape(terms.source)} ({escape(terms.version)}) without a committed target.</p>"
        )
    notes = [*a.notes, *report.revealed.notes]
    note_html = (
        "<h2>What the data cannot support yet</h2><ul>"
        + "".join(f"<li>{escape(n)}</li>" for n in notes)
        + "</ul>"
        if notes
        else ""
    )
    charts = "".join(
        f'<div class="chart">{fragment(element, figure)}</div>'
        for element, figure in figures(report)
    )
    tables = report.tables()
    revealed = report.revealed
    sections = [
        _table(
            "revealed_disagreements",
            tables["revealed_disagreements"],
            links.get("revealed_disagreements"),
        ),
        *(
            _table(name, tables[name], links.get(name))
            for name in (
                "lift",
                "monthly",
                "teams",
                "owners",
                "tal_funnel",
                "concentration",
                "tier_mix",
            )
        ),
        _table("revealed_segments", tables["revealed_segments"], links.get("revealed_segments")),
    ]
    signed = ", ".join(terms.signatories) or "–"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>ICP adherence {escape(terms.period.name)}</title>
<style>{_STYLE}</style>{script}</head>
<body>
<h1>ICP adherence: {escape(terms.period.name)}</h1>
<p class="sub">ICP {escape(terms.version)} · TAL of {len(terms.tal):,} accounts · signed by
{escape(signed)} · period {terms.period.start:%Y-%m-%d} to {terms.period.end:%Y-%m-%d},
observed until {a.observed_until:%Y-%m-%d} · generated {report.generated_at:%Y-%m-%d %H:%M} UTC</p>
{warn}{_cards(report)}
<div class="charts">{charts}</div>
<h2>Revealed ICP against the committed ICP</h2>
<p>What sales pursued and closed from {revealed.window_start:%Y-%m-%d} to
{revealed.window_end:%Y-%m-%d} ({revealed.pipeline_deals:,} new deals, {revealed.won_deals:,}
wins), measured per segment like <code>derive</code>, against each segment's committed tier.</p>
{note_html}
{"".join(sections)}
</body></html>
"""
