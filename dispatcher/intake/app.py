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
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

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
        self.batcher = DeliveryBatcher(self.pool, writers=max(1, config.pool_max // 2))
        self.expected_revisions = expected_revisions()

    async def read_body(self, request: Request) -> bytes:
        """The raw body, refused with 413 past max_body_bytes (declared or streamed)."""
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise Refusal(400, "content-length", "malformed Content-Length")
            if int(declared) > limit:
                raise Refusal(413, "too-large", "body too large", limit_bytes=limit)
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refusal(413, "too-large", "body too large", limit_bytes=limit)
            chunks.append(chunk)
        return b"".join(chunks)

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
    async def refused(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refusal)
        self.metrics.rejected.labels(route_of(request.scope), exc.reason).inc()
        return exc.response()

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        reason = {404: "not-found", 405: "method"}.get(exc.status_code, "http")
        self.metrics.rejected.labels(route_of(request.scope), reason).inc()
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    async def internal_error(self, request: Request, exc: Exception) -> Response:
        # the traceback goes to the log (uvicorn logs the exception re-raised after this answer)
        self.metrics.rejected.labels(route_of(request.scope), "internal").inc()
        return JSONResponse({"error": "internal error"}, status_code=500)

    async def database_down(self, request: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", type(exc).__name__, extra={"event": "database-unavailable"})
        self.metrics.rejected.labels(route_of(request.scope), "database").inc()
        return JSONResponse({"error": "database unavailable, retry later"}, status_code=503,
                            headers={"Retry-After": "5"})


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
        log.info("intake started", extra={"event": "start", "global_secret": config.webhook_secret_ref})
        try:
            yield
        finally:
            await intake.batcher.stop()
            await intake.pool.close(timeout=5)
            log.info("intake stopped", extra={"event": "stop"})

    app = Starlette(
        routes=[
            Route("/webhooks/github", GithubWebhooks(intake).handle, methods=["POST"]),
            Route("/api/v1/internal/scheduled-tasks/{kind}", ScheduledTasksTrigger(intake).handle,
                  methods=["POST"]),
            Route("/healthz", intake.healthz, methods=["GET"]),
            Route("/readyz", intake.readyz, methods=["GET"]),
            Route("/metrics", intake.metrics_text, methods=["GET"]),
        ],
        exception_handlers={
            Refusal: intake.refused,
            HTTPException: intake.http_error,
            psycopg.OperationalError: intake.database_down,
            PoolTimeout: intake.database_down,
            Exception: intake.internal_error,
        },
        lifespan=lifespan,
    )
    app.state.intake = intake
    return AccessLayer(app, intake.metrics, config.request_timeout)
