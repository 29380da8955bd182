"""Scheduling in SQL: next-run arithmetic, enqueue_due, staggering, the NOTIFY trigger, the DBA API.

Time travel is done by moving next_run_at into the past, never by sleeping.
"""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dispatcher import scheduling
from dispatcher.errors import NightshiftError
from dispatcher.queries import load_queries

DAY = timedelta(days=1)


# --- helpers -----------------------------------------------------------------------------------------

def make_pipelines(
    conn: psycopg.Connection, n: int, *, frequency: str = "DAILY", due: bool = True
) -> list[int]:
    """n pipelines with a drift schedule each; due ones have next_run_at a minute ago."""
    conn.execute(
        "INSERT INTO nightshift.organizations (name) VALUES ('acme') ON CONFLICT (name) DO NOTHING"
    )
    conn.execute(
        "INSERT INTO nightshift.repositories (organization_id, name, url) "
        "SELECT id, 'infra', 'x' FROM nightshift.organizations WHERE name = 'acme' "
        "ON CONFLICT (organization_id, name) DO NOTHING"
    )
    ids = [r[0] for r in conn.execute(
        "INSERT INTO nightshift.pipelines (repository_id, name) "
        "SELECT r.id, 'p' || g || '-' || md5(random()::text) "
        "FROM nightshift.repositories r, generate_series(1, %s) g "
        "WHERE r.name = 'infra' RETURNING id", (n,)).fetchall()]
    conn.execute(
        "INSERT INTO nightshift.schedules (kind, pipeline_id, frequency, next_run_at) "
        "SELECT 'drift-scan', p, %s::nightshift.frequency, CASE WHEN %s THEN now() - interval '1 minute' END "
        "FROM unnest(%s::bigint[]) p", (frequency, due, ids))
    return ids


def enqueue_due(conn: psycopg.Connection, kind: str | None = None) -> dict[str, tuple[int, int]]:
    rows = conn.execute("SELECT kind, enqueued, skipped FROM nightshift.enqueue_due(%s)", (kind,)).fetchall()
    return {k: (e, s) for k, e, s in rows}


def make_due(conn: psycopg.Connection, subject: str, ago: str = "1 minute") -> None:
    conn.execute(
        "UPDATE nightshift.schedules SET next_run_at = now() - %s::interval "
        "WHERE id = nightshift.resolve_schedule(%s)", (ago, subject))


def tasks(conn: psycopg.Connection, subject: str | None = None) -> list[tuple]:
    return conn.execute(
        "SELECT id, kind, subject, status::text, payload FROM nightshift.tasks "
        "WHERE %s::text IS NULL OR subject = %s ORDER BY id", (subject, subject)).fetchall()


def next_run(conn: psycopg.Connection, frequency: str, start: datetime, target: int) -> datetime:
    row = conn.execute("SELECT nightshift.next_run_at(%s, %s, %s)", (frequency, start, target)).fetchone()
    assert row is not None
    return row[0]


# --- next-run arithmetic ------------------------------------------------------------------------------

@pytest.mark.parametrize(("frequency", "period"), [
    ("HOURLY", timedelta(hours=1)), ("DAILY", DAY), ("WEEKLY", timedelta(days=7)),
])
def test_next_run_is_the_first_slot_after_from_at_a_fixed_period(conn, frequency, period):
    start = datetime(2025, 3, 30, 0, 30, tzinfo=UTC)  # a DST night in Europe: UTC must not care
    for target in (1, 2, 3, 1_000_003, 9_007_199_254_740_993):
        first = next_run(conn, frequency, start, target)
        assert start < first <= start + period
        second = next_run(conn, frequency, first, target)
        assert second - first == period  # evenly spaced
        # from one microsecond before a slot, that slot; from the slot itself, the next one
        assert next_run(conn, frequency, first - timedelta(microseconds=1), target) == first


def test_slots_start_at_period_boundaries_plus_offset_in_utc(conn):
    conn.execute("SET TimeZone = 'America/New_York'")  # the session zone must not move slots
    rows = conn.execute(
        "SELECT nightshift.next_run_at('WEEKLY', '2025-01-01 00:00Z', 42) AT TIME ZONE 'UTC',"
        "       nightshift.schedule_offset('WEEKLY', 42),"
        "       nightshift.next_run_at('DAILY', '2025-01-01 00:00Z', 42) AT TIME ZONE 'UTC',"
        "       nightshift.schedule_offset('DAILY', 42)").fetchone()
    weekly, weekly_offset, daily, daily_offset = rows
    monday = datetime(2024, 12, 30)  # the ISO week of 2025-01-01 starts on Monday 2024-12-30
    assert weekly - weekly_offset in (monday, monday + timedelta(days=7))
    assert daily - daily_offset in (datetime(2024, 12, 31), datetime(2025, 1, 1))


def test_unmonitored_has_no_next_run(conn):
    assert next_run(conn, "UNMONITORED", datetime(2025, 1, 1, tzinfo=UTC), 1) is None


def test_offsets_are_shorter_than_the_shortest_period(conn):
    row = conn.execute(
        "SELECT max(nightshift.schedule_offset('HOURLY', g)), max(nightshift.schedule_offset('DAILY', g)),"
        "       max(nightshift.schedule_offset('WEEKLY', g)), max(nightshift.schedule_offset('MONTHLY', g)),"
        "       min(nightshift.schedule_offset('MONTHLY', g))"
        "  FROM generate_series(-5000, 50000) g").fetchone()
    assert row[0] < timedelta(hours=1) and row[1] < DAY and row[2] < timedelta(days=7)
    assert timedelta(days=27) < row[3] < timedelta(days=28)
    assert row[4] >= timedelta(0)


def test_monthly_slots_never_skip_or_double_a_short_month(conn):
    # targets whose offset lands late in the month are the ones a short month could push over
    late = [r[0] for r in conn.execute(
        "SELECT g FROM generate_series(1, 20000) g "
        "WHERE nightshift.schedule_offset('MONTHLY', g) > interval '27 days' LIMIT 3").fetchall()]
    assert late, "no target with an offset above 27 days among 20,000"
    for target in [*late, 1, 2]:
        when = datetime(2024, 1, 31, 23, 59, tzinfo=UTC)  # from January 31 of a leap year...
        months = []
        for _ in range(26):
            when = next_run(conn, "MONTHLY", when, target)
            months.append((when.year, when.month))
        # ...one slot in each following month, February first, through two Februaries
        expected = [(2024 + (m - 1) // 12, (m - 1) % 12 + 1) for m in range(2, 28)]
        assert months == expected


def test_offsets_spread_10000_daily_targets_across_the_day(conn):
    hours = dict(conn.execute(
        "SELECT extract(hour FROM nightshift.next_run_at('DAILY', '2025-06-01 00:00Z', g)"
        "                         AT TIME ZONE 'UTC')::int,"
        "       count(*) FROM generate_series(1, 10000) g GROUP BY 1").fetchall())
    share = 10000 / 24
    assert len(hours) == 24
    assert max(hours.values()) <= 2 * share, hours
    assert min(hours.values()) >= share / 2, hours


# --- enqueue_due -------------------------------------------------------------------------------------

def test_due_drift_schedule_becomes_one_task_and_next_run_moves_to_the_future(conn):
    [pipeline] = make_pipelines(conn, 1)
    make_pipelines(conn, 3, due=False)  # not due yet
    assert enqueue_due(conn)["drift-scan"] == (1, 0)
    [(_, kind, subject, status, payload)] = tasks(conn)
    assert (kind, subject, status) == ("drift-scan", f"pipeline/{pipeline}", "queued")
    assert payload["pipeline_id"] == pipeline and payload["auto_create_pr"] is False
    row = conn.execute(
        "SELECT next_run_at > now(), next_run_at = nightshift.next_run_at(frequency, now(), pipeline_id), "
        "       (SELECT schedule_id FROM nightshift.tasks) = id "
        "  FROM nightshift.schedules WHERE pipeline_id = %s", (pipeline,)).fetchone()
    assert row == (True, True, True)
    assert enqueue_due(conn)["drift-scan"] == (0, 0)  # nothing is due twice


def test_fifty_concurrent_enqueue_due_calls_enqueue_each_due_target_once(db_url, conn):
    pipelines = make_pipelines(conn, 300)
    barrier = threading.Barrier(50)
    results: list[int] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as own:
                barrier.wait()
                rows = own.execute("SELECT sum(enqueued) FROM nightshift.enqueue_due()").fetchone()
                results.append(int(rows[0]))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(results) == len(pipelines)
    counts = conn.execute(
        "SELECT count(*), count(DISTINCT subject) FROM nightshift.tasks").fetchone()
    assert counts == (len(pipelines), len(pipelines))
    assert conn.execute(
        "SELECT count(*) FROM nightshift.schedules WHERE next_run_at <= now()").fetchone() == (0,)


def test_target_with_a_running_task_is_skipped_then_enqueued_again_once_finished(conn):
    [pipeline] = make_pipelines(conn, 1)
    subject = f"pipeline/{pipeline}"
    assert enqueue_due(conn)["drift-scan"] == (1, 0)
    conn.execute("UPDATE nightshift.tasks SET status = 'running', locked_by = 'w1', "
                 "locked_until = now() + interval '1 hour', attempt = 1")

    make_due(conn, subject)  # the next slot arrives while the scan is still running
    assert enqueue_due(conn)["drift-scan"] == (0, 1)  # Forbid: skipped...
    assert [t[3] for t in tasks(conn)] == ["running"]
    assert conn.execute(  # ...and the skipped slot is not retried before the next one
        "SELECT next_run_at > now() FROM nightshift.schedules WHERE pipeline_id = %s", (pipeline,)
    ).fetchone() == (True,)
    assert enqueue_due(conn)["drift-scan"] == (0, 0)

    conn.execute("UPDATE nightshift.tasks SET status = 'done', finished_at = now(), locked_until = NULL")
    make_due(conn, subject)
    assert enqueue_due(conn)["drift-scan"] == (1, 0)
    assert [t[3] for t in tasks(conn)] == ["done", "queued"]


def test_ten_missed_periods_collapse_into_one_task_and_a_future_next_run(conn):
    [pipeline] = make_pipelines(conn, 1)
    make_due(conn, f"pipeline/{pipeline}", "10 days 1 hour")  # pg_cron was down for ten days
    assert enqueue_due(conn)["drift-scan"] == (1, 0)
    assert enqueue_due(conn)["drift-scan"] == (0, 0)
    assert len(tasks(conn)) == 1
    row = conn.execute(
        "SELECT next_run_at > now(), next_run_at <= now() + interval '1 day' "
        "  FROM nightshift.schedules WHERE pipeline_id = %s", (pipeline,)).fetchone()
    assert row == (True, True)


def test_staggered_run_after_spans_the_window(conn):
    conn.execute("UPDATE nightshift.settings SET value = '10 minutes' "
                 "WHERE key = 'schedule.stagger.drift-scan'")
    make_pipelines(conn, 200)
    conn.execute("BEGIN")  # one transaction: now() below is the now() enqueue_due used
    enqueue_due(conn)
    offsets = [r[0] for r in conn.execute(
        "SELECT run_after - now() FROM nightshift.tasks ORDER BY run_after").fetchall()]
    conn.execute("COMMIT")
    window = timedelta(minutes=10)
    assert offsets[0] == timedelta(0)
    assert window * 0.99 <= offsets[-1] < window
    gaps = {round((b - a).total_seconds(), 3) for a, b in itertools.pairwise(offsets)}
    assert gaps == {3.0}  # evenly: 600 s / 200 tasks


def test_a_single_due_target_is_not_delayed_by_the_stagger_window(conn):
    make_pipelines(conn, 1)
    conn.execute("BEGIN")
    enqueue_due(conn)
    assert conn.execute("SELECT run_after = now() FROM nightshift.tasks").fetchone() == (True,)
    conn.execute("COMMIT")


def test_unmonitored_inactive_and_switched_off_targets_never_run(conn):
    [unmonitored] = make_pipelines(conn, 1, frequency="UNMONITORED")
    [paused] = make_pipelines(conn, 1)
    conn.execute("SELECT nightshift.pause(%s)", (f"pipeline/{paused}",))
    conn.execute(
        "INSERT INTO nightshift.organizations (name, compliance_enabled, cost_optimization_enabled) "
        "VALUES ('off', true, false)")
    conn.execute(
        "INSERT INTO nightshift.cloud_integrations"
        " (organization_id, provider, account_id, compliance_enabled, deleted_at)"
        " SELECT id, 'aws', a, a = 'disabled', CASE WHEN a = 'deleted' THEN now() END"
        " FROM nightshift.organizations, unnest(ARRAY['disabled', 'deleted']) a WHERE name = 'off'")
    conn.execute("UPDATE nightshift.cloud_integrations SET compliance_enabled = true")  # deleted one too
    conn.execute("UPDATE nightshift.cloud_integrations SET compliance_enabled = false "
                 "WHERE account_id = 'disabled'")
    # every schedule is long overdue, whatever its frequency or switches
    conn.execute("UPDATE nightshift.schedules SET next_run_at = now() - interval '30 days'")
    assert enqueue_due(conn) == {"drift-scan": (0, 0), "compliance-scan": (0, 0), "cost-analysis": (0, 0)}
    assert tasks(conn) == []
    assert conn.execute("SELECT count(*) FROM nightshift.upcoming_runs('60 days')").fetchone() == (0,)
    # two drift, two compliance and two cost schedules (one per organization) were all looked at
    assert conn.execute("SELECT count(*) FROM nightshift.schedules").fetchone() == (6,)
    assert conn.execute(  # not advanced either: they were never due
        "SELECT count(*) FROM nightshift.schedules WHERE next_run_at > now()").fetchone() == (0,)
    assert conn.execute("SELECT frequency::text FROM nightshift.schedules WHERE pipeline_id = %s",
                        (unmonitored,)).fetchone() == ("UNMONITORED",)


def test_compliance_and_cost_schedules_are_created_and_enqueued_with_their_payloads(conn):
    conn.execute(
        "INSERT INTO nightshift.organizations"
        " (name, compliance_enabled, cost_optimization_enabled, auto_remediate)"
        " VALUES ('acme', true, true, true)")
    conn.execute(
        "INSERT INTO nightshift.cloud_integrations (organization_id, provider, account_id, frameworks,"
        " compliance_enabled)"
        " SELECT id, 'aws', '123456789012', '{CIS,SOC2}', true FROM nightshift.organizations")
    schedules = conn.execute(
        "SELECT kind, frequency::text, next_run_at > now() FROM nightshift.schedules ORDER BY kind"
    ).fetchall()
    assert schedules == [("compliance-scan", "DAILY", True), ("cost-analysis", "WEEKLY", True)]
    conn.execute("UPDATE nightshift.schedules "
                 "SET next_run_at = now() - interval '1 minute', auto_create_pr = true")
    assert enqueue_due(conn) == {"drift-scan": (0, 0), "compliance-scan": (1, 0), "cost-analysis": (1, 0)}
    by_kind = {t[1]: t for t in tasks(conn)}
    compliance, cost = by_kind["compliance-scan"], by_kind["cost-analysis"]
    assert compliance[2].startswith("cloud_integration/")
    assert compliance[4]["frameworks"] == ["CIS", "SOC2"] and compliance[4]["auto_remediate"] is True
    assert cost[2].startswith("organization/")
    assert cost[4]["lookback_days"] == 30
    assert cost[4]["actions"] == ["identify-unused", "rightsizing-recs", "commitment-coverage"]
    assert cost[4]["auto_create_pr"] is True


def test_run_now_and_enqueue_due_build_the_same_task(conn):
    conn.execute(
        "INSERT INTO nightshift.organizations"
        " (name, compliance_enabled, cost_optimization_enabled, auto_remediate)"
        " VALUES ('acme', true, true, true)")
    conn.execute(
        "INSERT INTO nightshift.cloud_integrations (organization_id, provider, account_id, frameworks,"
        " compliance_enabled) SELECT id, 'gcp', 'proj', '{CIS}', true FROM nightshift.organizations")
    [pipeline] = make_pipelines(conn, 1)
    conn.execute("UPDATE nightshift.schedules SET auto_create_pr = true, notification_channel = '#ops'")
    conn.execute("UPDATE nightshift.repositories SET auto_remediate = true")
    subjects = [f"pipeline/{pipeline}", *(r[0] for r in conn.execute(
        "SELECT subject FROM nightshift.schedule_targets WHERE kind <> 'drift-scan'"))]
    assert len(subjects) == 3
    manual = {}
    for subject in subjects:
        conn.execute("SELECT nightshift.run_now(%s)", (subject,))
    for _, kind, subject, _, payload in tasks(conn):
        manual[subject] = (kind, {k: v for k, v in payload.items() if k not in ("trigger", "scheduled_for")})
    conn.execute("DELETE FROM nightshift.tasks")
    conn.execute("UPDATE nightshift.schedules SET next_run_at = now() - interval '1 minute'")
    assert enqueue_due(conn) == {"drift-scan": (1, 0), "compliance-scan": (1, 0), "cost-analysis": (1, 0)}
    scheduled = {
        s: (k, {n: v for n, v in p.items() if n != "scheduled_for"}) for _, k, s, _, p in tasks(conn)}
    assert scheduled == manual
    assert all(payload.get("auto_create_pr", payload.get("auto_remediate")) for _, payload in manual.values())


def test_enqueue_due_by_kind_and_limit(conn):
    make_pipelines(conn, 5)
    assert conn.execute("SELECT kind, enqueued FROM nightshift.enqueue_due('drift-scan', 2)").fetchall() == [
        ("drift-scan", 2)]
    assert enqueue_due(conn, "drift-scan") == {"drift-scan": (3, 0)}
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown scheduled kind 'pr-review'"):
        conn.execute("SELECT * FROM nightshift.enqueue_due('pr-review')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_limit must be at least 1"):
        conn.execute("SELECT * FROM nightshift.enqueue_due(NULL, 0)")


# --- wake-up -----------------------------------------------------------------------------------------

def test_insert_trigger_notifies_once_per_statement(db_url, conn):
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN nightshift_tasks")
        conn.execute(
            "INSERT INTO nightshift.tasks (kind, subject) "
            "SELECT CASE WHEN g % 2 = 0 THEN 'drift-scan' ELSE 'cost-analysis' END, 'x/' || g "
            "FROM generate_series(1, 1000) g")
        # every row hits the in-flight index: nothing inserted, nothing sent
        conn.execute(
            "INSERT INTO nightshift.tasks (kind, subject) SELECT 'drift-scan', 'x/' || g * 2 "
            "FROM generate_series(1, 10) g ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') "
            "DO NOTHING")
        notes = list(listener.notifies(timeout=1.0))
    assert len(notes) == 1
    payload = json.loads(notes[0].payload)
    assert payload["kinds"] == ["cost-analysis", "drift-scan"] and payload["count"] == 1000
    assert "run_after" in payload


# --- the DBA's API -----------------------------------------------------------------------------------

def test_set_frequency_registers_a_pipeline_and_reschedules_it(conn):
    [pipeline] = make_pipelines(conn, 1)
    conn.execute("DELETE FROM nightshift.schedules")
    target = f"pipeline/{pipeline}"
    kind, frequency, next_at = conn.execute(
        "SELECT kind, frequency::text, next_run_at FROM nightshift.set_frequency(%s, 'daily')", (target,)
    ).fetchone()
    assert (kind, frequency) == ("drift-scan", "DAILY")
    expected = conn.execute("SELECT nightshift.next_run_at('DAILY', now(), %s)", (pipeline,)).fetchone()
    assert (next_at,) == expected
    hourly = conn.execute(
        "SELECT next_run_at FROM nightshift.set_frequency(%s, 'HOURLY')", (target,)).fetchone()
    assert hourly[0] <= datetime.now(UTC) + timedelta(hours=1, seconds=5)
    assert conn.execute(
        "SELECT next_run_at FROM nightshift.set_frequency(%s, 'UNMONITORED')", (target,)
    ).fetchone() == (None,)


def test_pause_resume_and_run_now(conn):
    [pipeline] = make_pipelines(conn, 1)
    target = f"pipeline/{pipeline}"
    conn.execute("SELECT nightshift.pause(%s)", (target,))
    assert enqueue_due(conn)["drift-scan"] == (0, 0)

    task_id = conn.execute("SELECT nightshift.run_now(%s)", (target,)).fetchone()[0]
    assert task_id is not None  # a manual run works while paused
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    assert conn.execute("SELECT nightshift.run_now(%s)", (target,)).fetchone() == (None,)  # overlap-safe
    assert "already in flight" in notices[0] and str(task_id) in notices[0]
    [(_, _, _, _, payload)] = tasks(conn)
    assert payload["trigger"] == "run_now"

    active, in_future = conn.execute(
        "SELECT is_active, next_run_at > now() FROM nightshift.resume(%s)", (target,)).fetchone()
    assert active and in_future  # slots missed while paused are skipped, not caught up


def test_upcoming_runs_forecasts_each_slot_per_kind_and_target(conn):
    [pipeline] = make_pipelines(conn, 1, frequency="HOURLY", due=False)
    [overdue] = make_pipelines(conn, 1, frequency="DAILY")
    runs = conn.execute(
        "SELECT run_at, kind, subject, overdue FROM nightshift.upcoming_runs('5 hours')").fetchall()
    hourly = [r for r in runs if r[2] == f"pipeline/{pipeline}"]
    assert len(hourly) == 5
    assert {b[0] - a[0] for a, b in itertools.pairwise(hourly)} == {timedelta(hours=1)}
    # overdue once, now; then (depending on the time of day) its next daily slot, not overdue
    daily = [r[3] for r in runs if r[2] == f"pipeline/{overdue}"]
    assert daily in ([True], [True, False])
    assert runs == sorted(runs)


@pytest.mark.parametrize(("statement", "error", "message"), [
    ("SELECT * FROM nightshift.set_frequency('pipeline/{p}', 'FORTNIGHTLY')",
     psycopg.errors.InvalidParameterValue, "unknown frequency 'FORTNIGHTLY'"),
    ("SELECT * FROM nightshift.set_frequency('pipeline/999999', 'DAILY')",
     psycopg.errors.NoDataFound, "unknown target pipeline/999999: no pipeline with id 999999"),
    ("SELECT nightshift.run_now('repository/1')",
     psycopg.errors.InvalidParameterValue, "unknown target 'repository/1'"),
    ("SELECT nightshift.run_now('pipelines/1')",
     psycopg.errors.InvalidParameterValue, "unknown target 'pipelines/1'"),
    ("SELECT * FROM nightshift.pause('organization/999999')",
     psycopg.errors.NoDataFound, "unknown target organization/999999"),
    ("SELECT * FROM nightshift.upcoming_runs('-1 hour')",
     psycopg.errors.InvalidParameterValue, "p_within must be a positive interval"),
])
def test_bad_input_gets_a_clear_sql_error(conn, statement, error, message):
    [pipeline] = make_pipelines(conn, 1)
    with pytest.raises(error, match=message):
        conn.execute(statement.format(p=pipeline))


def test_python_api_translates_sql_errors(conn):
    [pipeline] = make_pipelines(conn, 1)
    with pytest.raises(NightshiftError, match=r"unknown frequency 'SOMETIMES' \(hint: the frequencies are"):
        scheduling.set_frequency(conn, f"pipeline/{pipeline}", "SOMETIMES")
    conn.rollback()
    state = scheduling.set_frequency(conn, f"pipeline/{pipeline}", "weekly")
    assert state.frequency == "WEEKLY" and state.is_active
    kinds = [r.kind for r in scheduling.enqueue_due(conn)]
    assert kinds == ["drift-scan", "compliance-scan", "cost-analysis"]


# --- maintenance ---------------------------------------------------------------------------------------

def test_maintenance_requeues_expired_leases_and_prunes_by_retention(conn):
    conn.execute("""
        INSERT INTO nightshift.tasks
            (kind, subject, status, finished_at, attempt, locked_by, locked_until) VALUES
            ('drift-scan', 'pipeline/1', 'done', now() - interval '15 days', 1, NULL, NULL),
            ('drift-scan', 'pipeline/2', 'dead', now() - interval '20 days', 3, NULL, NULL),
            ('drift-scan', 'pipeline/3', 'done', now() - interval '1 day', 1, NULL, NULL),
            ('drift-scan', 'pipeline/4', 'running', NULL, 1, 'gone', now() - interval '1 minute')""")
    conn.execute("""
        INSERT INTO nightshift.scans (attempt, kind, subject, status, finished_at) VALUES
            (1, 'drift-scan', 'pipeline/1', 'CLEAN', now() - interval '91 days'),
            (1, 'drift-scan', 'pipeline/1', 'CLEAN', now() - interval '89 days')""")
    report = conn.execute("SELECT nightshift.run_maintenance()").fetchone()[0]
    assert report["tasks_deleted"] == 2 and report["scans_deleted"] == 1
    assert report["cron_run_details_deleted"] is None  # pg_cron is in another database here
    left = conn.execute("SELECT subject, status::text FROM nightshift.tasks ORDER BY subject").fetchall()
    assert [s for s, _ in left] == ["pipeline/3", "pipeline/4"]
    if report["requeued"] is not None:  # the queue's requeue_expired() exists
        assert report["requeued"] == 1 and dict(left)["pipeline/4"] == "queued"


def test_maintenance_clears_the_scan_ids_of_findings_whose_scans_it_deletes(conn):
    """findings.first_scan_id / last_scan_id are not foreign keys (migration 0017): maintenance clears
    them itself, and only those naming a deleted scan."""
    old, kept = (conn.execute(
        "INSERT INTO nightshift.scans (attempt, kind, subject, status, finished_at)"
        " VALUES (1, 'drift-scan', 'pipeline/1', 'DRIFTED', now() - %s::interval) RETURNING id",
        (age,)).fetchone()[0] for age in ("91 days", "1 day"))
    conn.execute("""
        INSERT INTO nightshift.findings (kind, subject, fingerprint, first_scan_id, last_scan_id) VALUES
            ('resource_drift', 'pipeline/1', 'a', %(old)s, %(old)s),
            ('resource_drift', 'pipeline/1', 'b', %(old)s, %(kept)s),
            ('resource_drift', 'pipeline/1', 'c', %(kept)s, %(kept)s)""", {"old": old, "kept": kept})
    report = conn.execute("SELECT nightshift.run_maintenance()").fetchone()[0]
    assert report["scans_deleted"] == 1
    rows = conn.execute("SELECT fingerprint, first_scan_id, last_scan_id FROM nightshift.findings"
                        " ORDER BY fingerprint").fetchall()
    assert rows == [("a", None, None), ("b", None, kept), ("c", kept, kept)]


# --- pure helpers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "expected"), [
    ("24h", "24 hours"), ("90m", "90 minutes"), ("7d", "7 days"), ("2w", "2 weeks"), (" 30s ", "30 seconds"),
    ("2 days 3 hours", "2 days 3 hours"),
])
def test_interval_text(given, expected):
    assert scheduling.interval_text(given) == expected


def test_named_queries_load_by_name():
    queries = load_queries("schedule")
    assert {"schedule_list", "schedule_run_now", "schedule_upcoming"} <= set(queries)
    assert queries["schedule_run_now"].startswith("-- enqueue a target's task now")
    assert load_queries("cron")["cron_schedule"].rstrip().endswith("AS jobid")
