"""SIGTERM/SIGINT: the first asks for a graceful stop (stop claiming, let running tasks finish within
the shutdown timeout, then release them); a second exits at once."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

log = logging.getLogger("nightshift.dispatcher")


class Signals:
    def __init__(self, stop: Callable[[], None], running: Callable[[], int]) -> None:
        self._stop = stop
        self._running = running
        self._count = 0

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        self._count += 1
        if self._count > 1:
            log.warning("second signal: exiting now", extra={"event": "exit_now", "running": self._running()})
            logging.shutdown()
            os._exit(128 + sig)
        self._stop()
