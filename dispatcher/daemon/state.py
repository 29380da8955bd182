"""What the dispatcher's services share: the runs in progress, the results waiting for the database,
and the pump's wake-ups. One object, owned by the supervisor, read and written by one event loop
(no locks: every change happens between two awaits)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from dispatcher.contract import AgentResult, Task
from dispatcher.daemon.config import DispatcherConfig
from dispatcher.metrics import Metrics
from dispatcher.store import ClaimPosition

# (task id, attempt, kind) of a task that finished with nothing to store but "done"
Done = tuple[int, int, str]


@dataclass
class Stats:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    stale: int = 0
    released: int = 0
    reconnects: int = 0


@dataclass(eq=False)
class Run:
    task: Task
    started: float
    future: asyncio.Task[None] | None = None
    lost: bool = False  # the lease is gone (heartbeat said so): drop the result
    timed_out: bool = False  # cancelled at the agent's deadline: fail the task, do not release it


class DaemonState:
    def __init__(self, config: DispatcherConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.stats = Stats()
        self.lease = timedelta(seconds=config.lease)
        self.runs: dict[int, Run] = {}
        # results waiting for the database
        self.done: list[Done] = []  # completed in batches by the pump
        self.to_write: deque[tuple[Run, AgentResult]] = deque()  # results and failures, one txn each
        self.to_release: list[Run] = []  # given back at shutdown
        # the pump's wake-ups
        self.wake = asyncio.Event()
        self.write_wake = asyncio.Event()
        self.want_claim = True
        self.notify_gen = 0  # bumped by every NOTIFY and poll tick
        self.from_head = True  # the next claim scans from the head of the queue (not from `after`)
        self.after: ClaimPosition | None = None
        self.session_claimed = False  # this session's first claim came back: the backoff starts over
        # shutdown
        self.stopping = False
        self.stopped = asyncio.Event()
        # hook for the benchmark and tests: called with the task when its agent starts
        self.on_start: Callable[[Task], None] | None = None

    def poke(self) -> None:
        """Something may be claimable (NOTIFY, poll tick, reconnect): claim from the queue head."""
        self.notify_gen += 1
        self.want_claim = True
        self.from_head = True
        self.wake.set()

    def finished(self) -> bool:
        """Stopping, and nothing is left running or waiting to be written."""
        return self.stopping and not (self.runs or self.done or self.to_write or self.to_release)
