"""The supervisor: one connected session after another, each running the daemon's services until one
fails; reconnects with capped exponential backoff; shutdown.

A session has four autocommit connections: listen (LISTEN only), work (the pump's round trips),
aux (results, failures, housekeeping) and leases (heartbeats, so that renewing a lease never waits
behind a large result write). Agent runs do not depend on a session: when the database goes away
they keep running, their results wait in memory (DaemonState), and the next session stores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Coroutine
from typing import Any

from dispatcher.contract import Task
from dispatcher.cost.loader import CostLoader
from dispatcher.daemon.config import CHANNEL, DispatcherConfig
from dispatcher.daemon.housekeeping import Housekeeping
from dispatcher.daemon.leases import Leases
from dispatcher.daemon.pump import Pump, listen
from dispatcher.daemon.results import ResultWriter
from dispatcher.daemon.runs import Runs
from dispatcher.daemon.signals import Signals
from dispatcher.daemon.state import DaemonState, Stats
from dispatcher.daemon.tally import Tally
from dispatcher.errors import DatabaseUnavailable
from dispatcher.metrics import Metrics, serve
from dispatcher.notify import SenderConfig, run_sender
from dispatcher.store import Store, StoreError, connect, translate_errors

log = logging.getLogger("nightshift.dispatcher")


class Dispatcher:
    def __init__(self, config: DispatcherConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.state = DaemonState(config, self.metrics)
        self.stats: Stats = self.state.stats
        self.metrics.running.set_function(lambda: len(self.state.runs))  # read at scrape time
        self.tally = Tally(self.state)
        self.runs = Runs(self.state, self.tally, self._load_targets, CostLoader.for_dispatcher(config.url))
        self.pump = Pump(self.state, self.tally, self.runs)
        self.results = ResultWriter(self.state, self.tally)
        self.leases = Leases(self.state)
        self.housekeeping = Housekeeping(self.state)
        self._aux: Store | None = None
        self._connected = False
        self._give_up_at = float("inf")
        self._shutdown_timer: asyncio.Task[None] | None = None

    @property
    def on_start(self) -> Any:
        """A hook for the benchmark and tests: called with the task when its agent starts."""
        return self.state.on_start

    @on_start.setter
    def on_start(self, hook: Any) -> None:
        self.state.on_start = hook

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self, install_signals: bool = True) -> Stats:
        """Dispatch until stopped; return what was done."""
        state = self.state
        if install_signals:
            Signals(self.stop, lambda: len(state.runs)).install()
        server = None
        if self.config.metrics_port is not None:
            server = await serve(self.metrics, self.config.metrics_host, self.config.metrics_port,
                                 lambda: self._connected)
        log.info("dispatcher started", extra={
            "event": "start", "worker": self.config.worker, "concurrency": self.config.concurrency,
            "kinds": list(self.config.kinds or []) or "all", "lease_seconds": self.config.lease,
            "poll_seconds": self.config.poll_interval})
        sender = notify_stop = None
        if self.config.notify:  # the outbox has its own connections, reconnects and lifetime
            notify_stop = asyncio.Event()
            sender = asyncio.create_task(run_sender(
                self.config.url, SenderConfig(worker=f"{self.config.worker}:notify"), notify_stop))
        delay = 0.1
        try:
            while not state.finished():
                started = time.monotonic()
                try:
                    await self._session()
                except (DatabaseUnavailable, StoreError, OSError) as exc:
                    self._connected = False
                    self.metrics.connected.set(0)
                    if state.finished():
                        break
                    if state.stopping and time.monotonic() > self._give_up_at:
                        log.warning("database unreachable during shutdown; leases will expire",
                                    extra={"event": "shutdown_abandoned", "running": len(state.runs)})
                        break
                    if state.session_claimed or time.monotonic() - started > 30:
                        delay = 0.1  # the last session worked (it claimed): this is a new outage
                    self.stats.reconnects += 1
                    self.metrics.reconnects.inc()
                    wait = delay * random.uniform(0.8, 1.2)
                    log.warning("database connection lost; reconnecting", extra={
                        "event": "reconnect", "error": str(exc).splitlines()[0],
                        "retry_in_seconds": round(wait, 2), "running": len(state.runs)})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(state.stopped.wait(), wait)
                    delay = min(self.config.reconnect_max, delay * 2)
        finally:
            if sender is not None and notify_stop is not None:
                notify_stop.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sender, 10)
            if server is not None:
                server.close()
            self.runs.cancel_all()  # only when abandoning: leave nothing running
            if self._shutdown_timer is not None:
                self._shutdown_timer.cancel()
        log.info("dispatcher stopped", extra={"event": "stop", "worker": self.config.worker,
                                               **vars(self.stats)})
        return self.stats

    def stop(self) -> None:
        """Stop claiming, finish (or after the shutdown timeout, release) running tasks, return."""
        state = self.state
        if state.stopping:
            return
        state.stopping = True
        self._give_up_at = time.monotonic() + self.config.shutdown_timeout + 10
        log.info("shutting down", extra={"event": "shutdown", "running": len(state.runs),
                                         "timeout_seconds": self.config.shutdown_timeout})
        self._shutdown_timer = asyncio.get_running_loop().create_task(self._cancel_after_timeout())
        state.wake.set()
        if state.finished():
            state.stopped.set()

    async def _cancel_after_timeout(self) -> None:
        await asyncio.sleep(self.config.shutdown_timeout)
        if self.state.runs:
            log.warning("shutdown timeout: cancelling running tasks", extra={
                "event": "shutdown_cancel", "task_ids": sorted(self.state.runs)})
        self.runs.cancel_all()

    # -- one connected session ------------------------------------------------------------------
    async def _session(self) -> None:
        url, name, state = self.config.url, self.config.worker, self.state
        listener = await connect(url, f"nightshift listen {name}")
        stores: list[Store] = []
        try:
            with translate_errors(url):  # before the first claim: nothing enqueued after it is missed
                await listener.execute(f"LISTEN {CHANNEL}")
            # opened together: after an outage the session is back after one connection's time
            opened = await asyncio.gather(*(Store.open(url, f"nightshift {role} {name}")
                                            for role in ("work", "aux", "leases")), return_exceptions=True)
            stores = [store for store in opened if isinstance(store, Store)]  # closed in `finally`
            for failure in opened:
                if isinstance(failure, BaseException):
                    raise failure
            work, aux, leases = stores
            self._aux = aux
            self._connected = True
            self.metrics.connected.set(1)
            state.session_claimed = False
            if self.stats.reconnects:
                log.info("reconnected", extra={"event": "reconnected", "running": len(state.runs)})
            state.poke()  # claim whatever arrived while we were away
            state.write_wake.set()
            await _first_to_end([
                self.pump.run(work), listen(state, listener), self.leases.run(leases),
                self.housekeeping.run(aux), self.results.run(aux),
            ])
        finally:
            self._aux = None
            with contextlib.suppress(Exception):
                await listener.close()
            for store in stores:
                await store.close()

    async def _load_targets(self, task: Task) -> dict[str, Any]:
        if self._aux is None:
            raise DatabaseUnavailable("not connected: cannot load the task's targets")
        return await self._aux.task_targets(task.subject)


async def _first_to_end(coroutines: list[Coroutine[Any, Any, None]]) -> None:
    """Run the session's loops; when one ends (or fails), cancel the others and re-raise."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
