"""The notification sender: the outbox (nightshift.notifications) delivered to its channels.

Entry point: `await run_sender(url, SenderConfig(...), stop_event)`, until stop_event is set. It runs
as `nightshift notify run`, or inside any asyncio program (the dispatcher daemon) as one more task.

How it works:
- LISTEN nightshift_notifications on its own autocommit connection (the insert trigger wakes it,
  so a message leaves within a moment of its scan's commit); it also polls every poll_interval.
- Claim due rows with nightshift.claim_notifications: FOR UPDATE SKIP LOCKED and a lease, like
  tasks, so several senders never send one row twice in normal operation. Delivery is
  at-least-once: a sender that dies after the endpoint accepted a message but before marking it
  sent leaves a lease that expires, and the message goes again (at most one duplicate per expiry).
- Group the claimed rows by channel: all of a channel's rows go out as ONE message (one per scan
  when alone, a grouped message listing them when many). A channel is held back for its
  min_interval after each send (Slack allows about one message a second per webhook), and for a
  429's Retry-After; its rows stay pending meanwhile and are claimed together when it is free, so a
  burst of 200 transitions becomes a handful of messages, not 200 posts. The limit holds across
  senders (several dispatchers on several machines): it is kept in the channel's row, and a claim
  that takes a channel's rows takes its lease too (sql/functions/notification_claim.sql), so one
  sender at a time sends to a channel, and the next message leaves min_interval (or a 429's
  Retry-After) after the previous one was marked. This process's own holds (self.held) only tell
  it when to claim again.
- Mark each group sent, or failed with the endpoint's answer: retried with backoff and jitter
  (5xx, timeouts, 429), failed at once when it cannot succeed (404 channel_not_found, 410, a
  malformed URL, an unknown channel kind, a template that does not render), dead after
  'notifications.max_attempts'. One channel's failure never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from dispatcher.db import describe_connect_error, libpq_url
from dispatcher.errors import DatabaseUnavailable
from dispatcher.notify.channels import Channel, ChannelError, Delivery, Outgoing, build
from dispatcher.notify.render import Message, Renderer, RenderError
from dispatcher.notify.store import LISTEN_CHANNEL, ChannelRow, Claimed, NotifyStore

log = logging.getLogger("nightshift.notify")

# The channel a fresh install's findings go to (setting notifications.default_channel): without a
# notification_channels row of that name it writes to the log.
DEFAULT_CHANNEL = ChannelRow(id=0, name="default", kind="log", settings={}, digest=None,
                             min_interval=0.0, is_active=True)


# Claim again while the groups in flight are fewer than CLAIM_AHEAD x concurrency: the slots then
# still have about three rounds of sends queued while the claim (a few hundred ms for 2,000 rows on
# a busy server) runs, so they never wait for it. Waiting until fewer were left (2x) let the slots
# run dry during every claim: bench_notify measured 4.7 posts in flight on average instead of 8.
CLAIM_AHEAD = 4


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:notify"


@dataclass(frozen=True)
class SenderConfig:
    worker: str = field(default_factory=default_worker_name)
    batch: int = 2000               # rows per claim (all of a channel's due rows usually fit)
    lease: float = 60.0             # seconds a claim holds its rows; longer than any send's timeout
    poll_interval: float = 2.0      # claim without a NOTIFY this often
    concurrency: int = 8            # channels sent to at once
    templates_dir: Path | None = None  # the operator's templates, before the package's


@dataclass
class SenderStats:
    messages: int = 0        # messages the endpoints accepted
    sent: int = 0            # outbox rows in them
    retried: int = 0         # rows that will be tried again
    failed: int = 0          # rows failed for good (or dead)
    stale: int = 0           # rows whose lease this sender had lost when it marked them


async def run_sender(url: str, config: SenderConfig, stop_event: asyncio.Event) -> SenderStats:
    """Deliver the outbox until stop_event is set; reconnects when the database goes away."""
    return await Sender(url, config, stop_event).run()


class Sender:
    def __init__(self, url: str, config: SenderConfig, stop_event: asyncio.Event) -> None:
        self.url = url
        self.config = config
        self.stop = stop_event
        self.stats = SenderStats()
        self.wake = asyncio.Event()
        self.loop_time = asyncio.get_running_loop().time
        self.held: dict[str, float] = {}          # channel -> loop time it may be sent to again
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        self.slots = asyncio.Semaphore(config.concurrency)
        self.channels: dict[str, tuple[str, Channel]] = {}  # name -> (its row's fingerprint, channel)
        # delivered messages waiting to be marked sent: one statement (one commit) marks all of them
        self.delivered: list[tuple[list[Claimed], str, str, float]] = []  # rows, answer, channel, hold
        self.marks_due = asyncio.Event()

    async def run(self) -> SenderStats:
        backoff = 0.5
        while not self.stop.is_set():
            try:
                await self._session()
                backoff = 0.5
            except DatabaseUnavailable as exc:
                log.warning("database unavailable, reconnecting in %.1f s: %s", backoff, exc,
                            extra={"event": "reconnect"})
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        await self._close_channels()
        return self.stats

    async def _session(self) -> None:
        try:
            listen = await psycopg.AsyncConnection.connect(libpq_url(self.url), autocommit=True,
                                                           connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(describe_connect_error(self.url, exc)) from exc
        store: NotifyStore | None = None
        marks: NotifyStore | None = None
        listener: asyncio.Task[None] | None = None
        marker: asyncio.Task[None] | None = None
        try:
            await listen.execute(f"LISTEN {LISTEN_CHANNEL}")
            store = await NotifyStore.open(self.url, f"nightshift notify {self.config.worker}")
            renderer = Renderer(self.config.templates_dir,
                                scan_url=await store.setting("notifications.scan_url") or "")
            # marks on a connection of their own: a claim never waits behind them, nor they behind it
            marks = await NotifyStore.open(self.url, f"nightshift notify {self.config.worker} marks")
            listener = asyncio.create_task(self._listen(listen))
            marker = asyncio.create_task(self._marker(marks))
            log.info("notification sender %s started", self.config.worker, extra={"event": "start"})
            while not self.stop.is_set():
                self.wake.clear()
                if marker.done():
                    marker.result()  # its DatabaseUnavailable ends the session
                if await self._claim(store, renderer):
                    continue
                await self._wait(listener)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"lost the database connection: {str(exc).strip()}") from exc
        finally:
            if self.in_flight:  # let started sends finish and be marked; waiting ones give their rows back
                await asyncio.gather(*self.in_flight.values(), return_exceptions=True)
            if marker is not None:
                marker.cancel()
                with contextlib.suppress(asyncio.CancelledError, DatabaseUnavailable):
                    await marker
            if marks is not None:
                with contextlib.suppress(DatabaseUnavailable):
                    await self._mark(marks)
                await marks.close()
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                    await listener
            if store is not None:
                await store.close()
            await listen.close()

    async def _marker(self, store: NotifyStore) -> None:
        while True:
            await self.marks_due.wait()
            await self._mark(store)

    async def _mark(self, store: NotifyStore) -> None:
        """Mark every delivered message sent, in one statement."""
        self.marks_due.clear()
        delivered, self.delivered = self.delivered, []
        if not delivered:
            return
        try:
            marked = await store.mark_sent([(rows, response) for rows, response, _, _ in delivered])
        except DatabaseUnavailable as exc:
            # the rows stay 'sending' until their lease expires, then go again (at-least-once)
            log.warning("could not record %d delivered message(s): %s", len(delivered), exc,
                        extra={"event": "mark_lost"})
            raise
        # the channels' min_interval runs from now, as their hold in the database does (held_until,
        # set by the mark): claiming them before then would find them held
        now = self.loop_time()
        for _, _, name, interval in delivered:
            if interval > 0:
                self.held[name] = max(self.held.get(name, 0.0), now + interval)
        self.wake.set()  # the marked channels are free (or their hold is known): time to claim again
        rows = sum(len(r) for r, _, _, _ in delivered)
        self.stats.messages += len(delivered)
        self.stats.sent += marked
        self.stats.stale += rows - marked
        for group, response, name, _ in delivered:
            log.info("sent %d notification(s) to %s as one message", len(group), name,
                     extra={"event": "notify_sent", "channel": name, "notifications": _ids(group),
                            "response": response})

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        with contextlib.suppress(psycopg.OperationalError):
            async for _ in conn.notifies():
                self.wake.set()

    async def _wait(self, listener: asyncio.Task[None]) -> None:
        """Until a NOTIFY, a finished send, a channel's hold ending, the poll interval, or stop."""
        now = self.loop_time()
        timeout = self.config.poll_interval
        holds = [until - now for name, until in self.held.items()
                 if until > now and name not in self.in_flight]
        if holds:
            timeout = min(timeout, max(min(holds), 0.01))
        waiters = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(self.stop.wait())]
        try:
            await asyncio.wait([*waiters, listener], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if listener.done():
            raise DatabaseUnavailable("the LISTEN connection ended")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _claim(self, store: NotifyStore, renderer: Renderer) -> bool:
        """Claim due rows of the channels that are free and start sending them; False when none."""
        if len(self.in_flight) >= CLAIM_AHEAD * self.config.concurrency:
            # the slots have work queued: claiming now would only find the few channels that just
            # finished (a claim reads all due rows), and their rows are better sent grouped later
            return False
        now = self.loop_time()
        skip = sorted({*self.in_flight, *(name for name, until in self.held.items() if until > now)})
        rows = await store.claim(self.config.worker, self.config.batch, self.config.lease, skip)
        if not rows:
            return False
        groups: dict[str, list[Claimed]] = {}
        for row in rows:
            groups.setdefault(row.channel, []).append(row)
        known = await store.channels(list(groups))
        for name, group in groups.items():
            task = asyncio.create_task(self._deliver(store, renderer, name, known.get(name), group))
            self.in_flight[name] = task
            task.add_done_callback(functools.partial(self._finished, name))
        return True

    def _finished(self, name: str, _task: asyncio.Task[None]) -> None:
        self.in_flight.pop(name, None)
        self.wake.set()

    async def _deliver(self, store: NotifyStore, renderer: Renderer, name: str, row: ChannelRow | None,
                       rows: list[Claimed]) -> None:
        try:
            await self._deliver_group(store, renderer, name, row, rows)
        except DatabaseUnavailable as exc:
            # the rows stay 'sending' until their lease expires, then go again (at-least-once)
            log.warning("could not record the delivery of %s: %s", _ids(rows), exc,
                        extra={"event": "mark_lost", "channel": name})
        except Exception:
            log.exception("sending to channel %s failed unexpectedly", name,
                          extra={"event": "error", "channel": name})
            with contextlib.suppress(Exception):
                await self._record(store, name, rows, Delivery.failed(
                    "internal error of the sender (see its log)", retry=True), None)

    async def _deliver_group(self, store: NotifyStore, renderer: Renderer, name: str, row: ChannelRow | None,
                             rows: list[Claimed]) -> None:
        if row is None and name == DEFAULT_CHANNEL.name:
            row = DEFAULT_CHANNEL
        if row is None:
            await self._record(store, name, rows, Delivery.failed(
                f"no channel named {name!r}: add it with `nightshift channels add {name} --kind ...`",
                retry=False), None)
            return
        if not row.is_active:
            await self._record(store, name, rows, Delivery.failed(
                f"channel {name} is disabled", retry=False), row)
            return
        try:
            channel = self._channel(row, renderer)
        except ChannelError as exc:
            await self._record(store, name, rows, Delivery.failed(str(exc), retry=False), row)
            return

        # rendered in the slot, not before: a claim starts a hundred groups at once, and rendering them
        # all in one go would keep the event loop from the answers of the sends in flight
        async with self.slots:
            if self.stop.is_set():
                await store.release(rows)
                return
            messages: list[Message] = []
            rendered: list[Claimed] = []
            for claimed in rows:
                try:
                    messages.append(renderer.render(claimed.id, claimed.template, claimed.payload))
                    rendered.append(claimed)
                except RenderError as exc:
                    await self._record(store, name, [claimed], Delivery.failed(str(exc), retry=False), row)
            if not rendered:
                return
            outgoing = Outgoing(channel=name, messages=messages, digest=row.digest,
                                delivery_id=f"{rendered[0].id}-{rendered[0].attempts}")
            try:
                delivery = await channel.send(outgoing)
            except (RenderError, ChannelError) as exc:
                delivery = Delivery.failed(str(exc), retry=False)
        await self._record(store, name, rendered, delivery, row)

    async def _record(self, store: NotifyStore, name: str, rows: Sequence[Claimed], delivery: Delivery,
                      row: ChannelRow | None) -> None:
        now = self.loop_time()
        fields: dict[str, Any] = {"channel": name, "notifications": _ids(rows)}
        if delivery.ok:
            self.delivered.append((list(rows), delivery.response, name, row.min_interval if row else 0.0))
            self.marks_due.set()
            return
        statuses = await store.fail(rows, delivery.error or "failed", retry=delivery.retry,
                                    retry_after=delivery.retry_after, response=delivery.response)
        if delivery.retry_after is not None:
            self.held[name] = now + delivery.retry_after
        elif delivery.retry and row is not None:
            self.held[name] = now + max(row.min_interval, 1.0)
        for status in ("pending", "failed", "dead"):
            ids = sorted(i for i, s in statuses.items() if s == status)
            if not ids:
                continue
            if status == "pending":
                self.stats.retried += len(ids)
            else:
                self.stats.failed += len(ids)
            event = "notify_retry" if status == "pending" else f"notify_{status}"
            outcome = {"pending": "will be retried", "failed": "failed", "dead": "is dead"}[status]
            log.warning("delivery to %s %s: %s", name, outcome, delivery.error,
                        extra={"event": event, **fields, "notifications": ids})
        self.stats.stale += len(rows) - len(statuses)

    def _channel(self, row: ChannelRow, renderer: Renderer) -> Channel:
        """The channel of a row, kept between sends (its HTTP connections too) until the row changes."""
        fingerprint = json.dumps([row.kind, row.settings], sort_keys=True, default=str)
        cached = self.channels.get(row.name)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        channel = build(row.kind, row.name, row.settings, renderer)
        if cached is not None:
            asyncio.create_task(cached[1].close())  # noqa: RUF006 - closing an idle client
        self.channels[row.name] = (fingerprint, channel)
        return channel

    async def _close_channels(self) -> None:
        for _, channel in self.channels.values():
            with contextlib.suppress(Exception):
                await channel.close()
        self.channels.clear()


def _ids(rows: Sequence[Claimed]) -> list[int]:
    return [r.id for r in rows]
