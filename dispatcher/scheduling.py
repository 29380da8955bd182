"""The schedule API from Python: each function runs one named query (sql/queries/schedule.sql) that calls
the same SQL function a DBA calls from psql, and returns frozen dataclasses.

SQL errors raised by those functions (unknown target, unknown frequency, negative interval) become
NightshiftError with PostgreSQL's message and hint, so the CLI prints one clear line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from dispatcher.db import translate_errors
from dispatcher.queries import load_queries

QUERIES = load_queries("schedule")

# SQLSTATE classes the schedule functions raise on bad input: 22 data exception, P0 plpgsql raise,
# 55 object not in prerequisite state, 23 integrity (e.g. a schedule row for a missing target)
_SHORT_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Schedule:
    kind: str
    subject: str
    frequency: str
    is_active: bool
    enabled: bool
    next_run_at: datetime | None


@dataclass(frozen=True)
class ScheduleState:
    kind: str
    frequency: str
    is_active: bool
    next_run_at: datetime | None


@dataclass(frozen=True)
class UpcomingRun:
    run_at: datetime
    kind: str
    subject: str
    frequency: str
    overdue: bool


@dataclass(frozen=True)
class EnqueueCount:
    kind: str
    enqueued: int
    skipped: int


def interval_text(value: str) -> str:
    """'24h' -> '24 hours', '7d' -> '7 days'; anything else is passed to PostgreSQL as interval text."""
    match = _SHORT_INTERVAL.match(value)
    return f"{match[1]} {_UNITS[match[2]]}" if match else value


def list_schedules(conn: psycopg.Connection, kind: str | None = None) -> list[Schedule]:
    with translate_errors(), conn.cursor(row_factory=class_row(Schedule)) as cur:
        return cur.execute(QUERIES["schedule_list"], {"kind": kind}).fetchall()


def _state(conn: psycopg.Connection, query: str, params: dict[str, object]) -> ScheduleState:
    with translate_errors(), conn.cursor(row_factory=class_row(ScheduleState)) as cur:
        row = cur.execute(QUERIES[query], params).fetchone()
    assert row is not None  # the SQL functions raise instead of returning nothing
    return row


def set_frequency(conn: psycopg.Connection, target: str, frequency: str) -> ScheduleState:
    return _state(conn, "schedule_set_frequency", {"target": target, "frequency": frequency})


def pause(conn: psycopg.Connection, target: str) -> ScheduleState:
    return _state(conn, "schedule_pause", {"target": target})


def resume(conn: psycopg.Connection, target: str) -> ScheduleState:
    return _state(conn, "schedule_resume", {"target": target})


def run_now(conn: psycopg.Connection, target: str) -> int | None:
    """The new task's id, or None when a task for the target is already queued or running."""
    with translate_errors():
        row = conn.execute(QUERIES["schedule_run_now"], {"target": target}).fetchone()
    return row[0] if row else None


UPCOMING_LIMIT = 10_000  # rows upcoming_runs returns unless told otherwise (its p_limit default)
UPCOMING_MAX_WINDOW = "366 days"  # the furthest upcoming_runs forecasts


def upcoming(conn: psycopg.Connection, within: str, kind: str | None = None,
             limit: int = UPCOMING_LIMIT) -> list[UpcomingRun]:
    with translate_errors(), conn.cursor(row_factory=class_row(UpcomingRun)) as cur:
        return cur.execute(
            QUERIES["schedule_upcoming"], {"within": interval_text(within), "kind": kind, "limit": limit}
        ).fetchall()


def enqueue_due(
    conn: psycopg.Connection, kind: str | None = None, limit: int | None = None
) -> list[EnqueueCount]:
    with translate_errors(), conn.cursor(row_factory=class_row(EnqueueCount)) as cur:
        return cur.execute(QUERIES["schedule_enqueue_due"], {"kind": kind, "limit": limit}).fetchall()
