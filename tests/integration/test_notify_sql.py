"""The outbox in SQL: claiming with leases, marking, retry and dead, the wake-up, digests, and the
scan-health events (nightshift.notify_scan_health), each called directly as a DBA would."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb


def outbox(conn: psycopg.Connection, channel: str = "ops", template: str = "drift-changed",
           count: int = 1) -> list[int]:
    rows = conn.execute(
        "INSERT INTO nightshift.notifications (channel, template, payload)"
        " SELECT %s, %s, jsonb_build_object('n', g) FROM generate_series(1, %s) AS g RETURNING id",
        (channel, template, count)).fetchall()
    return [r[0] for r in rows]


def claim(conn: psycopg.Connection, worker: str = "w1", limit: int = 100, lease: str = "1 minute",
          skip: list[str] | None = None) -> list[tuple[int, int]]:
    rows = conn.execute(
        "SELECT id, attempts FROM nightshift.claim_notifications(%s, %s, %s::interval, %s) ORDER BY id",
        (worker, limit, lease, skip or [])).fetchall()
    return [(r[0], r[1]) for r in rows]


def status(conn: psycopg.Connection, notification_id: int) -> dict[str, Any]:
    row = conn.execute("SELECT status::text, attempts, last_error, locked_by, next_attempt_at > now(),"
                       " message_id, response FROM nightshift.notifications WHERE id = %s",
                       (notification_id,)).fetchone()
    assert row is not None
    return dict(zip(("status", "attempts", "error", "locked_by", "later", "message_id", "response"), row,
                    strict=True))


def test_claim_is_exclusive_and_fenced(conn: psycopg.Connection) -> None:
    ids = outbox(conn, count=3)
    first = claim(conn, "w1", limit=2)
    second = claim(conn, "w2", limit=10)
    assert [i for i, _ in first] == ids[:2] and [i for i, _ in second] == ids[2:]
    assert claim(conn, "w3") == []
    # a write naming another attempt (a stale holder) changes nothing
    stale = conn.execute("SELECT nightshift.mark_notifications_sent(%s, %s, %s)",
                         ([ids[0]], [first[0][1] + 1], ["ok"])).fetchone()
    assert stale == (0,)
    marked = conn.execute("SELECT nightshift.mark_notifications_sent(%s, %s, %s)",
                          ([i for i, _ in first], [a for _, a in first], ["ok", "ok"])).fetchone()
    assert marked == (2,)
    assert status(conn, ids[0])["status"] == "sent"
    assert status(conn, ids[1])["message_id"] == ids[0]  # sent together as one message


def test_skip_channels_leaves_their_rows(conn: psycopg.Connection) -> None:
    held = outbox(conn, "held", count=2)
    free = outbox(conn, "free", count=1)
    assert [i for i, _ in claim(conn, skip=["held"])] == free
    assert [i for i, _ in claim(conn)] == held


def test_expired_lease_is_claimed_again_then_dead(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE nightshift.settings SET value = '2' WHERE key = 'notifications.max_attempts'")
    [nid] = outbox(conn)
    assert claim(conn, "crashed") == [(nid, 1)]
    conn.execute("UPDATE nightshift.notifications SET locked_until = now() - interval '1 second'")
    assert claim(conn, "w2") == [(nid, 2)]  # the crashed sender's row goes again: at-least-once
    conn.execute("UPDATE nightshift.notifications SET locked_until = now() - interval '1 second'")
    assert claim(conn, "w3") == []
    row = status(conn, nid)
    assert row["status"] == "dead" and "w2 lost its lease" in row["error"]


def test_fail_retries_with_backoff_then_dead(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE nightshift.settings SET value = '2' WHERE key = 'notifications.max_attempts'")
    [nid] = outbox(conn)
    [(_, attempt)] = claim(conn)
    result = conn.execute("SELECT * FROM nightshift.fail_notifications(%s, %s, 'HTTP 500: rollup_error',"
                          " true)",
                          ([nid], [attempt])).fetchall()
    assert result == [(nid, "pending")]
    assert status(conn, nid)["later"] is True  # backoff
    assert claim(conn) == []
    conn.execute("UPDATE nightshift.notifications SET next_attempt_at = now()")
    [(_, attempt)] = claim(conn)
    result = conn.execute("SELECT * FROM nightshift.fail_notifications(%s, %s, 'HTTP 500', true)",
                          ([nid], [attempt])).fetchall()
    assert result == [(nid, "dead")]
    undelivered = conn.execute("SELECT id, status::text, last_error FROM nightshift.notifications_undelivered"
                               ).fetchall()
    assert undelivered == [(nid, "dead", "HTTP 500")]
    assert conn.execute("SELECT nightshift.retry_notification(%s)", (nid,)).fetchone() == (True,)
    assert status(conn, nid)["status"] == "pending" and status(conn, nid)["attempts"] == 0
    assert conn.execute("SELECT nightshift.retry_notification(%s)", (nid,)).fetchone() == (False,)


def test_permanent_failure_and_retry_after(conn: psycopg.Connection) -> None:
    gone, limited = outbox(conn, count=2)
    claimed = claim(conn)
    conn.execute("SELECT nightshift.fail_notifications(%s, %s, 'HTTP 404: channel_not_found', false,"
                 " NULL, 'channel_not_found')", ([gone], [claimed[0][1]]))
    conn.execute("SELECT nightshift.fail_notifications(%s, %s, 'HTTP 429', true, interval '30 seconds')",
                 ([limited], [claimed[1][1]]))
    assert status(conn, gone)["status"] == "failed"
    assert status(conn, gone)["response"] == "channel_not_found"
    row = conn.execute("SELECT status::text, next_attempt_at - now() BETWEEN interval '29 seconds'"
                       " AND interval '30 seconds' FROM nightshift.notifications WHERE id = %s",
                       (limited,)).fetchone()
    assert row == ("pending", True)


def test_release_gives_rows_back_without_an_attempt(conn: psycopg.Connection) -> None:
    [nid] = outbox(conn)
    [(_, attempt)] = claim(conn)
    released = conn.execute("SELECT nightshift.release_notifications(%s, %s)", ([nid], [attempt])).fetchone()
    assert released == (1,)
    assert status(conn, nid)["status"] == "pending" and status(conn, nid)["attempts"] == 0


def test_insert_wakes_listeners_once_per_statement(db_url: str, conn: psycopg.Connection) -> None:
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN nightshift_notifications")
        outbox(conn, count=50)
        notifies = list(listener.notifies(timeout=2, stop_after=2))
    assert len(notifies) == 1
    assert json.loads(notifies[0].payload)["count"] == 50


def test_digest_channels_wait_for_the_end_of_their_period(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO nightshift.notification_channels (name, kind, digest) VALUES"
                 " ('hourly', 'log', 'hourly'), ('daily', 'log', 'daily'), ('now', 'log', NULL)")
    hourly, daily, now = outbox(conn, "hourly")[0], outbox(conn, "daily")[0], outbox(conn, "now")[0]
    # each row against its own period's end (between 23:00 and midnight UTC the two ends are one time)
    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT id, next_attempt_at <= now(),"
        " next_attempt_at = date_trunc('hour', now(), 'UTC') + interval '1 hour',"
        " next_attempt_at = date_trunc('day', now(), 'UTC') + interval '1 day'"
        " FROM nightshift.notifications").fetchall()}
    assert rows[hourly][:2] == (False, True) and rows[daily][0::2] == (False, True) and rows[now][0]
    assert [i for i, _ in claim(conn)] == [now]


# scan health ----------------------------------------------------------------------------------------

def pipeline(conn: psycopg.Connection, channel: str | None = "ops") -> str:
    row = conn.execute(
        """
        WITH org AS (INSERT INTO nightshift.organizations (name) VALUES ('acme') RETURNING id),
        repo AS (INSERT INTO nightshift.repositories (organization_id, name, url)
                 SELECT id, 'infra', '/srv/infra' FROM org RETURNING id),
        pipe AS (INSERT INTO nightshift.pipelines (repository_id, name) SELECT id, 'network' FROM repo
                 RETURNING id),
        sched AS (INSERT INTO nightshift.schedules (kind, pipeline_id, notification_channel)
                  SELECT 'drift-scan', id, %s FROM pipe)
        SELECT id FROM pipe
        """, (channel,)).fetchone()
    assert row is not None
    return f"pipeline/{row[0]}"


def scan(conn: psycopg.Connection, subject: str, scan_status: str, error: str | None = None) -> int | None:
    """A scans row as the result path stores it, then the health check it calls."""
    row = conn.execute(
        "INSERT INTO nightshift.scans (attempt, kind, subject, status, error)"
        " VALUES (1, 'drift-scan', %s, %s, %s)"
        " RETURNING id", (subject, scan_status, error)).fetchone()
    assert row is not None
    result = conn.execute("SELECT nightshift.notify_scan_health(%s)", (row[0],)).fetchone()
    assert result is not None
    return result[0]


def health_rows(conn: psycopg.Connection) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT template, channel, payload FROM nightshift.notifications ORDER BY id").fetchall()]


def test_scan_health_tells_the_start_and_the_end_of_a_failure_streak(conn: psycopg.Connection) -> None:
    subject = pipeline(conn)
    assert scan(conn, subject, "CLEAN") is None
    assert scan(conn, subject, "DRIFTED") is None
    assert scan(conn, subject, "ERROR", "terraform init: 403 Forbidden") is not None
    assert scan(conn, subject, "ERROR", "terraform init: 403 again") is None  # still failing: silent
    assert scan(conn, subject, "ERROR", "terraform init: timeout") is None
    recovered = scan(conn, subject, "CLEAN")
    assert recovered is not None
    assert scan(conn, subject, "CLEAN") is None
    rows = health_rows(conn)
    assert [(t, c) for t, c, _ in rows] == [("scan-failing", "ops"), ("scan-recovered", "ops")]
    failing, back = rows[0][2], rows[1][2]
    assert failing["previous_status"] == "DRIFTED" and failing["scan_status"] == "ERROR"
    assert failing["error"] == "terraform init: 403 Forbidden" and failing["failed_scans"] == 1
    assert failing["target"] == "acme/infra/network"
    assert back["failed_scans"] == 3 and back["error"] == "terraform init: timeout"
    assert back["failing_since"] == failing["failing_since"] and back["scan_status"] == "CLEAN"


def test_scan_health_first_scan_error_and_default_channel(conn: psycopg.Connection) -> None:
    subject = pipeline(conn, channel=None)
    assert scan(conn, subject, "ERROR", "x" * 2000) is not None
    [(template, channel, payload)] = health_rows(conn)
    assert (template, channel) == ("scan-failing", "default")
    assert payload["previous_status"] is None and len(payload["error"]) == 500


def test_scan_health_other_kinds_do_not_mix(conn: psycopg.Connection) -> None:
    subject = pipeline(conn)
    scan(conn, subject, "ERROR")
    row = conn.execute("INSERT INTO nightshift.scans (attempt, kind, subject, status)"
                       " VALUES (1, 'pr-review', %s, 'CLEAN') RETURNING id", (subject,)).fetchone()
    assert row is not None
    assert conn.execute("SELECT nightshift.notify_scan_health(%s)", (row[0],)).fetchone() == (None,)


@pytest.mark.parametrize("bad", ["chat", "SLACK"])
def test_unknown_channel_kind_is_refused(conn: psycopg.Connection, bad: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO nightshift.notification_channels (name, kind, settings)"
                     " VALUES ('x', %s, %s)", (bad, Jsonb({})))


def channel(conn: psycopg.Connection, name: str, min_interval: str = "1 hour") -> None:
    conn.execute("INSERT INTO nightshift.notification_channels (name, kind, min_interval)"
                 " VALUES (%s, 'log', %s::interval)", (name, min_interval))


def hold(conn: psycopg.Connection, name: str) -> dict[str, Any]:
    row = conn.execute("SELECT locked_by, coalesce(locked_until > now(), false),"
                       " coalesce(held_until > now() + interval '50 minutes', false)"
                       " FROM nightshift.notification_channels WHERE name = %s", (name,)).fetchone()
    assert row is not None
    return dict(zip(("locked_by", "leased", "held_an_hour"), row, strict=True))


def test_a_channel_is_sent_to_by_one_sender_and_paced_across_senders(conn: psycopg.Connection) -> None:
    """The rate limit lives in the channel's row: a claim takes the channel's lease with its rows,
    marking them sent starts the channel's min_interval, and every sender's claim honours both."""
    channel(conn, "ops", "1 hour")
    first = outbox(conn, "ops", count=2)
    other = outbox(conn, "elsewhere", count=1)  # no channel row: nothing to pace
    assert [i for i, _ in claim(conn, "w1", limit=1)] == first[:1]
    assert hold(conn, "ops") == {"locked_by": "w1", "leased": True, "held_an_hour": False}
    # w2 gets neither the channel's other row (w1 is sending to it) nor anything of it later
    assert [i for i, _ in claim(conn, "w2")] == other
    conn.execute("SELECT nightshift.mark_notifications_sent(%s, %s, %s)", (first[:1], [1], ["ok"]))
    assert hold(conn, "ops") == {"locked_by": None, "leased": False, "held_an_hour": True}
    assert claim(conn, "w2") == [] and claim(conn, "w1") == []  # held for its min_interval
    conn.execute("UPDATE nightshift.notification_channels SET held_until = now() - interval '1 second'")
    assert claim(conn, "w2") == [(first[1], 1)]


def test_a_429_holds_the_channel_for_every_sender(conn: psycopg.Connection) -> None:
    channel(conn, "ops", "0")
    ids = outbox(conn, "ops", count=2)
    claimed = claim(conn, "w1", limit=1)
    conn.execute("SELECT * FROM nightshift.fail_notifications(%s, %s, 'HTTP 429', true, '1 hour')",
                 ([i for i, _ in claimed], [a for _, a in claimed]))
    assert hold(conn, "ops")["held_an_hour"] and claim(conn, "w2") == []
    assert status(conn, ids[0])["status"] == "pending"


def test_a_failure_that_cannot_be_retried_frees_the_channel_at_once(conn: psycopg.Connection) -> None:
    channel(conn, "ops", "0")
    ids = outbox(conn, "ops", count=2)
    [(one, attempt)] = claim(conn, "w1", limit=1)
    conn.execute("SELECT * FROM nightshift.fail_notifications(%s, %s, 'HTTP 404', false)", ([one], [attempt]))
    assert claim(conn, "w2") == [(ids[1], 1)]


def test_a_grouped_message_keeps_its_channel_until_all_its_rows_are_marked(conn: psycopg.Connection) -> None:
    """A row of a group that does not render is failed before the group is sent: the channel stays
    leased to its sender until the rest is marked."""
    channel(conn, "ops", "0")
    ids = outbox(conn, "ops", count=2)
    claimed = claim(conn, "w1")
    conn.execute("SELECT * FROM nightshift.fail_notifications(%s, %s, 'does not render', false)",
                 ([claimed[0][0]], [claimed[0][1]]))
    assert hold(conn, "ops")["locked_by"] == "w1"
    outbox(conn, "ops", count=1)
    assert claim(conn, "w2") == []
    conn.execute("SELECT nightshift.mark_notifications_sent(%s, %s, %s)", ([ids[1]], [1], ["ok"]))
    assert hold(conn, "ops")["locked_by"] is None and len(claim(conn, "w2")) == 1


def test_an_expired_channel_lease_frees_the_channel(conn: psycopg.Connection) -> None:
    """A sender that died while sending: its rows and its channel lease expire together."""
    channel(conn, "ops", "0")
    ids = outbox(conn, "ops", count=1)
    assert claim(conn, "w1", lease="1 minute") == [(ids[0], 1)]
    conn.execute("UPDATE nightshift.notifications SET locked_until = now() - interval '1 second'")
    conn.execute("UPDATE nightshift.notification_channels SET locked_until = now() - interval '1 second'")
    assert claim(conn, "w2") == [(ids[0], 2)]
    assert hold(conn, "ops")["locked_by"] == "w2"
    # w1 comes back: its fenced mark changes nothing, and does not free w2's channel
    assert conn.execute("SELECT nightshift.mark_notifications_sent(%s, %s, %s)",
                        ([ids[0]], [1], ["ok"])).fetchone() == (0,)
    assert hold(conn, "ops")["locked_by"] == "w2"


def test_maintenance_prunes_sent_notifications_after_their_retention(conn: psycopg.Connection) -> None:
    ids = outbox(conn, "ops", count=5)
    conn.execute("""
        UPDATE nightshift.notifications AS n
           SET status = v.status::nightshift.notification_status,
               sent_at = CASE WHEN v.status = 'sent' THEN now() - v.age::interval END,
               created_at = now() - v.age::interval
          FROM (VALUES (%s, 'sent', '31 days'), (%s, 'sent', '2 days'), (%s, 'failed', '40 days'),
                       (%s, 'dead', '40 days'), (%s, 'pending', '40 days')) AS v(id, status, age)
         WHERE n.id = v.id""", ids)
    report = conn.execute("SELECT nightshift.run_maintenance()").fetchone()[0]
    assert report["notifications_deleted"] == 1  # the default retention.notifications: 30 days
    left = [r[0] for r in conn.execute("SELECT id FROM nightshift.notifications ORDER BY id").fetchall()]
    assert left == ids[1:]  # failed, dead and pending rows stay whatever their age
    conn.execute("UPDATE nightshift.settings SET value = '1 day' WHERE key = 'retention.notifications'")
    assert conn.execute("SELECT nightshift.run_maintenance()").fetchone()[0]["notifications_deleted"] == 1
    assert ids[1] not in [r[0] for r in conn.execute("SELECT id FROM nightshift.notifications").fetchall()]
    with pytest.raises(psycopg.errors.DatabaseError, match=r"retention\.notifications"):
        conn.execute("UPDATE nightshift.settings SET value = 'soon' WHERE key = 'retention.notifications'")
