"""The daemon's round trip over libpq directly (dispatcher/roundtrip.py), against a real server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from dispatcher import eventloop
from dispatcher.errors import DatabaseUnavailable
from dispatcher.store import Claimed, Store, StoreError

LEASE = timedelta(seconds=30)


def run(db_url: str, body: Callable[[Store], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = await Store.open(db_url, "test roundtrip")
        try:
            await store.prepare_round_trip()
            return await body(store)
        finally:
            await store.close()

    return eventloop.run(main())


async def round_trip(store: Store, ids: list[int], attempts: list[int], kinds: list[str] | None,
                     limit: int, worker: str = "w1") -> tuple[set[int], Claimed]:
    store.send_complete_and_claim(ids, attempts, worker, kinds, limit, LEASE)
    return await store.receive_complete_and_claim()


def test_claims_then_completes_with_kinds_that_need_quoting(conn: psycopg.Connection, db_url: str) -> None:
    odd = 'we"ird\\,{kind} é'
    for kind, subject in ((odd, "a"), (odd, "b"), ("noop", "c")):
        conn.execute("INSERT INTO nightshift.tasks (kind, subject, payload) VALUES (%s, %s, %s)",
                     (kind, subject, '{"n": [1, "two"]}'))

    async def body(store: Store) -> tuple[Claimed, set[int], Claimed]:
        _, first = await round_trip(store, [], [], [odd], 5)
        completed, second = await round_trip(store, [t.id for t in first.tasks],
                                             [t.attempt for t in first.tasks], [odd], 5)
        return first, completed, second

    first, completed, second = run(db_url, body)
    assert sorted(t.subject for t in first.tasks) == ["a", "b"]  # only the odd kind, quoted right
    assert {t.kind for t in first.tasks} == {odd}
    assert all(t.attempt == 1 and t.payload == {"n": [1, "two"]} for t in first.tasks)
    assert first.position is not None
    assert completed == {t.id for t in first.tasks}
    assert second.tasks == []
    rows = conn.execute("SELECT subject, status::text FROM nightshift.tasks ORDER BY subject").fetchall()
    assert rows == [("a", "done"), ("b", "done"), ("c", "queued")]


def test_refused_parameters_are_store_errors_and_the_connection_goes_on(
    conn: psycopg.Connection, db_url: str
) -> None:
    conn.execute("INSERT INTO nightshift.tasks (kind, subject) VALUES ('noop', 'a')")

    async def body(store: Store) -> tuple[str, str, Claimed]:
        with pytest.raises(StoreError) as by_server:
            await round_trip(store, [], [], None, 2**40)  # not an integer to the server
        with pytest.raises(StoreError) as before_sending:
            await round_trip(store, [], [], None, 1, worker="bad\x00name")  # libpq would cut it at NUL
        _, claimed = await round_trip(store, [], [], None, 1)
        return str(by_server.value), str(before_sending.value), claimed

    by_server, before_sending, claimed = run(db_url, body)
    assert "out of range" in by_server
    assert "NUL" in before_sending
    assert [(t.subject, t.attempt) for t in claimed.tasks] == [("a", 1)]
    assert conn.execute("SELECT locked_by FROM nightshift.tasks").fetchone() == ("w1",)


def test_a_killed_connection_is_database_unavailable(conn: psycopg.Connection, db_url: str) -> None:
    async def body(store: Store) -> None:
        pid = store.conn.info.backend_pid
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(DatabaseUnavailable):
            await round_trip(store, [], [], None, 1)

    run(db_url, body)


def test_pipelined_answers_come_in_the_order_sent_and_psycopg_can_follow(
    conn: psycopg.Connection, db_url: str
) -> None:
    for subject in ("a", "b"):
        conn.execute("INSERT INTO nightshift.tasks (kind, subject) VALUES ('noop', %s)", (subject,))

    async def body(store: Store) -> tuple[list[str], str | None]:
        for _ in range(2):  # two claims in flight at once, each its own transaction
            store.send_complete_and_claim([], [], "w1", None, 1, LEASE)
        store.flush()
        claimed = [(await store.receive_complete_and_claim())[1].tasks[0] for _ in range(2)]
        store.send_complete_and_claim([t.id for t in claimed], [t.attempt for t in claimed], "w1", None, 0,
                                      LEASE)
        store.flush()
        # an ordinary psycopg call on the same connection first reads what is outstanding
        record = await store.get(claimed[0].id)
        return [t.subject for t in claimed], record.status if record else None

    subjects, status = run(db_url, body)
    assert subjects == ["a", "b"]  # the first claim took the head of the queue, the second the next
    assert status == "done"
    statuses = conn.execute("SELECT array_agg(status::text) FROM nightshift.tasks").fetchone()
    assert statuses == (["done", "done"],)
