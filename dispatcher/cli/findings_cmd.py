"""`nightshift findings list|show|suppress` and `nightshift scans list|show`: what the scans found."""

from __future__ import annotations

import argparse
import json

from dispatcher import inventory
from dispatcher.cli import add_database_url
from dispatcher.cli.options import future_time, non_empty, past_time, positive_int
from dispatcher.cli.output import print_record, print_table
from dispatcher.config import resolve_url
from dispatcher.models import FINDING_STATUSES, SCAN_STATUSES

SINCE_HELP = "only since then: 24h, 7d, or a date/time such as 2026-11-01 (UTC)"
SUBJECT_HELP = "only this target: a subject (pipeline/42) or a label (demo/infra/network)"


def register(subparsers: argparse._SubParsersAction) -> None:
    findings = subparsers.add_parser(
        "findings", help="list, show and suppress findings",
        description="Findings are what scans saw, one per stable fingerprint and target, with a lifecycle: "
        "OPEN, RESOLVED (a later scan no longer saw it), SUPPRESSED (a suppression covers it).")
    actions = findings.add_subparsers(title="actions", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="findings, most recently seen first")
    listing.add_argument("--kind", help="drift, pending-change, compliance, cost...")
    listing.add_argument("--status", type=str.upper, choices=FINDING_STATUSES)
    listing.add_argument("--severity", help="low, medium, high, critical")
    listing.add_argument("--target", "--subject", dest="subject", help=SUBJECT_HELP)
    listing.add_argument("--since", type=past_time, metavar="WHEN", help=SINCE_HELP)
    listing.add_argument("--limit", type=positive_int, default=1000, help="at most this many (default 1000)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=run_findings_list)

    show = actions.add_parser("show", help="one finding with its details and suppression")
    show.add_argument("finding_id", type=positive_int, metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_findings_show)

    suppress = actions.add_parser(
        "suppress", help="accept one finding: a suppression for exactly its resource",
        description="Create a suppression for exactly this finding's kind, target and resource address "
        "(nightshift.suppress_finding) and mark it SUPPRESSED now. It comes back OPEN at the first scan "
        "after the suppression expires.")
    suppress.add_argument("finding_id", type=positive_int, metavar="ID")
    suppress.add_argument("--owner", required=True, type=non_empty)
    suppress.add_argument("--reason", required=True, type=non_empty)
    suppress.add_argument("--expires", type=future_time, metavar="WHEN",
                          help="e.g. 90d or 2027-01-31 (default: never)")
    suppress.set_defaults(func=run_findings_suppress)

    scans = subparsers.add_parser(
        "scans", help="list and show scans",
        description="A scan is one executed attempt of a scanning task: its status (CLEAN, DRIFTED, "
        "FAILED_CHECKS, ERROR), summary, error and timing.")
    scan_actions = scans.add_subparsers(title="actions", metavar="ACTION", required=True)
    scan_list = scan_actions.add_parser("list", help="scans, newest first")
    scan_list.add_argument("--kind", help="drift-scan, compliance-scan, cost-analysis...")
    scan_list.add_argument("--status", type=str.upper, choices=SCAN_STATUSES)
    scan_list.add_argument("--target", "--subject", dest="subject", help=SUBJECT_HELP)
    scan_list.add_argument("--since", type=past_time, metavar="WHEN", help=SINCE_HELP)
    scan_list.add_argument("--limit", type=positive_int, default=1000,
                           help="at most this many (default 1000)")
    scan_list.add_argument("--json", action="store_true", help="one JSON object per line")
    scan_list.set_defaults(func=run_scans_list)
    scan_show = scan_actions.add_parser("show", help="one scan with its summary, error and artifacts")
    scan_show.add_argument("scan_id", type=positive_int, metavar="ID")
    scan_show.add_argument("--json", action="store_true")
    scan_show.set_defaults(func=run_scans_show)

    for parser in (listing, show, suppress, scan_list, scan_show):
        add_database_url(parser)


def run_findings_list(args: argparse.Namespace) -> int:
    found = inventory.rows(resolve_url(args.database_url), "finding_list", kind=args.kind, status=args.status,
                           severity=args.severity, subject=args.subject, since=args.since, limit=args.limit)
    print_table(("id", "kind", "status", "severity", "target", "address", "change", "last_seen",
                 "occurrences"), found, as_json=args.json, empty="no findings")
    return 0


def run_findings_show(args: argparse.Namespace) -> int:
    row = inventory.one(resolve_url(args.database_url), "finding_show", f"finding {args.finding_id}",
                        id=args.finding_id)
    if not args.json:
        row["details"] = json.dumps(row["details"], indent=2, default=str)
    print_record(row, as_json=args.json)
    return 0


def run_findings_suppress(args: argparse.Namespace) -> int:
    row = inventory.one(resolve_url(args.database_url), "finding_suppress", f"finding {args.finding_id}",
                        id=args.finding_id, owner=args.owner, reason=args.reason, expires_at=args.expires)
    until = f" until {args.expires:%Y-%m-%d %H:%M} UTC" if args.expires else ""
    print(f"finding {row['finding_id']} suppressed{until} by suppression {row['suppression_id']} "
          f"({row['subject']} {row['address'] or '*'})")
    return 0


def run_scans_list(args: argparse.Namespace) -> int:
    found = inventory.rows(resolve_url(args.database_url), "scan_list", kind=args.kind, status=args.status,
                           subject=args.subject, since=args.since, limit=args.limit)
    print_table(("id", "task_id", "kind", "status", "target", "subject", "finished_at", "error"), found,
                as_json=args.json, empty="no scans")
    return 0


def run_scans_show(args: argparse.Namespace) -> int:
    row = inventory.one(resolve_url(args.database_url), "scan_show", f"scan {args.scan_id}", id=args.scan_id)
    if not args.json:
        for key in ("summary", "artifacts"):
            row[key] = json.dumps(row[key], indent=2, default=str)
    print_record(row, as_json=args.json)
    return 0
