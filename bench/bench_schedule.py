"""Benchmark: enqueue_due() at 1,000,000 and 10,000,000 schedules, against the row-by-row loop.

Part 1, in a database of its own on the embedded cluster (or the server of $NIGHTSHIFT_DATABASE_URL):
1,000,000 drift schedules, 100,000 of them due. Times

  set-based  SELECT * FROM nightshift.enqueue_due()  — three runs, each from the same state, median;
  row-by-row what the seed does in application code: select the due configurations, then for each one
             insert a task and update its next run, one statement at a time (autocommit, as an ORM does
             without an explicit transaction; --loop-transaction runs the loop in one transaction).

Both must enqueue the same number of tasks. pg_stat_statements (when preloaded; the embedded cluster
does) shows where the three set-based runs spent their time, statement by statement, and one more run
prints its plans with EXPLAIN (ANALYZE, BUFFERS) through auto_explain.

After each part, the model's floor, alternating with enqueue_due() from the same state: one UPDATE advancing
the due rows; that UPDATE plus one bare task row per due target (no payload, lock or hint); and a
batch row naming all due targets instead of task rows (lock, advance and hints as enqueue_due does).

Part 2, in a second database: 10,000,000 drift schedules, 1,000 due. Times one call with 1,000 due and
one with nothing due (medians of three, on an open connection; the first call of a new connection, as
pg_cron makes one per run, is printed too).

Rows are generated set-based (generate_series), with triggers and foreign-key checks off for the load
(session_replication_role = replica, so a superuser is needed) and the hints of enqueue_due built in
index order afterwards (nightshift.rebuild_schedule_wakeups()). Run with `make bench-schedule`.
Targets (exit status 1 when one is missed): 100,000 due of 1,000,000 under 1 s and at least 50x the
loop; 1,000 due of 10,000,000 under 50 ms; nothing due under 5 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from dispatcher.config import URL_ENV, resolve_url
from dispatcher.db import connect, drop_database, recreate_database
from dispatcher.migrate import migrate

DATABASE = "nightshift_bench_schedule"
DATABASE_10M = "nightshift_bench_schedule_10m"

FILL = (
    "INSERT INTO nightshift.organizations (name) VALUES ('bench')",
    "INSERT INTO nightshift.repositories (organization_id, name, url)"
    " SELECT id, 'infra', 'x' FROM nightshift.organizations",
    # names in id order keep the unique index on (repository_id, name) filling page after page
    "INSERT INTO nightshift.pipelines (repository_id, name)"
    " SELECT r.id, 'p' || lpad(g::text, 9, '0')"
    " FROM nightshift.repositories r, generate_series(1, %(rows)s) g",
    # every n-th schedule is due (at most ten minutes late), the others fall due within the next day but
    # not within the next hour: none of them comes due while the benchmark runs
    """INSERT INTO nightshift.schedules (kind, pipeline_id, frequency, next_run_at)
       SELECT 'drift-scan', p.id, 'DAILY',
              CASE WHEN p.id %% %(every)s = 0 THEN now() - random() * interval '10 minutes'
                   ELSE now() + interval '1 hour' + random() * interval '23 hours' END
         FROM nightshift.pipelines p""",
)

# Back to the state after FILL: no tasks, the same rows due again. A row moved back into the past gets
# its hint from the trigger, as a DBA's UPDATE would.
RESET = (
    "DELETE FROM nightshift.tasks",
    # the due rows by their key (schedules_one_per_target): no scan of ten million rows
    "UPDATE nightshift.schedules SET next_run_at = now() - random() * interval '10 minutes'"
    " WHERE kind = 'drift-scan'"
    " AND pipeline_id = ANY (ARRAY(SELECT generate_series("
    "    %(every)s::bigint, %(rows)s::bigint, %(every)s::bigint)))"
    " AND next_run_at > now()",
)

# the seed's loop: findMany due configs, then per config create the task and update the config
SELECT_DUE = """
SELECT s.id, s.pipeline_id, s.frequency, s.next_run_at, s.auto_create_pr, s.notification_channel
  FROM nightshift.schedules s
 WHERE s.kind = 'drift-scan' AND s.is_active AND s.frequency <> 'UNMONITORED' AND s.next_run_at <= now()
"""
INSERT_TASK = """
INSERT INTO nightshift.tasks (kind, subject, payload, schedule_id)
VALUES ('drift-scan', %s, jsonb_build_object('schedule_id', %s::bigint, 'pipeline_id', %s::bigint,
        'auto_create_pr', %s::boolean, 'notification_channel', %s::text,
        'scheduled_for', %s::timestamptz), %s)
ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') DO NOTHING
"""
UPDATE_NEXT = """
UPDATE nightshift.schedules SET next_run_at = nightshift.next_run_at(%s::nightshift.frequency, now(), %s)
 WHERE id = %s
"""

# Lower bounds of the model, timed from the same state as enqueue_due(): what any design that advances
# each due schedule row (and writes one task row per due target) must at least do, and nothing else.
# Each is one transaction after the due ids are known; synchronous_commit off, as enqueue_due() commits.
# the due ids from their hints, as enqueue_due() finds them (no scan of ten million rows)
DUE_IDS = ("SELECT array_agg(i) FROM nightshift.schedule_wakeups AS w, unnest(w.schedule_ids) AS i"
           " WHERE w.kind = 'drift-scan' AND w.run_at <= now()")
# the floors leave the due hints behind; the next reset would add to them
DROP_DUE_HINTS = "DELETE FROM nightshift.schedule_wakeups WHERE kind = 'drift-scan' AND run_at <= now()"
ADVANCE = ("UPDATE nightshift.schedules"
           " SET next_run_at = nightshift.next_run_at(frequency, now(), pipeline_id)"
           " WHERE id = ANY (%(ids)s)")
BARE_TASKS = ("INSERT INTO nightshift.tasks (kind, subject, schedule_id)"
              " SELECT 'drift-scan', 'pipeline/' || i, i FROM unnest(%(ids)s::bigint[]) AS i")
# a task per batch of targets instead of per target: lock (SKIP LOCKED), advance and hint the rows as
# enqueue_due() does, then one row naming them all
BATCH = """
WITH due AS (
    SELECT s.id, s.ctid AS row_id, s.next_run_at
      FROM nightshift.schedules AS s
     WHERE s.id = ANY (%(ids)s) AND s.kind = 'drift-scan' AND s.is_active AND s.frequency <> 'UNMONITORED'
       AND s.next_run_at <= now()
       FOR UPDATE OF s SKIP LOCKED
), advanced AS (
    UPDATE nightshift.schedules AS s
       SET next_run_at = nightshift.next_run_at(s.frequency, now(), s.pipeline_id)
     WHERE s.ctid = ANY (ARRAY(SELECT d.row_id FROM due AS d))
    RETURNING s.kind, s.next_run_at, s.id
), hinted AS (
    INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)
    SELECT a.kind, max(a.next_run_at), array_agg(a.id)
      FROM advanced AS a
     GROUP BY a.kind, date_trunc('minute', a.next_run_at AT TIME ZONE 'UTC')
)
INSERT INTO public.bench_due_batches (kind, schedule_ids, scheduled_for)
SELECT 'drift-scan', array_agg(d.id), array_agg(d.next_run_at) FROM due AS d
"""
FLOORS = {
    "advance only (one UPDATE by id)": [ADVANCE],
    "advance + bare task rows (payload '{}')": [ADVANCE, BARE_TASKS],
    "a batch row instead of task rows": [BATCH],
}

SERVER_SETTINGS = ("shared_buffers", "wal_compression", "synchronous_commit", "fsync", "full_page_writes",
                   "max_wal_size", "checkpoint_timeout")

TOP_STATEMENTS = """
SELECT calls, total_exec_time / calls AS mean_ms, rows / calls AS rows_per_call,
       (shared_blks_hit + shared_blks_read) / calls AS blocks, shared_blks_written / calls AS written,
       wal_bytes / calls AS wal,
       -- a text can be missing when the file of statement texts was rewritten meanwhile
       coalesce(regexp_replace(query, '\\s+', ' ', 'g'), '(statement text not kept)') AS query
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND coalesce(query, '') !~* '^\\s*(begin|commit|set |select pg_stat)'
 ORDER BY total_exec_time DESC
 LIMIT %s
"""


def fill(server_url: str, database: str, rows: int, due: int) -> str:
    url = recreate_database(server_url, database)
    migrate(url)
    started = time.perf_counter()
    with connect(url, autocommit=True) as conn:
        if rows > 1_000_000:
            # a throwaway database: autovacuum's first pass over ten million fresh rows would compete
            # with the load and the timed calls for the two CPUs
            for table in ("pipelines", "schedules", "schedule_wakeups"):
                conn.execute(sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(
                    sql.Identifier("nightshift", table)))
        # the load is one statement per table: no foreign-key check and no trigger per row
        conn.execute("SET session_replication_role = replica")
        for statement in FILL:
            conn.execute(statement, {"rows": rows, "every": rows // due})
        conn.execute("RESET session_replication_role")
        # the hints, with their index built afterwards from its own definition (one sort) rather than
        # filled row by row
        [indexdef] = conn.execute(
            "SELECT indexdef FROM pg_indexes"
            " WHERE schemaname = 'nightshift' AND indexname = 'schedule_wakeups_due_idx'").fetchone()
        conn.execute("DROP INDEX nightshift.schedule_wakeups_due_idx")
        conn.execute("SELECT nightshift.rebuild_schedule_wakeups()")
        conn.execute(indexdef)
        conn.execute("VACUUM ANALYZE" if rows <= 1_000_000 else "ANALYZE")
    print(f"filled {rows:,} schedules, {due:,} due, in {time.perf_counter() - started:.1f} s")
    return url


def reset(url: str, rows: int, due: int) -> None:
    with connect(url, autocommit=True) as conn:
        for statement in RESET:
            conn.execute(statement, {"every": rows // due, "rows": rows})
        if rows <= 1_000_000:
            # the hints the previous run wrote at the next slots are stale now; a few of them come due
            # during the benchmark and would take places in the 100,000-row batch. The hints as after the
            # fill (too slow for ten million rows, where 1,000 due leave the batch half-empty)
            conn.execute("SELECT nightshift.rebuild_schedule_wakeups()")
            conn.execute("VACUUM ANALYZE nightshift.schedules")
        conn.execute("VACUUM ANALYZE nightshift.tasks")
        conn.execute("VACUUM ANALYZE nightshift.schedule_wakeups")
        conn.execute("CHECKPOINT")


def timed_call(conn: psycopg.Connection) -> tuple[float, int]:
    started = time.perf_counter()
    rows = conn.execute("SELECT kind, enqueued FROM nightshift.enqueue_due()").fetchall()
    conn.commit()
    return time.perf_counter() - started, sum(n for _, n in rows)


def set_based(url: str, setup: Callable[[psycopg.Connection], None] | None = None) -> tuple[float, int]:
    with connect(url) as conn:
        if setup:
            setup(conn)
            conn.commit()
        return timed_call(conn)


def row_by_row(url: str, one_transaction: bool, sample: int) -> tuple[float, int, int, int]:
    """The loop over the first `sample` due rows: (seconds for all due rows, enqueued, looped, due).

    Every row costs the same two statements (and, in autocommit, two commits), so the time of the
    whole loop is the select plus the sampled loop scaled by due / looped.
    """
    enqueued = 0
    with connect(url, autocommit=not one_transaction) as conn:
        # the loop writes next_run_at itself; it is not charged for the trigger that hints a DBA's
        # reschedule to enqueue_due (the seed had no such trigger)
        conn.execute("SET nightshift.enqueue_due = 'on'")
        started = time.perf_counter()
        due = conn.execute(SELECT_DUE).fetchall()
        selected = time.perf_counter()
        looped = due[:sample] if sample else due
        for schedule_id, pipeline_id, frequency, next_run_at, auto_pr, channel in looped:
            cur = conn.execute(INSERT_TASK, (f"pipeline/{pipeline_id}", schedule_id, pipeline_id, auto_pr,
                                             channel, next_run_at, schedule_id))
            enqueued += cur.rowcount
            conn.execute(UPDATE_NEXT, (frequency, pipeline_id, schedule_id))
        conn.commit()
        finished = time.perf_counter()
    whole = (selected - started) + (finished - selected) * len(due) / max(len(looped), 1)
    return whole, enqueued, len(looped), len(due)


def stat_statements_loaded(url: str) -> bool:
    with connect(url, autocommit=True) as conn:
        libraries = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        if libraries is None or "pg_stat_statements" not in libraries[0]:
            return False
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
        return True


def track_nested(conn: psycopg.Connection) -> None:
    # this run only (the reset before it is not counted), and the statements inside enqueue_due
    conn.execute("SELECT pg_stat_statements_reset()")
    conn.execute("SET pg_stat_statements.track = 'all'")


def print_statements(url: str, limit: int = 8) -> None:
    with connect(url, autocommit=True) as conn:
        rows = conn.execute(TOP_STATEMENTS, (limit,)).fetchall()
    print("  pg_stat_statements of the last run (the statements inside enqueue_due, by time):")
    print(f"  {'calls':>5} {'mean ms':>9} {'rows':>7} {'blocks':>8} {'written':>7} {'WAL MB':>7}  statement")
    for calls, mean_ms, per_call, blocks, written, wal, query in rows:
        print(f"  {calls:>5} {mean_ms:>9.1f} {per_call:>7,} {blocks:>8,} {written:>7,} "
              f"{float(wal) / 1e6:>7.1f}  {query[:90]}")


def explain_run(url: str) -> None:
    """One more run, its plans printed by auto_explain (ANALYZE, BUFFERS): the nodes with their times."""
    notices: list[str] = []
    with connect(url) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        for setting in ("auto_explain.log_min_duration = 20", "auto_explain.log_analyze = on",
                        "auto_explain.log_buffers = on", "auto_explain.log_timing = on",
                        "auto_explain.log_nested_statements = on", "auto_explain.log_level = notice",
                        "client_min_messages = notice"):
            conn.execute(f"SET {setting}")
        conn.execute("LOAD 'auto_explain'")
        elapsed, enqueued = timed_call(conn)
    print(f"  EXPLAIN (ANALYZE, BUFFERS) of one more run ({elapsed:.3f} s, {enqueued:,} tasks; statements "
          "over 20 ms, plan nodes with actual time, buffers and rows):")
    for notice in notices:
        lines = notice.splitlines()
        head = next((ln for ln in lines if ln.startswith("Query Text:")), "")
        print(f"  -- {lines[0].strip()}  {head[len('Query Text: '):][:70].strip()}")
        for line in lines[1:]:
            if "actual time" in line or "Buffers:" in line:
                print(f"    {line.rstrip()[:150]}")


def timed_floor(url: str, statements: list[str]) -> float:
    with connect(url) as conn:
        ids = conn.execute(DUE_IDS).fetchone()[0]  # type: ignore[index]
        conn.commit()
        started = time.perf_counter()
        conn.execute("SET LOCAL synchronous_commit = off")
        # the advance is enqueue_due's own: the trigger that hints a DBA's reschedule stays quiet
        conn.execute("SET LOCAL nightshift.enqueue_due = 'on'")
        for statement in statements:
            conn.execute(statement, {"ids": ids})
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute(DROP_DUE_HINTS)
        conn.commit()
        return elapsed


def floors(url: str, rows: int, due: int, unit: str = "s") -> float:
    """The model's lower bounds next to enqueue_due(), alternating, three rounds; returns the bare floor."""
    scale = 1000 if unit == "ms" else 1
    with connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.bench_due_batches"
                     " (kind text, schedule_ids bigint[], scheduled_for timestamptz[])")
    times: dict[str, list[float]] = {"enqueue_due()": [], **{name: [] for name in FLOORS}}
    for _ in range(3):
        for name in times:
            reset(url, rows, due)
            elapsed = set_based(url)[0] if name == "enqueue_due()" else timed_floor(url, FLOORS[name])
            times[name].append(elapsed)
    print("  the model's floor, from the same state, alternating with enqueue_due(), each on a new connection"
          " (medians of three):")
    whole = statistics.median(times["enqueue_due()"])
    for name, each in times.items():
        median = statistics.median(each)
        print(f"  {median * scale:8.3f} {unit}  {median / whole:5.2f} of enqueue_due()  {name}"
              f"  ({', '.join(f'{t * scale:.3f}' for t in each)} {unit})")
    return statistics.median(times["advance + bare task rows (payload '{}')"])


def part_1m(server_url: str, args: argparse.Namespace) -> bool:
    rows, due = args.rows, args.due
    print(f"== {rows:,} schedules, {due:,} due ==")
    url = fill(server_url, DATABASE, rows, due)
    try:
        tracking = stat_statements_loaded(url)
        runs = []
        for _ in range(3):
            reset(url, rows, due)
            runs.append(set_based(url, track_nested if tracking else None))
        fast, fast_n = sorted(runs)[1]
        each = ", ".join(f"{t:.3f}" for t, _ in runs)
        print(f"enqueue_due():  {fast:8.3f} s  {fast_n:,} tasks  (median of {each} s)")
        if tracking:
            print_statements(url)
        else:
            print("  (pg_stat_statements is not in shared_preload_libraries: no per-statement figures)")
        if args.explain:
            reset(url, rows, due)
            explain_run(url)
        reset(url, rows, due)
        slow, slow_n, looped, slow_due = row_by_row(url, args.loop_transaction, args.loop_sample)
        mode = "one transaction" if args.loop_transaction else "autocommit, like an ORM loop"
        sampled = (f"; looped over {looped:,} of the {slow_due:,} due rows, time scaled to all"
                   if looped < slow_due else "")
        print(f"row-by-row:     {slow:8.3f} s  {slow_n:,} tasks  "
              f"(select due, then insert + update per row; {mode}{sampled})")
        ratio = slow / fast
        print(f"ratio:          {ratio:8.1f}x faster   (targets: under 1 s, at least 50x)")
        if args.floor:
            floor = floors(url, rows, due)
            print(f"  advancing each due schedule row and writing one bare task row per target take "
                  f"{floor:.3f} s here, before any payload, lock or hint")
        if fast_n != due or slow_due != due or slow_n != looped:
            print(f"MISMATCH: expected {due:,} tasks from enqueue_due() and one per looped row")
            return False
        return fast < 1.0 and ratio >= 50
    finally:
        if not args.keep:
            drop_database(server_url, DATABASE)


def part_10m(server_url: str, args: argparse.Namespace) -> bool:
    rows, due = args.rows_10m, args.due_10m
    print(f"== {rows:,} schedules, {due:,} due ==")
    url = fill(server_url, DATABASE_10M, rows, due)
    try:
        busy: list[tuple[float, int]] = []
        after: list[float] = []
        idle: list[float] = []
        with connect(url) as conn:
            for _ in range(3):
                reset(url, rows, due)
                busy.append(timed_call(conn))
                # right after, nothing is due: this call steps once over the hints the busy call deleted
                # (their index entries are then marked dead), the next one only reads the index
                after.append(timed_call(conn)[0])
                idle.append(timed_call(conn)[0])
        # a new connection's first call, as pg_cron makes one per run
        reset(url, rows, due)
        fresh_busy = set_based(url)[0]
        fresh_idle = set_based(url)[0]
        busy_t = statistics.median(t for t, _ in busy)
        idle_t = statistics.median(idle)
        counts = {n for _, n in busy}
        print(f"enqueue_due():  {busy_t * 1000:8.1f} ms  {due:,} due   (median of "
              f"{', '.join(f'{t * 1000:.1f}' for t, _ in busy)} ms; first call of a new connection "
              f"{fresh_busy * 1000:.1f} ms; target under 50 ms)")
        print(f"enqueue_due():  {idle_t * 1000:8.1f} ms  nothing due  (median of "
              f"{', '.join(f'{t * 1000:.1f}' for t in idle)} ms; the call right after a busy one "
              f"{', '.join(f'{t * 1000:.1f}' for t in after)} ms; first call of a new connection "
              f"{fresh_idle * 1000:.1f} ms; target under 5 ms)")
        if args.floor:
            floor = floors(url, rows, due, unit="ms")
            print(f"  advancing each due schedule row and writing one bare task row per target take "
                  f"{floor * 1000:.1f} ms here, before any payload, lock or hint")
        if counts != {due}:
            print(f"MISMATCH: expected {due:,} tasks from each run, got {sorted(counts)}")
            return False
        return busy_t < 0.050 and idle_t < 0.005
    finally:
        if not args.keep:
            drop_database(server_url, DATABASE_10M)


def print_server(url: str) -> None:
    """The settings that move these timings, so that a run on a hand-tuned server cannot pass unnoticed."""
    with connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY (%s) ORDER BY name",
            (list(SERVER_SETTINGS),)).fetchall()
        [version] = conn.execute("SHOW server_version").fetchone() or ("?",)
    print(f"server: PostgreSQL {version}, {', '.join(f'{name} {value}' for name, value in rows)}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--rows-10m", type=int, default=10_000_000, help="schedules of part 2")
    parser.add_argument("--due-10m", type=int, default=1_000, help="due schedules of part 2")
    parser.add_argument("--skip-10m", action="store_true", help="run part 1 only")
    parser.add_argument("--no-explain", dest="explain", action="store_false",
                        help="skip the EXPLAIN (ANALYZE, BUFFERS) run")
    parser.add_argument("--loop-sample", type=int, default=5_000,
                        help="loop over this many due rows and scale its time to all of them "
                             "(0: loop over all; each row costs two commits, minutes on a busy disk)")
    parser.add_argument("--loop-transaction", action="store_true",
                        help="run the row-by-row loop in one transaction instead of autocommit")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip timing the model's lower bounds next to enqueue_due()")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases afterwards")
    args = parser.parse_args()

    if not os.environ.get(URL_ENV):
        from dispatcher.localpg import LocalCluster

        LocalCluster.from_env().start()
    server_url = resolve_url(None)
    print_server(server_url)
    started = time.perf_counter()
    ok = part_1m(server_url, args)
    if not args.skip_10m:
        ok = part_10m(server_url, args) and ok
    print(f"benchmark took {time.perf_counter() - started:.0f} s; "
          f"{'every target met' if ok else 'a target was missed'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
