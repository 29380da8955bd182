"""The intake's SQL functions, called as a DBA would from psql (no server)."""

from __future__ import annotations

import json

import psycopg
from psycopg.types.json import Jsonb

from tests.support.intake import corpus


def repository(conn: psycopg.Connection, url: str, full_name: str | None = None, review: bool = True) -> int:
    conn.execute("INSERT INTO nightshift.organizations (name) VALUES ('acme') ON CONFLICT (name) DO NOTHING")
    row = conn.execute(
        "INSERT INTO nightshift.repositories (organization_id, name, url, full_name, pr_review_enabled)"
        " SELECT id, %s, %s, %s, %s FROM nightshift.organizations WHERE name = 'acme' RETURNING id",
        (url, url, full_name, review)).fetchone()
    assert row is not None
    return int(row[0])


def test_git_url_key_makes_every_spelling_of_a_url_one(conn: psycopg.Connection) -> None:
    spellings = ["https://github.com/Codertocat/Hello-World.git", "git@github.com:Codertocat/Hello-World.git",
                 "ssh://git@github.com/Codertocat/Hello-World", "git://github.com/Codertocat/Hello-World.git",
                 "https://github.com/Codertocat/Hello-World/", "https://user@github.com/codertocat/hello-world"]
    keys = {conn.execute("SELECT nightshift.git_url_key(%s)", (s,)).fetchone() for s in spellings}
    assert keys == {("github.com/codertocat/hello-world",)}
    assert conn.execute("SELECT nightshift.git_url_key('')").fetchone() == (None,)


def test_a_dba_replays_a_corpus_delivery(conn: psycopg.Connection) -> None:
    repo = repository(conn, "https://github.com/Codertocat/Hello-World")
    payload = Jsonb(json.loads((corpus() / "pull_request.opened.json").read_bytes()))
    call = ("SELECT outcome, task_id, repository_id"
            " FROM nightshift.receive_github_delivery(%s, 'pull_request', %s)")
    outcome, task_id, repository_id = conn.execute(call, ("dba-1", payload)).fetchone() or ()
    assert (outcome, repository_id) == ("enqueued", repo)
    subject = conn.execute("SELECT subject FROM nightshift.tasks WHERE id = %s", (task_id,)).fetchone()
    assert subject == (f"pr/{repo}/2",)
    assert (conn.execute(call, ("dba-1", payload)).fetchone() or ())[0] == "duplicate"


def test_enqueue_pr_review_refuses_unknown_and_disabled_repositories(conn: psycopg.Connection) -> None:
    off = repository(conn, "https://example.com/off.git", review=False)
    call = "SELECT task_id, outcome FROM nightshift.enqueue_pr_review(%s, 1, '{}')"
    assert conn.execute(call, (off,)).fetchone() == (None, "review-disabled")
    assert conn.execute(call, (off + 1000,)).fetchone() == (None, "unknown-repository")
    assert conn.execute("SELECT count(*) FROM nightshift.tasks").fetchone() == (0,)


def test_a_batch_keeps_going_past_an_invalid_delivery(conn: psycopg.Connection) -> None:
    repository(conn, "https://github.com/o/r", full_name="o/r")
    good = {"action": "opened", "number": 7, "repository": {"full_name": "o/r"},
            "pull_request": {"head": {"sha": "a" * 40, "ref": "x"}, "base": {"sha": "b" * 40, "ref": "main"}}}
    bad = {**good, "number": "seven"}
    batch = [{"delivery_id": "b-1", "event": "pull_request", "payload": bad},
             {"delivery_id": "b-2", "event": "pull_request", "payload": good},
             {"delivery_id": "b-2", "event": "pull_request", "payload": good}]
    rows = conn.execute("SELECT ordinal, outcome, error IS NOT NULL"
                        " FROM nightshift.receive_github_deliveries(%s)", (Jsonb(batch),)).fetchall()
    assert rows == [(1, "invalid", True), (2, "enqueued", False), (3, "duplicate", False)]
    # the invalid one left nothing behind, not even its delivery id
    recorded = conn.execute("SELECT array_agg(delivery_id ORDER BY delivery_id)"
                            " FROM nightshift.webhook_deliveries").fetchone()
    assert recorded == (["b-2"],)
