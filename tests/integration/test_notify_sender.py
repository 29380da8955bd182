"""The notification sender against real parts: PostgreSQL, a loopback HTTP server answering like
Slack (tests/support/slack_server.py), and the outbox rows the result transaction writes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from dispatcher.drift.plan import parse_plan
from dispatcher.notify.channels import Outgoing, build
from dispatcher.notify.render import Renderer
from dispatcher.notify.sender import SenderConfig
from dispatcher.notify.store import NotifyStore
from tests.support import blockkit
from tests.support.outbox import add_channel, add_rows, rows, send_outbox
from tests.support.slack_server import SlackLike, slack_server

PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "plans"
SSM_SECRETS = ("s3cr3t-Hunter2-initial", "0ut-0f-band-S3cret-rotated")
WEBHOOK_TOKEN = "T0001/B0002/sEcReTwEbHoOkToKeN"


@pytest.fixture
def slack() -> Any:
    with slack_server() as server:
        yield server


def slack_channel(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, server: SlackLike, name: str,
                  path: str, **kwargs: Any) -> None:
    """A slack channel whose webhook URL (with a secret-looking token) is in an environment variable."""
    variable = f"NS_TEST_URL_{name.upper().replace('-', '_')}"
    monkeypatch.setenv(variable, server.url(f"{path}/{WEBHOOK_TOKEN}"))
    settings = {"webhook_url": f"env:{variable}", **kwargs.pop("settings", {})}
    add_channel(conn, name, "slack", settings, **kwargs)


def pipeline(conn: psycopg.Connection, channel: str) -> str:
    row = conn.execute(
        """
        WITH org AS (INSERT INTO nightshift.organizations (name) VALUES ('acme') RETURNING id),
        repo AS (INSERT INTO nightshift.repositories (organization_id, name, url)
                 SELECT id, 'infra', '/srv/infra' FROM org RETURNING id),
        pipe AS (INSERT INTO nightshift.pipelines (repository_id, name) SELECT id, 'prod-network' FROM repo
                 RETURNING id),
        sched AS (INSERT INTO nightshift.schedules (kind, pipeline_id, notification_channel)
                  SELECT 'drift-scan', id, %s FROM pipe)
        SELECT id FROM pipe
        """, (channel,)).fetchone()
    assert row is not None
    return f"pipeline/{row[0]}"


def record_scan(conn: psycopg.Connection, subject: str, status: str, findings: list[dict[str, Any]]) -> int:
    """A drift-scan task run and stored as the dispatcher does: nightshift.record_scan."""
    task = conn.execute(
        "INSERT INTO nightshift.tasks (kind, subject, status, attempt, locked_by, locked_until, started_at)"
        " VALUES ('drift-scan', %s, 'running', 1, 'test', now() + interval '1 hour', now()) RETURNING id",
        (subject,)).fetchone()
    assert task is not None
    row = conn.execute("SELECT nightshift.record_scan(%s, 1, %s, '{}', %s, '{}', NULL, now())",
                       (task[0], status, Jsonb(findings))).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def drift(address: str, *paths: str) -> dict[str, Any]:
    return {"kind": "drift", "fingerprint": f"drift:{address}", "address": address,
            "type": address.split(".")[-2], "change": "update", "severity": "medium",
            "attributes": [{"path": p, "before": "(masked)", "after": "(masked)"} for p in paths]}


def send(url: str, **kwargs: Any) -> Any:
    return asyncio.run(send_outbox(url, **kwargs))


def section_text(body: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in body["blocks"] if b["type"] == "section")


# one scan, one message ------------------------------------------------------------------------------

def test_drift_then_revert_one_message_each(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The drift demo's story: out-of-band change -> DRIFTED -> one message with both resources;
    revert -> CLEAN -> one 'resolved' message."""
    slack_channel(conn, monkeypatch, slack, "ops", "/ok/ops")
    subject = pipeline(conn, "ops")
    record_scan(conn, subject, "DRIFTED", [drift("aws_security_group.web", "ingress"),
                                           drift("aws_s3_bucket.logs", "tags.env", "tags_all.env")])
    send(db_url)
    [first] = slack.received()
    body = first.json()
    assert blockkit.problems(body) == []
    assert body["blocks"][0]["text"]["text"] == "Drift: 2 new on acme/infra/prod-network"
    assert "aws_security_group.web (update: ingress)" in section_text(body)
    assert "aws_s3_bucket.logs (update: tags.env, tags_all.env)" in section_text(body)
    assert first.headers["Content-Type"].startswith("application/json")

    record_scan(conn, subject, "CLEAN", [])
    send(db_url)
    [_, second] = slack.received()
    body = second.json()
    assert blockkit.problems(body) == []
    assert body["blocks"][0]["text"]["text"] == "Drift: 2 resolved on acme/infra/prod-network"
    assert "Resolved (2)" in section_text(body)
    assert [r["status"] for r in rows(conn).values()] == ["sent", "sent"]
    assert {r["response"] for r in rows(conn).values()} == {"ok"}


def test_two_hundred_transitions_in_one_scan_are_one_message(db_url: str, conn: psycopg.Connection,
                                                             slack: SlackLike,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    slack_channel(conn, monkeypatch, slack, "ops", "/ok/ops")
    subject = pipeline(conn, "ops")
    record_scan(conn, subject, "DRIFTED", [drift(f"aws_s3_bucket.b{i:03}", "tags.env") for i in range(200)])
    send(db_url)
    [request] = slack.received()
    body = request.json()
    assert blockkit.problems(body) == []
    assert body["blocks"][0]["text"]["text"] == "Drift: 200 new on acme/infra/prod-network"
    assert "…and 150 more" in section_text(body)  # the payload lists 50 (notifications.max_findings)


def test_a_burst_of_scans_becomes_a_handful_of_messages(db_url: str, conn: psycopg.Connection,
                                                        slack: SlackLike,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """200 transitions from 200 scans while the channel is held back by its rate limit."""
    slack_channel(conn, monkeypatch, slack, "ops", "/ok/ops", min_interval=3.0)
    payload = {"subject": "pipeline/1", "target": "acme/infra/net", "task_kind": "drift-scan", "scan_id": 1,
               "scan_status": "DRIFTED", "counts": {"new": 1, "open": 1},
               "new": [{"id": 1, "kind": "drift", "address": "aws_s3_bucket.a", "change": "update"}]}

    async def burst(aconn: psycopg.AsyncConnection[Any]) -> None:
        for _ in range(200):  # each its own transaction, as 200 scans would commit
            await aconn.execute("INSERT INTO nightshift.notifications (channel, template, payload)"
                                " VALUES ('ops', 'drift-changed', %s)", (Jsonb(payload),))

    stats = send(db_url, during=burst, until_sql="SELECT count(*) = 200 FROM nightshift.notifications"
                                                 " WHERE status = 'sent'")
    requests = slack.received()
    assert 1 <= len(requests) <= 5, len(requests)
    assert stats.sent == 200 and stats.messages == len(requests)
    for request in requests:
        assert blockkit.problems(request.json()) == []
    assert len({r["message_id"] for r in rows(conn).values()}) == len(requests)


def test_a_message_leaves_on_the_insert_wake_up(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """With a 60 s poll interval, only the NOTIFY of the insert can make the second row leave."""
    slack_channel(conn, monkeypatch, slack, "ops", "/ok/ops")
    payload = {"subject": "pipeline/1", "task_kind": "drift-scan", "scan_status": "ERROR",
               "error": "boom"}

    async def later(aconn: psycopg.AsyncConnection[Any]) -> None:
        await aconn.execute("INSERT INTO nightshift.notifications (channel, template, payload)"
                            " VALUES ('ops', 'scan-failing', %s)", (Jsonb(payload),))
        for _ in range(400):  # the first row is sent by the start-up claim
            if len(slack.received()) == 1:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the sender is now waiting for a NOTIFY (or its 60 s poll)
        await aconn.execute("INSERT INTO nightshift.notifications (channel, template, payload)"
                            " VALUES ('ops', 'scan-failing', %s)", (Jsonb(payload),))

    send(db_url, config=SenderConfig(poll_interval=60.0), during=later, timeout=20.0,
         until_sql="SELECT count(*) = 2 FROM nightshift.notifications WHERE status = 'sent'")
    assert len(slack.received()) == 2


# answers like Slack's -------------------------------------------------------------------------------

def test_429_honours_retry_after(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    slack_channel(conn, monkeypatch, slack, "limited", "/ratelimit/1")
    [nid] = add_rows(conn, "limited", [{"subject": "pipeline/1", "error": "x"}], template="scan-failing")
    send(db_url, until_sql="SELECT status = 'sent' FROM nightshift.notifications")
    first, second = slack.received()
    row = rows(conn)[nid]
    assert row["status"] == "sent" and row["attempts"] == 2
    assert first.body == second.body


def test_retry_after_is_waited_for(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    slack_channel(conn, monkeypatch, slack, "limited", "/ratelimit/1")
    add_rows(conn, "limited", [{"subject": "pipeline/1"}], template="scan-failing")
    started = time.monotonic()
    send(db_url, until_sql="SELECT status = 'sent' FROM nightshift.notifications")
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 (a lower bound: cannot flake when slow)


@pytest.mark.parametrize(("path", "error"), [
    ("/gone", "HTTP 404: channel_not_found"),
    ("/archived", "HTTP 410: channel_is_archived"),
])
def test_a_4xx_that_cannot_succeed_fails_at_once(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                                                 monkeypatch: pytest.MonkeyPatch, path: str,
                                                 error: str) -> None:
    slack_channel(conn, monkeypatch, slack, "dead-end", path)
    [nid] = add_rows(conn, "dead-end", [{"subject": "pipeline/1"}], template="scan-failing")
    stats = send(db_url)
    row = rows(conn)[nid]
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 1, error)
    assert len(slack.received()) == 1 and stats.failed == 1


def test_5xx_and_timeouts_retry_later(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    slack_channel(conn, monkeypatch, slack, "broken", "/error")
    slack_channel(conn, monkeypatch, slack, "slow", "/slow", settings={"timeout": 0.5})
    broken = add_rows(conn, "broken", [{"subject": "pipeline/1"}], template="scan-failing")[0]
    slow = add_rows(conn, "slow", [{"subject": "pipeline/2"}], template="scan-failing")[0]
    send(db_url)
    after = rows(conn)
    assert (after[broken]["status"], after[broken]["last_error"]) == ("pending", "HTTP 500: rollup_error")
    assert after[slow]["status"] == "pending"
    assert after[slow]["last_error"].startswith("no answer within the timeout")
    future = conn.execute("SELECT bool_and(next_attempt_at > now() + interval '10 seconds')"
                          " FROM nightshift.notifications").fetchone()
    assert future == (True,)  # backoff: 15 s and more


def test_bad_input_fails_its_row_and_spares_the_others(db_url: str, conn: psycopg.Connection,
                                                       slack: SlackLike, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    slack_channel(conn, monkeypatch, slack, "good", "/ok/good")
    slack_channel(conn, monkeypatch, slack, "portal", "/html")
    slack_channel(conn, monkeypatch, slack, "huge", "/huge")
    monkeypatch.setenv("NS_TEST_MALFORMED", "hooks.slack.com/services/no-scheme")
    add_channel(conn, "malformed", "slack", {"webhook_url": "env:NS_TEST_MALFORMED"})
    add_channel(conn, "no-env", "slack", {"webhook_url": "env:NS_TEST_NOT_SET"})
    add_channel(conn, "plain-secret", "slack", {"webhook_url": "https://hooks.example/T/B/x"})
    payload = {"subject": "pipeline/1"}
    ids = {name: add_rows(conn, name, [payload], template="scan-failing")[0]
           for name in ("portal", "huge", "malformed", "no-env", "plain-secret", "nowhere")}
    ids["bad-template"] = add_rows(conn, "good", [payload], template="no-such-template")[0]
    ids["good"] = add_rows(conn, "good", [payload], template="scan-failing")[0]
    send(db_url)
    after = rows(conn)
    expected = {
        "portal": ("failed", "answered 200 with an HTML page"),
        "huge": ("pending", "HTTP 500: a response larger than 64 KiB"),
        "malformed": ("failed", "malformed URL: scheme must be https or http"),
        "no-env": ("failed", "channel no-env: secret env:NS_TEST_NOT_SET: the environment variable"),
        "plain-secret": ("failed", "channel plain-secret: setting webhook_url must be a secret reference"),
        "nowhere": ("failed", "no channel named 'nowhere'"),
        "bad-template": ("failed", "no template 'no-such-template'"),
    }
    for name, (status, error) in expected.items():
        assert after[ids[name]]["status"] == status, name
        assert after[ids[name]]["last_error"].startswith(error), (name, after[ids[name]]["last_error"])
    assert after[ids["good"]]["status"] == "sent"
    assert len(slack.received("/ok/good/")) == 1

    from dispatcher.cli import main
    assert main(["notify", "list", "--database-url", db_url, "--status", "failed"]) == 0
    listing = capsys.readouterr().out
    assert "no template 'no-such-template'" in listing and "answered 200 with an HTML page" in listing


def test_crash_between_send_and_mark_sends_at_most_one_duplicate(db_url: str, conn: psycopg.Connection,
                                                                  slack: SlackLike,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A sender that claimed, sent, and died before marking: its lease expires, the message goes again
    once. Delivery is at-least-once."""
    slack_channel(conn, monkeypatch, slack, "ops", "/ok/ops")
    [nid] = add_rows(conn, "ops", [{"subject": "pipeline/1", "error": "x"}], template="scan-failing")

    async def crashed_sender() -> None:
        store = await NotifyStore.open(db_url)
        try:
            [claimed] = await store.claim("crashed", 10, 30.0, [])
            [row] = (await store.channels(["ops"])).values()
            renderer = Renderer()
            channel = build(row.kind, row.name, row.settings, renderer)
            message = renderer.render(claimed.id, claimed.template, claimed.payload)
            assert (await channel.send(Outgoing("ops", [message]))).ok
            await channel.close()
        finally:
            await store.close()  # ... and never marks it sent

    asyncio.run(crashed_sender())
    assert rows(conn)[nid]["status"] == "sending"
    conn.execute("UPDATE nightshift.notifications SET locked_until = now() - interval '1 second'")
    send(db_url)
    assert len(slack.received()) == 2  # the original and exactly one duplicate
    assert rows(conn)[nid]["status"] == "sent" and rows(conn)[nid]["attempts"] == 2
    send(db_url)
    assert len(slack.received()) == 2


def test_two_senders_never_send_one_row_twice(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(20):
        slack_channel(conn, monkeypatch, slack, f"c{index}", f"/ok/c{index}")
        add_rows(conn, f"c{index}", [{"subject": f"pipeline/{index}"}] * 5, template="scan-failing")

    async def both() -> None:
        await asyncio.gather(send_outbox(db_url, config=SenderConfig(worker="a", batch=7, poll_interval=0.1)),
                             send_outbox(db_url, config=SenderConfig(worker="b", batch=7, poll_interval=0.1)))

    asyncio.run(both())
    delivered = [n["id"] for r in slack.received() for n in _ids_in(r.json())]
    assert all(r["status"] == "sent" for r in rows(conn).values())
    assert sum(int(n) for n in delivered) == len(rows(conn))  # every row counted once


def test_two_senders_keep_one_channel_rate_limit(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Two senders (as on two machines: each its own connections and memory) share a channel's limit
    through its row: never two messages within min_interval, however the rows arrive. With the limit
    kept in each sender's memory, each would send once a second, two messages a second together."""
    slack_channel(conn, monkeypatch, slack, "ops", "/ok/ops", min_interval=1.0)
    payload = {"subject": "pipeline/1", "error": "boom"}

    async def trickle(aconn: psycopg.AsyncConnection[Any]) -> None:
        for _ in range(40):  # a row every 0.1 s for 4 s, each its own commit (and NOTIFY)
            await aconn.execute("INSERT INTO nightshift.notifications (channel, template, payload)"
                                " VALUES ('ops', 'scan-failing', %s)", (Jsonb(payload),))
            await asyncio.sleep(0.1)

    async def both() -> list[Any]:
        configs = [SenderConfig(worker=name, poll_interval=0.05) for name in ("a", "b")]
        return await asyncio.gather(
            send_outbox(db_url, config=configs[0], during=trickle, timeout=30,
                        until_sql="SELECT count(*) = 40 FROM nightshift.notifications WHERE status = 'sent'"),
            send_outbox(db_url, config=configs[1], timeout=30,
                        until_sql="SELECT count(*) = 40 FROM nightshift.notifications WHERE status = 'sent'"))

    stats = asyncio.run(both())
    arrivals = [r.at for r in slack.received("/ok/ops")]
    assert sum(s.sent for s in stats) == 40 and sum(s.messages for s in stats) == len(arrivals)
    assert len(arrivals) >= 3, arrivals  # four seconds of rows: several messages, each grouping some
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    # the hold starts when a message is marked sent, after the endpoint answered: every gap is the
    # interval or more (0.05 s for the clocks: the database's now() against this process's monotonic)
    assert min(gaps) >= 0.95, gaps


def _ids_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    """How many rows a Slack body carried: 1, or the grouped header's 'N updates'."""
    header = body["blocks"][0]["text"]["text"]
    count = int(header.split(": ")[1].split()[0]) if header.startswith("Nightshift: ") else 1
    return [{"id": count}]


def test_digest_is_one_message_per_period(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    slack_channel(conn, monkeypatch, slack, "daily", "/ok/daily", digest="daily")
    add_rows(conn, "daily", [{"subject": f"pipeline/{i}", "error": "boom"} for i in range(5)],
             template="scan-failing")
    send(db_url)
    assert slack.received() == []  # not before the end of the day
    conn.execute("UPDATE nightshift.notifications SET next_attempt_at = now()")  # the day is over
    send(db_url)
    [request] = slack.received()
    body = request.json()
    assert body["blocks"][0]["text"]["text"] == "Nightshift daily digest: 5 updates"
    assert blockkit.problems(body) == []


# secrets --------------------------------------------------------------------------------------------

def test_secrets_never_reach_rows_logs_or_output(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The Slack webhook URL (its token) and the SSM SecureString of a real plan appear nowhere."""
    caplog.set_level(logging.DEBUG)
    slack_channel(conn, monkeypatch, slack, "ops", "/ok/ops")
    slack_channel(conn, monkeypatch, slack, "gone", "/gone")
    subject = pipeline(conn, "ops")
    findings = [f.to_json() for f in parse_plan((PLANS / "ssm_secret_changed.json").read_bytes())]
    assert findings, "the SecureString plan has drift"
    record_scan(conn, subject, "DRIFTED", findings)
    add_rows(conn, "gone", [{"subject": subject}], template="scan-failing")
    send(db_url)

    from dispatcher.cli import main
    for argv in (["channels", "list"], ["notify", "list"], ["channels", "test", "ops"],
                 ["channels", "test", "gone"]):
        main([*argv, "--database-url", db_url])
    output = capsys.readouterr()
    everything = "\n".join([
        output.out, output.err, caplog.text,
        json.dumps(conn.execute("SELECT json_agg(n) FROM nightshift.notifications AS n").fetchone(),
                   default=str),
        json.dumps(conn.execute("SELECT json_agg(c) FROM nightshift.notification_channels AS c").fetchone()),
        *(r.body.decode() for r in slack.received()),
    ])
    assert "aws_ssm_parameter" in everything  # the finding itself is told
    for secret in (WEBHOOK_TOKEN, "sEcReTwEbHoOkToKeN", *SSM_SECRETS):
        assert secret not in everything, secret
    assert "env:NS_TEST_URL_GONE" in output.out  # the test of the 404 channel names the reference


# webhooks -------------------------------------------------------------------------------------------

def verify(key: bytes, headers: dict[str, str], body: bytes, now: float, tolerance: float = 300) -> bool:
    """A receiver's check, written from the documented scheme (not from the sender's code)."""
    timestamp = headers.get("X-Nightshift-Timestamp", "")
    signature = headers.get("X-Nightshift-Signature", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = "sha256=" + hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def test_webhook_is_signed_and_verifiable(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key_file = tmp_path / "hook-key"
    key_file.write_text("k3y-0f-the-r3ceiver\n")
    add_channel(conn, "hook", "webhook", {"url": slack.url("/ok/hook"), "secret": f"file:{key_file}"})
    subject = pipeline(conn, "hook")
    record_scan(conn, subject, "DRIFTED", [drift("aws_s3_bucket.logs", "tags.env")])
    send(db_url)
    [request] = slack.received()
    assert verify(b"k3y-0f-the-r3ceiver", request.headers, request.body, time.time())
    assert not verify(b"another key", request.headers, request.body, time.time())
    assert not verify(b"k3y-0f-the-r3ceiver", request.headers, request.body + b" ", time.time())
    assert not verify(b"k3y-0f-the-r3ceiver", request.headers, request.body, time.time() + 3600)  # replay
    body = request.json()
    [notification] = body["notifications"]
    assert notification["template"] == "drift-changed" and notification["payload"]["subject"] == subject
    assert notification["title"] == "Drift: 1 new on acme/infra/prod-network"
    assert "aws_s3_bucket.logs" in notification["text"]
    assert request.headers["X-Nightshift-Delivery"] == f"{notification['id']}-1"
    assert b"k3y-0f-the-r3ceiver" not in request.body


# the commands ---------------------------------------------------------------------------------------

def test_channels_commands(db_url: str, conn: psycopg.Connection, slack: SlackLike,
                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from dispatcher.cli import main

    monkeypatch.setenv("NS_TEST_SLACK", slack.url(f"/ok/{WEBHOOK_TOKEN}"))
    url = ["--database-url", db_url]
    assert main(["channels", "add", "ops", "--kind", "slack", "--url", slack.url("/ok/x"), *url]) == 2
    assert "must be a secret reference" in capsys.readouterr().err
    assert main(["channels", "add", "ops", "--kind", "slack", "--url", "env:NS_TEST_SLACK", *url]) == 0
    assert main(["channels", "add", "mail", "--kind", "email", "--smtp-host", "127.0.0.1", *url]) == 2
    assert "needs from, to" in capsys.readouterr().err
    assert main(["channels", "add", "x", "--kind", "log", "--organization", "nope", *url]) == 3  # not found
    assert "no organization named 'nope'" in capsys.readouterr().err
    assert main(["channels", "list", *url]) == 0
    listing = capsys.readouterr().out
    assert "env:NS_TEST_SLACK" in listing and WEBHOOK_TOKEN not in listing
    assert main(["channels", "test", "ops", *url]) == 0
    assert "sent; the endpoint answered: ok" in capsys.readouterr().out
    body = slack.received()[0].json()
    assert body["blocks"][0]["text"]["text"] == "Nightshift test message for ops"
    assert main(["channels", "disable", "ops", *url]) == 0
    [nid] = add_rows(conn, "ops", [{"subject": "pipeline/1"}], template="scan-failing")
    send(db_url)
    assert rows(conn)[nid]["last_error"] == "channel ops is disabled"
    assert main(["channels", "disable", "--enable", "ops", *url]) == 0
    assert main(["notify", "retry", str(nid), *url]) == 0
    send(db_url)
    assert rows(conn)[nid]["status"] == "sent"
    assert main(["notify", "retry", str(nid), *url]) == 1
    assert "is not failed or dead" in capsys.readouterr().err
