"""The one place the dispatcher talks to Postgres about tasks.

Each method runs one named query of sql/queries/queue.sql (each a call of a sql/functions/queue_*
function, so a DBA in psql does exactly what the daemon does) and returns plain values or frozen
dataclasses. psycopg errors become the project's own exceptions through db.translate_errors: a lost
or refused connection is DatabaseUnavailable (the daemon reconnects), anything else StoreError.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg.adapt import PyFormat, Transformer
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from dispatcher.contract import AgentResult, Task
from dispatcher.db import libpq_url, translate_errors
from dispatcher.errors import StoreError
from dispatcher.queries import load_queries
from dispatcher.roundtrip import Answer, Rows, statement

__all__ = ["StoreError", "translate_errors"]  # with the Store: what callers of the store catch

# (priority, run_after, id) of the last claimed task: where the next claim's index scan starts
ClaimPosition = tuple[int, datetime, int]


@dataclass(frozen=True)
class TaskRecord:
    """A tasks row as operators see it (`nightshift tasks show`)."""

    id: int
    kind: str
    subject: str
    payload: dict[str, Any]
    status: str
    priority: int
    run_after: datetime
    attempt: int
    max_attempts: int
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    errors: list[dict[str, Any]]
    schedule_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    summary: dict[str, Any] | None = None  # the agent's summary of a successful run

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TaskRecord:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Claimed:
    """Tasks just claimed, and the claim-order position of the last one (for the next claim)."""

    tasks: list[Task]
    position: ClaimPosition | None

    @classmethod
    def from_rows(cls, rows: list[tuple[Any, ...]]) -> Claimed:
        """Rows of task_complete_and_claim (tuples, in its column order) that claimed a task."""
        if not rows:
            return NOTHING
        # Task(...) by position rather than Task.from_row(dict): this runs for every task, the hot path
        tasks = [Task(id=r[1], kind=r[2], subject=r[3], payload=r[4], attempt=r[5], max_attempts=r[6],
                      priority=r[7], schedule_id=r[8], locked_until=r[9]) for r in rows]
        # claim order is priority DESC, run_after, id: the last one has the largest key below
        last = max(rows, key=lambda r: (-r[7], r[10], r[1]))
        return cls(tasks, (last[7], last[10], last[1]))


NOTHING = Claimed([], None)


@dataclass(frozen=True)
class KindStats:
    kind: str
    queued: int
    running: int
    oldest_queued_seconds: float


async def connect(url: str, application_name: str) -> psycopg.AsyncConnection[dict[str, Any]]:
    """An autocommit async connection with TCP keepalives, so a vanished server is noticed."""
    with translate_errors(url):
        return await psycopg.AsyncConnection.connect(
            libpq_url(url), autocommit=True, row_factory=dict_row, connect_timeout=10,
            application_name=application_name[:63], keepalives=1, keepalives_idle=10,
            keepalives_interval=5, keepalives_count=3,
        )


class Store:
    """Queue operations over one autocommit connection (each statement is its own transaction)."""

    def __init__(self, conn: psycopg.AsyncConnection[dict[str, Any]], url: str) -> None:
        self.conn = conn
        self.url = url
        self._q = load_queries("queue")
        # the daemon's round trip (the pump's alone), sharing this connection
        self.round_trip = CompleteAndClaim(conn, self._q["task_complete_and_claim"])

    @classmethod
    async def open(cls, url: str, application_name: str = "nightshift") -> Store:
        return cls(await connect(url, application_name), url)

    async def close(self) -> None:
        self.round_trip.unwatch()  # before its socket closes (and its number is reused)
        with contextlib.suppress(Exception):
            await self.conn.close()

    @contextlib.asynccontextmanager
    async def _cursor(self) -> AsyncIterator[psycopg.AsyncCursor[dict[str, Any]]]:
        with translate_errors(self.url):
            await self.round_trip.settle()  # psycopg cannot share the connection with a pipeline
            async with self.conn.cursor() as cur:
                yield cur

    async def _one(self, name: str, params: dict[str, Any]) -> dict[str, Any] | None:
        async with self._cursor() as cur:
            await cur.execute(self._q[name], params)
            return await cur.fetchone()

    async def _value(self, name: str, params: dict[str, Any], column: str) -> Any:
        row = await self._one(name, params)
        return None if row is None else row[column]

    # -- results and leases -------------------------------------------------------------------
    async def fail(self, task_id: int, attempt: int, error: str, retry: bool = True) -> str | None:
        """The task's new status (queued, dead, failed), or None when this holder is stale."""
        params = {"id": task_id, "attempt": attempt, "error": error, "retry": retry}
        status = await self._value("task_fail", params, "status")
        return None if status is None else str(status)

    async def release_many(self, ids: Sequence[int], attempts: Sequence[int], reason: str) -> set[int]:
        params = {"ids": _int_array(ids), "attempts": _int_array(attempts), "reason": reason}
        return set(await self._value("task_release_many", params, "released") or ())

    async def heartbeat(
        self, ids: Sequence[int], worker: str, attempts: Sequence[int], lease: timedelta
    ) -> set[int]:
        params = {"ids": _int_array(ids), "worker": worker, "attempts": _int_array(attempts), "lease": lease}
        return set(await self._value("task_heartbeat", params, "extended") or ())

    async def requeue_expired(self) -> int:
        return int(await self._value("task_requeue_expired", {}, "requeued") or 0)

    async def record_result(self, task: Task, result: AgentResult) -> tuple[bool, int | None]:
        """Store a successful result through nightshift.record_result: (stored, scan id); stored is
        False when this holder is stale (its lease is gone)."""
        params = {"task_id": task.id, "attempt": task.attempt, "result": result_jsonb(result.to_json())}
        row = await self._one("result_record", params)
        assert row is not None
        return bool(row["stored"]), row["scan_id"]

    async def task_targets(self, subject: str) -> dict[str, Any]:
        return dict(await self._value("task_targets", {"subject": subject}, "targets") or {})

    async def queue_stats(self) -> list[KindStats]:
        async with self._cursor() as cur:
            await cur.execute(self._q["queue_stats"])
            return [KindStats(**row) for row in await cur.fetchall()]

    # -- operators ----------------------------------------------------------------------------
    async def enqueue(
        self, kind: str, subject: str, payload: dict[str, Any] | None = None, priority: int = 0,
        run_after: datetime | None = None, max_attempts: int = 3,
    ) -> int | None:
        """The new task's id, or None when a task for (kind, subject) is already in flight."""
        params = {"kind": kind, "subject": subject, "payload": Jsonb(payload or {}), "priority": priority,
                  "run_after": run_after, "max_attempts": max_attempts}
        task_id = await self._value("task_enqueue", params, "id")
        return None if task_id is None else int(task_id)

    async def get(self, task_id: int) -> TaskRecord | None:
        row = await self._one("task_get", {"id": task_id})
        return None if row is None else TaskRecord.from_row(row)

    async def list(self, status: str | None = None, kind: str | None = None, limit: int = 50
                   ) -> list[TaskRecord]:
        async with self._cursor() as cur:
            await cur.execute(self._q["task_list"], {"status": status, "kind": kind, "limit": limit})
            return [TaskRecord.from_row(row) for row in await cur.fetchall()]

    async def cancel(self, task_id: int) -> bool:
        return bool(await self._value("task_cancel", {"id": task_id}, "cancelled"))

    async def retry(self, task_id: int) -> bool:
        return bool(await self._value("task_retry", {"id": task_id}, "retried"))


class CompleteAndClaim:
    """The daemon's round trip, task_complete_and_claim, pipelined over libpq (dispatcher/roundtrip.py
    says why): send() queues one execution and returns its answer, (ids completed, tasks claimed), to
    await; answers come in the order sent. flush() sends what is queued.

    This is where the named query's parameters are built and its rows decoded; the socket work is
    roundtrip.py's. Errors are psycopg's: its one user, the pump, translates them once around its
    loop (db.translate_errors), not once per call of the hot path.
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any], sql: str) -> None:
        self.conn = conn
        self._statement = statement(conn, "nightshift_complete_and_claim", sql)
        self._kinds: tuple[tuple[str, ...] | None, bytes | None] = (None, None)  # kinds, as text[]
        self.prepare = self._statement.prepare  # once per connection, before send
        self.flush = self._statement.flush  # send what send() queued, together
        self.answer_ready = self._statement.answer_ready  # the oldest answer has arrived
        self.wait_for_answer = self._statement.wait_for_answer  # until an answer arrives or wake is set
        self.settle = self._statement.settle  # read what is outstanding, leave pipeline mode
        self.unwatch = self._statement.unwatch

    def send(
        self, ids: Sequence[int], attempts: Sequence[int], worker: str, kinds: Sequence[str] | None,
        limit: int, lease: timedelta, after: ClaimPosition | None = None,
    ) -> Answer[RoundTripAnswer]:
        """Queue: complete finished tasks and claim up to limit more, one transaction. Returns at once."""
        priority, run_after, after_id = after if after is not None else (None, None, None)
        params = {"ids": _int_array(ids), "attempts": _int_array(attempts), "worker": worker,
                  "kinds": self._kinds_array(kinds), "limit": int(limit),
                  "lease": f"{lease.total_seconds()} seconds", "after_priority": priority,
                  "after_run_after": run_after and run_after.isoformat(), "after_id": after_id}
        return self._statement.send(params, _decode_round_trip)

    @property
    def outstanding(self) -> int:
        """Round trips sent whose answer has not been read."""
        return self._statement.outstanding

    def _kinds_array(self, kinds: Sequence[str] | None) -> bytes | None:
        """The kinds as a text[] literal, dumped by psycopg (its quoting) once, not per round trip."""
        key = tuple(kinds) if kinds else None
        if key != self._kinds[0]:
            dumped = None
            if key is not None:
                dumped = bytes(Transformer(self.conn).get_dumper(list(key), PyFormat.TEXT).dump(list(key))
                               or b"{}")
            self._kinds = (key, dumped)
        return self._kinds[1]


RoundTripAnswer = tuple[set[int], "Claimed"]


def _decode_round_trip(rows: Rows) -> RoundTripAnswer:
    """The ids a round trip completed (a stale holder's are absent) and the tasks it claimed."""
    completed = set(rows[0][0] or ()) if rows else set()
    return completed, Claimed.from_rows([row for row in rows if row[1] is not None])


def _int_array(values: Sequence[int]) -> str:
    """A Postgres array literal of integers ('{1,2,3}'); int() refuses anything else.

    Ids and attempts go as literals (the queries cast them): psycopg adapts a Python list element by
    element, in Python, about ten times slower, and the hot path sends two lists every round trip.
    """
    return "{" + ",".join(str(int(v)) for v in values) + "}"


def result_jsonb(document: dict[str, Any]) -> Jsonb:
    """A result document as a jsonb parameter, encoded by orjson: a scan of 100,000 findings is ~50 MB
    of JSON, which json.dumps takes half a second to write (bench/bench_compliance.py). What orjson
    refuses (an integer beyond 64 bits) goes through json.dumps. Datetimes come out as isoformat()
    writes them, as contract.checked's encoding does."""
    return Jsonb(document, dumps=_dumps)


def _dumps(value: Any) -> str | bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, ensure_ascii=False, default=lambda v: v.isoformat())
