"""`nightshift schedule ...`: the DBA's schedule API (sql/functions/schedule_*.sql) from the shell."""

from __future__ import annotations

import argparse

from dispatcher import scheduling
from dispatcher.cli import add_database_url
from dispatcher.cli.options import int_between
from dispatcher.cli.output import print_table
from dispatcher.config import resolve_url
from dispatcher.db import connect

# the scheduled kinds are rows of nightshift.task_kinds; the SQL functions refuse others, naming them
KIND_HELP = "a scheduled kind: drift-scan, compliance-scan or cost-analysis (nightshift.scheduled_kinds())"
TARGET_HELP = "pipeline/<id> (drift), cloud_integration/<id> (compliance) or organization/<id> (cost)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schedule",
        help="list, change, pause, resume and run schedules; forecast upcoming runs",
        description="Each action calls the SQL function a DBA would call from psql "
        "(nightshift.set_frequency, pause, resume, run_now, upcoming_runs, enqueue_due).",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="every schedule with its target and next run")
    listing.add_argument("--kind", help=KIND_HELP)
    listing.set_defaults(func=run_list)

    freq = actions.add_parser("set", help="set a target's frequency (creates a pipeline's drift schedule)")
    freq.add_argument("target", help=TARGET_HELP)
    freq.add_argument("frequency", help="UNMONITORED, HOURLY, DAILY, WEEKLY or MONTHLY")
    freq.set_defaults(func=run_set)

    for name, func, text in (("pause", run_pause, "stop a target's scheduled runs"),
                             ("resume", run_resume, "restart a target's scheduled runs at its next slot"),
                             ("run-now", run_run_now, "enqueue a target's task now (skipped if in flight)")):
        action = actions.add_parser(name, help=text)
        action.add_argument("target", help=TARGET_HELP)
        action.set_defaults(func=func)

    upcoming = actions.add_parser(
        "upcoming", help="what will be enqueued in the coming hours",
        description="The forecast of enqueue_due (nightshift.upcoming_runs): every run within the window, "
        f"earliest first. Bounded: the window is at most {scheduling.UPCOMING_MAX_WINDOW} and at most "
        "--limit runs are listed (the earliest).")
    upcoming.add_argument("--within", default="24h",
                          help="more than 0 and at most 366 days: e.g. 90m, 24h, 7d or '2 days' "
                          "(default 24h)")
    upcoming.add_argument("--limit", type=int_between(1, scheduling.UPCOMING_LIMIT), default=1000,
                          help=f"list at most this many runs, 1 to {scheduling.UPCOMING_LIMIT:,} "
                          "(default 1000)")
    upcoming.add_argument("--kind", help=KIND_HELP)
    upcoming.set_defaults(func=run_upcoming)

    due = actions.add_parser("enqueue-due", help="enqueue every due target now (pg_cron does it each minute)")
    due.add_argument("--kind", help=KIND_HELP)
    due.add_argument("--limit", type=int_between(1, 2**31 - 1),
                     help="at most this many tasks per kind (default: the setting schedule.batch_size)")
    due.set_defaults(func=run_enqueue_due)

    for action in actions.choices.values():
        add_database_url(action)


def _when(value: object) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value is not None else "never"


def run_list(args: argparse.Namespace) -> int:
    with connect(resolve_url(args.database_url)) as conn:
        rows = scheduling.list_schedules(conn, args.kind)
    print_table(("kind", "target", "frequency", "state", "next_run"), [
        {"kind": s.kind, "target": s.subject, "frequency": s.frequency,
         "state": "off" if not s.enabled else ("active" if s.is_active else "paused"),
         "next_run": _when(s.next_run_at)} for s in rows], empty="no schedules")
    return 0


def _print_state(target: str, state: scheduling.ScheduleState) -> None:
    active = "active" if state.is_active else "paused"
    print(f"{target}: {state.kind} {state.frequency}, {active}, next run {_when(state.next_run_at)}")


def run_set(args: argparse.Namespace) -> int:
    with connect(resolve_url(args.database_url)) as conn:
        _print_state(args.target, scheduling.set_frequency(conn, args.target, args.frequency))
    return 0


def run_pause(args: argparse.Namespace) -> int:
    with connect(resolve_url(args.database_url)) as conn:
        _print_state(args.target, scheduling.pause(conn, args.target))
    return 0


def run_resume(args: argparse.Namespace) -> int:
    with connect(resolve_url(args.database_url)) as conn:
        _print_state(args.target, scheduling.resume(conn, args.target))
    return 0


def run_run_now(args: argparse.Namespace) -> int:
    with connect(resolve_url(args.database_url)) as conn:
        task_id = scheduling.run_now(conn, args.target)
    if task_id is None:
        print(f"{args.target}: a task is already queued or running; nothing enqueued")
        return 1
    print(f"{args.target}: enqueued task {task_id}")
    return 0


def run_upcoming(args: argparse.Namespace) -> int:
    with connect(resolve_url(args.database_url)) as conn:
        runs = scheduling.upcoming(conn, args.within, args.kind, args.limit)
    for run in runs:
        late = "  (overdue: runs at the next enqueue)" if run.overdue else ""
        print(f"{_when(run.run_at)}  {run.kind:<16} {run.subject:<26} {run.frequency}{late}")
    more = f" (the first {args.limit}; --limit shows more)" if len(runs) == args.limit else ""
    print(f"{len(runs)} run(s) within {scheduling.interval_text(args.within)}{more}")
    return 0


def run_enqueue_due(args: argparse.Namespace) -> int:
    with connect(resolve_url(args.database_url)) as conn:
        counts = scheduling.enqueue_due(conn, args.kind, args.limit)
    for c in counts:
        print(f"{c.kind:<16} enqueued {c.enqueued}, skipped {c.skipped} (already in flight)")
    return 0
