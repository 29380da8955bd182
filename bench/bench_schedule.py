"""Benchmark: enqueue_due() against the seed design's row-by-row loop, in the same run.

Fills 1,000,000 drift schedules (100,000 of them due) in a database of its own on the embedded cluster
(or the server of $NIGHTSHIFT_DATABASE_URL), then times

  set-based  SELECT * FROM nightshift.enqueue_due()  — one statement per kind;
  row-by-row what the seed does in application code: select the due configurations, then for each one
             insert a task and update its next run, one statement at a time (autocommit, as an ORM does
             without an explicit transaction; --loop-transaction runs the loop in one transaction instead).

Both start from the same state (the loop's run is reset to the same 100,000 due rows) and must enqueue
the same number of tasks. Run with `make bench-schedule`.
"""

from __future__ import annotations

import argparse
import os
import time

from dispatcher.config import URL_ENV, resolve_url
from dispatcher.db import connect, drop_database, recreate_database
from dispatcher.migrate import migrate

DATABASE = "nightshift_bench_schedule"

FILL = (
    "INSERT INTO nightshift.organizations (name) VALUES ('bench')",
    "INSERT INTO nightshift.repositories (organization_id, name, url)"
    " SELECT id, 'infra', 'x' FROM nightshift.organizations",
    "INSERT INTO nightshift.pipelines (repository_id, name)"
    " SELECT r.id, 'p' || g FROM nightshift.repositories r, generate_series(1, %(rows)s) g",
    # every n-th schedule is due (at most ten minutes late), the others fall due within the next day
    """INSERT INTO nightshift.schedules (kind, pipeline_id, frequency, next_run_at)
       SELECT 'drift-scan', p.id, 'DAILY',
              CASE WHEN p.id %% %(every)s = 0 THEN now() - random() * interval '10 minutes'
                   ELSE now() + interval '1 minute' + random() * interval '1 day' END
         FROM nightshift.pipelines p""",
)

RESET = (
    "DELETE FROM nightshift.tasks",
    "UPDATE nightshift.schedules SET next_run_at = now() - random() * interval '10 minutes'"
    " WHERE pipeline_id %% %(every)s = 0",
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


def prepare(server_url: str, rows: int, due: int) -> str:
    url = recreate_database(server_url, DATABASE)
    migrate(url)
    started = time.perf_counter()
    with connect(url, autocommit=True) as conn:
        for statement in FILL:
            conn.execute(statement, {"rows": rows, "every": rows // due})
        conn.execute("VACUUM ANALYZE")
    print(f"filled {rows:,} schedules, {due:,} due, in {time.perf_counter() - started:.1f} s")
    return url


def reset(url: str, rows: int, due: int) -> None:
    with connect(url, autocommit=True) as conn:
        for statement in RESET:
            conn.execute(statement, {"every": rows // due})
        conn.execute("VACUUM ANALYZE nightshift.tasks")
        conn.execute("VACUUM ANALYZE nightshift.schedules")
        conn.execute("CHECKPOINT")


def set_based(url: str) -> tuple[float, int]:
    with connect(url) as conn:
        started = time.perf_counter()
        rows = conn.execute("SELECT kind, enqueued FROM nightshift.enqueue_due()").fetchall()
        conn.commit()
        elapsed = time.perf_counter() - started
    return elapsed, sum(n for _, n in rows)


def row_by_row(url: str, one_transaction: bool) -> tuple[float, int]:
    enqueued = 0
    with connect(url, autocommit=not one_transaction) as conn:
        started = time.perf_counter()
        due = conn.execute(SELECT_DUE).fetchall()
        for schedule_id, pipeline_id, frequency, next_run_at, auto_pr, channel in due:
            cur = conn.execute(INSERT_TASK, (f"pipeline/{pipeline_id}", schedule_id, pipeline_id, auto_pr,
                                             channel, next_run_at, schedule_id))
            enqueued += cur.rowcount
            conn.execute(UPDATE_NEXT, (frequency, pipeline_id, schedule_id))
        conn.commit()
        elapsed = time.perf_counter() - started
    return elapsed, enqueued


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--loop-transaction", action="store_true",
                        help="run the row-by-row loop in one transaction instead of autocommit")
    parser.add_argument("--keep", action="store_true", help=f"keep the {DATABASE} database afterwards")
    args = parser.parse_args()

    if not os.environ.get(URL_ENV):
        from dispatcher.localpg import LocalCluster

        LocalCluster.from_env().start()
    server_url = resolve_url(None)
    url = prepare(server_url, args.rows, args.due)
    try:
        # three runs, each from the same reset state: the median is reported (autovacuum and checkpoints
        # make single runs of a 100,000-row write noisy)
        runs = []
        for _ in range(3):
            reset(url, args.rows, args.due)
            runs.append(set_based(url))
        fast, fast_n = sorted(runs)[1]
        each = ", ".join(f"{t:.3f}" for t, _ in runs)
        print(f"enqueue_due():  {fast:8.3f} s  {fast_n:,} tasks  (one set-based statement per kind; "
              f"median of {each} s)")
        reset(url, args.rows, args.due)
        slow, slow_n = row_by_row(url, args.loop_transaction)
        mode = "one transaction" if args.loop_transaction else "autocommit, like an ORM loop"
        print(f"row-by-row:     {slow:8.3f} s  {slow_n:,} tasks  "
              f"(select due, then insert + update per row; {mode})")
        print(f"ratio:          {slow / fast:8.1f}x faster")
        if fast_n != slow_n or fast_n != args.due:
            print(f"MISMATCH: expected {args.due:,} tasks from each")
            return 1
        return 0 if fast < 5 and slow / fast >= 20 else 1
    finally:
        if not args.keep:
            drop_database(server_url, DATABASE)


if __name__ == "__main__":
    raise SystemExit(main())
