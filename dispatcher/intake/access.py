"""The outermost layer of every request: a deadline, the access log line, the request metrics.

Pure ASGI (no BaseHTTPMiddleware): it sees the status as the response starts and costs one wrapper.
The log line has method, route, path (never the query string), status, duration and the client, plus
what a handler put in request.state.log_fields (delivery id, event, token *name*) — never a header,
so no token or signature reaches the logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.intake.metrics import IntakeMetrics

log = logging.getLogger("nightshift.intake.access")


class AccessLayer:
    def __init__(self, app: ASGIApp, metrics: IntakeMetrics, timeout: float) -> None:
        self.app = app
        self.metrics = metrics
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            async with asyncio.timeout(self.timeout):
                await self.app(scope, receive, send_status)
        except TimeoutError:
            route = route_of(scope)
            self.metrics.rejected.labels(route, "timeout").inc()
            if status == 0:  # nothing sent yet: the client gets an answer, not a dropped connection
                status = 503
                await send_json(send, 503, {"error": "request timed out"})
        finally:
            route = route_of(scope)
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            fields: dict[str, Any] = {
                "event": "http", "method": scope["method"], "route": route, "path": scope["path"],
                "status": status, "duration_ms": round(elapsed * 1000, 2),
                "client": (scope.get("client") or ("-",))[0],
            }
            state = scope.get("state") or {}
            fields.update(state.get("log_fields") or {})
            log.info("%s %s %s", scope["method"], scope["path"], status, extra=fields)


@dataclass(frozen=True)
class RouteName:
    """The route of a request answered outside Starlette's router, for route_of()."""

    path: str


def route_of(scope: Scope) -> str:
    """The matched route's template; 'unmatched' for anything else (bounded metric labels)."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


async def send_json(send: Send, status: int, body: dict[str, Any],
                    headers: dict[str, str] | None = None) -> None:
    data = msgspec.json.encode(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if headers:
        raw += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
