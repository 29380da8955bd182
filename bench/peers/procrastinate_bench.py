#!/usr/bin/env python3
"""Peer benchmark: procrastinate (https://procrastinate.readthedocs.io).

Runs procrastinate's real worker (``App.run_worker_async``) against the given
database, with LISTEN/NOTIFY on and otherwise default settings, and prints ONE
JSON line on stdout:

  throughput: {"system":"procrastinate","mode":"throughput","jobs":N,
               "concurrency":C,"seconds":..,"per_second":..,
               "first_tenth_per_second":..,"last_tenth_per_second":..,...}
  latency:    {"system":"procrastinate","mode":"latency","jobs":N,
               "concurrency":C,"p50_ms":..,"p99_ms":..,...}

The database is treated as disposable: every procrastinate_* table, function
and type in the connection's current schema is dropped and the schema is
re-applied at the start of every run.

Run with the private venv:  bench/peers/.venv/bin/python procrastinate_bench.py ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import statistics
import sys
import time

import procrastinate
import psycopg

SYSTEM = "procrastinate"
TASK_NAME = "noop"

DROP_PROCRASTINATE_SQL = r"""
DO $$
DECLARE
  tabs text[];
  funcs text[];
  typs text[];
  x text;
BEGIN
  SELECT coalesce(array_agg(format('%I.%I', n.nspname, c.relname)), '{}')
    INTO tabs
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
     AND c.relname LIKE 'procrastinate\_%';
  SELECT coalesce(array_agg(format('%I.%I(%s)', n.nspname, p.proname,
                                   pg_get_function_identity_arguments(p.oid))), '{}')
    INTO funcs
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\_%';
  SELECT coalesce(array_agg(format('%I.%I', n.nspname, t.typname)), '{}')
    INTO typs
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\_%'
     AND (t.typtype = 'e'
          OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class rc
                                           WHERE rc.oid = t.typrelid
                                             AND rc.relkind = 'c')));
  FOREACH x IN ARRAY tabs LOOP
    EXECUTE 'DROP TABLE IF EXISTS ' || x || ' CASCADE';
  END LOOP;
  FOREACH x IN ARRAY funcs LOOP
    EXECUTE 'DROP FUNCTION IF EXISTS ' || x || ' CASCADE';
  END LOOP;
  FOREACH x IN ARRAY typs LOOP
    EXECUTE 'DROP TYPE IF EXISTS ' || x || ' CASCADE';
  END LOOP;
END $$;
"""


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def reset_schema(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(DROP_PROCRASTINATE_SQL)


def make_app(dsn: str, pool_size: int) -> procrastinate.App:
    # Default connector settings apart from the pool size (psycopg_pool's
    # default is 4 connections; see --pool-size).
    return procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=dsn, min_size=pool_size, max_size=pool_size
        )
    )


async def count_by_status(app: procrastinate.App) -> dict[str, int]:
    rows = await app.connector.execute_query_all_async(
        "SELECT status::text AS status, count(*) AS n FROM procrastinate_jobs GROUP BY 1"
    )
    return {r["status"]: int(r["n"]) for r in rows}


async def run_throughput(args: argparse.Namespace) -> dict:
    app = make_app(args.dsn, args.pool_size)
    starts: list[float] = []

    @app.task(name=TASK_NAME)
    async def noop(**_kwargs) -> None:
        starts.append(time.perf_counter())

    async with app.open_async():
        await app.schema_manager.apply_schema_async()

        # Pre-enqueue N jobs in bulk (one procrastinate_defer_jobs_v1 call per
        # chunk) BEFORE the timer starts.
        t_enq = time.perf_counter()
        remaining = args.jobs
        while remaining > 0:
            n = min(remaining, args.enqueue_chunk)
            await noop.batch_defer_async(*([{}] * n))
            remaining -= n
        enqueue_seconds = time.perf_counter() - t_enq
        counts = await count_by_status(app)
        if counts.get("todo", 0) != args.jobs:
            raise SystemExit(f"pre-enqueue failed: {counts}")
        # Let autovacuum/stats settle a little, like a queue that has been
        # filled ahead of time.
        await app.connector.execute_query_async("ANALYZE procrastinate_jobs")

        # Timed section: start the real worker; wait=False makes it stop by
        # itself once a fetch finds the queue empty (it then waits for the jobs
        # still running and for their completion to be written).
        t0 = time.perf_counter()
        await app.run_worker_async(
            concurrency=args.concurrency,
            wait=False,
            listen_notify=True,
            install_signal_handlers=False,
        )
        t1 = time.perf_counter()

        counts = await count_by_status(app)
        if counts.get("succeeded", 0) != args.jobs or len(starts) != args.jobs:
            raise SystemExit(
                f"not all jobs done: statuses={counts} started={len(starts)}"
            )

    seconds = t1 - t0
    result = {
        "system": SYSTEM,
        "mode": "throughput",
        "jobs": args.jobs,
        "concurrency": args.concurrency,
        "pool_size": args.pool_size,
        "seconds": round(seconds, 4),
        "per_second": round(args.jobs / seconds, 1),
    }
    result.update(tenth_rates(starts))
    result["enqueue_seconds"] = round(enqueue_seconds, 3)
    result["version"] = procrastinate.__version__
    return result


def tenth_rates(starts: list[float]) -> dict:
    """Sustained rate over the first and last tenth of job *starts*."""
    n = len(starts)
    k = n // 10
    if k < 2:
        return {}
    s = sorted(starts)
    first = s[k] - s[0]
    last = s[n - 1] - s[n - 1 - k]
    return {
        "first_tenth_per_second": round(k / first, 1) if first > 0 else None,
        "last_tenth_per_second": round(k / last, 1) if last > 0 else None,
    }


async def run_latency(args: argparse.Namespace) -> dict:
    app = make_app(args.dsn, args.pool_size)
    started: dict[int, float] = {}
    events: dict[int, asyncio.Event] = {}

    @app.task(name=TASK_NAME)
    async def noop(i: int) -> None:
        started[i] = time.perf_counter()  # first thing the job does
        ev = events.get(i)
        if ev is not None:
            ev.set()

    # Enqueuer: procrastinate's own synchronous API (SyncPsycopgConnector).
    # It runs *blocking* on the event loop thread, so the worker (same loop)
    # cannot react before we have read the clock right after the INSERT's
    # commit; the NOTIFY waits in the listener's socket until the loop resumes.
    enq_app = procrastinate.App(
        connector=procrastinate.SyncPsycopgConnector(conninfo=args.dsn)
    )
    deferrer = enq_app.configure_task(TASK_NAME)

    rng = random.Random(args.seed)
    latencies_ms: list[float] = []
    rtt_ms: list[float] = []  # enqueue round trip (send -> commit ack), for context
    from_send_ms: list[float] = []  # enqueue call start -> job start (incl. commit)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        with enq_app.open():
            worker = asyncio.create_task(
                app.run_worker_async(
                    concurrency=args.concurrency,
                    wait=True,
                    listen_notify=True,
                    install_signal_handlers=False,
                )
            )
            try:
                total = args.warmup + args.jobs
                for i in range(total):
                    # Idle worker: previous job done, wait 10-20 ms before the
                    # next insert.
                    await asyncio.sleep(rng.uniform(args.gap_min_ms, args.gap_max_ms) / 1000)
                    ev = events[i] = asyncio.Event()
                    t_send = time.perf_counter()
                    deferrer.defer(i=i)  # blocking; returns after COMMIT
                    t_commit = time.perf_counter()
                    try:
                        await asyncio.wait_for(ev.wait(), timeout=args.job_timeout)
                    except TimeoutError:
                        raise SystemExit(f"job {i} did not start within {args.job_timeout}s") from None
                    if i >= args.warmup:
                        latencies_ms.append((started[i] - t_commit) * 1000.0)
                        rtt_ms.append((t_commit - t_send) * 1000.0)
                        from_send_ms.append((started[i] - t_send) * 1000.0)
                    del events[i]
                # let the last job's completion be written
                await asyncio.sleep(0.05)
            finally:
                # Graceful stop: cancelling run_worker_async makes the worker
                # set its stop event, finish running jobs and unregister.
                worker.cancel()
                try:
                    await worker
                except asyncio.CancelledError:
                    pass
        counts = await count_by_status(app)

    lat = sorted(latencies_ms)
    return {
        "system": SYSTEM,
        "mode": "latency",
        "jobs": args.jobs,
        "concurrency": args.concurrency,
        "p50_ms": round(percentile(lat, 50), 3),
        "p99_ms": round(percentile(lat, 99), 3),
        "mean_ms": round(statistics.fmean(lat), 3),
        "min_ms": round(lat[0], 3),
        "max_ms": round(lat[-1], 3),
        "negative_count": sum(1 for x in lat if x < 0),
        "from_send_p50_ms": round(percentile(sorted(from_send_ms), 50), 3),
        "from_send_p99_ms": round(percentile(sorted(from_send_ms), 99), 3),
        "enqueue_rtt_p50_ms": round(percentile(sorted(rtt_ms), 50), 3),
        "succeeded": counts.get("succeeded", 0),
        "version": procrastinate.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dsn", required=True, help="postgresql://... (disposable database)")
    p.add_argument("--mode", choices=["throughput", "latency"], required=True)
    p.add_argument("--jobs", type=int, default=None,
                   help="number of jobs (default 20000 throughput / 500 latency)")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--pool-size", type=int, default=None,
                   help="psycopg pool size (default: max(4, concurrency + 2); "
                        "4 is psycopg_pool's default)")
    p.add_argument("--enqueue-chunk", type=int, default=10000,
                   help="jobs per bulk defer call during pre-enqueue")
    p.add_argument("--warmup", type=int, default=5,
                   help="latency mode: unmeasured jobs run first")
    p.add_argument("--gap-min-ms", type=float, default=10.0)
    p.add_argument("--gap-max-ms", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--job-timeout", type=float, default=30.0)
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    if args.jobs is None:
        args.jobs = 20000 if args.mode == "throughput" else 500
    if args.pool_size is None:
        args.pool_size = max(4, args.concurrency + 2)

    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    logging.getLogger("procrastinate").setLevel(args.log_level)
    # Tasks are defined in __main__ on purpose (self-contained script); the
    # "App is instantiated in the main Python module" warning is irrelevant.
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)

    reset_schema(args.dsn)
    if args.mode == "throughput":
        result = asyncio.run(run_throughput(args))
    else:
        result = asyncio.run(run_latency(args))
    # 1-minute load average at the end of the run: on a 2-core machine anything
    # much above ~2 (the run itself
    # accounts for 1-2) means something else competed for the CPU.
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
