"""`nightshift tasks list|show|retry|cancel` and `nightshift enqueue`: the queue for operators."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from dispatcher.cli import add_database_url
from dispatcher.config import resolve_url
from dispatcher.errors import NightshiftError
from dispatcher.models import TASK_STATUSES
from dispatcher.store import Store, TaskRecord

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction) -> None:
    tasks = subparsers.add_parser("tasks", help="inspect, retry and cancel tasks",
                                  description="The task queue, as operators see it.")
    commands = tasks.add_subparsers(title="commands", metavar="COMMAND", required=True)

    list_parser = commands.add_parser("list", help="recent tasks, newest first")
    add_database_url(list_parser)
    list_parser.add_argument("--status", choices=TASK_STATUSES)
    list_parser.add_argument("--kind")
    list_parser.add_argument("--limit", type=int, default=50)
    list_parser.add_argument("--json", action="store_true", help="one JSON object per line")
    list_parser.set_defaults(func=run_list)

    for name, help_text, func in (
        ("show", "one task with every attempt's error", run_show),
        ("retry", "queue a dead, failed or cancelled task again", run_retry),
        ("cancel", "cancel a queued or running task", run_cancel),
    ):
        parser = commands.add_parser(name, help=help_text)
        add_database_url(parser)
        parser.add_argument("task_id", type=int, metavar="ID")
        if name == "show":
            parser.add_argument("--json", action="store_true")
        parser.set_defaults(func=func)

    enqueue = subparsers.add_parser(
        "enqueue", help="add a task to the queue",
        description="Add one task (nightshift.enqueue): nothing is added while a task of the same "
        "kind and subject is queued or running.")
    add_database_url(enqueue)
    enqueue.add_argument("kind", metavar="KIND", help="task kind, e.g. noop, sleep, command, drift-scan")
    enqueue.add_argument("--subject", help="what the task is about (default: a unique manual/<time>)")
    enqueue.add_argument("--payload", default="{}", metavar="JSON", help="payload object (default {})")
    enqueue.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    enqueue.add_argument("--max-attempts", type=int, default=3)
    enqueue.add_argument("--delay", type=float, default=0.0, metavar="SECONDS",
                         help="run no earlier than this many seconds from now")
    enqueue.set_defaults(func=run_enqueue)


def _with_store(url: str | None, action: Callable[[Store], Awaitable[T]]) -> T:
    async def go() -> T:
        store = await Store.open(resolve_url(url), "nightshift cli")
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(go())


def run_list(args: argparse.Namespace) -> int:
    records = _with_store(args.database_url, lambda s: s.list(args.status, args.kind, args.limit))
    if args.json:
        for record in records:
            print(json.dumps(_as_dict(record), default=str))
        return 0
    print(f"{'ID':>8}  {'KIND':<16} {'STATUS':<9} {'ATTEMPT':>7}  {'RUN AFTER':<19}  SUBJECT")
    for r in records:
        print(f"{r.id:>8}  {r.kind[:16]:<16} {r.status:<9} {f'{r.attempt}/{r.max_attempts}':>7}  "
              f"{_when(r.run_after):<19}  {r.subject}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    record = _with_store(args.database_url, lambda s: s.get(args.task_id))
    if record is None:
        raise NightshiftError(f"no task {args.task_id}")
    if args.json:
        print(json.dumps(_as_dict(record), default=str, indent=2))
        return 0
    print(f"task {record.id}: {record.kind} {record.subject}")
    print(f"  status      {record.status} (attempt {record.attempt} of {record.max_attempts})")
    print(f"  priority    {record.priority}    run after {_when(record.run_after)}")
    if record.locked_by:
        print(f"  locked by   {record.locked_by} until {_when(record.locked_until)}")
    print(f"  created     {_when(record.created_at)}   started {_when(record.started_at)}   "
          f"finished {_when(record.finished_at)}")
    print(f"  payload     {json.dumps(record.payload)}")
    for error in record.errors:
        where = f"{error.get('worker')}, {error.get('at')}"
        print(f"  attempt {error.get('attempt')} ({where}): {error.get('error')}")
    return 0


def run_retry(args: argparse.Namespace) -> int:
    if not _with_store(args.database_url, lambda s: s.retry(args.task_id)):
        raise NightshiftError(f"task {args.task_id} is not dead, failed or cancelled (or does not exist)")
    print(f"task {args.task_id} queued again")
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    if not _with_store(args.database_url, lambda s: s.cancel(args.task_id)):
        raise NightshiftError(f"task {args.task_id} is not queued or running (or does not exist)")
    print(f"task {args.task_id} cancelled")
    return 0


def run_enqueue(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError as exc:
        raise NightshiftError(f"--payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise NightshiftError("--payload must be a JSON object")
    now = datetime.now(UTC)
    subject = args.subject or f"manual/{now.strftime('%Y%m%dT%H%M%S.%fZ')}"
    run_after = now.timestamp() + args.delay if args.delay > 0 else None
    task_id = _with_store(args.database_url, lambda s: s.enqueue(
        args.kind, subject, payload, args.priority,
        datetime.fromtimestamp(run_after, UTC) if run_after else None, args.max_attempts))
    if task_id is None:
        raise NightshiftError(f"a {args.kind} task for {subject} is already queued or running")
    print(task_id)
    return 0


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _as_dict(record: TaskRecord) -> dict[str, Any]:
    return dict(vars(record))
