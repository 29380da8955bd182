"""The daemon's round trip over libpq directly (dispatcher/roundtrip.py), against a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from dispatcher import eventloop
from dispatcher.errors import DatabaseUnavailable
from dispatcher.roundtrip import PreparedStatement
from dispatcher.store import Claimed, Store, StoreError, translate_errors

LEASE = timedelta(seconds=30)


def run(db_url: str, body: Callable[[Store], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = await Store.open(db_url, "test roundtrip")
        try:
            with translate_errors(db_url):  # as the pump does, once around its loop
                await store.round_trip.prepare()
                return await body(store)
        finally:
            await store.close()

    return eventloop.run(main())


async def round_trip(store: Store, ids: list[int], attempts: list[int], kinds: list[str] | None,
                     limit: int, worker: str = "w1") -> tuple[set[int], Claimed]:
    with translate_errors(store.url):  # as the pump does around its loop
        return await store.round_trip.send(ids, attempts, worker, kinds, limit, LEASE)


@pytest.mark.parametrize("way", ["libpq", "psycopg"])
def test_claims_then_completes_with_kinds_that_need_quoting(
    conn: psycopg.Connection, db_url: str, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pipelined over libpq, and the same statements through plain psycopg (NIGHTSHIFT_ROUNDTRIP)."""
    monkeypatch.setenv("NIGHTSHIFT_ROUNDTRIP", way)
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
        replies = []
        for _ in range(2):  # two claims in flight at once, each its own transaction
            replies.append(store.round_trip.send([], [], "w1", None, 1, LEASE))
        store.round_trip.flush()
        claimed = [(await reply)[1].tasks[0] for reply in replies]
        store.round_trip.send([t.id for t in claimed], [t.attempt for t in claimed], "w1", None, 0,
                                      LEASE)
        store.round_trip.flush()
        # an ordinary psycopg call on the same connection first reads what is outstanding
        record = await store.get(claimed[0].id)
        return [t.subject for t in claimed], record.status if record else None

    subjects, status = run(db_url, body)
    assert subjects == ["a", "b"]  # the first claim took the head of the queue, the second the next
    assert status == "done"
    statuses = conn.execute("SELECT array_agg(status::text) FROM nightshift.tasks").fetchone()
    assert statuses == (["done", "done"],)


# "lost wake-up": the event loop drops the socket's registration (seen with uvloop when psycopg's own
# waits and ours add and remove readers on the same descriptor): only the liveness check can tell
KILL_POINTS = ("before send", "between send and answer", "mid-answer", "while idle and watched",
               "lost wake-up")


@pytest.mark.slow
@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_connection_killed_at_any_point_of_the_pipeline_raises_and_never_hangs(
    conn: psycopg.Connection, db_url: str, point: str
) -> None:
    """The server ends the backend (failover, pg_terminate_backend) at each point, many times, at
    varied moments: every read ends in DatabaseUnavailable or an answer, never in a wait that lasts.
    The bound below is what turns a hang into a failure; with the one-second liveness check a
    dropped connection is seen in about a second at worst."""

    async def once(delay: float) -> str:
        store = await Store.open(db_url, "test roundtrip kill")
        # mid-answer: 2,000 rows of 2 kB, an answer of about 4 MB, long enough to be cut while it
        # streams (one prepared statement per connection: each watches the connection's socket)
        big = PreparedStatement(store.conn, "big",
                                "SELECT g, repeat('x', 2000) FROM generate_series(1, %(n)s) g")
        try:
            if point == "mid-answer":
                await big.prepare()
            else:
                await store.round_trip.prepare()
            pid = store.conn.info.backend_pid

            def kill() -> None:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))

            try:
                with translate_errors(db_url):
                    if point == "before send":
                        kill()
                        await asyncio.sleep(delay)
                        reply = store.round_trip.send([], [], "w1", None, 1, LEASE)
                        store.round_trip.flush()
                        await asyncio.wait_for(reply, 10)
                    elif point == "between send and answer":
                        reply = store.round_trip.send([], [], "w1", None, 1, LEASE)
                        store.round_trip.flush()
                        await asyncio.sleep(delay)
                        kill()
                        await asyncio.wait_for(reply, 10)
                    elif point == "mid-answer":
                        big.send({"n": 2000})
                        big.flush()
                        reader = asyncio.ensure_future(big.receive())
                        await asyncio.sleep(delay)
                        kill()
                        await asyncio.wait_for(reader, 10)
                    elif point == "lost wake-up":
                        reply = store.round_trip.send([], [], "w1", None, 1, LEASE)
                        store.round_trip.flush()
                        asyncio.get_running_loop().remove_reader(store.conn.pgconn.socket)
                        kill()
                        await asyncio.wait_for(reply, 10)
                    else:  # the pump waits idle for an answer while the connection dies under it
                        await store.round_trip.send([], [], "w1", None, 1, LEASE)
                        reply = store.round_trip.send([], [], "w1", None, 0, LEASE)
                        kill()
                        await asyncio.wait_for(store.round_trip.wait_for_answer(asyncio.Event()), 10)
                        await asyncio.wait_for(reply, 10)
                return "answered"
            except DatabaseUnavailable:
                return "unavailable"
            except TimeoutError:
                return "HANG"
        finally:
            big.unwatch()
            await store.close()

    async def main() -> list[str]:
        # a lost wake-up costs about a second (the liveness check), so fewer rounds of that one
        many = (0, 0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02) * 2
        delays = (0, 0.001, 0.01) if point == "lost wake-up" else many
        return [await once(delay) for delay in delays]

    outcomes = eventloop.run(main())
    assert "HANG" not in outcomes, outcomes
    assert "unavailable" in outcomes  # the kill was seen, not only raced past
