"""`nightshift report`: the reporting views as a terminal summary, JSON, or one HTML page.

    nightshift report                              # every organization: drifting, broke, worst, queue
    nightshift report --organization acme --json   # the same data for scripts
    nightshift report --html report.html           # one self-contained page, open it in a browser
    nightshift report --org acme --html acme.html  # one organization's page (what its readers see)
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from dispatcher.cli import add_database_url
from dispatcher.config import resolve_url
from dispatcher.db import connect
from dispatcher.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="what drifts, what broke, the worst offenders, queue health; --html for a page",
        description="A summary of the reporting views (sql/views/: target_status, findings_open_summary, "
        "findings_mttr, findings_open_trend, compliance_scores, cost_savings, resource_findings, "
        "queue_health) for every organization or the ones named. --html writes one self-contained page "
        "(no network needed to open it): per organization the status of every target, 30 days of open "
        "findings, MTTR, compliance posture and savings, in tables you can sort. A page of more than "
        "5 organizations is an overview (one row each, from its targets and queue) unless --detail.")
    add_database_url(parser)
    parser.add_argument("--organization", "--org", metavar="NAME|ID", action="append", dest="organizations",
                        help="report on this organization only (repeatable)")
    parser.add_argument("--mttr-days", type=int, choices=(7, 30, 90), default=30,
                        help="the window of mean time to resolve and reopen rate (default 30)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="the whole report as one JSON object")
    output.add_argument("--html", metavar="FILE", type=Path, help="write the HTML page to FILE ('-': stdout)")
    parser.add_argument("--detail", action="store_true",
                        help="with --html: every organization's full section even when there are more than 5 "
                        "(the page then reads every finding of every organization: slow with many)")
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from dispatcher.report.build import build_report
    from dispatcher.report.html import render_html
    from dispatcher.report.terminal import print_summary

    if args.html and str(args.html) != "-" and not args.html.parent.is_dir():
        raise UsageError(f"cannot write {args.html}: {args.html.parent} is not a directory")
    with connect(resolve_url(args.database_url)) as conn:
        # the page of many organizations is an overview unless --detail; the terminal and JSON are whole
        detail = True if args.detail or not args.html else None
        report = build_report(conn, args.organizations, mttr_days=args.mttr_days, detail=detail)
    if args.json:
        json.dump(report.as_dict(), sys.stdout, default=_json_value, indent=1)
        sys.stdout.write("\n")
    elif args.html:
        page = render_html(report)
        if str(args.html) == "-":
            sys.stdout.write(page)
        else:
            args.html.write_text(page, encoding="utf-8")
            print(f"wrote {args.html} ({len(page) / 1024:.0f} KiB,"
                  f" {len(report.organizations)} organizations{', an overview' if report.overview else ''})",
                  file=sys.stderr)
    else:
        from rich.console import Console

        # piped: as wide as the tables need, so that `| less -S` and grep see whole rows
        width = None if sys.stdout.isatty() else 200
        print_summary(report, Console(width=width, highlight=False, emoji=False))
    return 0


def _json_value(value: object) -> object:
    """Times as ISO 8601, amounts (Decimal) as numbers."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)
