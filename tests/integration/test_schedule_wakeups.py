"""enqueue_due at scale: the hints it reads (schedule_wakeups), batches, and what DBAs do to schedules.

The guarantees of tests/integration/test_scheduling.py hold here too; these tests add the bad input of
issue 20: next_run_at far in the past on many rows, NULLed, frequency set to UNMONITORED while enqueue_due
runs. Each call stays bounded (a batch), and no target is skipped or doubled.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from tests.integration.test_scheduling import enqueue_due, make_pipelines


def set_batch_size(conn: psycopg.Connection, size: int) -> None:
    conn.execute("UPDATE nightshift.settings SET value = %s WHERE key = 'schedule.batch_size'", (str(size),))


def due_hints(conn: psycopg.Connection) -> int:
    return conn.execute(
        "SELECT count(*) FROM nightshift.schedule_wakeups WHERE run_at <= now()").fetchone()[0]


def task_subjects(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT subject FROM nightshift.tasks ORDER BY subject")]


def test_a_catch_up_of_many_rows_drains_in_bounded_batches_oldest_first(conn):
    pipelines = make_pipelines(conn, 250, due=False)
    # a DBA moves every schedule far into the past, each a different number of days
    conn.execute("UPDATE nightshift.schedules"
                 "   SET next_run_at = now() - interval '1 day' * (pipeline_id % 90 + 1)"
                 "                     - interval '1 second' * pipeline_id")
    oldest = [r[0] for r in conn.execute(
        "SELECT 'pipeline/' || pipeline_id FROM nightshift.schedules ORDER BY next_run_at LIMIT 100")]
    set_batch_size(conn, 100)

    assert enqueue_due(conn)["drift-scan"] == (100, 0)
    assert sorted(oldest) == task_subjects(conn)  # the most overdue first
    assert enqueue_due(conn)["drift-scan"] == (100, 0)
    assert enqueue_due(conn)["drift-scan"] == (50, 0)
    assert enqueue_due(conn)["drift-scan"] == (0, 0)

    subjects = task_subjects(conn)
    assert len(subjects) == len(set(subjects)) == len(pipelines)  # none skipped, none doubled
    assert conn.execute(  # each advanced once, to its next slot: one run per target, not thirty
        "SELECT count(*) FROM nightshift.schedules"
        " WHERE next_run_at = nightshift.next_run_at(frequency, now(), pipeline_id)").fetchone() == (250,)
    assert due_hints(conn) == 0


def test_an_explicit_limit_beats_the_batch_size(conn):
    make_pipelines(conn, 30)
    set_batch_size(conn, 10)
    assert conn.execute("SELECT enqueued FROM nightshift.enqueue_due('drift-scan', 25)").fetchone() == (25,)
    assert enqueue_due(conn, "drift-scan") == {"drift-scan": (5, 0)}


def test_a_nulled_next_run_at_is_recomputed_not_lost(conn):
    make_pipelines(conn, 10, due=False)
    [unmonitored] = make_pipelines(conn, 1, frequency="UNMONITORED", due=False)
    conn.execute("UPDATE nightshift.schedules SET next_run_at = NULL")
    rows = conn.execute(
        "SELECT frequency::text, next_run_at,"
        "       next_run_at = nightshift.next_run_at(frequency, now(), pipeline_id)"
        "  FROM nightshift.schedules").fetchall()
    assert sorted(r[2] for r in rows if r[0] == "DAILY") == [True] * 10  # its next slot, not never
    assert [r[1] for r in rows if r[0] == "UNMONITORED"] == [None]  # UNMONITORED has no slot
    # and enqueue_due will see it then: a hint waits at that slot
    assert conn.execute(
        "SELECT count(*) FROM nightshift.schedules AS s WHERE s.pipeline_id <> %s AND EXISTS ("
        "  SELECT FROM nightshift.schedule_wakeups AS w"
        "   WHERE s.id = ANY (w.schedule_ids) AND w.run_at <= s.next_run_at)",
        (unmonitored,)).fetchone() == (10,)


@pytest.mark.parametrize("dba_ends_with", ["COMMIT", "ROLLBACK"])
def test_unmonitored_on_half_while_enqueue_due_runs_skips_and_doubles_nothing(db_url, conn, dba_ends_with):
    pipelines = make_pipelines(conn, 200)
    even = {f"pipeline/{p}" for p in pipelines if p % 2 == 0}
    odd = {f"pipeline/{p}" for p in pipelines if p % 2 == 1}
    conn.commit()
    with psycopg.connect(db_url) as dba, psycopg.connect(db_url, autocommit=True) as cron:
        # the DBA's UPDATE holds the even rows, uncommitted, while pg_cron calls enqueue_due
        dba.execute("UPDATE nightshift.schedules SET frequency = 'UNMONITORED' WHERE pipeline_id % 2 = 0")
        cron.execute("SET statement_timeout = '60s'")  # a call that waited on the DBA would fail here
        first = cron.execute("SELECT enqueued FROM nightshift.enqueue_due('drift-scan')").fetchone()[0]
        assert first == len(odd)  # the rows it could lock; the held ones were skipped, not waited for
        dba.execute(dba_ends_with)
        second = cron.execute("SELECT enqueued FROM nightshift.enqueue_due('drift-scan')").fetchone()[0]
        third = cron.execute("SELECT enqueued FROM nightshift.enqueue_due('drift-scan')").fetchone()[0]

    subjects = task_subjects(conn)
    assert len(subjects) == len(set(subjects))  # nothing doubled
    if dba_ends_with == "COMMIT":  # the even ones are unmonitored now: never due again
        assert (second, third) == (0, 0) and set(subjects) == odd
    else:  # the DBA changed their mind: the even ones are still due and run at the next call
        assert (second, third) == (len(even), 0) and set(subjects) == odd | even
    assert due_hints(conn) == 0


def test_a_dba_update_of_next_run_at_reschedules_both_ways(conn):
    [later, sooner] = make_pipelines(conn, 2)  # both due
    conn.execute("UPDATE nightshift.schedules SET next_run_at = now() + interval '2 hours'"
                 " WHERE pipeline_id = %s", (later,))
    assert enqueue_due(conn)["drift-scan"] == (1, 0)
    assert task_subjects(conn) == [f"pipeline/{sooner}"]
    assert due_hints(conn) == 0  # the stale hint of the rescheduled row was looked at once and dropped

    conn.execute("UPDATE nightshift.schedules SET next_run_at = now() - interval '1 minute'"
                 " WHERE pipeline_id = %s", (later,))
    assert enqueue_due(conn)["drift-scan"] == (1, 0)
    assert task_subjects(conn) == sorted([f"pipeline/{sooner}", f"pipeline/{later}"])


def test_nothing_due_reads_no_schedule(conn):
    make_pipelines(conn, 500, due=False)
    conn.execute("ANALYZE nightshift.schedules")
    conn.execute("BEGIN")  # pg_stat_get_xact_*: this transaction's own counters
    before = conn.execute(
        "SELECT pg_stat_get_xact_numscans('nightshift.schedules'::regclass),"
        "       pg_stat_get_xact_tuples_fetched('nightshift.schedules'::regclass)"
        "     + pg_stat_get_xact_tuples_returned('nightshift.schedules'::regclass)").fetchone()
    assert enqueue_due(conn) == {"drift-scan": (0, 0), "compliance-scan": (0, 0), "cost-analysis": (0, 0)}
    after = conn.execute(
        "SELECT pg_stat_get_xact_numscans('nightshift.schedules'::regclass),"
        "       pg_stat_get_xact_tuples_fetched('nightshift.schedules'::regclass)"
        "     + pg_stat_get_xact_tuples_returned('nightshift.schedules'::regclass)").fetchone()
    conn.execute("COMMIT")
    assert after == before  # the hints' index said nothing is due; the 500 schedules were never read


def test_a_switched_off_target_is_not_reread_every_minute_and_runs_once_switched_on(conn):
    conn.execute("INSERT INTO nightshift.organizations (name, compliance_enabled) VALUES ('acme', true)")
    conn.execute(
        "INSERT INTO nightshift.cloud_integrations"
        " (organization_id, provider, account_id, compliance_enabled)"
        " SELECT id, 'aws', '123456789012', false FROM nightshift.organizations")
    conn.execute("UPDATE nightshift.schedules SET next_run_at = now() - interval '1 hour'"
                 " WHERE kind = 'compliance-scan'")
    assert enqueue_due(conn)["compliance-scan"] == (0, 0)
    assert due_hints(conn) == 0  # its hint moved to its next slot
    assert conn.execute(  # the schedule itself is untouched: it was never due
        "SELECT next_run_at < now() FROM nightshift.schedules WHERE kind = 'compliance-scan'"
    ).fetchone() == (True,)

    conn.execute("UPDATE nightshift.cloud_integrations SET compliance_enabled = true")
    assert enqueue_due(conn)["compliance-scan"] == (1, 0)  # at the next call, not at its next slot
    assert enqueue_due(conn)["compliance-scan"] == (0, 0)


def test_rebuild_brings_back_schedules_loaded_without_triggers(conn):
    if not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
        pytest.skip("session_replication_role needs a superuser")
    [pipeline] = make_pipelines(conn, 1, due=False)
    conn.execute("DELETE FROM nightshift.schedules")
    conn.execute("SET session_replication_role = replica")  # a data-only restore does this
    conn.execute("INSERT INTO nightshift.schedules (kind, pipeline_id, frequency, next_run_at)"
                 " VALUES ('drift-scan', %s, 'DAILY', now() - interval '1 minute')", (pipeline,))
    conn.execute("RESET session_replication_role")
    assert enqueue_due(conn)["drift-scan"] == (0, 0)  # no hint: enqueue_due cannot see it
    assert conn.execute("SELECT nightshift.rebuild_schedule_wakeups()").fetchone() == (1,)
    assert enqueue_due(conn)["drift-scan"] == (1, 0)


def test_one_hint_names_the_schedules_of_a_minute_of_next_runs(conn):
    pipelines = make_pipelines(conn, 300)
    assert enqueue_due(conn)["drift-scan"] == (300, 0)
    hints = conn.execute(
        "SELECT run_at, schedule_ids FROM nightshift.schedule_wakeups WHERE kind = 'drift-scan'"
        " ORDER BY run_at").fetchall()
    named = [i for _, ids in hints for i in ids]
    schedules = dict(conn.execute(
        "SELECT id, next_run_at FROM nightshift.schedules WHERE pipeline_id = ANY (%s)", (pipelines,)))
    assert sorted(named) == sorted(schedules)  # each advanced schedule named once
    assert len(hints) < len(schedules)  # rows per minute of next runs, not one per schedule
    for run_at, ids in hints:  # at the latest next run of its minute, in that minute
        runs = [schedules[i] for i in ids]
        assert run_at == max(runs)
        assert {r.replace(second=0, microsecond=0) for r in runs} == {run_at.replace(second=0, microsecond=0)}


def test_a_task_enqueued_meanwhile_for_a_due_target_is_not_doubled(db_url, conn):
    [pipeline, other] = make_pipelines(conn, 2)
    conn.commit()
    with psycopg.connect(db_url) as intake, psycopg.connect(db_url, autocommit=True) as cron:
        # a task for the same target, inserted but not committed when enqueue_due looks for tasks in
        # flight: its insert waits on the unique index, then fails, and the insert is repeated with
        # ON CONFLICT DO NOTHING
        intake.execute("INSERT INTO nightshift.tasks (kind, subject) VALUES ('drift-scan', %s)",
                       (f"pipeline/{pipeline}",))
        result: list[tuple[int, int]] = []
        call = threading.Thread(target=lambda: result.append(cron.execute(
            "SELECT enqueued, skipped FROM nightshift.enqueue_due('drift-scan')").fetchone()))
        call.start()
        waiting = 0
        for _ in range(600):  # until enqueue_due waits for the intake's transaction (at most 60 s)
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND query LIKE '%%enqueue_due%%'").fetchone()[0]
            conn.commit()
            if waiting:
                break
            time.sleep(0.1)
        intake.commit()
        call.join(timeout=60)
    assert waiting == 1
    assert result == [(1, 1)]  # the other target enqueued; this one skipped, not doubled
    assert task_subjects(conn) == sorted([f"pipeline/{pipeline}", f"pipeline/{other}"])
