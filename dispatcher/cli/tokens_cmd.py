"""`nightshift tokens create|list|revoke`: bearer tokens for the trigger endpoint of `nightshift serve`."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

import psycopg

from dispatcher.cli import add_database_url
from dispatcher.config import resolve_url
from dispatcher.db import connect
from dispatcher.errors import NotFound, UsageError
from dispatcher.intake import tokens


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tokens", help="API tokens for external schedulers",
        description="Bearer tokens that external schedulers (Kubernetes CronJob, EventBridge, Azure timer) "
        "present to POST /api/v1/internal/scheduled-tasks/{kind}. Only their hash is stored: a token is "
        "shown once, when created.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    create = commands.add_parser("create", help="make a token and print it (once)")
    add_database_url(create)
    create.add_argument("name", metavar="NAME", help="what the token is for, e.g. k8s-cronjob")
    create.add_argument("--scope", action="append", metavar="SCOPE",
                        help=f"{tokens.TRIGGER_SCOPE} (any kind, the default) or "
                        f"{tokens.TRIGGER_SCOPE}:KIND; repeatable")
    create.add_argument("--expires-in-days", type=int, metavar="DAYS",
                        help="refused after that (default: never)")
    create.set_defaults(func=run_create)

    list_parser = commands.add_parser("list", help="the tokens: name, scopes, created, last used, state")
    add_database_url(list_parser)
    list_parser.add_argument("--json", action="store_true", help="one JSON object per line")
    list_parser.set_defaults(func=run_list)

    revoke = commands.add_parser("revoke", help="refuse a token from now on")
    add_database_url(revoke)
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(func=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    scopes = args.scope or [tokens.TRIGGER_SCOPE]
    for scope in scopes:
        if not tokens.SCOPE_PATTERN.match(scope):
            raise UsageError(f"unknown scope {scope!r}: use {tokens.TRIGGER_SCOPE} or "
                                  f"{tokens.TRIGGER_SCOPE}:KIND")
    if args.expires_in_days is not None and args.expires_in_days < 1:
        raise UsageError("--expires-in-days must be at least 1")
    expires = datetime.now(UTC) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
    new = tokens.generate()
    with connect(resolve_url(args.database_url), autocommit=True) as conn:
        try:
            conn.execute("SELECT nightshift.create_api_token(%s, %s, %s, %s, %s)",
                         (args.name, new.prefix, new.token_hash, scopes, expires))
        except psycopg.errors.UniqueViolation:
            raise UsageError(f"a token named {args.name!r} exists already (names are never reused; "
                                  "pick another)") from None
    print(new.token)
    return 0


def run_list(args: argparse.Namespace) -> int:
    with connect(resolve_url(args.database_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, prefix, scopes, created_at, last_used_at, expires_at, revoked_at"
            " FROM nightshift.api_tokens ORDER BY created_at, name").fetchall()
    now = datetime.now(UTC)
    if args.json:
        for name, prefix, scopes, created, used, expires, revoked in rows:
            print(json.dumps({"name": name, "prefix": prefix, "scopes": scopes, "created_at": created,
                              "last_used_at": used, "expires_at": expires, "revoked_at": revoked,
                              "state": _state(expires, revoked, now)}, default=str))
        return 0
    print(f"{'NAME':<24} {'PREFIX':<12} {'STATE':<8} {'CREATED':<16} {'LAST USED':<16} SCOPES")
    for name, prefix, scopes, created, used, expires, revoked in rows:
        print(f"{name[:24]:<24} {prefix:<12} {_state(expires, revoked, now):<8} {_when(created):<16} "
              f"{_when(used):<16} {','.join(scopes)}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    with connect(resolve_url(args.database_url), autocommit=True) as conn:
        row = conn.execute("SELECT nightshift.revoke_api_token(%s)", (args.name,)).fetchone()
    if not row or not row[0]:
        raise NotFound(f"no live token named {args.name!r} (see `nightshift tokens list`)")
    print(f"token {args.name} revoked")
    return 0


def _state(expires: datetime | None, revoked: datetime | None, now: datetime) -> str:
    if revoked is not None:
        return "revoked"
    if expires is not None and expires <= now:
        return "expired"
    return "active"


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"
