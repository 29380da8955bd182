"""Counting what the dispatcher did: stats, Prometheus metrics and log lines, in one place.

The pump counts its round trips after the next send, while the server works (off the path from a
free slot to the next task); results and failures are counted as they are stored.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from dispatcher.contract import Task
from dispatcher.daemon.state import DaemonState, Done, Run

log = logging.getLogger("nightshift.dispatcher")


class Tally:
    def __init__(self, state: DaemonState) -> None:
        self.state = state
        self.stats = state.stats
        self.metrics = state.metrics
        # round trips not yet counted: (completions sent, ids completed, tasks claimed)
        self._unaccounted: list[tuple[list[Done], set[int], list[Task]]] = []

    # -- the pump's round trips, counted later ------------------------------------------------------
    def completed_later(self, done: list[Done], completed: set[int]) -> None:
        self._unaccounted.append((done, completed, []))

    def claimed_later(self, tasks: list[Task]) -> None:
        self._unaccounted.append(([], set(), tasks))

    def account(self) -> None:
        """Count and log what the round trips since the last call completed and claimed."""
        for done, completed, claimed in self._unaccounted:
            if done:
                self._count_completed(done, completed)
            if claimed:
                self._count_claimed(claimed)
        self._unaccounted.clear()

    def _count_completed(self, done: list[Done], completed: set[int]) -> None:
        kinds: Counter[str] = Counter()
        for task_id, attempt, kind in done:
            if task_id in completed:
                kinds[kind] += 1
            else:
                self.stale("completion", task_id, attempt)
        for kind, n in kinds.items():
            self.metrics.kind(kind).succeeded.inc(n)
        self.stats.succeeded += len(completed)

    def _count_claimed(self, tasks: Sequence[Task]) -> None:
        for kind, n in Counter(t.kind for t in tasks).items():
            self.metrics.kind(kind).claimed.inc(n)
        self.stats.claimed += len(tasks)
        if log.isEnabledFor(logging.DEBUG):
            for task in tasks:
                log.debug("claimed", extra={"event": "claim", "task_id": task.id, "kind": task.kind,
                                            "attempt": task.attempt})

    # -- one at a time ------------------------------------------------------------------------------
    def stale(self, what: str, task_id: int, attempt: int, **fields: Any) -> None:
        """A write refused by fencing: the lease was lost, another attempt owns the task."""
        self.stats.stale += 1
        self.metrics.stale.inc()
        log.warning(f"{what} refused: lease lost, another attempt owns the task",
                    extra={"event": "stale", "task_id": task_id, "attempt": attempt, **fields})

    def result_stored(self, run: Run, scan_id: int | None, scan_status: str | None) -> None:
        task = run.task
        self.stats.succeeded += 1
        self.metrics.kind(task.kind).succeeded.inc()
        fields: dict[str, Any] = {"event": "finish", "task_id": task.id, "kind": task.kind}
        if scan_status is not None:
            # a task "succeeds" when its result is stored; whether its scan could look is this
            self.metrics.scans.labels(task.kind, scan_status).inc()
            fields.update(scan_id=scan_id, status=scan_status)
        log.info("result stored", extra=fields)

    def failure_stored(self, task: Task, status: str, error: str) -> None:
        fields = {"task_id": task.id, "kind": task.kind, "attempt": task.attempt,
                  "max_attempts": task.max_attempts, "error": error[:500]}
        self.stats.failed += 1
        outcome = {"queued": "retry"}.get(status, status)
        self.metrics.failed.labels(task.kind, outcome).inc()
        if outcome == "retry":
            log.info("task failed; will retry", extra={"event": "retry", **fields})
        else:
            log.warning(f"task failed; now {status}", extra={"event": outcome, **fields})

    def released(self, ids: set[int]) -> None:
        self.stats.released += len(ids)
        self.metrics.released.inc(len(ids))
        log.info("released unfinished tasks", extra={"event": "release", "task_ids": sorted(ids)})
