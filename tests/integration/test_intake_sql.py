"""The intake's SQL functions, called as a DBA would from psql (no server)."""

from __future__ import annotations

import json

import psycopg
import pytest
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
                        " FROM nightshift.receive_github_deliveries(%s) ORDER BY ordinal",
                        (Jsonb(batch),)).fetchall()
    assert rows == [(1, "invalid", True), (2, "enqueued", False), (3, "duplicate", False)]
    # the invalid one left nothing behind, not even its delivery id
    recorded = conn.execute("SELECT array_agg(delivery_id ORDER BY delivery_id)"
                            " FROM nightshift.webhook_deliveries").fetchone()
    assert recorded == (["b-2"],)


def test_both_ways_of_enqueueing_a_review_carry_the_repository_tool(conn: psycopg.Connection) -> None:
    tofu = repository(conn, "https://github.com/o/tofu", full_name="o/tofu")
    conn.execute("UPDATE nightshift.repositories SET iac_tool = 'tofu' WHERE id = %s", (tofu,))
    plain = repository(conn, "https://github.com/o/plain", full_name="o/plain")
    pull = {"action": "opened", "repository": {"full_name": "o/tofu"},
            "pull_request": {"head": {"sha": "a" * 40, "ref": "x"}, "base": {"sha": "b" * 40, "ref": "main"}}}
    conn.execute("SELECT * FROM nightshift.receive_github_deliveries(%s)", (Jsonb([
        {"delivery_id": "t-1", "event": "pull_request", "payload": {**pull, "number": 1}},
        {"delivery_id": "t-2", "event": "pull_request",
         "payload": {**pull, "number": 2, "repository": {"full_name": "o/plain"}}}]),))
    conn.execute("SELECT * FROM nightshift.enqueue_pr_review(%s, 3, '{}')", (tofu,))
    conn.execute("SELECT * FROM nightshift.enqueue_pr_review(%s, 4, '{}')", (plain,))
    rows = conn.execute("SELECT subject, payload ->> 'iac_tool', payload ? 'forge', payload ? 'plans'"
                        " FROM nightshift.tasks ORDER BY payload ->> 'number'").fetchall()
    assert rows == [(f"pr/{tofu}/1", "tofu", True, True), (f"pr/{plain}/2", "terraform", True, True),
                    (f"pr/{tofu}/3", "tofu", True, True), (f"pr/{plain}/4", "terraform", True, True)]


def test_maintenance_forgets_delivery_ids_only_after_github_can_no_longer_redeliver(
        conn: psycopg.Connection) -> None:
    repository(conn, "https://github.com/o/r", full_name="o/r")
    ping = {"zen": "Keep it logically awesome.", "repository": {"full_name": "o/r"}}
    receive = ("SELECT outcome FROM nightshift.receive_github_deliveries(%s)")
    for delivery in ("d-40-days", "d-10-days", "d-6-days"):
        row = conn.execute(receive, (Jsonb([{"delivery_id": delivery, "event": "ping", "payload": ping}]),))
        assert row.fetchone() == ("ignored",)
    conn.execute("UPDATE nightshift.webhook_deliveries"
                 " SET received_at = now() - (split_part(delivery_id, '-', 2) || ' days')::interval")

    def set_retention(value: str) -> None:
        conn.execute("UPDATE nightshift.settings SET value = %s WHERE key = 'retention.webhook_deliveries'",
                     (value,))

    def maintain() -> list[str]:
        before = (conn.execute("SELECT count(*) FROM nightshift.webhook_deliveries").fetchone() or (0,))[0]
        report = (conn.execute("SELECT nightshift.run_maintenance()").fetchone() or ({},))[0]
        kept = conn.execute("SELECT coalesce(array_agg(delivery_id ORDER BY delivery_id), '{}')"
                            " FROM nightshift.webhook_deliveries").fetchone()
        assert kept is not None and report["webhook_deliveries_deleted"] == before - len(kept[0])
        return list(kept[0])

    assert maintain() == ["d-10-days", "d-6-days"]  # the default keeps 30 days
    # shorter than GitHub Enterprise Server's 7 days of redelivery is refused...
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="at least 7 days"):
        set_retention("2 days")
    set_retention("7 days")
    assert maintain() == ["d-6-days"]
    # ...so a delivery GitHub can still redeliver is still known: its replay enqueues nothing
    row = conn.execute(receive, (Jsonb([{"delivery_id": "d-6-days", "event": "ping", "payload": ping}]),))
    assert row.fetchone() == ("duplicate",)
    # a value written before the check existed still keeps 7 days
    conn.execute("ALTER TABLE nightshift.settings DISABLE TRIGGER settings_validate")
    set_retention("1 hour")
    conn.execute("ALTER TABLE nightshift.settings ENABLE TRIGGER settings_validate")
    assert maintain() == ["d-6-days"]


def pull_request(number: int, head: str, updated_at: str, action: str = "synchronize") -> dict[str, object]:
    return {"action": action, "number": number, "repository": {"full_name": "o/r"},
            "pull_request": {"updated_at": updated_at, "head": {"sha": head * 40, "ref": "feature"},
                             "base": {"sha": "b" * 40, "ref": "main"}}}


def test_two_pushes_to_one_pull_request_in_one_batch_leave_one_review_of_the_newest_head(
        conn: psycopg.Connection) -> None:
    repository(conn, "https://github.com/o/r", full_name="o/r")
    batch = [{"delivery_id": "p-1", "event": "pull_request",
              "payload": pull_request(7, "1", "2026-11-28T10:00:00Z", "opened")},
             {"delivery_id": "p-2", "event": "pull_request",
              "payload": pull_request(7, "2", "2026-11-28T10:05:00Z")},
             # arrives last but describes the pull request as it was before p-2: changes nothing
             {"delivery_id": "p-3", "event": "pull_request",
              "payload": pull_request(7, "3", "2026-11-28T10:01:00Z")}]
    rows = conn.execute("SELECT ordinal, outcome, task_id FROM nightshift.receive_github_deliveries(%s)"
                        " ORDER BY ordinal", (Jsonb(batch),)).fetchall()
    assert [(o, outcome) for o, outcome, _ in rows] == [(1, "enqueued"), (2, "replaced"), (3, "stale")]
    assert len({task for _, _, task in rows}) == 1
    queued = conn.execute("SELECT payload ->> 'head_sha', payload ->> 'delivery_id' FROM nightshift.tasks"
                          " WHERE kind = 'pr-review'").fetchall()
    assert queued == [("2" * 40, "p-2")]
    linked = conn.execute("SELECT delivery_id, task_id = %s FROM nightshift.webhook_deliveries"
                          " ORDER BY delivery_id", (rows[0][2],)).fetchall()
    assert linked == [("p-1", True), ("p-2", True), ("p-3", True)]


def test_a_batch_wakes_the_dispatchers_with_one_notification(db_url: str, conn: psycopg.Connection) -> None:
    repository(conn, "https://github.com/o/r", full_name="o/r")
    batch = [{"delivery_id": f"n-{n}", "event": "pull_request",
              "payload": pull_request(n, "a", "2026-11-28T10:00:00Z", "opened")} for n in range(1, 6)]
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN nightshift_tasks")
        conn.execute("SELECT * FROM nightshift.receive_github_deliveries(%s)", (Jsonb(batch),))  # autocommit
        received = [json.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=2)]
    assert [(n["kinds"], n["count"]) for n in received] == [(["pr-review"], 5)]
