"""One prepared statement, run over libpq directly: the daemon's round trip (complete_and_claim).

At concurrency 1 the dispatcher is one round trip per task, and psycopg's cursor machinery (query
conversion, adapters looked up per call, the connection lock, prepared-statement bookkeeping, the
wait loop's timer) cost about a sixth of it: a bare loop of complete_and_claim ran at about 5,600
calls a second through a cursor and 6,900 through this. Sending and receiving are two calls, so the
daemon can do its bookkeeping while the server works. What is kept from psycopg: the connection, its
error classes, and its loaders for the rows. Parameters still travel apart from the SQL text
(libpq's extended protocol), never formatted into it.

The connection is shared with ordinary psycopg calls made by the same single user (the pump), one at
a time: nothing here leaves state behind between calls, and the socket is watched only while waiting.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer


class PreparedStatement:
    """A statement with named %(name)s parameters, prepared once per connection and run by name."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], name: str, sql: str) -> None:
        self._conn = conn
        self._name = name.encode()
        self.params: list[str] = []  # parameter names, in $n order

        def number(match: re.Match[str]) -> str:
            if match[1] not in self.params:
                self.params.append(match[1])
            return f"${self.params.index(match[1]) + 1}"

        self._sql = re.sub(r"%\((\w+)\)s", number, sql).encode()
        self._tx = Transformer(conn)
        self.prepared = False

    async def prepare(self) -> None:
        self._conn.pgconn.send_prepare(self._name, self._sql)
        self._check(await self._result(), pq.ExecStatus.COMMAND_OK)
        self.prepared = True

    def send(self, params: Mapping[str, object]) -> None:
        """Send one execution (prepare() first); receive() its rows before anything else is sent.

        Parameters travel in text format: bytes as they are, None as NULL, anything else as str() of
        it (ints, a datetime's ISO form), so the caller passes what the statement's casts accept.
        """
        encoding = self._conn.info.encoding
        values = [value if value is None or isinstance(value, bytes) else str(value).encode(encoding)
                  for value in (params[name] for name in self.params)]
        if any(b"\0" in value for value in values if value is not None):
            # libpq would cut a text parameter at its first NUL, silently; psycopg refuses it too
            raise psycopg.DataError("a parameter contains NUL (0x00), which PostgreSQL text cannot hold")
        self._conn.pgconn.send_query_prepared(self._name, values)

    async def receive(self) -> list[tuple[Any, ...]]:
        """The rows of what send() sent, as tuples, loaded by psycopg's loaders."""
        result = self._check(await self._result(), pq.ExecStatus.TUPLES_OK)
        self._tx.set_pgresult(result)
        return self._tx.load_rows(0, result.ntuples, tuple)

    def _check(self, result: pq.abc.PGresult | None, expected: pq.ExecStatus) -> pq.abc.PGresult:
        if result is None:
            raise psycopg.OperationalError("the server sent no result")
        if result.status != expected:
            raise psycopg.errors.error_from_result(result, encoding=self._conn.info.encoding)
        return result

    async def _result(self) -> pq.abc.PGresult | None:
        """Send what is buffered, then read until the server is done; the first result."""
        pgconn = self._conn.pgconn
        loop = asyncio.get_running_loop()
        while pgconn.flush():  # a short statement is nearly always sent at once
            await _ready(pgconn.socket, loop.add_writer, loop.remove_writer)
        first = None
        while True:
            pgconn.consume_input()
            while not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:
                    return first
                if first is None:
                    first = result
            await _ready(pgconn.socket, loop.add_reader, loop.remove_reader)


async def _ready(fd: int, add: Callable[..., None], remove: Callable[[int], Any]) -> None:
    """Until fd is readable (or writable): one future, woken by the event loop's own watcher."""
    future = asyncio.get_running_loop().create_future()
    add(fd, _wake, future)
    try:
        await future
    finally:
        remove(fd)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
