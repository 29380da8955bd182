"""Deliveries that arrive together are committed together: one transaction, one WAL flush per batch.

Every delivery must be durable before it is answered (GitHub does not redeliver a 2xx), and a durable
commit waits for the disk: a few milliseconds that a request alone cannot go below. Under load that wait
is shared: up to `writers` transactions run at once, and each takes every delivery that queued up while
the others were committing (nightshift.receive_github_deliveries). A lone delivery is sent at once, so
at low load nothing waits for a batch to fill.

Two batches can lock the same pull request's task in opposite orders; PostgreSQL then aborts one with a
deadlock error, and it is simply sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("nightshift.intake.batcher")

RETRIES = 3


class Received(NamedTuple):  # a tuple: made once per delivery, cheaper than a frozen dataclass
    outcome: str
    task_id: int | None
    repository_id: int | None
    error: str | None


@dataclass
class _Pending:
    element: dict[str, Any]
    answer: asyncio.Future[Received]


class DeliveryBatcher:
    def __init__(self, pool: AsyncConnectionPool, writers: int = 4, max_batch: int = 200) -> None:
        self.pool = pool
        self.writers = writers
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._write(), name=f"intake-writer-{i}")
                       for i in range(self.writers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def receive(self, delivery_id: str, event: str, payload: dict[str, Any],
                      secret_ref: str | bool | None = False) -> Received:
        """Record one delivery (and enqueue what it asks for); returns once it is committed.

        secret_ref: the secret reference the delivery was verified with (None: the global one), which
        the transaction checks is still the repository's; False: no check (no repository named).
        """
        answer: asyncio.Future[Received] = asyncio.get_running_loop().create_future()
        element: dict[str, Any] = {"delivery_id": delivery_id, "event": event, "payload": payload}
        if secret_ref is not False:
            element["secret_ref"] = secret_ref
        self._queue.put_nowait(_Pending(element, answer))
        # a request that times out cancels only its answer: a queued delivery is still committed, once
        # (_write sends every element it takes and skips answers that are done)
        return await answer

    async def _write(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                rows = await self._commit([p.element for p in batch])
            except Exception as exc:  # the pool or the database: every request of the batch hears it
                for pending in batch:
                    if not pending.answer.done():
                        pending.answer.set_exception(exc)
                continue
            for pending, row in zip(batch, rows, strict=True):
                if not pending.answer.done():
                    pending.answer.set_result(row)

    async def _commit(self, elements: list[dict[str, Any]]) -> list[Received]:
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.pool.connection() as conn:
                    cur = await conn.execute(
                        "SELECT outcome, task_id, repository_id, error"
                        " FROM nightshift.receive_github_deliveries(%s) ORDER BY ordinal",
                        (Jsonb(elements, dumps=msgspec.json.encode),))  # faster than json.dumps
                    return [Received(*row) for row in await cur.fetchall()]
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == RETRIES:
                    raise
                log.info("batch of %d deliveries retried after a lock conflict", len(elements),
                         extra={"event": "batch-retry", "attempt": attempt})
        raise AssertionError("unreachable")
