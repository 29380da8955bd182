"""Leases: extend the leases of running tasks well inside their length, on a connection of their
own, so that renewal never waits behind a large result write; stop runs whose lease was lost."""

from __future__ import annotations

import asyncio
import logging

from dispatcher.daemon.state import DaemonState
from dispatcher.store import Store

log = logging.getLogger("nightshift.dispatcher")


class Leases:
    def __init__(self, state: DaemonState) -> None:
        self.state = state

    async def run(self, conn: Store) -> None:
        state = self.state
        interval = max(state.config.lease / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            runs = [run for run in state.runs.values() if run.future is not None]
            if not runs:
                continue
            extended = await conn.heartbeat([r.task.id for r in runs], state.config.worker,
                                            [r.task.attempt for r in runs], state.lease)
            for run in runs:
                if run.task.id not in extended and state.runs.get(run.task.id) is run:
                    run.lost = True
                    log.warning("lease lost (expired and requeued, or cancelled): stopping the run",
                                extra={"event": "lease_lost", "task_id": run.task.id,
                                       "attempt": run.task.attempt})
                    assert run.future is not None
                    run.future.cancel()
