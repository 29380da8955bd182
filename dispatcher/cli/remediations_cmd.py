"""`nightshift remediations list|show|merged`: the trail of drift remediation (nightshift.remediations).

Each row is findings → task → branch → pull request → verified by a rescan, or refused by a guard rail
(freeze window, daily limit, stateful resource) or failed, with the reason.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from psycopg.rows import dict_row

from dispatcher.cli import add_database_url
from dispatcher.cli.output import print_record, print_table
from dispatcher.config import resolve_url
from dispatcher.db import connect
from dispatcher.errors import NotFound
from dispatcher.queries import load_queries

QUERIES = load_queries("remediations")
COLUMNS = ("id", "target", "status", "findings", "branch", "pull_request", "reason", "updated_at")
STATUSES = ("pending", "running", "pr_opened", "merged", "verified", "failed", "refused")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "remediations",
        help="drift remediation pull requests: refused, opened, verified, failed",
        description="The remediations trail: which findings a pull request fixes, its branch and URL, and "
        "whether the next scan verified it; refusals by a guard rail and failures say why.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="remediations, newest first")
    add_database_url(listing)
    listing.add_argument("--subject", metavar="SUBJECT", help="only this target's (e.g. pipeline/3)")
    listing.add_argument("--status", choices=STATUSES, help="only in this status")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=run_list)

    show = commands.add_parser("show", help="one remediation, with the fix chosen per finding")
    add_database_url(show)
    show.add_argument("id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="as one JSON object")
    show.set_defaults(func=run_show)

    merged = commands.add_parser(
        "merged",
        help="record that its pull request was merged (the next scan verifies it)",
        description="For forges that send no webhook: the next successful drift scan marks the "
        "remediation verified when its drift is gone, failed (with what remains) otherwise.",
    )
    add_database_url(merged)
    merged.add_argument("id", type=int, metavar="ID")
    merged.set_defaults(func=run_merged)


def _rows(url: str, name: str, **params: Any) -> list[dict[str, Any]]:
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(QUERIES[name], params).fetchall()


def run_list(args: argparse.Namespace) -> int:
    rows = _rows(
        resolve_url(args.database_url),
        "remediation_list",
        subject=args.subject,
        status=args.status,
        limit=args.limit,
    )
    print_table(COLUMNS, rows, as_json=args.json, empty="no remediation yet")
    return 0


def run_show(args: argparse.Namespace) -> int:
    found = _rows(resolve_url(args.database_url), "remediation_show", id=args.id)
    if not found:
        raise NotFound(f"no remediation {args.id} (`nightshift remediations list`)")
    row = found[0]
    if args.json:
        print_record(row, as_json=True)
        return 0
    fixes = row.pop("fixes") or []
    print_record(row)
    for fix in fixes:
        sys.stdout.write(f"{fix.get('fix', '?'):6}  {fix.get('address')}: {fix.get('why')}\n")
    return 0


def run_merged(args: argparse.Namespace) -> int:
    found = _rows(resolve_url(args.database_url), "remediation_merge", id=args.id)
    if not found:
        raise NotFound(
            f"no remediation {args.id} with an open pull request (`nightshift remediations list "
            "--status pr_opened`)"
        )
    print(
        f"remediation {found[0]['id']} ({found[0]['branch']}) is merged: the next drift scan of "
        f"{found[0]['subject']} verifies it"
    )
    return 0
