"""The ASGI application of `nightshift serve`: routes, the shared state (pool, metrics, secrets), health.

Routes:
  POST /webhooks/github                          GitHub deliveries (github.py)
  POST /api/v1/internal/scheduled-tasks/{kind}   external schedulers (trigger.py)
  GET  /healthz   the process answers          GET /readyz   the database answers and is migrated
  GET  /metrics   Prometheus text format
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psycopg
from alembic.script import ScriptDirectory
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dispatcher.db import libpq_url
from dispatcher.intake.access import AccessLayer, route_of
from dispatcher.intake.batcher import DeliveryBatcher
from dispatcher.intake.errors import Refusal
from dispatcher.intake.github import GithubWebhooks
from dispatcher.intake.metrics import IntakeMetrics
from dispatcher.intake.secrets import SecretCache
from dispatcher.intake.trigger import ScheduledTasksTrigger

log = logging.getLogger("nightshift.intake")

GITHUB_MAX_BODY = 25 * 1024 * 1024  # GitHub does not deliver larger payloads


@dataclass(frozen=True)
class IntakeConfig:
    database_url: str
    webhook_secret_ref: str | None = None  # env:NAME or file:/path; repositories may have their own
    max_body_bytes: int = GITHUB_MAX_BODY
    request_timeout: float = 9.0  # below GitHub's 10 s, after which it counts the delivery as failed
    pool_min: int = 2
    pool_max: int = 10
    statement_timeout_ms: int = 5000


class Intake:
    """What the handlers share. The pool opens in the app's lifespan and closes at shutdown."""

    def __init__(self, config: IntakeConfig) -> None:
        self.config = config
        self.metrics = IntakeMetrics()
        self.secrets = SecretCache()
        self.pool = AsyncConnectionPool(
            libpq_url(config.database_url), min_size=config.pool_min, max_size=config.pool_max, open=False,
            timeout=min(5.0, config.request_timeout), name="nightshift-intake",
            kwargs={"autocommit": True, "application_name": "nightshift serve",
                    "options": f"-c statement_timeout={config.statement_timeout_ms}"},
        )
        # two transactions in flight: one waits for its commit while the other gathers what queued up;
        # more would split the same deliveries into smaller batches, each with its own round trip and
        # commit (bench/bench_intake.py: 10 deliveries per batch with 5 writers, 15 with 2, at 64 conns)
        self.batcher = DeliveryBatcher(self.pool, writers=min(2, max(1, config.pool_max // 2)))
        self.expected_revisions = expected_revisions()

    async def read_body(self, receive: Receive, declared: str | None) -> bytes:
        """The raw body, refused with 413 past max_body_bytes (declared in Content-Length or streamed)."""
        limit = self.config.max_body_bytes
        if declared is not None:
            if not declared.isdigit():
                raise Refusal(400, "content-length", "malformed Content-Length")
            if int(declared) > limit:
                raise Refusal(413, "too-large", "body too large", limit_bytes=limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refusal(400, "disconnected", "the client disconnected before the body was read")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Refusal(413, "too-large", "body too large", limit_bytes=limit)
            if not message.get("more_body", False):
                return b"".join(chunks) + chunk if chunks else chunk  # mostly: one message, no copy
            chunks.append(chunk)

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(self, request: Request) -> Response:
        try:
            async with asyncio.timeout(2):
                async with self.pool.connection() as conn:
                    cur = await conn.execute("SELECT version_num FROM nightshift.alembic_version")
                    revisions = {row[0] for row in await cur.fetchall()}
        except (psycopg.Error, PoolTimeout, TimeoutError) as exc:
            reason = ("not migrated" if isinstance(exc, psycopg.errors.UndefinedTable)
                      else "database unavailable")
            return JSONResponse({"status": "unavailable", "error": reason}, status_code=503)
        if revisions != self.expected_revisions:
            return JSONResponse({"status": "unavailable", "error": "database not at this version's schema "
                                 "(run `nightshift migrate`)", "revision": sorted(revisions),
                                 "expected": sorted(self.expected_revisions)}, status_code=503)
        return JSONResponse({"status": "ready", "revision": sorted(revisions)})

    async def metrics_text(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- errors: every one a JSON body with a counted reason ------------------------------------------
    def error_answer(self, route: str, exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, JSON body, headers) for what a handler raised, counted in the refusal metric."""
        if isinstance(exc, Refusal):
            reason, status, headers = exc.reason, exc.status, exc.headers
            body = {"error": exc.message, **exc.extra}
        elif isinstance(exc, HTTPException):
            reason = {404: "not-found", 405: "method"}.get(exc.status_code, "http")
            status, body, headers = exc.status_code, {"error": exc.detail}, dict(exc.headers or {})
        elif isinstance(exc, psycopg.OperationalError | PoolTimeout):
            log.warning("database unavailable: %s", type(exc).__name__,
                        extra={"event": "database-unavailable"})
            reason, status, body = "database", 503, {"error": "database unavailable, retry later"}
            headers = {"Retry-After": "5"}
        else:  # a bug: the caller re-raises it after this answer, and uvicorn logs the traceback
            reason, status, body, headers = "internal", 500, {"error": "internal error"}, {}
        self.metrics.rejected.labels(route, reason).inc()
        return status, body, headers

    async def error_response(self, request: Request, exc: Exception) -> Response:
        """Starlette's exception handler for the routes it serves (the webhook route answers its own)."""
        status, body, headers = self.error_answer(route_of(request.scope), exc)
        return JSONResponse(body, status_code=status, headers=headers)


class Routes:
    """POST /webhooks/github goes straight to its bare ASGI handler (github.py says why); every other
    request, and the lifespan, to the Starlette app."""

    def __init__(self, app: ASGIApp, webhooks: GithubWebhooks) -> None:
        self.app = app
        self.webhooks = webhooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.webhooks.route.path:
            await self.webhooks(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def expected_revisions() -> set[str]:
    """The migration heads this code was built with: /readyz wants the database at exactly these."""
    from dispatcher.migrate import alembic_config

    return set(ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_heads())


def create_app(config: IntakeConfig) -> AccessLayer:
    intake = Intake(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # wait=False: serve starts (and /healthz answers) while the database is still coming up;
        # /readyz says when it can take traffic
        await intake.pool.open(wait=False)
        intake.batcher.start()
        # what was built by now (modules, alembic's script directory, the app) lives as long as the
        # process: out of the collector's sight, so full collections do not walk it again and again.
        # And a young collection walks what is alive at that moment (the requests in flight), not what
        # was allocated: every 700 allocations (the default) it walks them again and again, a few
        # percent of a delivery's CPU at 64 connections; every 20,000 it walks them as often as needed
        gc.freeze()
        gc.set_threshold(20_000, *gc.get_threshold()[1:])
        log.info("intake started", extra={"event": "start", "global_secret": config.webhook_secret_ref})
        try:
            yield
        finally:
            await intake.batcher.stop()
            await intake.pool.close(timeout=5)
            log.info("intake stopped", extra={"event": "stop"})

    app = Starlette(
        routes=[
            Route("/api/v1/internal/scheduled-tasks/{kind}", ScheduledTasksTrigger(intake).handle,
                  methods=["POST"]),
            Route("/healthz", intake.healthz, methods=["GET"]),
            Route("/readyz", intake.readyz, methods=["GET"]),
            Route("/metrics", intake.metrics_text, methods=["GET"]),
        ],
        exception_handlers={
            Refusal: intake.error_response,
            HTTPException: intake.error_response,
            psycopg.OperationalError: intake.error_response,
            PoolTimeout: intake.error_response,
            Exception: intake.error_response,
        },
        lifespan=lifespan,
    )
    app.state.intake = intake
    return AccessLayer(Routes(app, GithubWebhooks(intake)), intake.metrics, config.request_timeout)
