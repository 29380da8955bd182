"""The report's summary in the terminal: what is drifting now, what broke since yesterday, the worst
offenders and queue health, a few rich tables, each cut to its first rows (the HTML page has them all)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from dispatcher.report.build import Report, worst_targets

ROWS = 15
STATUS_STYLE = {"CLEAN": "green", "DRIFTED": "yellow", "FAILED_CHECKS": "yellow", "ERROR": "red"}


def duration(seconds: int | float | None) -> str:
    """3d 4h, 5h 12m, 7m: the two largest units."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else "<1m"


def money(amounts: dict[str, float]) -> str:
    return ", ".join(f"{amount:,.0f} {currency}" for currency, amount in amounts.items()) or "-"


def print_summary(report: Report, console: Console) -> None:
    orgs = report.organizations
    if not orgs:
        console.print("no organizations yet: nothing to report (add one with `nightshift orgs add`)")
        return
    console.print(f"[bold]Nightshift report[/bold]  {report.generated_at:%Y-%m-%d %H:%M} UTC  "
                  f"{len(orgs)} organization{'s' if len(orgs) != 1 else ''}")
    overview = _table("Organizations", ("organization", "targets", "open", "crit/high", "drifting", "overdue",
                                        "failing", f"MTTR {report.mttr_days}d", "posture", "savings/month"))
    for org in orgs:
        k = org["kpis"]
        overview.add_row(org["name"], str(k["targets"]), str(k["open_findings"]), str(k["critical_high"]),
                         str(k["drifting"]), str(k["overdue"]), str(k["failing_scans"]),
                         duration(k["mttr_seconds"]),
                         "-" if k["posture_score"] is None else f"{k['posture_score']}%",
                         money(k["monthly_saving"]))
    _print(console, overview, len(orgs))

    drifting = [dict(t, organization=o["name"]) for o in orgs for t in o["drifting_now"]]
    drifting.sort(key=lambda t: -t["open_findings"])
    _targets(console, "Drifting or failing checks now", drifting, "nothing is drifting")
    broke = [dict(t, organization=o["name"]) for o in orgs for t in o["broke_since_yesterday"]]
    _targets(console, "Broke since yesterday", broke, "nothing broke since yesterday")
    _targets(console, "Worst offenders", worst_targets(report, ROWS), "no open findings")

    queue = _table("Queue health", ("organization", "kind", "queued", "running", "oldest queued",
                                    "done 1h", "done 24h", "failed 24h", "dead 24h"))
    rows = [(o["name"], q) for o in orgs for q in o["queue"]]
    for name, q in rows[:ROWS]:
        queue.add_row(name, q["kind"], str(q["queued"]), str(q["running"]),
                      duration(q["oldest_queued_seconds"]),
                      str(q["done_last_hour"]), str(q["done_last_day"]), str(q["failed_last_day"]),
                      _red(q["dead_last_day"]))
    if rows:
        _print(console, queue, len(rows))
    else:
        console.print("[bold]Queue health[/bold]: no tasks queued, running or finished in the last day")


def _targets(console: Console, title: str, rows: Sequence[dict[str, Any]], empty: str) -> None:
    if not rows:
        console.print(f"[bold]{title}[/bold]: {empty}")
        return
    table = _table(title, ("organization", "target", "kind", "status", "open", "worst", "last scan",
                           "errors in a row"))
    for t in rows[:ROWS]:
        status = t["last_status"] or "-"
        table.add_row(t["organization"], t["target"], t["kind"],
                      f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]", str(t["open_findings"]),
                      t["worst_severity"] or "-",
                      f"{t['last_scan_at']:%Y-%m-%d %H:%M}" if t["last_scan_at"] else "never",
                      _red(t["error_streak"]))
    _print(console, table, len(rows))


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD)
    for column in columns:
        table.add_column(column, no_wrap=column in ("organization", "kind", "status"))
    return table


def _red(count: int) -> str:
    return f"[red]{count}[/red]" if count else "0"


def _print(console: Console, table: Table, total: int) -> None:
    console.print(table)
    if total > ROWS:
        console.print(f"  ... and {total - ROWS} more (--json or --html for all)")
