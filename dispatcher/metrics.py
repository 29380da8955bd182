"""The dispatcher's Prometheus metrics and their HTTP endpoint (/metrics and /healthz).

Each Dispatcher has its own CollectorRegistry, so several in one process (tests, the benchmark) do
not collide. The endpoint is prometheus_client's own WSGI application (content negotiation,
compression, `name[]` filters) on its threading WSGI server, in a daemon thread: a scrape never waits
for the event loop, and the loop never parses HTTP.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from dispatcher.errors import NightshiftError

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
        self._queue_kinds: set[str] = set()  # kinds the queue gauges have children for

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
        for kind in self._queue_kinds - seen:
            self.queue_depth.labels(kind).set(0)
            self.oldest_age.labels(kind).set(0)
        self._queue_kinds |= seen


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line each."""


class MetricsServer:
    """The running endpoint; close() stops it and frees the port."""

    def __init__(self, httpd: ThreadingWSGIServer) -> None:
        self.httpd = httpd
        self.thread = threading.Thread(target=httpd.serve_forever, name="nightshift-metrics", daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def app(metrics: Metrics, healthy: Callable[[], bool]) -> Callable[..., Iterable[bytes]]:
    """/healthz: 200 while connected, else 503; every other path is prometheus_client's app."""
    exposition = make_wsgi_app(metrics.registry)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok = healthy()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok\n" if ok else b"database unavailable\n"]
        return exposition(environ, start_response)  # type: ignore[no-any-return]

    return application


async def serve(metrics: Metrics, host: str, port: int, healthy: Callable[[], bool]) -> MetricsServer:
    """Serve /metrics (Prometheus text format) and /healthz on host:port, in a thread."""

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        httpd = make_server(host, port, app(metrics, healthy), Server, handler_class=_QuietHandler)
    except OSError as exc:
        raise NightshiftError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} (another process uses the port? "
            "choose another with --metrics-port)") from None
    return MetricsServer(httpd)
