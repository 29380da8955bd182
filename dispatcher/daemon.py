"""The dispatcher: turns queued tasks into agent runs, on one machine or many against one database.

One asyncio process with three connections, each autocommit:

- **listen** — LISTEN nightshift_tasks and nothing else (a notifies() loop blocks other statements on
  its connection, psycopg #340). A NOTIFY only wakes the pump; the poll timer wakes it too, so a lost
  notification costs latency, never a task (DESIGN.md rule 5).
- **work** — the hot path, used by the pump alone: claim up to the free slots and complete everything
  that finished since the last round trip, two calls of complete_and_claim sent together (pipelined,
  dispatcher/roundtrip.py), each its own transaction.
- **aux** — heartbeats, failures, scan results (one transaction each, rule 6), requeueing expired
  leases, queue statistics.

Every write names the task's attempt (the fencing token): a dispatcher that lost its lease (stopped,
partitioned, too slow) is told so by the database and changes nothing. Agent runs do not depend on a
connection: when the database goes away they keep running, results wait in memory, and the session
reconnects with capped exponential backoff, LISTENs again and claims what arrived meanwhile.

Shutdown (SIGTERM/SIGINT): stop claiming, let running tasks finish within the shutdown timeout, then
cancel them (process.run_process kills their process groups) and release them to the queue without
spending an attempt. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import signal
import socket
import tempfile
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from dispatcher import agents
from dispatcher.agents.base import Agent, AgentContext
from dispatcher.agents.process import mask
from dispatcher.contract import AgentResult, ContractError, Task, checked, payload_timeout, printable
from dispatcher.errors import DatabaseUnavailable
from dispatcher.metrics import Metrics, serve
from dispatcher.store import ClaimPosition, Store, StoreError, connect, translate_errors

log = logging.getLogger("nightshift.dispatcher")

CHANNEL = "nightshift_tasks"
SHARED_TMP = Path(tempfile.gettempdir())


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class DispatcherConfig:
    url: str
    worker: str = field(default_factory=default_worker_name)
    concurrency: int = 16
    kinds: tuple[str, ...] | None = None  # None: every kind
    poll_interval: float = 2.0  # seconds between claims that no NOTIFY asked for
    lease: float = 30.0  # seconds; heartbeats extend it every lease/3
    shutdown_timeout: float = 30.0
    reconnect_max: float = 10.0  # cap of the reconnect backoff, seconds
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    stats_interval: float = 10.0  # seconds between queue depth queries (with metrics only)


@dataclass
class Stats:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    stale: int = 0
    released: int = 0
    reconnects: int = 0


@dataclass(eq=False)
class _Run:
    task: Task
    started: float
    future: asyncio.Task[None] | None = None
    lost: bool = False  # the lease is gone (heartbeat said so): drop the result
    timed_out: bool = False  # cancelled at the agent's deadline: fail the task, do not release it


class Dispatcher:
    def __init__(self, config: DispatcherConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.metrics.running.set_function(lambda: len(self._runs))  # read at scrape time, not per task
        self.stats = Stats()
        self._lease = timedelta(seconds=config.lease)
        self._runs: dict[int, _Run] = {}
        self._agents: dict[str, Agent] = {}
        # results waiting for the database
        self._done: list[tuple[int, int, str]] = []  # (id, attempt, kind): completed in batches
        self._to_write: deque[tuple[_Run, AgentResult]] = deque()  # failures and scans, one txn each
        self._to_release: list[_Run] = []
        # pump state
        self._wake = asyncio.Event()
        self._write_wake = asyncio.Event()
        self._want_claim = True
        self._notify_gen = 0  # bumped by every NOTIFY and poll tick
        self._from_head = True  # next claim scans from the head of the queue (not from _after)
        self._after: ClaimPosition | None = None
        # round trips not yet counted: (completions sent, ids completed, tasks claimed)
        self._unaccounted: list[tuple[list[tuple[int, int, str]], set[int], list[Task]]] = []
        self._aux: Store | None = None
        self._connected = False
        self._session_claimed = False  # this session's first claim came back: the backoff starts over
        # shutdown
        self._stopping = False
        self._stopped = asyncio.Event()
        self._signals = 0
        self._give_up_at = float("inf")
        self._shutdown_timer: asyncio.Task[None] | None = None
        # hooks for the benchmark and tests: called with the task when its agent starts
        self.on_start: Callable[[Task], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self, install_signals: bool = True) -> Stats:
        """Dispatch until stopped; return what was done."""
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        server = None
        if self.config.metrics_port is not None:
            server = await serve(self.metrics, self.config.metrics_host, self.config.metrics_port,
                                 lambda: self._connected)
        log.info("dispatcher started", extra={
            "event": "start", "worker": self.config.worker, "concurrency": self.config.concurrency,
            "kinds": list(self.config.kinds or []) or "all", "lease_seconds": self.config.lease,
            "poll_seconds": self.config.poll_interval})
        delay = 0.1
        try:
            while not self._finished():
                started = time.monotonic()
                try:
                    await self._session()
                except (DatabaseUnavailable, StoreError, OSError) as exc:
                    self._connected = False
                    self.metrics.connected.set(0)
                    if self._finished():
                        break
                    if self._stopping and time.monotonic() > self._give_up_at:
                        log.warning("database unreachable during shutdown; leases will expire",
                                    extra={"event": "shutdown_abandoned", "running": len(self._runs)})
                        break
                    if self._session_claimed or time.monotonic() - started > 30:
                        delay = 0.1  # the last session worked (it claimed): this is a new outage
                    self.stats.reconnects += 1
                    self.metrics.reconnects.inc()
                    wait = delay * random.uniform(0.8, 1.2)
                    log.warning("database connection lost; reconnecting", extra={
                        "event": "reconnect", "error": str(exc).splitlines()[0],
                        "retry_in_seconds": round(wait, 2), "running": len(self._runs)})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopped.wait(), wait)
                    delay = min(self.config.reconnect_max, delay * 2)
        finally:
            if server is not None:
                server.close()
            for run in list(self._runs.values()):  # only when abandoning: leave nothing running
                if run.future is not None:
                    run.future.cancel()
            if self._shutdown_timer is not None:
                self._shutdown_timer.cancel()
        log.info("dispatcher stopped", extra={"event": "stop", "worker": self.config.worker,
                                               **vars(self.stats)})
        return self.stats

    def stop(self) -> None:
        """Stop claiming, finish (or after the shutdown timeout, release) running tasks, return."""
        if self._stopping:
            return
        self._stopping = True
        self._give_up_at = time.monotonic() + self.config.shutdown_timeout + 10
        log.info("shutting down", extra={"event": "shutdown", "running": len(self._runs),
                                         "timeout_seconds": self.config.shutdown_timeout})
        self._shutdown_timer = asyncio.get_running_loop().create_task(self._cancel_after_timeout())
        self._wake.set()
        if self._finished():
            self._stopped.set()

    def _on_signal(self, sig: int) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: exiting now", extra={"event": "exit_now", "running": len(self._runs)})
            logging.shutdown()
            os._exit(128 + sig)
        self.stop()

    async def _cancel_after_timeout(self) -> None:
        await asyncio.sleep(self.config.shutdown_timeout)
        if self._runs:
            log.warning("shutdown timeout: cancelling running tasks", extra={
                "event": "shutdown_cancel", "task_ids": sorted(self._runs)})
        for run in list(self._runs.values()):
            if run.future is not None:
                run.future.cancel()

    def _finished(self) -> bool:
        return self._stopping and not (self._runs or self._done or self._to_write or self._to_release)

    # -- one connected session ------------------------------------------------------------------
    async def _session(self) -> None:
        name = self.config.worker
        listen = await connect(self.config.url, f"nightshift listen {name}")
        work = aux = None
        try:
            with translate_errors(self.config.url):
                await listen.execute(f"LISTEN {CHANNEL}")
            work = await Store.open(self.config.url, f"nightshift work {name}")
            aux = await Store.open(self.config.url, f"nightshift aux {name}")
            self._aux = aux
            self._connected = True
            self._session_claimed = False
            self.metrics.connected.set(1)
            if self.stats.reconnects:
                log.info("reconnected", extra={"event": "reconnected", "running": len(self._runs)})
            self._poke()  # claim whatever arrived while we were away
            self._write_wake.set()
            await _first_to_end([
                self._pump(work), self._listen(listen), self._heartbeats(aux), self._housekeeping(aux),
                self._write_results(aux),
            ])
        finally:
            self._aux = None
            with contextlib.suppress(Exception):
                await listen.close()
            for store in (work, aux):
                if store is not None:
                    await store.close()

    def _poke(self) -> None:
        """Something may be claimable (NOTIFY, poll tick, reconnect): claim from the queue head."""
        self._notify_gen += 1
        self._want_claim = True
        self._from_head = True
        self._wake.set()

    async def _listen(self, conn: Any) -> None:
        wanted = set(self.config.kinds or ())
        with translate_errors(self.config.url):
            async for notify in conn.notifies():
                if wanted and not _mentions_kind(notify.payload, wanted):
                    continue
                self._poke()
        raise DatabaseUnavailable("the LISTEN connection ended")

    async def _pump(self, work: Store) -> None:
        """The hot loop: claim into free slots and store completions, one round trip at a time.

        A claim and the completions finished since the last one go out together, in that order,
        each its own transaction (pipelined): the claimed tasks start as soon as the claim's answer
        is in, while the server stores the completions; their answer is read at the next round trip
        or before waiting idle. Counting (stats, metrics, logs) is done while the server works.
        """
        cfg = self.config
        await work.prepare_round_trip()
        unacknowledged: deque[list[tuple[int, int, str]]] = deque()  # completions sent, answer unread
        claiming = False
        try:
            while True:
                free = 0 if self._stopping else cfg.concurrency - len(self._runs)
                limit = free if (free > 0 and self._want_claim) else 0
                if not (self._done or limit or self._to_release):
                    if unacknowledged and work.answer_ready():
                        await self._acknowledge(work, unacknowledged)
                        continue
                    self._account()
                    if self._finished() and not unacknowledged:
                        self._stopped.set()
                        return
                    self._wake.clear()
                    if unacknowledged:  # a task that finishes meanwhile need not wait for this answer
                        await work.wait_for_answer(self._wake)
                    else:
                        await self._wake.wait()
                    continue
                earlier = len(unacknowledged)
                gen = self._notify_gen
                if limit:
                    after = None if self._from_head else self._after
                    self._from_head = False
                    claiming = True
                    work.send_complete_and_claim((), (), cfg.worker, cfg.kinds, limit, self._lease, after)
                if self._done:
                    done, self._done = self._done, []
                    unacknowledged.append(done)
                    work.send_complete_and_claim([d[0] for d in done], [d[1] for d in done], cfg.worker,
                                                 cfg.kinds, 0, self._lease)
                work.flush()
                self._account()  # while the server works
                for _ in range(earlier):  # answers come in the order sent: these precede the claim's
                    await self._acknowledge(work, unacknowledged)
                if limit:
                    _, claimed = await work.receive_complete_and_claim()
                    claiming = False
                    self._session_claimed = True
                    if len(claimed.tasks) < limit and gen == self._notify_gen:
                        self._want_claim = False  # drained; a NOTIFY or the poll timer wakes us again
                    if claimed.position is not None:
                        self._after = claimed.position
                    self._start_all(claimed.tasks)
                    self._unaccounted.append(([], set(), claimed.tasks))
                if self._to_release:
                    while unacknowledged:
                        await self._acknowledge(work, unacknowledged)
                    await self._release(work)
        except BaseException:
            # not known to be stored: complete again after reconnecting (a completion that did
            # commit is then refused as stale, and logged so)
            self._done = [d for done in unacknowledged for d in done] + self._done
            if claiming:
                self._from_head = True  # tasks it may have claimed come back when their lease ends
            raise

    async def _acknowledge(self, work: Store, unacknowledged: deque[list[tuple[int, int, str]]]) -> None:
        """Read the answer to the oldest completions sent."""
        completed, _ = await work.receive_complete_and_claim()
        self._unaccounted.append((unacknowledged.popleft(), completed, []))

    def _account(self) -> None:
        """Count and log what the round trips since the last call completed and claimed."""
        for done, completed, claimed in self._unaccounted:
            if done:
                self._count_completed(done, completed)
            if claimed:
                self._count_claimed(claimed)
        self._unaccounted.clear()

    def _count_completed(self, done: list[tuple[int, int, str]], completed: set[int]) -> None:
        kinds: Tally[str] = Tally()
        for task_id, attempt, kind in done:
            if task_id in completed:
                kinds[kind] += 1
            else:
                self.stats.stale += 1
                self.metrics.stale.inc()
                log.warning("completion refused: lease lost, another attempt owns the task", extra={
                    "event": "stale", "task_id": task_id, "attempt": attempt})
        for kind, n in kinds.items():
            self.metrics.kind(kind).succeeded.inc(n)
        self.stats.succeeded += len(completed)

    def _count_claimed(self, tasks: Sequence[Task]) -> None:
        for kind, n in Tally(t.kind for t in tasks).items():
            self.metrics.kind(kind).claimed.inc(n)
        self.stats.claimed += len(tasks)
        if log.isEnabledFor(logging.DEBUG):
            for task in tasks:
                log.debug("claimed", extra={"event": "claim", "task_id": task.id, "kind": task.kind,
                                            "attempt": task.attempt})

    async def _release(self, work: Store) -> None:
        runs, self._to_release = self._to_release, []
        try:
            released = await work.release_many([r.task.id for r in runs], [r.task.attempt for r in runs],
                                               f"released by {self.config.worker} at shutdown")
        except BaseException:
            self._to_release = runs + self._to_release
            raise
        self.stats.released += len(released)
        self.metrics.released.inc(len(released))
        log.info("released unfinished tasks", extra={"event": "release", "task_ids": sorted(released)})

    # -- agent runs -----------------------------------------------------------------------------
    def _start_all(self, tasks: Sequence[Task]) -> None:
        now = time.monotonic()
        for task in tasks:
            run = _Run(task, now)
            self._runs[task.id] = run
            try:
                agent = self._agent(task.kind)
            except agents.UnknownAgent as exc:
                self._finish(run, AgentResult(ok=False, error=str(exc), retry=False))
                continue
            run.future = asyncio.get_running_loop().create_task(self._execute(run, agent))

    def _agent(self, kind: str) -> Agent:
        agent = self._agents.get(kind)
        if agent is None:
            agent = self._agents[kind] = agents.get(kind)()
        return agent

    async def _execute(self, run: _Run, agent: Agent) -> None:
        task = run.task
        if self.on_start is not None:
            self.on_start(task)
        result: AgentResult | None
        workdir = None
        timer = None
        try:
            timeout = payload_timeout(task, agent.default_timeout)
        except ContractError as exc:  # bad input, not bad luck: the same payload fails the same way
            self._finish(run, AgentResult(ok=False, error=f"{task.kind}: {exc}", retry=False))
            return
        try:
            targets = await self._targets(task) if agent.needs_targets else {}
            if agent.needs_workdir:
                workdir = Path(tempfile.mkdtemp(prefix=f"nightshift-task-{task.id}-"))
            ctx = AgentContext(task=task, workdir=workdir or SHARED_TMP, deadline=time.monotonic() + timeout,
                               targets=targets)
            # a timer handle rather than asyncio.timeout(): the same cancellation at the deadline for
            # about a third of the cost (profiled), and this runs for every task
            timer = asyncio.get_running_loop().call_later(timeout, self._time_out, run)
            result = await agent.run(ctx)
        except asyncio.CancelledError:
            # the deadline, the shutdown timeout or a lost lease: the process group is already killed
            result = AgentResult(ok=False, error=f"{task.kind}: timed out after {timeout:g}s") \
                if run.timed_out else None
        except Exception as exc:  # an agent bug fails the task, never the dispatcher
            log.exception("agent raised", extra={"event": "agent_error", "task_id": task.id})
            result = AgentResult(ok=False, error=f"{task.kind}: {type(exc).__name__}: {exc}")
        finally:
            if timer is not None:
                timer.cancel()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
        self._finish(run, result)

    @staticmethod
    def _time_out(run: _Run) -> None:
        if run.future is not None and not run.future.done():
            run.timed_out = True
            run.future.cancel()

    async def _targets(self, task: Task) -> dict[str, Any]:
        if self._aux is None:
            raise DatabaseUnavailable("not connected: cannot load the task's targets")
        return await self._aux.task_targets(task.subject)

    def _finish(self, run: _Run, result: AgentResult | None) -> None:
        task = run.task
        self._runs.pop(task.id, None)
        if result is not None:
            result = checked(result)  # refused here, with a message for the agent's author, not by SQL
        self.metrics.kind(task.kind).run_seconds.observe(time.monotonic() - run.started)
        if result is None:
            if not run.lost:
                self._to_release.append(run)
        elif result.ok and result.scan is None:
            self._done.append((task.id, task.attempt, task.kind))
        else:
            self._to_write.append((run, result))
            self._write_wake.set()
        self._wake.set()

    # -- the aux connection ---------------------------------------------------------------------
    async def _write_results(self, aux: Store) -> None:
        """Failures and scans, one transaction each, in the order they finished."""
        while True:
            await self._write_wake.wait()
            self._write_wake.clear()
            while self._to_write:
                run, result = self._to_write[0]
                try:
                    if result.scan is not None:
                        await self._store_scan(aux, run, result)
                    else:
                        await self._store_failure(aux, run, result)
                except StoreError as exc:
                    # The database refused this result (a constraint, bad input the checks missed):
                    # writing it again would be refused again. Fail the task now, without retry,
                    # and go on with the others; only a lost connection (DatabaseUnavailable)
                    # keeps the result queued for the next session.
                    if result.ok or result.retry or result.scan is not None:
                        self._to_write[0] = (run, AgentResult(
                            ok=False, retry=False, error=f"the database refused the result: {exc}"))
                        continue
                    log.error("the database refused a task's failure; its lease will expire", extra={
                        "event": "result_refused", "task_id": run.task.id, "error": mask(str(exc))[:500]})
                self._to_write.popleft()
                self._wake.set()

    async def _store_scan(self, aux: Store, run: _Run, result: AgentResult) -> None:
        assert result.scan is not None
        scan_id = await aux.record_scan(run.task, result.scan)
        if scan_id is None:
            self.stats.stale += 1
            self.metrics.stale.inc()
            log.warning("scan refused: lease lost, another attempt owns the task", extra={
                "event": "stale", "task_id": run.task.id, "attempt": run.task.attempt})
            return
        self.stats.succeeded += 1
        self.metrics.kind(run.task.kind).succeeded.inc()
        log.info("scan stored", extra={"event": "finish", "task_id": run.task.id, "kind": run.task.kind,
                                       "scan_id": scan_id, "status": result.scan.status})

    async def _store_failure(self, aux: Store, run: _Run, result: AgentResult) -> None:
        task = run.task
        # an agent's error may quote a URL with credentials (a git remote, a webhook): never stored
        error = printable(mask(result.error or "failed without an error message"))
        status = await aux.fail(task.id, task.attempt, error, result.retry)
        fields = {"task_id": task.id, "kind": task.kind, "attempt": task.attempt,
                  "max_attempts": task.max_attempts, "error": error[:500]}
        if status is None:
            self.stats.stale += 1
            self.metrics.stale.inc()
            log.warning("failure refused: lease lost, another attempt owns the task",
                        extra={"event": "stale", **fields})
            return
        self.stats.failed += 1
        outcome = {"queued": "retry"}.get(status, status)
        self.metrics.failed.labels(task.kind, outcome).inc()
        if outcome == "retry":
            log.info("task failed; will retry", extra={"event": "retry", **fields})
        else:
            log.warning(f"task failed; now {status}", extra={"event": outcome, **fields})

    async def _heartbeats(self, aux: Store) -> None:
        """Extend our leases well inside their length; stop runs whose lease we lost."""
        interval = max(self.config.lease / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            runs = [run for run in self._runs.values() if run.future is not None]
            if not runs:
                continue
            extended = await aux.heartbeat([r.task.id for r in runs], self.config.worker,
                                           [r.task.attempt for r in runs], self._lease)
            for run in runs:
                if run.task.id not in extended and self._runs.get(run.task.id) is run:
                    run.lost = True
                    log.warning("lease lost (expired and requeued, or cancelled): stopping the run",
                                extra={"event": "lease_lost", "task_id": run.task.id,
                                       "attempt": run.task.attempt})
                    assert run.future is not None
                    run.future.cancel()

    async def _housekeeping(self, aux: Store) -> None:
        """The poll timer: claim without a NOTIFY, requeue expired leases, refresh queue gauges."""
        next_stats = 0.0
        while True:
            await asyncio.sleep(self.config.poll_interval * random.uniform(0.9, 1.1))
            self._poke()
            requeued = await aux.requeue_expired()
            if requeued:
                log.info("requeued tasks whose lease expired", extra={"event": "requeue_expired",
                                                                      "count": requeued})
                self._poke()
            if self.config.metrics_port is not None and time.monotonic() >= next_stats:
                next_stats = time.monotonic() + self.config.stats_interval
                stats = await aux.queue_stats()
                self.metrics.set_queue_stats([(s.kind, s.queued, s.oldest_queued_seconds) for s in stats])


def _mentions_kind(payload: str, wanted: set[str]) -> bool:
    import json

    try:
        kinds = json.loads(payload).get("kinds")
    except (ValueError, AttributeError):
        return True  # not ours to judge: claim and see
    return not isinstance(kinds, list) or bool(wanted.intersection(kinds))


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
