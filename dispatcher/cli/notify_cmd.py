"""`nightshift notify run|list|retry`: the outbox, sent and inspected."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from dispatcher.cli import add_database_url
from dispatcher.config import resolve_url
from dispatcher.errors import NightshiftError, UsageError
from dispatcher.models import NOTIFICATION_STATUSES
from dispatcher.notify.store import NotifyStore

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction) -> None:
    notify = subparsers.add_parser(
        "notify", help="send the notification outbox; list and retry notifications",
        description="Notifications are written to the outbox (nightshift.notifications) in each scan's "
        "result transaction; the sender delivers them to their channels (`nightshift channels`).")
    commands = notify.add_subparsers(title="commands", metavar="COMMAND", required=True)

    run_parser = commands.add_parser(
        "run", help="send the outbox until SIGTERM/SIGINT",
        description="Claim due notifications (woken by NOTIFY on insert, else every --poll-interval), "
        "group them per channel, and send them: one message per channel per send, at most one per "
        "channel's min_interval. Failures retry with backoff; 4xx answers that cannot succeed fail at "
        "once. Several senders may run against one database. Delivery is at-least-once.")
    add_database_url(run_parser)
    run_parser.add_argument("--concurrency", type=int, default=8, metavar="N",
                            help="channels sent to at once (default 8)")
    run_parser.add_argument("--batch", type=int, default=2000, metavar="N",
                            help="notifications claimed at once (default 2000)")
    run_parser.add_argument("--poll-interval", type=float, default=2.0, metavar="SECONDS",
                            help="claim this often without a NOTIFY (default 2)")
    run_parser.add_argument("--lease", type=float, default=60.0, metavar="SECONDS",
                            help="how long a claim holds its rows before another sender may take them "
                            "(default 60)")
    run_parser.add_argument("--templates", type=Path, metavar="DIR",
                            help="a directory of templates that replace the built-in ones of the same name")
    run_parser.add_argument("--worker", metavar="NAME", help="name recorded in locked_by (default host:pid)")
    run_parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    run_parser.set_defaults(func=run_sender_command)

    list_parser = commands.add_parser("list", help="recent notifications, newest first, with their errors")
    add_database_url(list_parser)
    list_parser.add_argument("--status", choices=NOTIFICATION_STATUSES)
    list_parser.add_argument("--channel")
    list_parser.add_argument("--limit", type=int, default=50)
    list_parser.add_argument("--json", action="store_true", help="one JSON object per line")
    list_parser.set_defaults(func=run_list)

    retry = commands.add_parser("retry", help="send a failed or dead notification again")
    add_database_url(retry)
    retry.add_argument("notification_id", type=int, metavar="ID")
    retry.set_defaults(func=run_retry)


def with_store(url: str | None, action: Callable[[NotifyStore], Awaitable[T]]) -> T:
    async def go() -> T:
        store = await NotifyStore.open(resolve_url(url), "nightshift cli")
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(go())


def run_sender_command(args: argparse.Namespace) -> int:
    from dispatcher import eventloop, logs
    from dispatcher.notify.render import Renderer
    from dispatcher.notify.sender import SenderConfig, default_worker_name, run_sender

    if args.concurrency < 1 or args.batch < 1:
        raise UsageError("--concurrency and --batch must be at least 1")
    if args.templates is not None:
        Renderer(args.templates)  # a missing directory is an error now, not at the first message
    logs.configure(args.log_json, logging.getLogger().level)
    config = SenderConfig(worker=args.worker or default_worker_name(), batch=args.batch, lease=args.lease,
                          poll_interval=args.poll_interval, concurrency=args.concurrency,
                          templates_dir=args.templates)
    url = resolve_url(args.database_url)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        stats = await run_sender(url, config, stop)
        logging.getLogger("nightshift.notify").info(
            "stopped: %d message(s) sent for %d notification(s), %d to retry, %d failed",
            stats.messages, stats.sent, stats.retried, stats.failed, extra={"event": "stop"})

    eventloop.run(main())
    return 0


def run_list(args: argparse.Namespace) -> int:
    rows = with_store(args.database_url, lambda s: s.outbox(args.status, args.channel, args.limit))
    if args.json:
        for row in rows:
            print(json.dumps(asdict(row), default=str))
        return 0
    print(f"{'ID':>8}  {'CHANNEL':<16} {'TEMPLATE':<17} {'STATUS':<8} {'TRIES':>5}  {'WHEN':<19}  "
          "SUBJECT / ERROR")
    for r in rows:
        when = {"sent": r.sent_at, "pending": r.next_attempt_at}.get(r.status, r.created_at)
        detail = r.subject or ""
        if r.last_error and r.status != "sent":
            detail = f"{detail}  {r.last_error}".strip()
        print(f"{r.id:>8}  {r.channel[:16]:<16} {r.template[:17]:<17} {r.status:<8} {r.attempts:>5}  "
              f"{_when(when):<19}  {detail}")
    return 0


def run_retry(args: argparse.Namespace) -> int:
    if not with_store(args.database_url, lambda s: s.retry(args.notification_id)):
        raise NightshiftError(
            f"notification {args.notification_id} is not failed or dead (or does not exist)")
    print(f"notification {args.notification_id} queued again")
    return 0


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"
