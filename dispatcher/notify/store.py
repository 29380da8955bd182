"""The one place the notification sender and the `notify`/`channels` commands talk to Postgres.

Each method runs one named query of sql/queries/notify.sql (the sender's writes are calls of
sql/functions/notification_*.sql) and returns plain values or frozen dataclasses. psycopg errors
become the project's own exceptions here: a lost connection is DatabaseUnavailable (the sender
reconnects), anything else NotifyStoreError.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb, set_json_loads

from dispatcher.db import describe_connect_error, libpq_url
from dispatcher.errors import DatabaseUnavailable, NightshiftError
from dispatcher.queries import load_queries

LISTEN_CHANNEL = "nightshift_notifications"


def _loads(data: bytes | str) -> Any:
    """orjson.loads, or json.loads for what orjson refuses and jsonb holds (a number beyond a double,
    such as 1e400): one such payload must not make a claim fail."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


class NotifyStoreError(NightshiftError):
    """The database refused a statement (a constraint, a missing function, bad input)."""


@dataclass(frozen=True)
class Claimed:
    """An outbox row as the sender holds it; `attempts` is the fencing token of its writes."""

    id: int
    channel: str
    template: str
    payload: dict[str, Any]
    attempts: int
    scan_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class ChannelRow:
    id: int
    name: str
    kind: str
    settings: dict[str, Any]
    digest: str | None
    min_interval: float
    is_active: bool
    organization: str | None = None


@dataclass(frozen=True)
class OutboxRow:
    """A notifications row as operators see it (`nightshift notify list`)."""

    id: int
    channel: str
    template: str
    status: str
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    response: str | None
    message_id: int | None
    subject: str | None
    created_at: datetime


class NotifyStore:
    def __init__(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> None:
        self.conn = conn
        self.queries = load_queries("notify")

    @classmethod
    async def open(cls, url: str, application_name: str = "nightshift notify") -> NotifyStore:
        try:
            conn = await psycopg.AsyncConnection.connect(
                libpq_url(url), autocommit=True, row_factory=dict_row, connect_timeout=10,
                application_name=application_name)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(describe_connect_error(url, exc)) from exc
        set_json_loads(_loads, conn)  # claimed payloads: a fifth of json.loads' time
        return cls(conn)

    async def close(self) -> None:
        await self.conn.close()

    async def _rows(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            cursor = await self.conn.execute(self.queries[name], params)
            return await cursor.fetchall() if cursor.description else []
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"lost the database connection: {str(exc).strip()}") from exc
        except psycopg.Error as exc:
            message = exc.diag.message_primary or str(exc).strip()
            raise NotifyStoreError(message) from exc

    # the sender

    async def claim(self, worker: str, limit: int, lease: float, skip: Sequence[str]) -> list[Claimed]:
        rows = await self._rows("notification_claim", {
            "worker": worker, "limit": limit, "lease": timedelta(seconds=lease), "skip": list(skip)})
        return [Claimed(**row) for row in rows]

    async def mark_sent(self, messages: Sequence[tuple[Sequence[Claimed], str]]) -> int:
        """Mark the rows of several delivered messages, each (its rows, the endpoint's answer), at once."""
        rows = [(row, response, group[0].id) for group, response in messages for row in group]
        result = await self._rows("notification_mark_sent", {
            "ids": [r.id for r, _, _ in rows], "attempts": [r.attempts for r, _, _ in rows],
            "responses": [response for _, response, _ in rows],
            "message_ids": [message_id for _, _, message_id in rows]})
        return int(result[0]["marked"])

    async def fail(self, rows: Sequence[Claimed], error: str, *, retry: bool,
                   retry_after: float | None = None, response: str | None = None) -> dict[int, str]:
        result = await self._rows("notification_fail", {
            "ids": [r.id for r in rows], "attempts": [r.attempts for r in rows], "error": error,
            "retry": retry, "response": response or None,
            "retry_after": timedelta(seconds=retry_after) if retry_after is not None else None})
        return {row["id"]: row["status"] for row in result}

    async def release(self, rows: Sequence[Claimed]) -> int:
        result = await self._rows("notification_release", {
            "ids": [r.id for r in rows], "attempts": [r.attempts for r in rows]})
        return int(result[0]["released"])

    async def channels(self, names: Sequence[str]) -> dict[str, ChannelRow]:
        rows = await self._rows("channel_by_names", {"names": list(names)})
        return {row["name"]: ChannelRow(**row) for row in rows}

    async def setting(self, key: str) -> str | None:
        rows = await self._rows("notification_setting", {"key": key})
        return rows[0]["value"] if rows else None

    # operators

    async def outbox(self, status: str | None, channel: str | None, limit: int) -> list[OutboxRow]:
        rows = await self._rows("notification_list", {"status": status, "channel": channel, "limit": limit})
        return [OutboxRow(**row) for row in rows]

    async def retry(self, notification_id: int) -> bool:
        rows = await self._rows("notification_retry", {"id": notification_id})
        return bool(rows[0]["retried"])

    async def list_channels(self) -> list[ChannelRow]:
        return [ChannelRow(**row) for row in await self._rows("channel_list", {})]

    async def add_channel(self, name: str, kind: str, settings: dict[str, Any], digest: str | None,
                          min_interval: float, organization: str | None) -> int | None:
        """The new channel's id; None when `organization` names no organization."""
        rows = await self._rows("channel_add", {
            "name": name, "kind": kind, "settings": Jsonb(settings), "digest": digest,
            "min_interval": min_interval, "organization": organization})
        return int(rows[0]["id"]) if rows else None

    async def set_active(self, name: str, active: bool) -> bool:
        return bool(await self._rows("channel_set_active", {"name": name, "active": active}))
