"""POST /webhooks/github: verify, record, enqueue — nothing slower, to answer inside GitHub's 10 s.

1. The body (application/json, at most max_body_bytes) is read as raw bytes: the signature covers
   exactly those bytes, never re-serialised JSON.
2. X-Hub-Signature-256 ("sha256=" + 64 hex) must be present and well-formed.
3. The payload's "repository" picks the secret: the repository's own (webhook_secret_ref) when it
   has one, else the server's global one. HMAC-SHA256 of the body is compared in constant time.
   Every signature refusal is the same 401 body, whatever the reason (the reason is only a metric).
4. Only then is the payload trusted: an unknown repository is 404, a ping is answered, every other
   delivery goes to nightshift.receive_github_deliveries() (batched, see batcher.py), which records its
   id (a replay is answered "duplicate") and enqueues the pr-review task in the same transaction.

The repository lookup of step 3 is remembered (RepositoryCache) and checked again inside that
transaction: when the secret reference used is no longer the repository's, nothing is recorded, and the
delivery is verified again against a fresh lookup ("recheck").
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from psycopg.types.json import Jsonb
from starlette.types import Receive, Scope, Send

from dispatcher.intake.access import RouteName, send_json
from dispatcher.intake.batcher import Received
from dispatcher.intake.errors import Refusal

if TYPE_CHECKING:
    from dispatcher.intake.app import Intake

log = logging.getLogger("nightshift.intake.github")

SIGNATURE = re.compile(r"^sha256=[0-9a-fA-F]{64}$")
EVENT = re.compile(r"^[a-z_]{1,64}$")
DELIVERY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# what receive_github_delivery and match_github_repository read from a payload; the rest of GitHub's
# 25-30 kB is not sent to the database
REPOSITORY_FIELDS = ("full_name", "clone_url", "ssh_url", "git_url", "html_url", "svn_url")
PULL_REQUEST_FIELDS = ("html_url", "updated_at", "draft", "merged", "merged_at")  # merged: remediations
SIDE_FIELDS = ("ref", "sha")
ACCEPTED_OUTCOMES = frozenset({"enqueued", "replaced", "superseded"})
# ASGI servers give header names in lower case (uvicorn does)
HEADER_NAMES = {name.encode(): name for name in ("content-type", "content-length", "x-hub-signature-256",
                                                 "x-github-event", "x-github-delivery")}
ROUTE = RouteName("/webhooks/github")


def bad_signature() -> Refusal:
    return Refusal(401, "signature", "signature verification failed")


def signature_valid(secret: bytes, body: bytes, header: str) -> bool:
    """GitHub's scheme: header = "sha256=" + hex(HMAC-SHA256(secret, body)), compared in constant time."""
    expected = "sha256=" + hmac.digest(secret, body, "sha256").hex()  # one-shot: OpenSSL's HMAC in one call
    return hmac.compare_digest(expected.encode(), header.lower().encode())


def trim(payload: dict[str, Any]) -> dict[str, Any]:
    """The fields of a delivery that the SQL side reads (see the module docstring)."""
    out: dict[str, Any] = {key: payload[key] for key in ("action", "number") if key in payload}
    repository = payload.get("repository")
    if isinstance(repository, dict):
        out["repository"] = {key: repository[key] for key in REPOSITORY_FIELDS if key in repository}
    pr = payload.get("pull_request")
    if isinstance(pr, dict):
        trimmed: dict[str, Any] = {key: pr[key] for key in PULL_REQUEST_FIELDS if key in pr}
        for side in ("head", "base"):
            part = pr.get(side)
            if isinstance(part, dict):
                trimmed[side] = {key: part[key] for key in SIDE_FIELDS if key in part}
                repo = part.get("repo")
                if isinstance(repo, dict) and "clone_url" in repo:
                    trimmed[side]["repo"] = {"clone_url": repo["clone_url"]}
        out["pull_request"] = trimmed
    return out


# The same fields as typed structs: msgspec decodes a delivery straight into them and skips the rest of
# the body (still checking that it is JSON) without building it — parsing GitHub's 25 kB with the json
# module costs more than the rest of a request together (bench/bench_intake.py). UNSET keeps trim()'s
# rule that an absent key stays absent; leaves are Any, so their types are checked where they are used.
class _Repository(msgspec.Struct):
    full_name: Any = msgspec.UNSET
    clone_url: Any = msgspec.UNSET
    ssh_url: Any = msgspec.UNSET
    git_url: Any = msgspec.UNSET
    html_url: Any = msgspec.UNSET
    svn_url: Any = msgspec.UNSET


class _CloneUrl(msgspec.Struct):
    clone_url: Any


class _Side(msgspec.Struct):
    ref: Any = msgspec.UNSET
    sha: Any = msgspec.UNSET
    repo: _CloneUrl | msgspec.UnsetType = msgspec.UNSET


class _PullRequest(msgspec.Struct):
    html_url: Any = msgspec.UNSET
    updated_at: Any = msgspec.UNSET
    draft: Any = msgspec.UNSET
    merged: Any = msgspec.UNSET  # closed and merged: a drift remediation's pull request
    merged_at: Any = msgspec.UNSET
    head: _Side | msgspec.UnsetType = msgspec.UNSET
    base: _Side | msgspec.UnsetType = msgspec.UNSET


class _Delivery(msgspec.Struct):
    action: Any = msgspec.UNSET
    number: Any = msgspec.UNSET
    repository: _Repository | msgspec.UnsetType = msgspec.UNSET
    pull_request: _PullRequest | msgspec.UnsetType = msgspec.UNSET


_DELIVERY = msgspec.json.Decoder(_Delivery)


def parse_delivery(body: bytes) -> Any:
    """trim() of the decoded body, or None when it is not JSON. A body of another shape (a field of
    another type, a head without repo.clone_url, not an object) is decoded whole by the json module, as
    before, and trimmed the same way when it is an object."""
    try:
        return msgspec.to_builtins(_DELIVERY.decode(body))
    except (msgspec.ValidationError, msgspec.DecodeError):
        payload = parse_json(body)
        return trim(payload) if isinstance(payload, dict) else payload


@dataclass(frozen=True)
class KnownRepository:
    id: int
    pr_review_enabled: bool
    webhook_secret_ref: str | None


class RepositoryCache:
    """Repositories found by what a payload names: the lookup costs a database round trip per delivery,
    and deliveries name the same few repositories. Only found ones are kept (made-up names grow
    nothing); a stale entry is caught in the delivery's own transaction (module docstring)."""

    def __init__(self, ttl: float = 60.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._found: dict[Hashable, tuple[float, KnownRepository]] = {}

    def get(self, key: Hashable) -> KnownRepository | None:
        hit = self._found.get(key)
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl else None

    def put(self, key: Hashable, repository: KnownRepository) -> None:
        if len(self._found) >= self.size:
            self._found.clear()
        self._found[key] = (time.monotonic(), repository)

    def drop(self, key: Hashable) -> None:
        self._found.pop(key, None)


class GithubWebhooks:
    """The route as a bare ASGI app: the access layer calls it straight (app.py), past Starlette's
    routing, middleware, Request and Response objects, which cost a webhook more CPU than hashing and
    decoding its 24 kB body (bench/bench_intake.py). Every check stays; refusals and database errors
    get the same answers and metrics as on the Starlette routes (Intake.error_answer)."""

    route = ROUTE

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.metrics = intake.metrics
        self.repositories = RepositoryCache()
        # labelled series looked up once (labels() costs more than the increment): events and outcomes
        # are few, and only verified deliveries are counted
        self.delivered: dict[tuple[str, str], Any] = {}
        self.enqueued = self.metrics.enqueued.labels("pr-review", "github")

    def count(self, event: str, outcome: str) -> None:
        series = self.delivered.get((event, outcome))
        if series is None:
            series = self.delivered[event, outcome] = self.metrics.deliveries.labels(event, outcome)
        series.inc()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # the metric label and the access log's route (access.route_of)
        log_fields: dict[str, Any] = {}
        scope.setdefault("state", {})["log_fields"] = log_fields
        try:
            if scope["method"] != "POST":
                raise Refusal(405, "method", "Method Not Allowed", headers={"Allow": "POST"})
            status, answer = await self.handle(request_headers(scope["headers"]), receive, log_fields)
        except Exception as exc:  # Refusal, the database, a bug: one JSON answer each (CancelledError passes)
            status, answer, headers = self.intake.error_answer(self.route.path, exc)
            await send_json(send, status, answer, headers)
            if status == 500:
                raise  # as Starlette does: uvicorn logs the traceback
            return
        await send_json(send, status, answer)

    async def handle(self, headers: dict[str, str], receive: Receive,
                     log_fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if media_type(headers.get("content-type", "")) != "application/json":
            raise Refusal(415, "content-type", "content type must be application/json "
                          "(set the webhook's content type to application/json)")
        body = await self.intake.read_body(receive, headers.get("content-length"))
        signature = headers.get("x-hub-signature-256")
        if signature is None or not SIGNATURE.match(signature):
            self.metrics.signature_failures.labels("missing" if signature is None else "malformed").inc()
            raise bad_signature()
        event = headers.get("x-github-event", "")
        delivery = headers.get("x-github-delivery", "")
        if not EVENT.match(event):
            raise Refusal(400, "event", "missing or malformed X-GitHub-Event header")
        if not DELIVERY.match(delivery):
            raise Refusal(400, "delivery", "missing or malformed X-GitHub-Delivery header")
        log_fields.update(delivery=delivery, gh_event=event)

        payload = parse_delivery(body)  # trimmed: what the rest of the handler and the database read
        named = payload.get("repository") if isinstance(payload, dict) else None
        repository = await self.find_repository(named) if isinstance(named, dict) else None
        self.verify(body, signature, repository)

        if not isinstance(payload, dict):
            raise Refusal(400, "invalid-json", "the body is not a JSON object")
        if isinstance(named, dict) and repository is None:
            raise self.unknown_repository(event, named)
        if event == "ping":
            self.count(event, "pong")
            return 200, {"status": "pong", "delivery": delivery}
        if event == "pull_request" and payload.get("action") in ("opened", "synchronize", "reopened"):
            check_pull_request(payload)
        received = await self.intake.batcher.receive(delivery, event, payload, secret_ref(repository))
        if received.outcome == "recheck" and isinstance(named, dict):
            # the repository changed since it was looked up: verify again with what it is now
            repository = await self.find_repository(named, fresh=True)
            if repository is None:
                raise self.unknown_repository(event, named)
            self.verify(body, signature, repository)
            received = await self.intake.batcher.receive(delivery, event, payload, secret_ref(repository))
        return self.answer(log_fields, delivery, event, payload, received)

    def unknown_repository(self, event: str, named: dict[str, Any]) -> Refusal:
        self.count(event, "unknown-repository")
        return Refusal(404, "unknown-repository", "unknown repository: register it in Nightshift "
                       "(repositories.full_name or url)", repository=str(named.get("full_name", ""))[:200])

    async def find_repository(self, named: dict[str, Any], fresh: bool = False) -> KnownRepository | None:
        fields = {key: named[key] for key in REPOSITORY_FIELDS if isinstance(named.get(key), str)}
        key = tuple(fields.items())  # in REPOSITORY_FIELDS' order
        if not fresh and (cached := self.repositories.get(key)) is not None:
            return cached
        self.repositories.drop(key)
        async with self.intake.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, pr_review_enabled, webhook_secret_ref"
                " FROM nightshift.match_github_repository(%s)", (Jsonb(fields),))
            row = await cur.fetchone()
        if row is None:
            return None
        found = KnownRepository(*row)
        self.repositories.put(key, found)
        return found

    def verify(self, body: bytes, signature: str, repository: KnownRepository | None) -> None:
        own = repository.webhook_secret_ref if repository else None
        reference = own or self.intake.config.webhook_secret_ref
        secret = self.intake.secrets.get(reference) if reference else None
        if secret is None:
            # said in the log (without any value) because the sender only sees the generic 401
            log.warning("no usable webhook secret for this delivery", extra={
                "event": "webhook-secret-missing", "secret_ref": reference,
                "repository_id": repository.id if repository else None})
            self.metrics.signature_failures.labels("no-secret").inc()
            raise bad_signature()
        if not signature_valid(secret, body, signature):
            self.metrics.signature_failures.labels("mismatch").inc()
            raise bad_signature()

    def answer(self, log_fields: dict[str, Any], delivery: str, event: str, payload: dict[str, Any],
               received: Received) -> tuple[int, dict[str, Any]]:
        outcome, task_id = received.outcome, received.task_id
        log_fields.update(outcome=outcome, task_id=task_id, repository_id=received.repository_id)
        self.count(event, outcome)
        if outcome == "invalid":
            raise Refusal(400, "invalid-payload", received.error or "invalid payload")
        if outcome in ("unknown-repository", "recheck"):  # it changed again between lookup and commit
            raise Refusal(404 if outcome == "unknown-repository" else 503, outcome,
                          "unknown repository" if outcome == "unknown-repository"
                          else "the repository changed during the delivery, retry")
        if outcome == "duplicate":
            self.metrics.duplicates.inc()
            return 200, {"status": "duplicate", "delivery": delivery}
        if outcome in ("enqueued", "superseded"):
            self.enqueued.inc()
        answer: dict[str, Any] = {"status": outcome, "delivery": delivery}
        if task_id is not None:
            answer["task_id"] = task_id
        if outcome == "ignored":
            action = f" action {payload['action']}" if "action" in payload else ""
            answer["reason"] = f"event {event}{action} starts nothing"
        return 202 if outcome in ACCEPTED_OUTCOMES else 200, answer


def secret_ref(repository: KnownRepository | None) -> str | bool | None:
    """What the transaction checks the repository against: its own secret reference, None for the
    global secret, False when the payload names no repository (nothing to check)."""
    return False if repository is None else repository.webhook_secret_ref


def request_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers this route reads (first occurrence, as Starlette's Headers.get), decoded as latin-1."""
    found: dict[str, str] = {}
    for name, value in raw:
        key = HEADER_NAMES.get(name)
        if key is not None and key not in found:
            found[key] = value.decode("latin-1")
    return found


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def parse_json(body: bytes) -> Any:
    """The decoded body, or None when it is not JSON (refused once the signature is checked)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def check_pull_request(payload: dict[str, Any]) -> None:
    pr = payload.get("pull_request")
    head = pr.get("head") if isinstance(pr, dict) else None
    number = payload.get("number")
    if (not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 2**31
            or not isinstance(head, dict) or not isinstance(head.get("sha"), str)):
        raise Refusal(400, "invalid-payload",
                      "a pull_request delivery needs number and pull_request.head.sha")
