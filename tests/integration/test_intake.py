"""`nightshift serve` as GitHub and external schedulers see it: a real server on a loopback port, real
HTTP, GitHub's real payloads (../shared/corpora/github-webhooks) and its documented signatures."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
import yaml

from tests.support.intake import IntakeServer, corpus, manifest, run_server, sign
from tests.support.pgserver import ROOT, PgServer

pytestmark = pytest.mark.slow

HELLO_WORLD = "Codertocat/Hello-World"


@pytest.fixture(scope="module")
def intake_db(pg_server: PgServer) -> Iterator[str]:
    with pg_server.database() as url:
        yield url


@pytest.fixture(scope="module")
def server(intake_db: str) -> Iterator[IntakeServer]:
    with run_server(intake_db, "--max-body-bytes", "65536") as running:
        yield running


@pytest.fixture
def db(intake_db: str) -> Iterator[psycopg.Connection]:
    """The server's database, emptied of what earlier tests left."""
    with psycopg.connect(intake_db, autocommit=True) as conn:
        conn.execute("TRUNCATE nightshift.tasks, nightshift.webhook_deliveries, nightshift.api_tokens,"
                     " nightshift.organizations RESTART IDENTITY CASCADE")
        yield conn


def add_repository(conn: psycopg.Connection, *, full_name: str | None = HELLO_WORLD,
                   url: str = "https://github.com/Codertocat/Hello-World.git", pr_review: bool = True,
                   secret_ref: str | None = None, name: str = "hello-world") -> int:
    conn.execute("INSERT INTO nightshift.organizations (name) VALUES ('acme') ON CONFLICT (name) DO NOTHING")
    row = conn.execute(
        "INSERT INTO nightshift.repositories (organization_id, name, url, full_name, pr_review_enabled,"
        " webhook_secret_ref) SELECT id, %s, %s, %s, %s, %s FROM nightshift.organizations WHERE name = 'acme'"
        " RETURNING id", (name, url, full_name, pr_review, secret_ref)).fetchone()
    assert row is not None
    return int(row[0])


def body(name: str) -> bytes:
    return (corpus() / name).read_bytes()


def edited(name: str, **changes: Any) -> bytes:
    """A corpus payload with pull_request fields changed (then signed by the test like GitHub would)."""
    payload = json.loads(body(name))
    for key, value in changes.items():
        target = payload["pull_request"]
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return json.dumps(payload, separators=(",", ":")).encode()


def tasks(conn: psycopg.Connection) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("SELECT id, kind, subject, status, payload FROM nightshift.tasks ORDER BY id"
                       ).fetchall()


# -- health ------------------------------------------------------------------------------------------

def test_healthz_readyz_and_metrics_answer(server: IntakeServer) -> None:
    with server.client() as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "nightshift_intake_requests_total" in metrics.text
    assert server.metric("nightshift_intake_requests_total", route="/readyz", status="200") >= 1


def test_readyz_refuses_a_database_that_is_not_migrated(pg_server: PgServer) -> None:
    with pg_server.database(template=None) as empty, run_server(empty) as running, running.client() as client:
        assert client.get("/healthz").status_code == 200  # the process is up...
        ready = client.get("/readyz")
        assert ready.status_code == 503  # ...but it cannot take traffic
        assert ready.json() == {"status": "unavailable", "error": "not migrated"}


# -- GitHub deliveries -------------------------------------------------------------------------------

def test_the_corpus_signatures_are_accepted_as_github_sent_them(server: IntakeServer,
                                                                db: psycopg.Connection) -> None:
    repository = add_repository(db)
    facts = manifest()["pull_request.opened.json"]
    response = server.deliver(body("pull_request.opened.json"), "pull_request", "d-opened",
                              signature=facts["x_hub_signature_256_with_test_secret"])
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "enqueued"
    [task] = tasks(db)
    assert (task["kind"], task["subject"], task["status"]) == ("pr-review", f"pr/{repository}/2", "queued")
    expected = facts["facts"]
    payload = task["payload"]
    assert payload["number"] == expected["number"] == 2
    assert (payload["head_ref"], payload["head_sha"]) == (expected["head_ref"], expected["head_sha"])
    assert (payload["base_ref"], payload["base_sha"]) == (expected["base_ref"], expected["base_sha"])
    assert payload["clone_url"] == "https://github.com/Codertocat/Hello-World.git"
    assert payload["repository_id"] == repository
    # how the agent reaches the forge (it never sees the database): a token's reference, never a token
    assert payload["forge"] == {"kind": "github", "full_name": HELLO_WORLD}
    assert response.json()["task_id"] == task["id"]
    row = db.execute("SELECT event, task_id FROM nightshift.webhook_deliveries WHERE delivery_id = 'd-opened'"
                     ).fetchone()
    assert row == ("pull_request", task["id"])


def test_a_replayed_delivery_is_a_duplicate_and_enqueues_nothing(server: IntakeServer,
                                                                 db: psycopg.Connection) -> None:
    add_repository(db)
    duplicates = server.metric("nightshift_intake_webhook_duplicates_total")
    first = server.deliver(body("pull_request.opened.json"), "pull_request", "d-replay")
    [task] = tasks(db)
    # the review is over: a replay that got through would queue another one
    db.execute("SELECT nightshift.cancel_task(%s)", (task["id"],))
    again = server.deliver(body("pull_request.opened.json"), "pull_request", "d-replay")
    assert first.status_code == 202
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert len(tasks(db)) == 1
    assert server.metric("nightshift_intake_webhook_duplicates_total") == duplicates + 1


def test_the_same_delivery_arriving_twenty_times_at_once_enqueues_one_task(server: IntakeServer,
                                                                           db: psycopg.Connection) -> None:
    add_repository(db)
    payload = body("pull_request.opened.json")
    barrier = threading.Barrier(20)

    def deliver(_: int) -> str:
        with server.client() as client:
            barrier.wait()
            response = server.deliver(payload, "pull_request", "d-storm", client=client)
        return str(response.json()["status"])

    with ThreadPoolExecutor(20) as pool:
        outcomes = sorted(pool.map(deliver, range(20)))
    assert outcomes == ["duplicate"] * 19 + ["enqueued"]
    assert len(tasks(db)) == 1


def test_a_newer_synchronize_replaces_the_queued_review(server: IntakeServer, db: psycopg.Connection) -> None:
    add_repository(db)
    server.deliver(body("pull_request.opened.json"), "pull_request", "d-1")
    pushed = edited("pull_request.synchronize.json", head__sha="1" * 40, updated_at="2030-01-01T00:00:00Z")
    response = server.deliver(pushed, "pull_request", "d-2")
    assert (response.status_code, response.json()["status"]) == (202, "replaced")
    [task] = tasks(db)
    assert (task["payload"]["head_sha"], task["payload"]["action"]) == ("1" * 40, "synchronize")
    # an older delivery arriving late does not undo the newer one
    late = edited("pull_request.synchronize.json", head__sha="2" * 40, updated_at="2029-01-01T00:00:00Z")
    assert server.deliver(late, "pull_request", "d-3").json()["status"] == "stale"
    assert [t["payload"]["head_sha"] for t in tasks(db)] == ["1" * 40]


def test_a_push_to_a_pr_under_review_supersedes_the_running_review(server: IntakeServer,
                                                                   db: psycopg.Connection) -> None:
    add_repository(db)
    server.deliver(body("pull_request.opened.json"), "pull_request", "d-open")
    [(claimed,)] = db.execute("SELECT id FROM nightshift.claim_tasks('w1', '{pr-review}', 1, '1 minute')")
    same_head = server.deliver(body("pull_request.synchronize.json"), "pull_request", "d-same")
    assert same_head.json()["status"] == "in-flight"  # that head is being reviewed already
    pushed = edited("pull_request.synchronize.json", head__sha="3" * 40, updated_at="2030-01-01T00:00:00Z")
    response = server.deliver(pushed, "pull_request", "d-push")
    assert (response.status_code, response.json()["status"]) == (202, "superseded")
    old, new = tasks(db)
    assert (old["id"], old["status"]) == (claimed, "cancelled")
    assert (new["status"], new["payload"]["head_sha"]) == ("queued", "3" * 40)


def test_reopened_enqueues_a_review_again(server: IntakeServer, db: psycopg.Connection) -> None:
    add_repository(db)
    server.deliver(body("pull_request.opened.json"), "pull_request", "d-o")
    db.execute("UPDATE nightshift.tasks SET status = 'done', finished_at = now()")
    response = server.deliver(body("pull_request.reopened.json"), "pull_request", "d-r")
    assert (response.status_code, response.json()["status"]) == (202, "enqueued")
    assert [t["status"] for t in tasks(db)] == ["done", "queued"]


@pytest.mark.parametrize(("name", "event"), [("pull_request.closed.json", "pull_request"),
                                            ("push.branch-created.json", "push"),
                                            ("pull_request.opened.json", "issues")])
def test_other_events_are_acknowledged_ignored_and_counted(server: IntakeServer, db: psycopg.Connection,
                                                          name: str, event: str) -> None:
    add_repository(db)
    before = server.metric("nightshift_intake_webhook_deliveries_total", event=event, outcome="ignored")
    response = server.deliver(body(name), event, f"d-{name}")
    assert (response.status_code, response.json()["status"]) == (200, "ignored")
    assert tasks(db) == []
    after = server.metric("nightshift_intake_webhook_deliveries_total", event=event, outcome="ignored")
    assert after == before + 1


def test_ping_is_answered(server: IntakeServer, db: psycopg.Connection) -> None:
    add_repository(db, full_name="Octocoders/Hello-World", name="octocoders")  # ping.json's repository
    response = server.deliver(body("ping.json"), "ping", "d-ping")
    assert (response.status_code, response.json()["status"]) == (200, "pong")
    organization_hook = corpus() / "more" / "ping.with-organization.json"
    if organization_hook.is_file():
        response = server.deliver(organization_hook.read_bytes(), "ping", "d-ping-org")
        assert response.status_code in (200, 404)  # an organization hook pings with its repository or none


def test_repository_found_by_its_ssh_url_when_no_full_name_is_stored(server: IntakeServer,
                                                                    db: psycopg.Connection) -> None:
    repository = add_repository(db, full_name=None, url="git@github.com:Codertocat/Hello-World.git")
    response = server.deliver(body("pull_request.opened.json"), "pull_request", "d-ssh")
    assert response.status_code == 202
    assert [t["subject"] for t in tasks(db)] == [f"pr/{repository}/2"]


def test_pr_review_switched_off_enqueues_nothing(server: IntakeServer, db: psycopg.Connection) -> None:
    add_repository(db, pr_review=False)
    response = server.deliver(body("pull_request.opened.json"), "pull_request", "d-off")
    assert (response.status_code, response.json()["status"]) == (200, "review-disabled")
    assert tasks(db) == []


def test_a_repository_with_its_own_secret_refuses_the_global_one(intake_db: str,
                                                                  db: psycopg.Connection) -> None:
    add_repository(db, secret_ref="env:HELLO_WORLD_HOOK_SECRET")
    with run_server(intake_db, env={"HELLO_WORLD_HOOK_SECRET": "only-for-hello-world"}) as running:
        payload = body("pull_request.opened.json")
        refused = running.deliver(payload, "pull_request", "d-g")  # signed with the global secret
        assert refused.status_code == 401
        accepted = running.deliver(payload, "pull_request", "d-own",
                                   signature=sign(payload, "only-for-hello-world"))
        assert accepted.status_code == 202
    assert len(tasks(db)) == 1


def test_a_changed_repository_secret_applies_at_once(intake_db: str, db: psycopg.Connection) -> None:
    """The server remembers repositories it looked up; a secret changed since is still enforced."""
    repository = add_repository(db)
    with run_server(intake_db, env={"HELLO_WORLD_HOOK_SECRET": "only-for-hello-world"}) as running:
        opened, synchronized = body("pull_request.opened.json"), body("pull_request.synchronize.json")
        assert running.deliver(opened, "pull_request", "d-before").status_code == 202  # global secret
        db.execute("UPDATE nightshift.repositories SET webhook_secret_ref = 'env:HELLO_WORLD_HOOK_SECRET'"
                   " WHERE id = %s", (repository,))
        assert running.deliver(synchronized, "pull_request", "d-old-secret").status_code == 401
        accepted = running.deliver(synchronized, "pull_request", "d-new-secret",
                                   signature=sign(synchronized, "only-for-hello-world"))
        assert accepted.status_code == 202, accepted.text
        db.execute("DELETE FROM nightshift.repositories WHERE id = %s", (repository,))
        gone = running.deliver(synchronized, "pull_request", "d-gone",
                               signature=sign(synchronized, "only-for-hello-world"))
        assert gone.status_code == 404
    recorded = db.execute("SELECT array_agg(delivery_id ORDER BY delivery_id)"
                          " FROM nightshift.webhook_deliveries").fetchone()
    assert recorded == (["d-before", "d-new-secret"],)


# -- bad input: a clear status and JSON error, a counted metric, nothing enqueued, still serving -------

BAD_DELIVERIES = ("invalid JSON", "wrong content type", "unknown event", "no event header", "oversized body",
                  "signature for another body", "no signature", "malformed signature", "wrong secret")


def bad_delivery(case: str) -> tuple[dict[str, Any], int, str]:
    """(request, expected status, metric reason) of one kind of bad delivery."""
    opened = body("pull_request.opened.json")
    invalid = b'{"action": "opened", "number": 2,'
    return {
        "invalid JSON": (dict(body=invalid, signature=sign(invalid)), 400, "invalid-json"),
        "wrong content type": (dict(body=opened, content_type="application/x-www-form-urlencoded"), 415,
                               "content-type"),
        "unknown event": (dict(body=opened, event="not an event!"), 400, "event"),
        "no event header": (dict(body=opened, event=""), 400, "event"),
        "oversized body": (dict(body=opened + b" " * 65536), 413, "too-large"),
        "signature for another body": (dict(body=opened, signature=sign(opened + b"x")), 401, "signature"),
        "no signature": (dict(body=opened, signature=""), 401, "signature"),
        "malformed signature": (dict(body=opened, signature="sha1=abc"), 401, "signature"),
        "wrong secret": (dict(body=opened, signature=sign(opened, "not the secret")), 401, "signature"),
    }[case]


@pytest.mark.parametrize("case", BAD_DELIVERIES)
def test_bad_deliveries_are_refused_clearly(server: IntakeServer, db: psycopg.Connection, case: str) -> None:
    add_repository(db)
    spec, status, reason = bad_delivery(case)
    before = server.metric("nightshift_intake_rejected_total", route="/webhooks/github", reason=reason)
    headers = {"Content-Type": spec.get("content_type", "application/json"),
               "X-GitHub-Event": spec.get("event", "pull_request"), "X-GitHub-Delivery": f"d-bad-{len(case)}"}
    signature = spec.get("signature", sign(spec["body"]))
    if signature:
        headers["X-Hub-Signature-256"] = signature
    with server.client() as client:
        response = client.post("/webhooks/github", content=spec["body"], headers=headers)
        assert response.status_code == status, response.text
        assert isinstance(response.json()["error"], str)
        assert client.get("/healthz").status_code == 200  # still serving
    if status == 401:  # nothing in the answer tells an attacker what was wrong
        assert response.json() == {"error": "signature verification failed"}
    assert tasks(db) == []
    after = server.metric("nightshift_intake_rejected_total", route="/webhooks/github", reason=reason)
    assert after == before + 1


def test_other_methods_and_paths_get_json_errors_with_their_reason(server: IntakeServer) -> None:
    # the webhook route answers outside Starlette's router (github.py): its 405 and the router's 404
    # must look and count the same
    labels = {"route": "/webhooks/github", "reason": "method"}
    before = server.metric("nightshift_intake_rejected_total", **labels)
    with server.client() as client:
        wrong = client.get("/webhooks/github")
        assert (wrong.status_code, wrong.headers["allow"], wrong.json()) == (
            405, "POST", {"error": "Method Not Allowed"})
        missing = client.post("/webhooks/gitlab", content=b"{}")
        assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    assert server.metric("nightshift_intake_rejected_total", **labels) == before + 1
    assert server.metric("nightshift_intake_requests_total", route="/webhooks/github", method="GET",
                         status="405") >= 1
    assert server.metric("nightshift_intake_rejected_total", route="unmatched", reason="not-found") >= 1


def test_an_unknown_repository_is_404_and_enqueues_nothing(server: IntakeServer,
                                                           db: psycopg.Connection) -> None:
    add_repository(db, full_name="someone/else", url="https://github.com/someone/else.git")
    labels = {"route": "/webhooks/github", "reason": "unknown-repository"}
    before = server.metric("nightshift_intake_rejected_total", **labels)
    response = server.deliver(body("pull_request.opened.json"), "pull_request", "d-unknown")
    assert response.status_code == 404
    assert response.json()["repository"] == HELLO_WORLD
    assert tasks(db) == []
    assert server.metric("nightshift_intake_rejected_total", **labels) == before + 1
    with server.client() as client:
        assert client.get("/healthz").status_code == 200
    # not recorded either: once the repository is registered, GitHub's redelivery works
    assert db.execute("SELECT count(*) FROM nightshift.webhook_deliveries").fetchone() == (0,)


def test_a_pull_request_without_number_or_head_is_400(server: IntakeServer, db: psycopg.Connection) -> None:
    add_repository(db)
    payload = json.loads(body("pull_request.opened.json"))
    del payload["pull_request"]["head"]
    raw = json.dumps(payload).encode()
    response = server.deliver(raw, "pull_request", "d-headless")
    assert (response.status_code, response.json()["error"]) == (
        400, "a pull_request delivery needs number and pull_request.head.sha")
    assert tasks(db) == []


def test_access_log_has_no_secrets(server: IntakeServer, db: psycopg.Connection) -> None:
    add_repository(db)
    payload = body("pull_request.opened.json")
    signature = sign(payload)
    server.deliver(payload, "pull_request", "d-logged", signature=signature)
    token = create_token(server, db, "log-check")
    with server.client() as client:
        client.post("/api/v1/internal/scheduled-tasks/drift-scan?token=leak",
                    headers={"Authorization": f"Bearer {token}"})
    text = server.log_text()
    assert "d-logged" in text  # the delivery id is logged...
    assert signature.removeprefix("sha256=") not in text  # ...its signature is not
    secret_part = token[len("nst_") + 12 + 1:]  # nst_<12 hex prefix>_<secret>
    assert len(secret_part) == 43 and secret_part not in text
    assert "token=leak" not in text and "?token" not in text  # no query strings
    assert "It's a Secret" not in text


# -- the trigger endpoint for external schedulers ----------------------------------------------------

def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher", *args, "--database-url", database_url],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def create_token(server: IntakeServer, db: psycopg.Connection, name: str, *args: str) -> str:
    proc = cli(server_db_url(db), "tokens", "create", name, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def server_db_url(db: psycopg.Connection) -> str:
    info = db.info
    return f"postgresql://{info.user}:{info.password}@{info.host}:{info.port}/{info.dbname}"


def due_pipelines(conn: psycopg.Connection, count: int) -> None:
    add_repository(conn)
    conn.execute("INSERT INTO nightshift.pipelines (repository_id, name)"
                 " SELECT r.id, 'p' || g FROM nightshift.repositories r, generate_series(1, %s) g", (count,))
    conn.execute("INSERT INTO nightshift.schedules (kind, pipeline_id, frequency, next_run_at)"
                 " SELECT 'drift-scan', id, 'HOURLY', now() - interval '1 minute' FROM nightshift.pipelines")


def trigger(server: IntakeServer, kind: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    with server.client() as client:
        return client.post(f"/api/v1/internal/scheduled-tasks/{kind}", headers=headers)


def test_trigger_runs_enqueue_due_once_per_slot(server: IntakeServer, db: psycopg.Connection) -> None:
    due_pipelines(db, 3)
    token = create_token(server, db, "k8s-cronjob")
    first = trigger(server, "drift-scan", token)
    assert first.status_code == 200, first.text
    assert first.json() == {"kind": "drift-scan", "enqueued": 3, "skipped": 0}
    second = trigger(server, "drift-scan", token)  # the same minute: the schedules moved on
    assert second.json() == {"kind": "drift-scan", "enqueued": 0, "skipped": 0}
    assert [t["kind"] for t in tasks(db)] == ["drift-scan"] * 3
    listed = cli(server_db_url(db), "tokens", "list", "--json")
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["name"], row["state"], row["scopes"]) == ("k8s-cronjob", "active", ["scheduled-tasks"])
    assert row["last_used_at"] is not None
    assert server.metric("nightshift_intake_tasks_enqueued_total", kind="drift-scan", source="trigger") >= 3


def test_trigger_refuses_bad_tokens(server: IntakeServer, db: psycopg.Connection) -> None:
    due_pipelines(db, 1)
    revoked = create_token(server, db, "revoked")
    assert cli(server_db_url(db), "tokens", "revoke", "revoked").returncode == 0
    expired = create_token(server, db, "expired", "--expires-in-days", "1")
    db.execute("UPDATE nightshift.api_tokens SET expires_at = now() - interval '1 second'"
               " WHERE name = 'expired'")
    narrow = create_token(server, db, "narrow", "--scope", "scheduled-tasks:cost-analysis")
    good = create_token(server, db, "good")
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    cases = [
        (None, 401, "missing bearer token"),
        ("not-a-token", 401, "invalid token"),
        (forged, 401, "invalid token"),
        (revoked, 401, "token revoked"),
        (expired, 401, "token expired"),
        (narrow, 403, "this token may not trigger this kind"),
    ]
    for token, status, message in cases:
        response = trigger(server, "drift-scan", token)
        assert (response.status_code, response.json()["error"]) == (status, message), token
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert tasks(db) == []
    assert server.metric("nightshift_intake_auth_failures_total", reason="revoked") >= 1
    assert server.metric("nightshift_intake_auth_failures_total", reason="expired") >= 1
    assert trigger(server, "drift-scan", good).json()["enqueued"] == 1


@pytest.mark.parametrize("kind", ["pr-review", "no-such-kind", "UPPER_case"])
def test_trigger_of_a_kind_with_no_schedules_is_404(server: IntakeServer, db: psycopg.Connection,
                                                    kind: str) -> None:
    token = create_token(server, db, f"t-{kind.lower()}")
    before = server.metric("nightshift_intake_rejected_total", reason="unknown-kind",
                           route="/api/v1/internal/scheduled-tasks/{kind}")
    response = trigger(server, kind, token)
    assert response.status_code == 404
    assert response.json()["error"].startswith("no schedules for this kind")
    assert tasks(db) == []
    assert server.metric("nightshift_intake_rejected_total", reason="unknown-kind",
                         route="/api/v1/internal/scheduled-tasks/{kind}") == before + 1
    assert trigger(server, "drift-scan", token).status_code == 200  # still serving


def test_tokens_cli_errors_are_one_line(server: IntakeServer, db: psycopg.Connection) -> None:
    create_token(server, db, "dup")
    again = cli(server_db_url(db), "tokens", "create", "dup")
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0
    assert "exists already" in again.stderr
    missing = cli(server_db_url(db), "tokens", "revoke", "nobody")
    assert missing.returncode == 3 and "no live token named 'nobody'" in missing.stderr  # not found
    bad_scope = cli(server_db_url(db), "tokens", "create", "x", "--scope", "admin")
    assert bad_scope.returncode == 2 and "unknown scope" in bad_scope.stderr


# -- timeouts and shutdown ---------------------------------------------------------------------------

def hold_delivery(url: str, delivery: str) -> psycopg.Connection:
    """A transaction that has inserted `delivery` and not committed: the server's insert waits for it."""
    holder = psycopg.connect(url)
    holder.execute("INSERT INTO nightshift.webhook_deliveries (delivery_id, source, event)"
                   " VALUES (%s, 'test', 'hold')", (delivery,))
    return holder


def test_a_request_past_its_timeout_is_503_and_its_delivery_counts_once(intake_db: str,
                                                                         db: psycopg.Connection) -> None:
    add_repository(db)
    with run_server(intake_db, "--request-timeout", "1") as running:
        holder = hold_delivery(intake_db, "d-slow")
        try:
            response = running.deliver(body("pull_request.opened.json"), "pull_request", "d-slow")
        finally:
            holder.rollback()
            holder.close()
        assert (response.status_code, response.json()) == (503, {"error": "request timed out"})
        with running.client() as client:
            assert client.get("/healthz").status_code == 200
        # the delivery was taken all the same, once the lock went away: GitHub's redelivery of the
        # timed-out request is a duplicate, and there is one task
        again = running.deliver(body("pull_request.opened.json"), "pull_request", "d-slow")
        assert again.json()["status"] == "duplicate"
    [task] = tasks(db)
    assert task["payload"]["delivery_id"] == "d-slow"


def test_sigterm_lets_the_request_in_progress_finish(intake_db: str, db: psycopg.Connection) -> None:
    add_repository(db)
    payload = body("pull_request.opened.json")  # here, not in the thread: a missing corpus skips the test
    with run_server(intake_db) as running:
        holder = hold_delivery(intake_db, "d-draining")
        answer: dict[str, Any] = {}

        def deliver() -> None:
            answer["response"] = running.deliver(payload, "pull_request", "d-draining")

        sender = threading.Thread(target=deliver)
        sender.start()
        # the request is inside the server once the server's insert waits on our lock
        for _ in range(300):
            waiting = db.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                 " AND application_name = 'nightshift serve'").fetchone()
            if waiting and waiting[0]:
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the delivery never reached the database")
        running.process.send_signal(signal.SIGTERM)
        threading.Event().wait(0.5)
        assert running.process.poll() is None  # still draining
        holder.rollback()  # the delivery's insert goes through now
        holder.close()
        sender.join(timeout=30)
        # drained, the pool closed; then uvicorn ends by the signal it got, as supervisors expect
        assert running.process.wait(timeout=30) == -signal.SIGTERM
    response = answer["response"]
    assert (response.status_code, response.json()["status"]) == (202, "enqueued")
    assert len(tasks(db)) == 1
    assert any("intake stopped" in line for line in running.lines)


# -- the deployment examples, run against the real server --------------------------------------------

def test_the_kubernetes_cronjob_script_triggers_every_kind(server: IntakeServer,
                                                          db: psycopg.Connection) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the CronJob's script (curlimages/curl) cannot run here")
    due_pipelines(db, 2)
    token = create_token(server, db, "k8s-cronjob")
    manifest_text = (ROOT / "deploy" / "kubernetes" / "cronjob-trigger.yaml").read_text()
    [cronjob] = [d for d in yaml.safe_load_all(manifest_text) if d]
    [spec] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in spec["env"]}
    env.update(PATH=os.environ["PATH"], NIGHTSHIFT_URL=server.url, NIGHTSHIFT_TRIGGER_TOKEN=token)
    proc = subprocess.run([*spec["command"], *spec["args"]], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    answers = {a["kind"]: a for a in map(json.loads, proc.stdout.split())}
    assert answers.keys() == set(env["NIGHTSHIFT_KINDS"].split())
    assert answers["drift-scan"]["enqueued"] == 2
    # a revoked token makes the Job fail, visibly
    cli(server_db_url(db), "tokens", "revoke", "k8s-cronjob")
    failed = subprocess.run([*spec["command"], *spec["args"]], env=env, capture_output=True, text=True,
                            timeout=120)
    assert failed.returncode == 1 and "token revoked" in failed.stdout + failed.stderr


def test_the_azure_timer_helper_triggers_every_kind(server: IntakeServer, db: psycopg.Connection) -> None:
    due_pipelines(db, 1)
    token = create_token(server, db, "azure-timer")
    spec = importlib.util.spec_from_file_location(
        "nightshift_trigger", ROOT / "deploy" / "azure-functions" / "nightshift_trigger.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    answers = module.trigger_all({"NIGHTSHIFT_URL": server.url, "NIGHTSHIFT_TRIGGER_TOKEN": token})
    assert {a["kind"] for a in answers} == {"drift-scan", "compliance-scan", "cost-analysis"}
    assert sum(a["enqueued"] for a in answers) == 1
    with pytest.raises(RuntimeError, match="no-such-kind: HTTP 404"):
        module.trigger_all({"NIGHTSHIFT_URL": server.url, "NIGHTSHIFT_TRIGGER_TOKEN": token,
                            "NIGHTSHIFT_KINDS": "drift-scan no-such-kind"})
