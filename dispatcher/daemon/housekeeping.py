"""The poll timer: claim without a NOTIFY (a lost notification costs latency, never a task, DESIGN.md
rule 5), requeue tasks whose lease expired, refresh the queue gauges."""

from __future__ import annotations

import asyncio
import logging
import random
import time

from dispatcher.daemon.state import DaemonState
from dispatcher.store import Store

log = logging.getLogger("nightshift.dispatcher")


class Housekeeping:
    def __init__(self, state: DaemonState) -> None:
        self.state = state

    async def run(self, aux: Store) -> None:
        state = self.state
        config = state.config
        next_stats = 0.0
        while True:
            await asyncio.sleep(config.poll_interval * random.uniform(0.9, 1.1))
            state.poke()
            requeued = await aux.requeue_expired()
            if requeued:
                log.info("requeued tasks whose lease expired", extra={"event": "requeue_expired",
                                                                      "count": requeued})
                state.poke()
            if config.metrics_port is not None and time.monotonic() >= next_stats:
                next_stats = time.monotonic() + config.stats_interval
                stats = await aux.queue_stats()
                state.metrics.set_queue_stats([(s.kind, s.queued, s.oldest_queued_seconds) for s in stats])
