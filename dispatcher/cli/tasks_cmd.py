"""`nightshift tasks list|show|retry|cancel` and `nightshift enqueue`: the queue for operators."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from dispatcher import inventory
from dispatcher.cli import add_database_url
from dispatcher.cli.options import int_between, non_empty, non_negative_float, positive_int
from dispatcher.cli.output import print_table
from dispatcher.config import resolve_url
from dispatcher.errors import NightshiftError, NotFound, UsageError
from dispatcher.models import TASK_STATUSES
from dispatcher.store import Store, TaskRecord

T = TypeVar("T")
PAYLOAD_PREVIEW = 500  # characters of payload `tasks show` prints unless --full


def register(subparsers: argparse._SubParsersAction) -> None:
    tasks = subparsers.add_parser("tasks", help="inspect, retry and cancel tasks",
                                  description="The task queue, as operators see it.")
    commands = tasks.add_subparsers(title="commands", metavar="COMMAND", required=True)

    list_parser = commands.add_parser("list", help="recent tasks, newest first")
    add_database_url(list_parser)
    list_parser.add_argument("--status", choices=TASK_STATUSES)
    list_parser.add_argument("--kind")
    list_parser.add_argument("--limit", type=positive_int, default=50, help="at most this many (default 50)")
    list_parser.add_argument("--json", action="store_true", help="one JSON object per line")
    list_parser.set_defaults(func=run_list)

    for name, help_text, func in (
        ("show", "one task with every attempt's error", run_show),
        ("retry", "queue a dead, failed or cancelled task again", run_retry),
        ("cancel", "cancel a queued or running task", run_cancel),
    ):
        parser = commands.add_parser(name, help=help_text)
        add_database_url(parser)
        parser.add_argument("task_id", type=positive_int, metavar="ID")
        if name == "show":
            parser.add_argument("--json", action="store_true")
            parser.add_argument("--full", action="store_true",
                                help=f"the whole payload (default: cut at {PAYLOAD_PREVIEW} characters)")
        parser.set_defaults(func=func)

    enqueue = subparsers.add_parser(
        "enqueue", help="add a task to the queue",
        description="Add one task (nightshift.enqueue): nothing is added while a task of the same "
        "kind and subject is queued or running.")
    add_database_url(enqueue)
    enqueue.add_argument("kind", metavar="KIND", type=non_empty,
                         help="task kind, e.g. noop, sleep, command, drift-scan")
    enqueue.add_argument("--subject", type=non_empty,
                         help="what the task is about (default: a unique manual/<time>)")
    enqueue.add_argument("--payload", default="{}", metavar="JSON|@FILE|-",
                         help="payload object: JSON text, @file.json to read a file, - to read standard "
                         "input (default {})")
    enqueue.add_argument("--priority", type=int_between(-32768, 32767), default=0,
                         help="higher runs first, -32768 to 32767 (default 0)")
    enqueue.add_argument("--max-attempts", type=int_between(1, 1000), default=3,
                         help="attempts before the task is dead, 1 to 1000 (default 3)")
    enqueue.add_argument("--delay", type=non_negative_float, default=0.0, metavar="SECONDS",
                         help="run no earlier than this many seconds from now (at most ten years)")
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
    print_table(("id", "kind", "status", "attempt", "run_after", "subject"), [
        {"id": r.id, "kind": r.kind, "status": r.status, "attempt": f"{r.attempt}/{r.max_attempts}",
         "run_after": _when(r.run_after), "subject": r.subject} for r in records], empty="no tasks")
    return 0


def run_show(args: argparse.Namespace) -> int:
    url = resolve_url(args.database_url)
    record = _with_store(url, lambda s: s.get(args.task_id))
    if record is None:
        raise NotFound(f"no task {args.task_id}")
    scans = inventory.rows(url, "scan_of_task", task_id=args.task_id)
    scan = scans[0] if scans else None
    if args.json:
        print(json.dumps({**_as_dict(record), "scan": scan}, default=str, indent=2))
        return 0
    print(f"task {record.id}: {record.kind} {record.subject}")
    print(f"  status      {record.status} (attempt {record.attempt} of {record.max_attempts})")
    print(f"  priority    {record.priority}    run after {_when(record.run_after)}")
    if record.locked_by:
        print(f"  locked by   {record.locked_by} until {_when(record.locked_until)}")
    print(f"  created     {_when(record.created_at)}   started {_when(record.started_at)}   "
          f"finished {_when(record.finished_at)}")
    payload = json.dumps(record.payload)
    if len(payload) > PAYLOAD_PREVIEW and not args.full:
        payload = f"{payload[:PAYLOAD_PREVIEW]}… ({len(payload):,} characters; --full shows all)"
    print(f"  payload     {payload}")
    if record.summary:
        print(f"  summary     {json.dumps(record.summary, default=str)}")
    for error in record.errors:
        where = f"{error.get('worker')}, {error.get('at')}"
        print(f"  attempt {error.get('attempt')} ({where}): {error.get('error')}")
    if scan is not None:
        # a task is `done` when its result was stored, whatever the scan found: an ERROR scan is a
        # completed task whose scan failed, and this is where it shows
        print(f"  scan        {scan['id']} (attempt {scan['attempt']}): {scan['status']}, "
              f"finished {_when(scan['finished_at'])}   (nightshift scans show {scan['id']})")
        if scan["summary"]:
            print(f"  summary     {json.dumps(scan['summary'], default=str)}")
        if scan["error"]:
            error_text = scan["error"] if args.full or len(scan["error"]) <= 2000 else (
                scan["error"][:2000] + "… (--full shows all)")
            print(f"  scan error  {error_text}")
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
    payload = read_payload(args.payload)
    now = datetime.now(UTC)
    subject = args.subject or f"manual/{now.strftime('%Y%m%dT%H%M%S.%fZ')}"
    run_after = now + timedelta(seconds=args.delay) if args.delay > 0 else None
    url = resolve_url(args.database_url)
    task_id = _with_store(url, lambda s: s.enqueue(
        args.kind, subject, payload, args.priority, run_after, args.max_attempts))
    if task_id is None:
        raise NightshiftError(f"a {args.kind} task for {subject} is already queued or running")
    print(task_id)
    warn_unknown_kind(url, args.kind)
    return 0


def read_payload(value: str) -> dict[str, Any]:
    """--payload: JSON text, @path to read a file, - to read standard input; a JSON object."""
    where = "--payload"
    if value == "-":
        text, where = sys.stdin.read(), "--payload - (standard input)"
    elif value.startswith("@"):
        try:
            text = Path(value[1:]).read_text()
        except OSError as exc:
            raise UsageError(f"--payload {value}: cannot read the file: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UsageError(f"--payload {value}: not a UTF-8 text file") from None
        where = f"--payload {value}"
    else:
        text = value
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise UsageError(f"{where} must be a JSON object, e.g. '{{\"seconds\": 2}}'")
    return payload


def warn_unknown_kind(url: str, kind: str) -> None:
    """A task nobody can run waits forever (or fails at the dispatcher): say so, but enqueue it
    anyway, since a dispatcher elsewhere may have a plug-in agent for it."""
    from dispatcher import agents

    if kind in agents.known():
        return
    if inventory.rows(url, "task_kind_known", kind=kind)[0]["known"]:
        return
    names = ", ".join(agents.known())
    print(f"nightshift: warning: no agent is installed here for kind {kind!r} and nightshift.task_kinds "
          f"has no row for it: the task runs only where a dispatcher has a plug-in agent of that name "
          f"(agents here: {names})", file=sys.stderr)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _as_dict(record: TaskRecord) -> dict[str, Any]:
    return dict(vars(record))
