"""How results look on a terminal: rich tables for people, one JSON document for scripts."""

from __future__ import annotations

import json
import math
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from icp_sync.text import shorten

if TYPE_CHECKING:
    import pandas as pd

    from connectors.base import CheckItem  # noqa: TID251
    from icp_sync.pipeline import SyncResult  # noqa: TID251

__all__ = ["money", "percent", "print_checks", "print_json", "print_sync", "stdout"]

stdout = Console(highlight=False, soft_wrap=False, width=120 if not sys.stdout.isatty() else None)


def print_json(document: dict[str, Any]) -> None:
    """Print one JSON document on stdout (NaN becomes null)."""
    sys.stdout.write(json.dumps(_clean(document), default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return _clean(value.item())
    return value


def print_checks(items: Sequence[CheckItem]) -> None:
    """The findings of ``check`` as a table."""
    table = Table(title="icp-sync check", show_lines=False)
    table.add_column("", width=2)
    table.add_column("what")
    table.add_column("found")
    table.add_column("what to do")
    for item in items:
        mark = "[green]ok[/]" if item.ok else ("[red]!![/]" if item.required else "[yellow]--[/]")
        table.add_row(mark, item.name, item.detail, item.fix)
    stdout.print(table)


def print_sync(result: SyncResult) -> None:
    """The outcome of ``sync``: what moved, what was repaired, and the segment summary."""
    table = Table(title=f"sync via {result.connector} (run {result.run_id})")
    for column in ("object", "read", "new", "changed", "unchanged", "deleted", "rejected"):
        table.add_column(column, justify="right" if column != "object" else "left")
    for obj, outcome in result.objects.items():
        if outcome.source_unchanged:
            table.add_row(str(obj), "source unchanged: nothing read", "", "", "", "", "")
            continue
        table.add_row(
            str(obj),
            f"{outcome.extracted:,}",
            f"{outcome.inserted:,}",
            f"{outcome.updated:,}",
            f"{outcome.unchanged:,}",
            f"{outcome.deleted:,}",
            f"{len(outcome.report.rejects) if outcome.report else 0:,}",
        )
    stdout.print(table)
    for obj, outcome in result.objects.items():
        if not outcome.source_unchanged:
            stdout.print(_reconciliation(str(obj), outcome))
    _print_repairs(result)
    if result.writeback is None:
        _print_segments(result.segments)
    else:
        _print_writeback(result.writeback)
    if result.compliance:
        _print_compliance(result.compliance)
    stdout.print(
        f"mirror: {result.mirror.get('account', 0):,} accounts, "
        f"{result.mirror.get('opportunity', 0):,} opportunities; "
        f"{result.api_calls} CRM API calls; {result.duration_s:.1f} s"
    )
    if result.status != "ok":
        stdout.print(f"[yellow]cycle stopped early ({result.status}); the next cycle resumes[/]")


def _print_compliance(summary: dict[str, Any]) -> None:
    """One line: open deals judged, violations new / resolved, deal fields written, alerts."""
    counts = ", ".join(f"{v:,} {k}" for k, v in summary.get("compliance", {}).items())
    delivered = sum((summary.get("alerts") or {}).get("delivered", {}).values())
    pending = (summary.get("alerts") or {}).get("pending", 0)
    written = (summary.get("writes") or {}).get("records_written", 0)
    stdout.print(
        f"compliance: {summary.get('checked', 0):,} open deals ({counts}); "
        f"{summary.get('new', 0)} new violations, {summary.get('resolved', 0)} resolved, "
        f"{summary.get('waived', 0)} waived; {written:,} deals written; "
        f"{delivered} alerts sent" + (f", {pending} waiting to be retried" if pending else "")
    )


def _reconciliation(name: str, outcome: Any) -> str:
    """``account: 0 live before + 5,000 new - 10 ... = 4,990 live in the mirror``."""
    terms = [f"{outcome.mirror_before:,} live before", f"+ {outcome.inserted:,} new"]
    if outcome.arrived_deleted:
        terms.append(f"- {outcome.arrived_deleted:,} read already deleted in the CRM")
    terms.append(f"- {outcome.deleted:,} deleted")
    if outcome.restored:
        terms.append(f"+ {outcome.restored:,} restored")
    return f"{name}: {' '.join(terms)} = {outcome.mirror_after:,} live in the mirror"


def _print_writeback(summary: dict[str, Any]) -> None:
    if "hubspot" in summary:
        _print_hubspot(summary["hubspot"])
    if "skipped" in summary:
        stdout.print(f"[yellow]write-back skipped: {summary['skipped']}[/]")
        return
    if "activated" in summary:
        stdout.print(
            f"[yellow]ICP {summary['activated']['version']} activated automatically "
            "(first run on an empty store); later versions go live only with "
            "`icp-sync activate`[/]"
        )
    plan = summary["plan"]
    tiers = ", ".join(f"{n:,} {t}" for t, n in summary["tiers"].items())
    as_of = f" (as of {summary['as_of'][:10]})" if summary.get("as_of") else ""
    stdout.print(f"ICP {summary['version']}{as_of}: {tiers}")
    for move, count in plan["tier_moves"].items():
        stdout.print(f"  {count:,} accounts move {move}")
    if "guard" in summary:
        stdout.print(f"[yellow]without --dry-run this sync would stop: {summary['guard']}[/]")
    verb = "would change" if summary["dry_run"] else "changed"
    written = summary.get("by_crm", {}).get("salesforce", summary["records_written"])
    stdout.print(
        f"write-back {verb}: {plan['records']:,} records, {plan['field_changes']:,} fields"
        + (
            ""
            if summary["dry_run"]
            else (
                f"; written {written:,}, rejected {summary['rejected']:,}, "
                f"deferred {summary['deferred']:,}, earlier refusals retried "
                f"{summary.get('retried_rejects', 0):,}"
            )
        )
    )
    if "preview" in summary:
        _print_preview(summary["preview"])


def _print_preview(preview: dict[str, Any]) -> None:
    """The dry-run preview: TAL changes, a sample of old and new values, the write's cost."""
    tal = preview["tal"]
    stdout.print(f"  TAL: {tal['added']:,} accounts added, {tal['removed']:,} removed")
    for label, names in (("added", tal["added_sample"]), ("removed", tal["removed_sample"])):
        if names:
            stdout.print(f"    {label}: {', '.join(names)}" + (" ..." if len(names) >= 10 else ""))
    if preview["sample"]:
        table = Table(title="sample of the records it would write (old -> new)", show_lines=True)
        for column in ("account", "field", "old", "new"):
            table.add_column(column, overflow="fold")
        for record in preview["sample"]:
            for n, (name, values) in enumerate(record["fields"].items()):
                who = f"{record['name']} ({record['record_id']})" if n == 0 else ""
                table.add_row(who, name, values["old"][:80], values["new"][:80])
        stdout.print(table)
    cost = preview["api_calls"]
    stdout.print(f"  the write would cost {cost['calls']:,} API calls ({cost['method']})")


def _print_hubspot(part: dict[str, Any]) -> None:
    """The second CRM of a salesforce+hubspot sync: the match report and its write-back."""
    match = part.get("match")
    if match is None:
        stdout.print(f"[yellow]HubSpot: {part.get('status', 'not synced')}[/]")
        return
    by = ", ".join(f"{n:,} by {rule.replace('_', ' ')}" for rule, n in match["by"].items())
    stdout.print(
        f"HubSpot: {match['matched']:,} companies matched to Salesforce accounts ({by}); "
        f"{match['ambiguous']:,} ambiguous, {match['unmatched_hubspot']:,} unmatched, "
        f"{match['unmatched_salesforce']:,} accounts without a company"
    )
    verb = "would change" if part["dry_run"] else "changed"
    stdout.print(
        f"HubSpot write-back {verb}: {part['plan']['records']:,} companies"
        + ("" if part["dry_run"] else f"; written {part['records_written']:,}")
    )


def print_activation(document: dict[str, Any]) -> None:
    """The preview (and outcome) of ``activate``: CRM changes, tier moves, TAL changes."""
    plan, tal = document["plan"], document["tal"]
    previous = document["previous"] or "none"
    kind = "rollback to" if document["rollback"] else "activate"
    stdout.print(f"{kind} ICP {document['version']} (active now: {previous})")
    tiers = ", ".join(f"{n:,} {t}" for t, n in document["tiers"].items())
    stdout.print(f"  tiers: {tiers}")
    for move, count in plan["tier_moves"].items():
        stdout.print(f"  {count:,} accounts {move}")
    stdout.print(
        f"  TAL ({tal['source']}): {tal['size']:,} accounts, "
        f"{tal['added']:,} added, {tal['removed']:,} removed"
    )
    if document["crm_writes"]:
        fields = ", ".join(f"{f} {n:,}" for f, n in plan["by_field"].items())
        stdout.print(
            f"  the next sync would change {plan['records']:,} records, "
            f"{plan['field_changes']:,} fields" + (f" ({fields})" if fields else "")
        )
    else:
        stdout.print("  this connector writes nothing to a CRM")
    if document["activated"]:
        stdout.print(
            f"[green]ICP {document['version']} is active (by {document['by']}); "
            "the next sync writes it[/]"
        )
    elif document["previous"] == document["version"]:
        stdout.print(f"dry run: ICP {document['version']} is already the active version")
    else:
        target = shlex.quote(document.get("target") or document["version"])
        stdout.print(f"dry run: to make it live, `icp-sync activate {target}`")


def print_versions(rows: Sequence[dict[str, Any]]) -> None:
    """The ``versions`` table."""
    if not rows:
        stdout.print("no ICP version yet: `icp-sync derive` proposes one")
        return
    table = Table(title="ICP versions")
    columns = ("version", "status", "derived", "as of", "activated", "by", "replacing", "TAL")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["version"],
            row["status"],
            row["created_at"][:16].replace("T", " "),
            row["as_of"][:10],
            (row["activated_at"] or "")[:16].replace("T", " "),
            row["activated_by"] or "",
            row["replaced"] or "",
            str(row["tal_id"] or ""),
        )
    stdout.print(table)


def print_field_setup(document: dict[str, Any]) -> None:
    """What setup-fields found and created."""
    table = Table(title="ICP fields" + (" (dry run)" if document["dry_run"] else ""))
    table.add_column("field")
    table.add_column("status")
    for name in document["existing"]:
        table.add_row(name, "[green]exists[/]")
    for name in document.get("created", document.get("would_create", [])):
        table.add_row(
            name, "[cyan]would be created[/]" if document["dry_run"] else "[green]created[/]"
        )
    for name, error in document["failed"].items():
        table.add_row(name, f"[red]failed: {error}[/]")
    stdout.print(table)
    stdout.print(
        "New fields need field-level security for the integration user (a permission set)."
    )


def _print_repairs(result: SyncResult) -> None:
    rows = []
    for crm_object, outcome in result.objects.items():
        if outcome.report is None:
            continue
        name = str(crm_object)
        for reason, count in _reject_reasons(outcome).items():
            rows.append((name, "(whole record)", "rejected", reason, count))
        for column, repairs in sorted(outcome.report.columns.items()):
            rows += [(name, column, "repaired", r, n) for r, n in repairs.repaired.items()]
            rows += [(name, column, "dropped", r, n) for r, n in repairs.dropped.items()]
    if not rows:
        return
    table = Table(title="data quality: what was repaired, dropped or rejected")
    for column in ("object", "column", "action", "why", "values"):
        table.add_column(column, justify="right" if column == "values" else "left")
    for name, column, action, reason, count in rows:
        colour = {"repaired": "green", "dropped": "yellow", "rejected": "red"}[action]
        table.add_row(name, column, f"[{colour}]{action}[/]", reason, f"{count:,}")
    stdout.print(table)


def _reject_reasons(outcome: Any) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for reject in outcome.report.rejects:
        reasons[reject.reason] = reasons.get(reject.reason, 0) + 1
    return reasons


def _print_segments(segments: pd.DataFrame) -> None:
    if segments.empty:
        return
    for dimension, part in segments.groupby("dimension", sort=False):
        table = Table(title=f"segments by {dimension}")
        for column in ("value", "accounts", "customers", "deals", "win rate", "ACV"):
            table.add_column(column, justify="left" if column == "value" else "right")
        for row in part.itertuples(index=False):
            table.add_row(
                str(row.value),
                f"{row.accounts:,}",
                f"{row.customers:,}",
                f"{row.deals:,}",
                percent(row.win_rate),
                money(row.acv),
            )
        stdout.print(table)


def percent(value: object) -> str:
    """A share as ``42%``, or ``-`` when unknown."""
    return "-" if not isinstance(value, int | float) or math.isnan(value) else f"{value:.0%}"


def money(value: object) -> str:
    """An amount as ``12,345``, or ``-`` when unknown."""
    return "-" if not isinstance(value, int | float) or math.isnan(value) else f"{value:,.0f}"


def print_derive(document: dict[str, Any]) -> None:
    """The proposed ICP: summary in words, the chosen segments, where the files are."""
    window = document.get("observation_window", {})
    stdout.print(
        f"[bold]ICP {document['version']}[/] as of {document['as_of'][:10]} "
        f"(observed history {window.get('start', '?')} to {window.get('end', '?')})"
    )
    for warning in document.get("warnings", []):
        stdout.print(f"[yellow]warning[/] {warning['code']}: {warning['message']}")
    for line in document["summary"]:
        stdout.print(line)
    chosen = [s for s in document["segments"] if s["tier"] != "Yellow"]
    if chosen:
        table = Table(title="proposed tiers (everything else is Yellow)")
        for column in ("tier", "segment", "accounts", "win rate", "retention", "NRR", "lift", "q"):
            table.add_column(column, justify="left" if column in ("tier", "segment") else "right")
        for segment in chosen:
            metrics = segment["metrics"]
            colour = "green" if segment["tier"] == "Green" else "red"
            table.add_row(
                f"[{colour}]{segment['tier']}[/]",
                ", ".join(str(v) for v in segment["rule"].values()),
                f"{segment['n']:,}",
                percent(metrics.get("win_rate", {}).get("shrunk")),
                percent(metrics.get("retention", {}).get("shrunk")),
                percent(metrics.get("nrr", {}).get("shrunk")),
                "-" if segment["lift"] is None else f"{segment['lift']:.2f}",
                significance(segment["q_value"]),
            )
        stdout.print(table)
    if "backtest" in document:
        print_review(document["backtest"])
    for kind, path in document["files"].items():
        stdout.print(f"{kind}: {path}")
    stdout.print(
        f"ICP {document['version']} is a proposal: the CRM is unchanged until "
        f"`icp-sync activate {document['version']}` (preview it with --dry-run)"
    )


def _measured(document: dict[str, Any]) -> str | None:
    """ "ICP as of ..., history ... to ..." for a document that says so."""
    window = document.get("observation_window")
    if not window:
        return None
    as_of = (document.get("as_of") or "")[:10]
    return f"ICP as of {as_of}; history {window['start']} to {window['end']}"


def print_tal(document: dict[str, Any], limit: int = 15) -> None:
    """The TAL's head, its size and its coverage of the Green segments; why when it is empty."""
    accounts = document["accounts"]
    coverage = document["coverage"]
    if not accounts:
        stdout.print(
            f"{document['name']} ({document['version']}): no accounts. {_why_empty(coverage)}"
        )
        return
    shown = accounts[:limit]
    heading = (
        f"{len(accounts):,} accounts"
        if len(shown) == len(accounts)
        else (f"top {len(shown):,} of {len(accounts):,} accounts")
    )
    table = Table(
        title=f"{document['name']} ({document['version']}): {heading}",
        caption=_measured(document),
    )
    for column in ("rank", "account", "score", "tier", "segment", "why"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    for account in shown:
        table.add_row(
            str(account["rank"]),
            str(account["name"] or account["account_id"]),
            str(account["score"]),
            str(account["tier"]),
            str(account["segment"]),
            shorten(str(account["reasons"]), 90),
        )
    stdout.print(table)
    stdout.print(
        f"Green share {percent(coverage['green_share'])}; Green segments covered "
        f"{coverage['green_segments_covered']} of {len(coverage['green_segments'])}; "
        f"{coverage['prospects_considered']:,} prospects considered."
    )
    if len(shown) < len(accounts):
        stdout.print(f"{len(accounts) - len(shown):,} more on the list: --json prints them all.")
    stdout.print(
        f"A proposal: it goes live with `icp-sync activate {document['version']}` "
        "(the newest TAL of a version goes live with it)"
    )


def _why_empty(coverage: dict[str, Any]) -> str:
    total = coverage.get("accounts", 0)
    customers = coverage.get("customers", 0)
    red = coverage.get("red_prospects", 0)
    if total == 0:
        return "The mirror holds no accounts: run `icp-sync sync` first."
    if customers == total:
        return f"Every one of the {total:,} accounts is already a customer."
    return (
        f"Of {total:,} accounts, {customers:,} are already customers and {red:,} are Red "
        "(outside the ICP): a TAL holds only prospects that are not Red."
    )


_GROUPS = ("Green", "Yellow", "Red", "rest")


def print_review(document: dict[str, Any]) -> None:
    """What happened after an ICP version's as-of date; "not enough data" where it is too early."""
    stdout.print(
        f"[bold]Review of {document['version']}[/]: {document['observed_months']} months "
        f"observed after {document['as_of'][:10]}"
    )
    if not document.get("enough_data", True):
        stdout.print(f"[yellow]not enough data: {document.get('note', '')}[/]")
        return
    table = Table()
    for column in ("measure", "Green", "Yellow", "Red", "rest", "lift", "p"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for key, words in (
        ("win_rate_after", "new-business win rate"),
        ("retention_after", "logo retention"),
    ):
        part = document[key]
        test = part["green_vs_rest"]
        table.add_row(
            words,
            *(_rate(part[t]) for t in _GROUPS),
            "-" if test["lift"] is None else f"{test['lift']:.2f}",
            significance(test["p_value"]),
        )
    stdout.print(table)
    conversion = document["tal_conversion"]
    test = conversion["tal_vs_other"]
    stdout.print(
        f"TAL conversion {_rate(conversion['tal'])} vs {_rate(conversion['other_prospects'])} "
        "of other prospects"
        + (
            ""
            if test["lift"] is None
            else f" (lift {test['lift']:.2f}, p {significance(test['p_value'])})"
        )
    )
    parts = [
        *(document[k][t] for k in ("win_rate_after", "retention_after") for t in _GROUPS),
        conversion["tal"],
        conversion["other_prospects"],
    ]
    if document.get("note") and any(part["rate"] is None for part in parts):
        stdout.print(f"n/a: {document['note']}")


def _rate(part: dict[str, Any]) -> str:
    """``42% (n=120)``, or ``n/a (n=3)`` when the group is too small to judge."""
    shown = "n/a" if part["rate"] is None else percent(part["rate"])
    return f"{shown} (n={part['n']:,})"


def significance(value: object) -> str:
    """A p- or q-value as ``0.03`` or ``<0.001``; ``-`` when unknown."""
    if not isinstance(value, int | float) or math.isnan(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.2g}"
