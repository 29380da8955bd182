"""`nightshift prs list|show|close`: the local forge's pull requests (dispatcher/forge/local.py).

A repository whose `forge` is 'local' has its branches on its git remote and its pull requests as
rows of nightshift.pull_requests: opened by the remediation agent, reviewed by pr-review (comment and
status in the row), listed here.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from psycopg.rows import dict_row

from dispatcher.cli import add_database_url
from dispatcher.cli.output import print_record, print_table, text
from dispatcher.config import resolve_url
from dispatcher.db import connect
from dispatcher.errors import NotFound
from dispatcher.queries import load_queries

QUERIES = load_queries("prs")
COLUMNS = ("repository", "number", "state", "head", "base", "head_sha", "title", "statuses", "comments")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prs", help="pull requests of the local forge",
        description="Pull requests of repositories whose forge is 'local' (no GitHub): the branch is on "
        "the repository's git remote, the pull request, its review comment and commit statuses are rows.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="pull requests, newest first")
    add_database_url(listing)
    listing.add_argument("--repo", type=int, metavar="ID", help="only this repository's")
    listing.add_argument("--state", choices=("open", "closed", "merged"), help="only in this state")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=run_list)

    show = commands.add_parser("show", help="one pull request with its comments and statuses")
    add_database_url(show)
    show.add_argument("repo", type=int, metavar="REPO_ID")
    show.add_argument("number", type=int, metavar="NUMBER")
    show.add_argument("--json", action="store_true", help="as one JSON object")
    show.set_defaults(func=run_show)

    close = commands.add_parser("close", help="close (or --merged) an open pull request")
    add_database_url(close)
    close.add_argument("repo", type=int, metavar="REPO_ID")
    close.add_argument("number", type=int, metavar="NUMBER")
    close.add_argument("--merged", action="store_true", help="mark it merged rather than closed")
    close.set_defaults(func=run_close)


def _one(url: str, name: str, what: str, **params: Any) -> dict[str, Any]:
    found = _rows(url, name, **params)
    if not found:
        raise NotFound(f"no {what} (`nightshift prs list`)")
    return found[0]


def _rows(url: str, name: str, **params: Any) -> list[dict[str, Any]]:
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(QUERIES[name], params).fetchall()


def run_list(args: argparse.Namespace) -> int:
    rows = _rows(resolve_url(args.database_url), "pr_list", repo=args.repo, state=args.state,
                 limit=args.limit)
    print_table(COLUMNS, rows, as_json=args.json, empty="no pull request on the local forge")
    return 0


def run_show(args: argparse.Namespace) -> int:
    row = _one(resolve_url(args.database_url), "pr_show",
               f"pull request #{args.number} of repository {args.repo}", repo=args.repo, number=args.number)
    if args.json:
        print_record(row, as_json=True)
        return 0
    comments, statuses = row.pop("comments") or {}, row.pop("statuses") or {}
    print_record(row)
    for context, status in statuses.items():
        sys.stdout.write(f"status {context}: {status.get('state')} — {text(status.get('description'))} "
                         f"(on {str(status.get('sha'))[:12]})\n")
    for body in comments.values():
        sys.stdout.write("\n--- comment ---\n" + body.rstrip() + "\n")
    return 0


def run_close(args: argparse.Namespace) -> int:
    row = _one(resolve_url(args.database_url), "pr_close",
               f"open pull request #{args.number} of repository {args.repo}", repo=args.repo,
               number=args.number, state="merged" if args.merged else "closed")
    print(f"pull request #{row['number']} of repository {row['repository']} is {row['state']}")
    return 0
