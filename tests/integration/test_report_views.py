"""The reporting views (sql/views/) on a history stored through record_result: each answers its
question for one organization, shows nothing of another, and stays a security_invoker view."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.report_support import ARN, INSTANCE, History, make_history

# the views of issue 18, each with the organization_id column a DBA filters on
REPORT_VIEWS = ("subjects", "findings_report", "open_findings",
                "target_status", "drift_status", "findings_open_summary", "findings_mttr",
                "findings_open_trend", "scan_history", "scan_error_streaks", "queue_tasks_recent",
                "queue_health", "queue_throughput", "compliance_posture", "compliance_scores", "cost_savings",
                "resource_findings")


def rows(conn: psycopg.Connection, view: str, org: int, where: str = "true") -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT * FROM nightshift.{view} WHERE organization_id = %s AND {where}",
                           (org,)).fetchall()


@pytest.fixture
def history(conn: psycopg.Connection) -> History:
    return make_history(conn)


def test_every_report_view_is_security_invoker_and_has_organization_id(conn: psycopg.Connection) -> None:
    found = conn.execute(
        "SELECT c.relname, coalesce('security_invoker=true' = ANY (c.reloptions), false),"
        "       EXISTS (SELECT FROM pg_attribute AS a"
        "                WHERE a.attrelid = c.oid AND a.attname = 'organization_id')"
        "  FROM pg_class AS c WHERE c.relnamespace = 'nightshift'::regnamespace AND c.relkind = 'v'"
        "   AND c.relname = ANY (%s)", (list(REPORT_VIEWS),)).fetchall()
    assert sorted(found) == sorted((view, True, True) for view in REPORT_VIEWS)
    for view in REPORT_VIEWS:  # and each says what it answers
        comment = conn.execute("SELECT obj_description(%s::regclass)", (f"nightshift.{view}",)).fetchone()
        assert comment is not None and comment[0], view


def test_an_empty_database_gives_empty_views(conn: psycopg.Connection) -> None:
    for view in REPORT_VIEWS:
        assert conn.execute(f"SELECT count(*) FROM nightshift.{view}").fetchone() == (0,), view


def test_drift_status_per_pipeline(conn: psycopg.Connection, history: History) -> None:
    status = {r["subject"]: r for r in rows(conn, "drift_status", history.acme)}
    assert set(status) == {history.network, history.dns, history.edge}
    network, dns, edge = status[history.network], status[history.dns], status[history.edge]
    assert (network["last_status"], network["open_findings"], network["worst_severity"]) == (
        "DRIFTED", 1, "high")
    assert network["last_clean_at"] is None and network["overdue"] is False
    assert network["status_24h_ago"] is None
    # dns: clean once, then two errors: its last success is the clean scan, and it is not overdue yet
    assert (dns["last_status"], dns["error_streak"], dns["open_findings"]) == ("ERROR", 2, 0)
    assert dns["last_clean_at"] == dns["last_success_at"] is not None
    assert "registry unreachable" in dns["last_error"]
    # edge: HOURLY, never scanned, its schedule 2 hours old: overdue; a schedule made now is not yet
    assert (edge["last_status"], edge["overdue"], edge["frequency"]) == (None, True, "HOURLY")
    conn.execute("UPDATE nightshift.schedules SET created_at = now() - interval '70 minutes'"
                 " WHERE pipeline_id = %s", (int(history.edge.split("/")[1]),))
    assert rows(conn, "drift_status", history.acme, f"subject = '{history.edge}'")[0]["overdue"] is False


def test_a_pipeline_whose_last_success_is_older_than_its_period_is_overdue(
    conn: psycopg.Connection, history: History,
) -> None:
    conn.execute("UPDATE nightshift.scans SET finished_at = finished_at - interval '25 hours'"
                 " WHERE subject = %s", (history.network,))
    network = rows(conn, "drift_status", history.acme, f"subject = '{history.network}'")[0]
    assert network["overdue"] is True and network["status_24h_ago"] == "DRIFTED"
    conn.execute("UPDATE nightshift.schedules SET is_active = false WHERE pipeline_id = %s",
                 (int(history.network.split("/")[1]),))
    assert rows(conn, "drift_status", history.acme, f"subject = '{history.network}'")[0]["overdue"] is False


def test_open_findings_by_kind_severity_and_age(conn: psycopg.Connection, history: History) -> None:
    summary = {(r["kind"], r["severity"], r["age_bucket"]): r["findings"]
               for r in rows(conn, "findings_open_summary", history.acme)}
    assert summary == {("drift", "high", "0-1d"): 1, ("compliance", "critical", "0-1d"): 1,
                       ("cost", "medium", "0-1d"): 1}
    conn.execute("UPDATE nightshift.findings SET first_seen = now() - interval '10 days' WHERE kind = 'cost'")
    cost = rows(conn, "findings_open_summary", history.acme, "kind = 'cost'")
    assert {r["age_bucket"] for r in cost} == {"7-30d"}


def test_mttr_and_reopen_rate(conn: psycopg.Connection, history: History) -> None:
    conn.execute("UPDATE nightshift.findings SET first_seen = resolved_at - interval '3 hours'"
                 " WHERE status = 'RESOLVED'")
    mttr = {(r["kind"], r["window_days"]): r for r in rows(conn, "findings_mttr", history.acme)}
    assert set(mttr) == {(kind, days) for kind in ("drift", "compliance", "cost") for days in (7, 30, 90)}
    drift30 = mttr[("drift", 30)]
    assert (drift30["resolved"], str(drift30["mttr"]), drift30["active"]) == (1, "3:00:00", 2)
    assert drift30["reopen_rate"] == 0
    # the network finding comes back after a clean scan: reopened
    from tests.support.report_support import drift, scan
    scan(conn, history.network, "drift-scan", "CLEAN", [])
    scan(conn, history.network, "drift-scan", "DRIFTED", [drift("aws_instance.web", INSTANCE, "high")])
    drift30 = rows(conn, "findings_mttr", history.acme, "kind = 'drift' AND window_days = 30")[0]
    assert (drift30["reopened"], float(drift30["reopen_rate"])) == (1, 0.5)


def test_open_trend_counts_findings_open_at_the_end_of_each_day(
    conn: psycopg.Connection, history: History,
) -> None:
    conn.execute("UPDATE nightshift.findings SET first_seen = now() - interval '5 days' WHERE kind = 'drift'"
                 " AND status = 'OPEN'")
    trend = sorted(rows(conn, "findings_open_trend", history.acme, "kind = 'drift'"), key=lambda r: r["day"])
    assert len(trend) == 30  # every day of the window
    # network's finding open from 5 days ago up to today; dns's, first seen and resolved today, never
    # open at the end of a day
    assert [r["open"] for r in trend] == [0] * 24 + [1] * 6


def test_scan_history_and_error_streaks(conn: psycopg.Connection, history: History) -> None:
    day = rows(conn, "scan_history", history.acme, f"subject = '{history.dns}'")
    assert [(r["scans"], r["clean"], r["findings_reported"], r["errors"], r["last_status"]) for r in day] == [
        (4, 1, 1, 2, "ERROR")]
    streaks = rows(conn, "scan_error_streaks", history.acme)
    assert [(s["subject"], s["errors_in_a_row"]) for s in streaks] == [(history.dns, 2)]
    assert streaks[0]["failing_since"] > streaks[0]["last_success_at"]


def test_queue_health(conn: psycopg.Connection, history: History) -> None:
    conn.execute("INSERT INTO nightshift.tasks (kind, subject, run_after) VALUES ('drift-scan', %s,"
                 " now() - interval '10 minutes')", (history.edge,))
    # a task that ran out of attempts (no scan stored), and another organization's
    for subject in (history.dns, "pipeline/999999"):
        conn.execute("INSERT INTO nightshift.tasks (kind, subject, status, attempt, finished_at, last_error)"
                     " VALUES ('drift-scan', %s, 'dead', 3, now(), 'lease expired')", (subject,))
    health = {r["kind"]: r for r in rows(conn, "queue_health", history.acme)}
    drift = health["drift-scan"]
    assert (drift["queued"], drift["running"], drift["dead_last_day"], drift["done_last_day"]) == (1, 0, 1, 5)
    assert drift["oldest_queued_age"].total_seconds() >= 600
    throughput = rows(conn, "queue_throughput", history.acme)
    assert (sum(r["done"] for r in throughput), sum(r["failed"] for r in throughput)) == (7, 1)


def test_cost_savings_and_one_resource_across_drift_compliance_and_cost(
    conn: psycopg.Connection, history: History,
) -> None:
    savings = rows(conn, "cost_savings", history.acme)
    assert [(s["recommendation"], s["currency"], s["open_findings"], str(s["open_monthly_saving"]))
            for s in savings] == [("rightsizing", "USD", 1, "123.40")]
    resource = rows(conn, "resource_findings", history.acme, f"resource = '{INSTANCE}'")
    assert len(resource) == 1
    r = resource[0]
    assert (r["open_drift"], r["open_compliance"], r["open_cost"]) == (1, 1, 1)
    assert r["worst_severity"] == "critical"
    assert sorted(r["provider_ids"]) == sorted([INSTANCE, ARN]) and str(r["monthly_saving"]) == "123.40"


def test_one_organizations_rows_never_show_anothers(conn: psycopg.Connection, history: History) -> None:
    acme_subjects = {history.network, history.dns, history.edge, history.integration,
                     f"organization/{history.acme}"}
    for view in REPORT_VIEWS:
        for row in rows(conn, view, history.globex):
            assert row["organization_id"] == history.globex
            assert row.get("subject") not in acme_subjects, view
    assert rows(conn, "resource_findings", history.globex) == []
    assert [r["last_status"] for r in rows(conn, "drift_status", history.globex)] == ["CLEAN"]
    # an organization that does not exist: no rows, no error
    for view in REPORT_VIEWS:
        assert rows(conn, view, 987654) == []
