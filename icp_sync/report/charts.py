"""The report's charts, drawn with Plotly (pure: a report in, figures out).

Green share against the target, tier mix, team leaderboard, TAL funnel, win rate by tier.

Figures are rendered as HTML fragments without plotly.js; the page embeds one copy of it.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from icp_sync.report.document import Report

__all__ = ["TIER_COLOURS", "figures", "fragment"]

TIER_COLOURS = {"Green": "#2e9e5b", "Yellow": "#e0b000", "Red": "#c8453c", "rest": "#7f8c8d"}
_LAYOUT = {
    "template": "plotly_white",
    "height": 360,
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "legend": {"orientation": "h", "y": -0.2},
}


def _errors(frame: pd.DataFrame, column: str) -> dict[str, object]:
    value = frame[column].astype(float)
    return {
        "type": "data",
        "array": (frame[f"{column}_high"].astype(float) - value).tolist(),
        "arrayminus": (value - frame[f"{column}_low"].astype(float)).tolist(),
        "visible": True,
    }


def _green_share(report: Report) -> go.Figure:
    monthly = report.adherence.monthly
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=monthly["month"],
            y=monthly["green_share"],
            mode="lines+markers",
            name="Green share of new deals (95% CI)",
            line={"color": TIER_COLOURS["Green"]},
            error_y=_errors(monthly, "green_share"),
        )
    )
    figure.add_trace(
        go.Scatter(
            x=monthly["month"],
            y=monthly["green_amount_share"],
            mode="lines+markers",
            name="Green share of new amount",
            line={"color": TIER_COLOURS["Green"], "dash": "dot"},
        )
    )
    target = report.adherence.terms.target_green_share
    if target is not None:
        figure.add_trace(
            go.Scatter(
                x=monthly["month"],
                y=[target] * len(monthly),
                mode="lines",
                name=f"committed target {target:.0%}",
                line={"color": "#333333", "dash": "dash"},
            )
        )
    figure.update_layout(title="Green share of new pipeline against the target", **_LAYOUT)
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    return figure


def _tier_mix(report: Report) -> go.Figure:
    monthly = report.adherence.monthly
    figure = go.Figure(
        [
            go.Bar(x=monthly["month"], y=monthly[tier], name=tier, marker_color=colour)
            for tier, colour in TIER_COLOURS.items()
            if tier in monthly.columns
        ]
    )
    figure.update_layout(title="New deals by tier, per month", barmode="stack", **_LAYOUT)
    return figure


def _leaderboard(report: Report) -> go.Figure:
    adherence = report.adherence
    table = adherence.teams if adherence.grouping == "owner team" else adherence.owners.head(15)
    label = "team" if adherence.grouping == "owner team" else "owner_id"
    ordered = table.sort_values("green_share", ascending=True, na_position="first")
    figure = go.Figure(
        go.Bar(
            x=ordered["green_share"],
            y=[
                f"{name} ({deals:,} deals)"
                for name, deals in zip(ordered[label], ordered["deals"], strict=True)
            ],
            orientation="h",
            marker_color=TIER_COLOURS["Green"],
            error_x=_errors(ordered, "green_share"),
            name="Green share",
        )
    )
    target = adherence.terms.target_green_share
    if target is not None:
        figure.add_vline(x=target, line_dash="dash", annotation_text="target")
    figure.update_layout(title=f"Leaderboard: Green share of new deals by {label}", **_LAYOUT)
    figure.update_xaxes(tickformat=".0%", rangemode="tozero")
    return figure


def _tal_funnel(report: Report) -> go.Figure:
    funnel = report.adherence.tal_funnel
    figure = go.Figure(
        go.Funnel(y=funnel["stage"], x=funnel["accounts"], textinfo="value+percent initial")
    )
    figure.update_layout(title="Target Account List coverage in the period", **_LAYOUT)
    return figure


def _win_rate(report: Report) -> go.Figure:
    lift = report.adherence.lift
    figure = go.Figure(
        go.Bar(
            x=[f"{g} (n={n:,})" for g, n in zip(lift["group"], lift["win_rate_n"], strict=True)],
            y=lift["win_rate"],
            marker_color=[TIER_COLOURS.get(g, "#999999") for g in lift["group"]],
            error_y=_errors(lift, "win_rate"),
            name="win rate",
        )
    )
    figure.update_layout(title="New-business win rate by tier (95% Wilson CI)", **_LAYOUT)
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    return figure


def figures(report: Report) -> list[tuple[str, go.Figure]]:
    """The report's charts, each with the id of the element it is drawn into."""
    return [
        ("chart-green-share", _green_share(report)),
        ("chart-tier-mix", _tier_mix(report)),
        ("chart-leaderboard", _leaderboard(report)),
        ("chart-tal-funnel", _tal_funnel(report)),
        ("chart-win-rate", _win_rate(report)),
    ]


def fragment(element_id: str, figure: go.Figure) -> str:
    """One figure as an HTML fragment that needs plotly.js on the page (and no network)."""
    return str(
        figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=element_id,
            config={"displaylogo": False, "responsive": True},
        )
    )
