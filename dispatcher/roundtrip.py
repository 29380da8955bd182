"""One prepared statement, run over libpq directly and pipelined: the daemon's round trips.

At concurrency 1 the dispatcher is one round trip per task, and psycopg's cursor machinery (query
conversion, adapters looked up per call, the connection lock, prepared-statement bookkeeping, the
wait loop's timer) cost about a sixth of it: a bare loop of complete_and_claim ran at about 5,600
calls a second through a cursor and 6,900 through this. What is kept from psycopg: the connection,
its error classes, and its loaders for the rows. Parameters still travel apart from the SQL text
(libpq's extended protocol), never formatted into it.

Executions are pipelined (libpq's pipeline mode): send() does not wait, each execution is its own
transaction (a sync follows it), and receive() reads the answers in the order they were sent. So the
daemon can send a claim and the previous completions together, start the claimed tasks as soon as
the claim's answer is in, and read the completions' answer later.

send() returns the execution's Answer: awaiting it gives its rows, or raises the error the server
sent for that execution alone. Answers are read in the order sent; awaiting a later one first reads
the earlier ones into theirs, so callers hold answers instead of counting what is outstanding.
NIGHTSHIFT_ROUNDTRIP=psycopg runs the same statements through plain psycopg cursors, one at a time
(CursorStatement), to rule this module out when debugging.

The connection is shared with ordinary psycopg calls made by the same single user (the pump), one at
a time: settle() reads what is outstanding and leaves pipeline mode before such a call.

A connection that the server drops (failover, pg_terminate_backend) must end in an error, never in
a wait for a socket that will not speak again. Three guards, because the drop can be seen by any of
several libpq calls and libpq closes the socket when it sees it: nothing waits without first checking
the connection's status (libpq itself refuses a send on a dropped connection); the socket watched is
re-checked against libpq's current socket before every wait; and while anyone waits, a one-second
check reads the socket (consume_input) so that a drop noticed nowhere else still wakes the waiter,
which then raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections import deque
from collections.abc import Callable, Generator, Mapping
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer
from psycopg.rows import tuple_row

T = TypeVar("T")
Rows = list[tuple[Any, ...]]
ENV = "NIGHTSHIFT_ROUNDTRIP"


class Answer(Generic[T]):
    """The answer to one execution sent: `await answer` gives its rows (decoded), or raises its error."""

    __slots__ = ("_decode", "_error", "_read_next", "_rows", "done")

    def __init__(self, read_next: Callable[[], Any], decode: Callable[[Rows], T]) -> None:
        self._read_next = read_next  # reads the oldest unread answer of the same statement
        self._decode = decode
        self._rows: Rows = []
        self._error: BaseException | None = None
        self.done = False

    def _set(self, rows: Rows | None, error: BaseException | None = None) -> None:
        self._rows, self._error, self.done = rows or [], error, True

    def __await__(self) -> Generator[Any, None, T]:
        while not self.done:
            yield from self._read_next().__await__()
        if self._error is not None:
            raise self._error
        return self._decode(self._rows)


def _rows(rows: Rows) -> Rows:
    return rows


def statement(conn: psycopg.AsyncConnection[Any], name: str, sql: str) -> PreparedStatement | CursorStatement:
    """The pipelined PreparedStatement, or with NIGHTSHIFT_ROUNDTRIP=psycopg the plain one."""
    choice = os.environ.get(ENV, "").strip().lower()
    if choice not in ("", "libpq", "psycopg"):
        raise ValueError(f"{ENV} must be 'libpq' or 'psycopg', not {choice!r}")
    return CursorStatement(conn, sql) if choice == "psycopg" else PreparedStatement(conn, name, sql)


class PreparedStatement:
    """A statement with named %(name)s parameters, prepared once per connection and run by name."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], name: str, sql: str) -> None:
        self._conn = conn
        self._name = name.encode()
        sql_numbered, self.params = numbered(sql)  # parameter names, in $n order
        self._sql = sql_numbered.encode()
        self._tx = Transformer(conn)
        self._answers: deque[Answer[Any]] = deque()  # sent, not yet read: oldest first
        # from the first read or send until settle(), the event loop watches the socket: one
        # registration, not one per wait (each cost the loop a handle and four system calls)
        self._watching: int | None = None  # the socket watched
        self._waiter: asyncio.Future[None] | None = None  # a read waiting for data
        self._wake_too: asyncio.Event | None = None  # set by arriving data too (wait_for_answer)
        self._check_timer: asyncio.TimerHandle | None = None  # the one-second liveness check

    def _ensure_alive(self) -> None:
        """Raise OperationalError when libpq has seen the connection fail (its socket is closed then)."""
        pgconn = self._conn.pgconn
        if pgconn.status == pq.ConnStatus.BAD:
            self.unwatch()
            message = pgconn.error_message.decode(self._conn.info.encoding, "replace").strip()
            raise psycopg.OperationalError(message or "the connection to the server was lost")

    async def prepare(self) -> None:
        pgconn = self._conn.pgconn
        pgconn.send_prepare(self._name, self._sql)
        self._check(await self._next_result(), pq.ExecStatus.COMMAND_OK)
        await self._next_result()  # the end of its results

    @property
    def outstanding(self) -> int:
        """Executions sent whose answer has not been read."""
        return len(self._answers)

    def send(self, params: Mapping[str, object], decode: Callable[[Rows], T] = _rows) -> Answer[T]:  # type: ignore[assignment]
        """Queue one execution, in its own transaction (prepare() first); flush() sends the queue.
        The Answer it returns, awaited, gives decode(rows).

        Parameters travel in text format: bytes as they are, None as NULL, anything else as str() of
        it (ints, a datetime's ISO form), so the caller passes what the statement's casts accept.
        """
        encoding = self._conn.info.encoding
        values = [value if value is None or isinstance(value, bytes) else str(value).encode(encoding)
                  for value in (params[name] for name in self.params)]
        if any(b"\0" in value for value in values if value is not None):
            # libpq would cut a text parameter at its first NUL, silently; psycopg refuses it too
            raise psycopg.DataError("a parameter contains NUL (0x00), which PostgreSQL text cannot hold")
        pgconn = self._conn.pgconn  # on a dropped connection, libpq refuses the send (OperationalError)
        if pgconn.pipeline_status == pq.PipelineStatus.OFF:
            pgconn.enter_pipeline_mode()
        pgconn.send_query_prepared(self._name, values)
        pgconn.pipeline_sync()  # ends the execution's transaction
        answer: Answer[T] = Answer(self._read_oldest, decode)
        self._answers.append(answer)
        self._watch()
        return answer

    def flush(self) -> None:
        """Send what send() queued, in one write (rarely leaves anything; receive() sends the rest)."""
        self._conn.pgconn.flush()

    async def receive(self) -> Rows:
        """The rows of the oldest execution not yet read (its Answer, awaited)."""
        if not self._answers:
            raise psycopg.ProgrammingError("nothing was sent to receive")
        return await self._answers[0]

    async def _read_oldest(self) -> None:
        """Read the oldest unread answer into its Answer. A statement the server refused is that
        Answer's error alone; a lost connection is every unread Answer's, and raised."""
        answer = self._answers[0]
        try:
            result = await self._next_result()
            while (await self._next_result()) is not None:  # the end of this execution's results
                pass
            sync = await self._next_result()
            if sync is None or sync.status != pq.ExecStatus.PIPELINE_SYNC:
                raise psycopg.OperationalError("the server's answers are out of step with what was sent")
        except BaseException as exc:
            error = exc if isinstance(exc, psycopg.Error) else psycopg.OperationalError(
                f"reading the answer was interrupted: {type(exc).__name__}")
            while self._answers:  # nobody can read them now: the connection is gone or out of step
                self._answers.popleft()._set(None, error)
            raise
        self._answers.popleft()
        try:
            result = self._check(result, pq.ExecStatus.TUPLES_OK)
            self._tx.set_pgresult(result)
            answer._set(self._tx.load_rows(0, result.ntuples, tuple))
        except psycopg.Error as exc:
            answer._set(None, exc)

    def answer_ready(self) -> bool:
        """Whether the oldest outstanding answer has begun to arrive (reading it will not wait long)."""
        pgconn = self._conn.pgconn
        if pgconn.is_busy():
            pgconn.consume_input()
        return not pgconn.is_busy()

    async def wait_for_answer(self, wake: asyncio.Event) -> None:
        """Until the server sends something (an answer is outstanding), or wake is set."""
        await self._flush_all()
        self._ensure_alive()
        self._watch()
        self._wake_too = wake
        try:
            await wake.wait()
        finally:
            self._wake_too = None

    def _watch(self) -> None:
        socket = self._conn.pgconn.socket  # raises OperationalError when libpq has dropped it
        if self._watching == socket:
            return
        self.unwatch()  # a socket libpq closed and reopened under the same or another number
        loop = asyncio.get_running_loop()
        loop.add_reader(socket, self._on_readable)
        self._watching = socket
        self._check_timer = loop.call_later(1.0, self._check_alive)

    def unwatch(self) -> None:
        """Stop watching the socket (leaving pipeline mode, or the connection is about to close)."""
        if self._check_timer is not None:
            self._check_timer.cancel()
            self._check_timer = None
        if self._watching is not None:
            fd, self._watching = self._watching, None
            # the descriptor may be closed already (libpq drops a failed connection's socket)
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(fd)

    def _check_alive(self) -> None:
        """Once a second while watching: a waiter whose wake-up was lost is woken to see the failure."""
        self._check_timer = None
        waiting = (self._waiter is not None and not self._waiter.done()) or self._wake_too is not None
        if waiting:
            pgconn = self._conn.pgconn
            try:
                if pgconn.status == pq.ConnStatus.BAD:
                    raise psycopg.OperationalError("the connection to the server was lost")
                pgconn.consume_input()
                alive = True
            except psycopg.OperationalError:
                alive = False
            if not alive or not pgconn.is_busy():
                self._wake_waiters()
                if not alive:
                    return  # the woken reader raises; unwatch() is its business
        if self._watching is not None:
            self._check_timer = asyncio.get_running_loop().call_later(1.0, self._check_alive)

    def _wake_waiters(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        elif self._wake_too is not None:
            self._wake_too.set()

    def _on_readable(self) -> None:
        if self._waiter is not None or self._wake_too is not None:
            self._wake_waiters()
        else:
            # nobody reads now: take the bytes into libpq's buffer (they stay there for the next
            # read), or the loop would call this again at every turn. A lost connection is seen by
            # the next send or read (_ensure_alive).
            try:
                self._conn.pgconn.consume_input()
            except psycopg.OperationalError:
                self.unwatch()

    async def settle(self) -> None:
        """Leave pipeline mode, so that psycopg may use the connection; answers not received first
        are read and dropped (their errors raised)."""
        while self._answers:
            await self._read_oldest()
        self.unwatch()
        pgconn = self._conn.pgconn
        if pgconn.pipeline_status != pq.PipelineStatus.OFF:
            pgconn.exit_pipeline_mode()

    def _check(self, result: pq.abc.PGresult | None, expected: pq.ExecStatus) -> pq.abc.PGresult:
        if result is None:
            raise psycopg.OperationalError("the server sent no result")
        if result.status != expected:
            raise psycopg.errors.error_from_result(result, encoding=self._conn.info.encoding)
        return result

    async def _flush_all(self) -> None:
        """Send all that libpq holds, waiting for the socket when its buffer is full."""
        pgconn = self._conn.pgconn
        while pgconn.flush():  # a short statement is nearly always sent at once
            await _writable(pgconn.socket)

    async def _next_result(self) -> pq.abc.PGresult | None:
        """The next result from the server (None ends an execution's results), waiting for it."""
        pgconn = self._conn.pgconn
        if pgconn.flush():
            await self._flush_all()
        while pgconn.is_busy():  # what was read before may already hold it
            self._ensure_alive()  # libpq stays "busy" on a dropped connection: never wait on it
            self._watch()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
            pgconn.consume_input()
        return pgconn.get_result()


async def _writable(fd: int) -> None:
    """Until the socket takes more: one future, woken by the event loop's own watcher."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.add_writer(fd, _wake, future)
    try:
        await future
    finally:
        loop.remove_writer(fd)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def numbered(sql: str) -> tuple[str, list[str]]:
    """psycopg's named placeholders (%(name)s, and %% for %) as libpq's $1, $2...; the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[0] == "%%":
            return "%"
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return re.sub(r"%%|%\((\w+)\)s", number, sql), names


class CursorStatement:
    """The same interface as PreparedStatement over plain psycopg cursors: each execution runs when
    its answer (or a later one) is awaited, one at a time, in the order sent. Slower; for debugging."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], sql: str) -> None:
        self._conn = conn
        self._sql = sql
        self._queue: deque[tuple[Mapping[str, object], Answer[Any]]] = deque()

    async def prepare(self) -> None:
        pass

    @property
    def outstanding(self) -> int:
        return len(self._queue)

    def send(self, params: Mapping[str, object], decode: Callable[[Rows], T] = _rows) -> Answer[T]:  # type: ignore[assignment]
        answer: Answer[T] = Answer(self._run_oldest, decode)
        self._queue.append((params, answer))
        return answer

    def flush(self) -> None:
        pass

    async def receive(self) -> Rows:
        if not self._queue:
            raise psycopg.ProgrammingError("nothing was sent to receive")
        return await self._queue[0][1]

    async def _run_oldest(self) -> None:
        params, answer = self._queue.popleft()
        params = {k: v.decode() if isinstance(v, bytes) else v for k, v in params.items()}
        try:
            async with self._conn.cursor(row_factory=tuple_row) as cur:
                await cur.execute(self._sql, params)
                answer._set(await cur.fetchall())
        except psycopg.OperationalError as exc:
            answer._set(None, exc)
            while self._queue:
                self._queue.popleft()[1]._set(None, exc)
            raise
        except psycopg.Error as exc:
            answer._set(None, exc)

    def answer_ready(self) -> bool:
        return bool(self._queue)

    async def wait_for_answer(self, wake: asyncio.Event) -> None:
        if not self._queue:
            await wake.wait()

    async def settle(self) -> None:
        while self._queue:
            await self._run_oldest()

    def unwatch(self) -> None:
        pass
