"""The dispatcher's event loop: uvloop when it is installed (a dependency on Linux and macOS), else asyncio's.

The daemon's hot path is one database round trip per batch of tasks plus a few event-loop passes per
task; uvloop's passes are cheaper (bench/bench_dispatch.py prints the effect at concurrency 1 and 16).
psycopg's async connections, subprocesses in their own session and signal handlers work the same on
both. NIGHTSHIFT_EVENT_LOOP=asyncio picks asyncio's own loop, to rule uvloop out when debugging.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "NIGHTSHIFT_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None for asyncio's default loop."""
    choice = os.environ.get(ENV, "").strip().lower()
    if choice not in ("", "uvloop", "asyncio"):
        raise SystemExit(f"nightshift: error: {ENV} must be 'uvloop' or 'asyncio', not {choice!r}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit(f"nightshift: error: {ENV}=uvloop but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def loop_name() -> str:
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on the chosen loop."""
    try:
        factory = loop_factory()
    except SystemExit:
        main.close()  # never started: no "coroutine was never awaited" warning on top of the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
