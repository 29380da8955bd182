"""One result path for every kind (nightshift.record_result): what differs per kind is a row of
nightshift.task_kinds, and the schedule's switches travel in the task's payload."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.integration.test_findings_lifecycle import LOGS, claim, findings, make_pipeline, notifications

RECORD = "SELECT stored, scan_id FROM nightshift.record_result(%s, %s, %s)"


def record(conn: psycopg.Connection, task_id: int, result: dict[str, Any], attempt: int = 1) -> tuple:
    row = conn.execute(RECORD, (task_id, attempt, Jsonb(result))).fetchone()
    assert row is not None
    return tuple(row)


def set_payload(conn: psycopg.Connection, task_id: int, payload: dict[str, Any]) -> None:
    conn.execute("UPDATE nightshift.tasks SET payload = %s WHERE id = %s", (Jsonb(payload), task_id))


def remediation_tasks(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM nightshift.tasks WHERE kind = 'drift-remediation'").fetchone()
    assert row is not None
    return int(row[0])


def test_a_result_without_a_scan_completes_the_task_and_keeps_its_summary(conn: psycopg.Connection) -> None:
    task_id = claim(conn, "repo/1", kind="command")
    assert record(conn, task_id, {"summary": {"checked": 12, "note": "all fine"}}) == (True, None)
    row = conn.execute("SELECT status::text, summary FROM nightshift.tasks WHERE id = %s",
                       (task_id,)).fetchone()
    assert row == ("done", {"checked": 12, "note": "all fine"})
    assert conn.execute("SELECT count(*) FROM nightshift.scans").fetchone() == (0,)
    # a stale holder (another attempt owns the task now) stores nothing
    assert record(conn, task_id, {"summary": {"late": True}}, attempt=0) == (False, None)


def test_a_kinds_template_comes_from_its_row_and_none_means_no_outbox_row(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO nightshift.task_kinds (kind, description, finding_kinds, scan_statuses,"
                 " notification_template) VALUES ('acme-scan', 'a plug-in scanner', '{acme}',"
                 " '{CLEAN,FAILED_CHECKS}', 'acme-changed'), ('quiet-scan', 'tells nobody', '{quiet}',"
                 " '{CLEAN,FAILED_CHECKS}', NULL)")
    finding = {"kind": "acme", "fingerprint": "acme:1", "severity": "low", "address": "x.y"}
    record(conn, claim(conn, "repo/1", kind="acme-scan"),
           {"scan": {"status": "FAILED_CHECKS", "findings": [finding]}})
    record(conn, claim(conn, "repo/2", kind="quiet-scan"),
           {"scan": {"status": "FAILED_CHECKS", "findings": [{**finding, "kind": "quiet"}]}})
    sent = [(n["template"], n["payload"]["subject"]) for n in notifications(conn)]
    assert sent == [("acme-changed", "repo/1")]


def test_a_scan_status_the_kind_does_not_have_is_refused(conn: psycopg.Connection) -> None:
    task_id = claim(conn, "cloud_integration/1", kind="compliance-scan")
    refused = "a compliance-scan scan cannot be DRIFTED"
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=refused):
        record(conn, task_id, {"scan": {"status": "DRIFTED", "findings": []}})
    # ERROR is every kind's, and a kind without a row (a plug-in) may use any status
    assert record(conn, task_id, {"scan": {"status": "ERROR", "error": "no credentials"}})[0] is True
    assert record(conn, claim(conn, "repo/3", kind="plugin"), {"scan": {"status": "DRIFTED"}})[0] is True


def test_the_payloads_channel_is_where_the_notification_goes(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn, channel="#schedule-channel")
    task_id = claim(conn, subject)
    set_payload(conn, task_id, {"notification_channel": "#when-enqueued"})
    record(conn, task_id, {"scan": {"status": "DRIFTED", "findings": [LOGS]}})
    assert [n["channel"] for n in notifications(conn)] == ["#when-enqueued"]


def test_a_payload_that_said_no_remediation_is_obeyed_even_if_the_switches_are_on_now(
    conn: psycopg.Connection,
) -> None:
    subject = make_pipeline(conn, auto_create_pr=True, repo_auto=True, org_auto=True)
    task_id = claim(conn, subject)
    set_payload(conn, task_id, {"auto_create_pr": False})  # the schedule's switch when it was enqueued
    record(conn, task_id, {"scan": {"status": "DRIFTED", "findings": [LOGS]}})
    assert findings(conn, subject)["aws_s3_bucket.logs"]["status"] == "OPEN"
    assert remediation_tasks(conn) == 0
    # the same switch on in the payload: the live switches (all on) let it through
    task_id = claim(conn, subject)
    set_payload(conn, task_id, {"auto_create_pr": True})
    record(conn, task_id, {"scan": {"status": "DRIFTED", "findings": [LOGS]}})
    assert remediation_tasks(conn) == 1


def test_a_result_that_is_not_an_object_is_refused(conn: psycopg.Connection) -> None:
    task_id = claim(conn, "repo/1", kind="command")
    refused = "a result must be a JSON object, not array"
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=refused):
        record(conn, task_id, [])  # type: ignore[arg-type]
