"""The dispatcher's settings."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

CHANNEL = "nightshift_tasks"  # the LISTEN channel of sql/triggers/tasks_notify.sql


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
    notify: bool = False  # also deliver the notification outbox (dispatcher/notify/); the CLI's default is on
