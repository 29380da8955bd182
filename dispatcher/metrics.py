"""The dispatcher's Prometheus metrics and its small HTTP endpoint (/metrics and /healthz).

Each Dispatcher has its own CollectorRegistry, so several in one process (tests, the benchmark) do
not collide. The endpoint is served by asyncio on the daemon's own loop: no thread, no framework.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

RUN_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, float("inf"))


@dataclass(frozen=True)
class KindMetrics:
    """The children for one task kind of the series every task touches."""

    claimed: Counter
    succeeded: Counter
    run_seconds: Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.claimed = Counter("nightshift_tasks_claimed", "Tasks claimed", ["kind"], registry=r)
        self.succeeded = Counter("nightshift_tasks_succeeded", "Tasks completed", ["kind"], registry=r)
        self.failed = Counter("nightshift_tasks_failed", "Failed attempts, by what happened next",
                              ["kind", "outcome"], registry=r)
        # a task is "succeeded" when its result is stored; whether its scan could look is this
        self.scans = Counter("nightshift_scans", "Scans stored, by status (ERROR: the scan could not look)",
                             ["kind", "status"], registry=r)
        self.stale = Counter("nightshift_tasks_stale_writes",
                             "Results refused because the lease was lost (fencing)", registry=r)
        self.released = Counter("nightshift_tasks_released", "Tasks given back at shutdown", registry=r)
        self.run_seconds = Histogram("nightshift_task_run_seconds", "Agent run duration", ["kind"],
                                     buckets=RUN_BUCKETS, registry=r)
        self.running = Gauge("nightshift_tasks_running", "Agent runs in progress", registry=r)
        self.queue_depth = Gauge("nightshift_queue_depth", "Queued tasks (due or not)", ["kind"], registry=r)
        self.oldest_age = Gauge("nightshift_queue_oldest_age_seconds", "Age of the oldest due queued task",
                                ["kind"], registry=r)
        self.reconnects = Counter("nightshift_listener_reconnects", "Reconnections to the database",
                                  registry=r)
        self.connected = Gauge("nightshift_database_connected", "1 while connected and listening",
                               registry=r)
        self._kinds: dict[str, KindMetrics] = {}

    def kind(self, kind: str) -> KindMetrics:
        """The per-kind children, looked up once: labels() takes a lock and builds a key every call."""
        found = self._kinds.get(kind)
        if found is None:
            found = self._kinds[kind] = KindMetrics(self.claimed.labels(kind), self.succeeded.labels(kind),
                                                    self.run_seconds.labels(kind))
        return found

    def set_queue_stats(self, stats: list[tuple[str, int, float]]) -> None:
        """(kind, queued, oldest age) rows; kinds that disappeared drop to zero."""
        seen = set()
        for kind, queued, oldest in stats:
            seen.add(kind)
            self.queue_depth.labels(kind).set(queued)
            self.oldest_age.labels(kind).set(oldest)
        for gauge in (self.queue_depth, self.oldest_age):
            for labels in list(gauge._metrics):  # prometheus_client has no public list of children
                if labels[0] not in seen:
                    gauge.labels(*labels).set(0)


async def serve(metrics: Metrics, host: str, port: int, healthy: Callable[[], bool]) -> asyncio.Server:
    """GET /metrics (Prometheus text format) and /healthz (200 when connected, else 503)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass  # headers: not needed
            parts = request.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else ""
            if path == "/metrics":
                status, body, ctype = "200 OK", generate_latest(metrics.registry), CONTENT_TYPE_LATEST
            elif path == "/healthz":
                ok = healthy()
                status = "200 OK" if ok else "503 Service Unavailable"
                body, ctype = (b"ok\n" if ok else b"database unavailable\n"), "text/plain"
            else:
                status, body, ctype = "404 Not Found", b"not found\n", "text/plain"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)
