"""The report and the period review on a terminal: headline numbers and what disagrees."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from icp_sync.console import percent, stdout

__all__ = ["print_period_review", "print_report"]


def _interval(estimate: dict[str, Any]) -> str:
    if estimate.get("value") is None:
        return f"not enough data ({estimate.get('note', '')})"
    return (
        f"{percent(estimate['value'])} (95% CI {percent(estimate['low'])}–"
        f"{percent(estimate['high'])}, n={estimate['n']})"
    )


def print_report(document: dict[str, Any]) -> None:
    """Headline of ``icp-sync report``: green share against target, out-of-ICP, drift."""
    period, commitment, head = document["period"], document["commitment"], document["headline"]
    stdout.print(
        f"[bold]ICP adherence {period['name']}[/] (ICP {commitment['icp_version']}, "
        f"{commitment['source']}; observed until {period['observed_until']})"
    )
    stdout.print(f"new-business deals: {head['new_deals']:,}, amount {head['new_amount']:,.0f}")
    target = head["target_green_share"]
    stdout.print(
        f"Green share of new amount: {_interval(head['green_amount_share'])}; target "
        f"{percent(target) if target is not None else 'none committed'}: {head['verdict']}"
    )
    stdout.print(f"Green share of new deals: {_interval(head['green_share'])}")
    out = document["out_of_icp"]
    stdout.print(
        f"out-of-ICP deals: {out['deals']} (open {out['open']}, waived {out['waived']}, "
        f"won {out['won']}, lost {out['lost']})"
    )
    test = document["green_vs_rest"]["win_rate"]
    if test.get("supported"):
        stdout.print(
            f"win rate Green vs rest: {test['difference']:+.1%} (95% CI {test['low']:+.1%} to "
            f"{test['high']:+.1%}), ratio {test['ratio']:.2f}"
        )
    revealed = document["revealed"]
    for kind, words in (("pipeline", "pursuing"), ("won", "closing")):
        shown = [f"{p['segment']} ({p['committed_tier']})" for p in revealed["profile"][kind][:5]]
        if shown:
            stdout.print(f"revealed ICP, {words} above their share: " + escape("; ".join(shown)))
    if revealed["disagreements"]:
        table = Table(title="Revealed ICP disagrees with the committed ICP (last 90 days)")
        for column in ("segment", "finding", "won", "pipeline", "index", "q"):
            table.add_column(
                column, justify="left" if column in ("segment", "finding") else "right"
            )
        for row in revealed["disagreements"][:10]:
            table.add_row(
                escape(str(row["segment"])),
                str(row["finding"]),
                str(row["won"]),
                str(row["pipeline"]),
                f"{row['index']:.2f}",
                f"{row['q_value']:.2g}",
            )
        stdout.print(table)
    else:
        stdout.print("revealed ICP: no segment disagrees with the committed ICP")
    for note in document["notes"]:
        stdout.print(f"[yellow]not supported:[/] {escape(note)}")
    files = document.get("files", {})
    if "html" in files:
        stdout.print(f"report: {files['html']}")


def _difference(test: dict[str, Any]) -> str:
    if not test.get("supported"):
        return str(test.get("note", "not enough data"))
    return f"{test['difference']:+.1%} (95% CI {test['low']:+.1%} to {test['high']:+.1%})"


def print_period_review(document: dict[str, Any]) -> None:
    """``icp-sync review --period``: the predictions, the segments to change, the proposal."""
    period, commitment = document["period"], document["commitment"]
    stdout.print(
        f"[bold]Review of the {period['name']} commitment[/] (ICP {commitment['icp_version']}, "
        f"derived as of {commitment['as_of'][:10]}; observed until {period['observed_until']})"
    )
    table = Table()
    for column in ("prediction", "group", "other", "difference", "verdict"):
        table.add_column(column)
    for check in document["predictions"]:
        first, second = (v for k, v in check.items() if isinstance(v, dict) and "n" in v)
        table.add_row(
            check["prediction"],
            _interval(first),
            _interval(second),
            _difference(check["difference"]),
            check["verdict"],
        )
    stdout.print(table)
    changes = document["segment_changes"]
    if changes:
        table = Table(title="Segments whose period outcomes contradict their tier")
        for column in ("segment", "committed", "proposal", "deals", "win rate", "rest", "q"):
            table.add_column(column)
        for row in changes[:15]:
            table.add_row(
                escape(str(row["segment"])),
                str(row["committed_tier"]),
                str(row["proposal"]),
                str(row["deals"]),
                percent(row["win_rate"]),
                percent(row["rest_win_rate"]),
                f"{row['q_value']:.2g}",
            )
        stdout.print(table)
    else:
        stdout.print("no segment's period outcomes contradict its committed tier")
    for note in document["notes"]:
        stdout.print(f"[yellow]{escape(note)}[/]")
    refinement = document["refinement"]
    stdout.print(f"proposed refinement: {refinement['file']} ({refinement['next']})")
