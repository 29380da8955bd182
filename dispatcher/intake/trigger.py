"""POST /api/v1/internal/scheduled-tasks/{kind}: external schedulers run enqueue_due(kind).

A Kubernetes CronJob, EventBridge Scheduler or an Azure timer function calls this instead of pg_cron;
the same nightshift.enqueue_due(kind) runs, so the overlap rules are the same: calling it twice in
one minute enqueues nothing twice. The bearer token is checked by dispatcher/intake/tokens.py.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import psycopg
from starlette.requests import Request
from starlette.responses import JSONResponse

from dispatcher.intake import tokens
from dispatcher.intake.errors import Refusal

if TYPE_CHECKING:
    from dispatcher.intake.app import Intake

log = logging.getLogger("nightshift.intake.trigger")

KIND = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="nightshift"'}


class ScheduledTasksTrigger:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.metrics = intake.metrics

    async def handle(self, request: Request) -> JSONResponse:
        kind = request.path_params["kind"]
        stored = await self.authenticate(request.headers.get("authorization", ""), kind)
        request.state.log_fields = {"token": stored.name, "kind": kind}
        if not KIND.match(kind):
            raise Refusal(404, "unknown-kind", "no schedules for this kind", kind=kind[:64])
        async with self.intake.pool.connection() as conn:
            await conn.execute("SELECT nightshift.use_api_token(%s)", (stored.id,))
            try:
                cur = await conn.execute(
                    "SELECT coalesce(sum(enqueued), 0)::int, coalesce(sum(skipped), 0)::int"
                    " FROM nightshift.enqueue_due(%s)", (kind,))
                row = await cur.fetchone()
            except psycopg.errors.InvalidParameterValue:
                cur = await conn.execute("SELECT nightshift.scheduled_kinds()")
                found = await cur.fetchone()
                scheduled: list[str] = found[0] if found else []
                raise Refusal(404, "unknown-kind", "no schedules for this kind: it is not a scheduled kind",
                              kind=kind, scheduled_kinds=scheduled) from None
        assert row is not None
        enqueued, skipped = row
        if enqueued:
            self.metrics.enqueued.labels(kind, "trigger").inc(enqueued)
        log.info("enqueue_due(%s): %d enqueued, %d skipped", kind, enqueued, skipped,
                 extra={"event": "trigger", "kind": kind, "token": stored.name, "enqueued": enqueued,
                        "skipped": skipped})
        return JSONResponse({"kind": kind, "enqueued": enqueued, "skipped": skipped})

    async def authenticate(self, header: str, kind: str) -> tokens.StoredToken:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            self.metrics.auth_failures.labels("missing").inc()
            raise Refusal(401, "auth", "missing bearer token", headers=CHALLENGE)
        prefix = tokens.prefix_of(token)
        stored = None
        if prefix is not None:
            async with self.intake.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT id, name, token_hash, scopes, expires_at, revoked_at"
                    " FROM nightshift.find_api_token(%s)", (prefix,))
                row = await cur.fetchone()
            stored = tokens.StoredToken(*row) if row else None
        reason = tokens.refusal(token, stored, kind)
        if reason is not None:
            self.metrics.auth_failures.labels(reason if prefix else "malformed").inc()
            if reason == "scope":
                raise Refusal(403, "auth", "this token may not trigger this kind", kind=kind[:64])
            # a revoked or expired token is told so: whoever holds it holds a real token already
            message = {"revoked": "token revoked", "expired": "token expired"}.get(reason, "invalid token")
            raise Refusal(401, "auth", message, headers={
                "WWW-Authenticate": 'Bearer realm="nightshift", error="invalid_token"'})
        assert stored is not None
        return stored
