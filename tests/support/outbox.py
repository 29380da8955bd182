"""Helpers of the notification tests: channels, outbox rows, and the real sender run until done."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from dispatcher.notify.sender import SenderConfig, SenderStats, run_sender

# rows the sender still has to do something about now (pending rows waiting for a retry are done)
UNSETTLED = ("SELECT count(*) FROM nightshift.notifications"
             " WHERE status = 'sending' OR (status = 'pending' AND next_attempt_at <= now())")


def add_channel(conn: psycopg.Connection, name: str, kind: str, settings: dict[str, Any] | None = None,
                *, min_interval: float = 0.0, digest: str | None = None) -> None:
    conn.execute("INSERT INTO nightshift.notification_channels (name, kind, settings, min_interval, digest)"
                 " VALUES (%s, %s, %s, make_interval(secs => %s), %s)",
                 (name, kind, Jsonb(settings or {}), min_interval, digest))


def add_rows(conn: psycopg.Connection, channel: str, payloads: list[dict[str, Any]],
             template: str = "drift-changed") -> list[int]:
    rows = conn.execute(
        "INSERT INTO nightshift.notifications (channel, template, payload)"
        " SELECT %s, %s, p FROM jsonb_array_elements(%s) AS p RETURNING id",
        (channel, template, Jsonb(payloads))).fetchall()
    return [r[0] for r in rows]


def rows(conn: psycopg.Connection) -> dict[int, dict[str, Any]]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return {r["id"]: r for r in cur.execute(
        "SELECT id, channel, template, status::text AS status, attempts, last_error, response, message_id,"
        " payload FROM nightshift.notifications ORDER BY id").fetchall()}


async def send_outbox(
    url: str, *, config: SenderConfig | None = None, until_sql: str | None = None,
    during: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]] | None = None, timeout: float = 60.0,
) -> SenderStats:
    """Run the real sender until the outbox is settled (and `until_sql` is true), then stop it.

    `during` runs against the database while the sender is up (to insert rows as scans would)."""
    stop = asyncio.Event()
    sender = asyncio.create_task(run_sender(url, config or SenderConfig(poll_interval=0.2), stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            if during is not None:
                await during(conn)
            while True:
                if sender.done():
                    break
                unsettled = await (await conn.execute(UNSETTLED)).fetchone()
                wanted = True
                if until_sql is not None:
                    answer = await (await conn.execute(until_sql)).fetchone()
                    wanted = bool(answer and answer[0])
                if unsettled == (0,) and wanted:
                    break
                if loop.time() > deadline:
                    raise AssertionError(f"the outbox did not settle within {timeout} s")
                await asyncio.sleep(0.05)
    finally:
        stop.set()
    return await sender
