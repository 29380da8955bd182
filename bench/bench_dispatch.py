#!/usr/bin/env python3
"""Dispatcher benchmark: Nightshift against the raw SQL limit and its peers, in one run, on one server.

    make bench-dispatch                       # everything (about 10 minutes)
    .venv/bin/python bench/bench_dispatch.py --skip-peers --jobs 20000

Measures, on this machine and the same PostgreSQL:
  (a) the raw SQL limit: throughput of the statements the daemon runs (nightshift.complete_and_claim:
      claim a batch, then complete it, each its own transaction), driven by pgbench, batches of 1
      and 16;
  (b) end-to-end: the real Dispatcher draining N pre-enqueued `noop` tasks at concurrency 1 and 16
      (each drain run --repeat times, interleaved with the peers'; the median run is reported);
  (c) sustained: draining 200,000 tasks, rate over the first tenth against the last tenth;
  (d) wake-up latency: insert (the moment the INSERT is sent) to agent start, p50/p99 over 500 tasks,
      idle; also from the enqueuer's commit acknowledgement, as a secondary measure;
  (e) the same throughput and latency for procrastinate and graphile-worker (bench/peers/).

The server: --admin-url (a role that may CREATE DATABASE), else a throwaway embedded cluster under
.nightshift/bench-postgres (port 54341) with the test cluster's settings (fsync, synchronous_commit
and full_page_writes off: commit latency would otherwise be the disk's, for everyone alike).
The dispatcher runs in this process, as the peers' workers run in theirs; enqueues are blocking
calls on the event-loop thread, so a wake-up cannot be observed before the commit was acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dispatcher import eventloop  # noqa: E402
from dispatcher.daemon import Dispatcher, DispatcherConfig  # noqa: E402
from dispatcher.db import recreate_database  # noqa: E402
from dispatcher.localpg import LocalCluster, find_bindir  # noqa: E402
from dispatcher.migrate import migrate  # noqa: E402

PEERS = ROOT / "bench" / "peers"
BENCH_DB = "nightshift_bench"
PEERS_DB = "peers"
CLUSTER_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

# The daemon's statements (sql/queries/queue.sql, task_complete_and_claim), as the daemon runs them: a
# claim from the previous claim's position (from the head, (0, -infinity, 0), when the previous one
# claimed nothing), then the completion of what it claimed, each its own transaction. (The daemon
# pipelines the completion with its next claim; pgbench runs them one after the other.)
PGBENCH_SCRIPT = """
WITH c AS (SELECT id, attempt, priority, run_after
             FROM nightshift.complete_and_claim('{{}}', '{{}}', 'pgbench', NULL, {batch}, '30 seconds',
                                                :hp, :hra, :hid)
            WHERE id IS NOT NULL)
SELECT coalesce((SELECT array_agg(id) FROM c), '{{}}') AS ids,
       coalesce((SELECT array_agg(attempt) FROM c), '{{}}') AS atts,
       coalesce(l.priority, 0) AS hp, coalesce(l.run_after, '-infinity') AS hra, coalesce(l.id, 0) AS hid
  FROM (SELECT 1) AS d
  LEFT JOIN LATERAL (SELECT * FROM c ORDER BY priority, run_after DESC, id DESC LIMIT 1) AS l ON true \\gset
SELECT completed
  FROM nightshift.complete_and_claim(:ids::bigint[], :atts::int[], 'pgbench', NULL, 0, '30 seconds',
                                     NULL, NULL, NULL);
"""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- the server ------------------------------------------------------------------------------------
def server_url(args: argparse.Namespace) -> str:
    if args.admin_url:
        return str(args.admin_url)
    cluster = LocalCluster.from_env(data_dir=str(ROOT / ".nightshift" / "bench-postgres"), port=args.port,
                                    database="postgres")
    cluster.start(extra_settings=CLUSTER_SETTINGS)
    return cluster.url("postgres")


def fill(url: str, n: int) -> None:
    """An empty, vacuumed queue with n due noop tasks (one INSERT: one NOTIFY, nobody listening)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE nightshift.tasks CASCADE")
        conn.execute("INSERT INTO nightshift.tasks (kind, subject, run_after) "
                     "SELECT 'noop', 'bench/' || g, now() - interval '1 second' "
                     "FROM generate_series(1, %s) AS g", (n,))
        conn.execute("VACUUM ANALYZE nightshift.tasks")


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


# -- (a) the raw SQL limit ---------------------------------------------------------------------------
def raw_sql_limit(url: str, batch: int, clients: int, seconds: int) -> dict[str, Any]:
    fill(url, 1_600_000 if batch > 1 else 400_000)  # more than 10 s of pgbench can claim here
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT.format(batch=batch))
    pgbench = str(find_bindir() / "pgbench")
    try:
        out = subprocess.run(
            [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
             "-T", str(seconds), "-D", "hp=0", "-D", "hra=-infinity", "-D", "hid=0",
             "-f", script.name, url],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    tps = next(float(line.split("=")[1].split()[0]) for line in out.splitlines() if line.startswith("tps ="))
    with psycopg.connect(url, autocommit=True) as conn:
        remaining = conn.execute("SELECT count(*) FROM nightshift.tasks WHERE status = 'queued'").fetchone()
    if remaining and remaining[0] == 0:
        log(f"pgbench batch {batch}: the queue ran dry; raise the fill")
    return {"system": "pgbench", "batch": batch, "clients": clients, "per_second": round(tps * batch, 1)}


# -- (b), (c) throughput -----------------------------------------------------------------------------
async def drain(url: str, jobs: int, concurrency: int) -> dict[str, Any]:
    fill(url, jobs)
    dispatcher = Dispatcher(DispatcherConfig(url=url, worker="bench", concurrency=concurrency,
                                             poll_interval=2.0, lease=30.0))
    starts: list[float] = []
    dispatcher.on_start = lambda task: starts.append(time.perf_counter())
    t0 = time.perf_counter()
    runner = asyncio.create_task(dispatcher.run(install_signals=False))
    # Counted when the completions' answer is in: stored. Looked at every 5 ms: the end is seen at
    # most 5 ms late (under 1 % of the shortest drain), and the look costs the dispatcher's event loop
    # less than at 2 ms, which profiled at 2 % of the c1 drain.
    while dispatcher.stats.succeeded < jobs:
        if runner.done():
            raise SystemExit(f"dispatcher stopped early: {runner.result()}")
        await asyncio.sleep(0.005)
    seconds = time.perf_counter() - t0
    dispatcher.stop()
    await runner
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT status::text, attempt, count(*) FROM nightshift.tasks "
                            "GROUP BY 1, 2").fetchall()
    if rows != [("done", 1, jobs)]:
        raise SystemExit(f"not every task ran exactly once: {rows}")
    result = {"system": "nightshift", "mode": "throughput", "jobs": jobs, "concurrency": concurrency,
              "seconds": round(seconds, 3), "per_second": round(jobs / seconds, 1), "loadavg_1m": loadavg()}
    result.update(tenth_rates(starts))
    return result


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run with the median rate (the lower middle one of an even number), with every rate kept."""
    if not runs:
        return None
    ordered = sorted(runs, key=lambda r: r["per_second"])
    return {**ordered[(len(ordered) - 1) // 2], "runs_per_second": [r["per_second"] for r in runs]}


def tenth_rates(starts: list[float]) -> dict[str, Any]:
    """Same definition as the peers': rate over the first and the last tenth of task starts."""
    n = len(starts)
    k = n // 10
    s = sorted(starts)
    first, last = s[k] - s[0], s[n - 1] - s[n - 1 - k]
    return {"first_tenth_per_second": round(k / first, 1) if first > 0 else None,
            "last_tenth_per_second": round(k / last, 1) if last > 0 else None}


# -- (d) wake-up latency -----------------------------------------------------------------------------
async def latency(url: str, jobs: int, warmup: int = 5, seed: int = 1) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE nightshift.tasks CASCADE")
        conn.execute("VACUUM ANALYZE nightshift.tasks")
    dispatcher = Dispatcher(DispatcherConfig(url=url, worker="bench", concurrency=1, poll_interval=2.0,
                                             lease=30.0))
    started: dict[str, float] = {}
    events: dict[str, asyncio.Event] = {}

    def on_start(task: Any) -> None:
        started[task.subject] = time.perf_counter()
        if (event := events.get(task.subject)) is not None:
            event.set()

    dispatcher.on_start = on_start
    runner = asyncio.create_task(dispatcher.run(install_signals=False))
    rng = random.Random(seed)
    samples: list[float] = []
    from_send: list[float] = []  # including the enqueue round trip, as the peers also report
    with psycopg.connect(url, autocommit=True) as enqueuer:  # blocking, on the loop thread
        enqueuer.execute("SELECT 1")
        await asyncio.sleep(0.5)  # connected and listening
        for i in range(warmup + jobs):
            await asyncio.sleep(rng.uniform(0.010, 0.020))
            subject = f"latency/{i}"
            event = events[subject] = asyncio.Event()
            sent = time.perf_counter()
            enqueuer.execute("SELECT nightshift.enqueue('noop', %s)", (subject,))
            committed = time.perf_counter()
            await asyncio.wait_for(event.wait(), timeout=30)
            if i >= warmup:
                samples.append((started[subject] - committed) * 1000)
                from_send.append((started[subject] - sent) * 1000)
    dispatcher.stop()
    await runner
    s = sorted(samples)
    return {"system": "nightshift", "mode": "latency", "jobs": jobs, "p50_ms": round(percentile(s, 50), 3),
            "p99_ms": round(percentile(s, 99), 3), "max_ms": round(s[-1], 3),
            "from_send_p50_ms": round(percentile(sorted(from_send), 50), 3),
            "from_send_p99_ms": round(percentile(sorted(from_send), 99), 3)}


def percentile(sorted_values: list[float], q: float) -> float:
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# -- (e) peers ---------------------------------------------------------------------------------------
def peer(system: str, url: str, mode: str, jobs: int, concurrency: int = 1) -> dict[str, Any] | None:
    if system == "procrastinate":
        argv = [str(PEERS / ".venv" / "bin" / "python"), "procrastinate_bench.py"]
    else:
        argv = ["node", "graphile_bench.js"]
    argv += ["--dsn", url, "--mode", mode, "--jobs", str(jobs), "--concurrency", str(concurrency)]
    proc = subprocess.run(argv, cwd=PEERS, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        log(f"{system} {mode} c{concurrency} failed: {proc.stderr.strip()[-500:]}")
        return None
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def peers_available() -> bool:
    return ((PEERS / ".venv" / "bin" / "python").exists()
            and (PEERS / "node_modules" / "graphile-worker").exists())


# -- the report --------------------------------------------------------------------------------------
def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.0f}{unit}" if value >= 100 else f"{value:.1f}{unit}"
    return f"{value}{unit}"


def report(r: dict[str, Any], jobs: int, sustained_jobs: int) -> str:
    lines = []
    add = lines.append
    add(f"Dispatcher benchmark — {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPUs, "
        f"PostgreSQL {r['server_version']} ({r['settings']}), Python {sys.version.split()[0]} on "
        f"{eventloop.loop_name()}")
    add("")
    add(f"| system | drain {jobs:,} c1 /s | drain {jobs:,} c16 /s | wake-up p50 | wake-up p99 "
        "| from commit ack p50 | from commit ack p99 | load (c1, c16) |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("nightshift", "procrastinate", "graphile-worker"):
        sys_r = r.get(name)
        if not sys_r:
            continue
        c1, c16, lat = sys_r.get("c1"), sys_r.get("c16"), sys_r.get("latency")
        add(f"| {name} | {fmt(c1 and c1['per_second'])} | {fmt(c16 and c16['per_second'])} | "
            f"{fmt(lat and lat['from_send_p50_ms'], ' ms')} | "
            f"{fmt(lat and lat['from_send_p99_ms'], ' ms')} | "
            f"{fmt(lat and lat['p50_ms'], ' ms')} | {fmt(lat and lat['p99_ms'], ' ms')} | "
            f"{(c1 or {}).get('loadavg_1m', '-')}, {(c16 or {}).get('loadavg_1m', '-')} |")
    add("")
    add("every run (the table shows the median):")
    for name in ("nightshift", "procrastinate", "graphile-worker"):
        for key in ("c1", "c16"):
            if (measured := (r.get(name) or {}).get(key)) is not None:
                rates = " / ".join(fmt(x) for x in measured["runs_per_second"])
                add(f"  {name} {key}: {rates} per second")
    add("")
    raw1, raw16 = r["raw"][1], r["raw"][16]
    add(f"raw SQL limit (pgbench, {raw16['clients']} clients, the daemon's claim then completion): "
        f"batch 1 {fmt(raw1['per_second'])}/s, batch 16 {fmt(raw16['per_second'])}/s")
    sus = r["sustained"]
    decay = 1 - sus["last_tenth_per_second"] / sus["first_tenth_per_second"]
    add(f"sustained, {sustained_jobs:,} tasks at c16: {fmt(sus['per_second'])}/s overall; first tenth "
        f"{fmt(sus['first_tenth_per_second'])}/s, last tenth {fmt(sus['last_tenth_per_second'])}/s "
        f"(decay {decay:+.0%}, target < 30%)")
    add("")
    ns = r["nightshift"]

    def ratio(label: str, value: float, target: str = "") -> None:
        add(f"  {label:<42} {value:.2f}" + (f"  [{target}]" if target else ""))

    add("ratios (target in brackets):")
    ratio("nightshift c16 / raw SQL batch 16", ns["c16"]["per_second"] / raw16["per_second"], ">= 0.40")
    ratio("nightshift c1 / raw SQL batch 1", ns["c1"]["per_second"] / raw1["per_second"])
    gw = r.get("graphile-worker") or {}
    if gw.get("c16") and gw.get("c1"):
        ratio("nightshift c16 / graphile-worker c16", ns["c16"]["per_second"] / gw["c16"]["per_second"],
              ">= 3")
        ratio("nightshift c1 / graphile-worker c1", ns["c1"]["per_second"] / gw["c1"]["per_second"], ">= 1")
    pr = r.get("procrastinate") or {}
    if pr.get("c16") and pr.get("c1"):
        ratio("nightshift c16 / procrastinate c16", ns["c16"]["per_second"] / pr["c16"]["per_second"])
        ratio("nightshift c1 / procrastinate c1", ns["c1"]["per_second"] / pr["c1"]["per_second"])
    lats = [x["latency"] for x in (gw, pr) if x.get("latency")]
    if lats:  # wake-up as the issue defines it: from insert (sent) to agent start
        for q in ("p50", "p99"):
            key = f"from_send_{q}_ms"
            best = min(x[key] for x in lats)
            ratio(f"wake-up {q} nightshift / best peer", ns["latency"][key] / best, "<= 1")
    label = f"decay, first to last tenth of {sustained_jobs:,} tasks"
    add(f"  {label:<42} {decay:+.0%}  [< 30%]")
    add("note: wake-up is measured from the moment the enqueuer sends the INSERT to the agent's start "
        "(the issue's \"from insert to agent start\"), the same clocks for all three systems; the ratios use "
        "it. The `from commit ack` columns start the clock when the enqueuer sees the commit acknowledged: "
        "a race with the worker, not a latency.")
    negative = (gw.get("latency") or {}).get("negative_count")
    if negative:
        add(f"note: {negative} of graphile-worker's commit-ack samples are negative (its worker started the "
            "job before its enqueuer, on the same event loop, saw the commit; see bench/peers/README.md).")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    admin = server_url(args)
    url = recreate_database(admin, BENCH_DB)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        settings = ", ".join(f"{name} {conn.execute(f'SHOW {name}').fetchone()[0]}"  # type: ignore[index]
                             for name in ("fsync", "synchronous_commit", "shared_buffers"))
    results: dict[str, Any] = {"server_version": version[0] if version else "?", "settings": settings}
    log("(a) raw SQL limit with pgbench")
    results["raw"] = {b: raw_sql_limit(url, b, args.pgbench_clients, args.pgbench_seconds) for b in (1, 16)}
    ns: dict[str, Any] = {}
    results["nightshift"] = ns
    peers: tuple[str, ...] = ()
    if not args.skip_peers:
        if peers_available():
            peers = ("graphile-worker", "procrastinate")
            peers_url = recreate_database(admin, PEERS_DB)
        else:
            log("peers not installed (bench/peers/setup.sh); skipping them")
    for system in peers:
        results[system] = {}
    # Interleaved, measurement by measurement, so that other load on the machine (it is shared) falls
    # on every system alike rather than on whichever ran during it.
    # Each drain is repeated and the median run reported: one run on a shared machine is weak evidence.
    for key, concurrency in (("c1", 1), ("c16", 16)):
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ("nightshift", *peers)}
        for rep in range(1, args.repeat + 1):
            log(f"(b) drain {args.jobs} noop tasks at c{concurrency}, run {rep} of {args.repeat}")
            runs["nightshift"].append(await drain(url, args.jobs, concurrency))
            log(json.dumps(runs["nightshift"][-1]))
            for system in peers:
                if (measured := peer(system, peers_url, "throughput", args.jobs, concurrency)) is not None:
                    runs[system].append(measured)
                    log(json.dumps(measured))
        ns[key] = median_run(runs["nightshift"])
        for system in peers:
            results[system][key] = median_run(runs[system])
    log("(d) wake-up latency")
    ns["latency"] = await latency(url, args.latency_jobs)
    log(json.dumps(ns["latency"]))
    with psycopg.connect(url, autocommit=True) as conn:  # leave the server quiet for the peers
        conn.execute("TRUNCATE nightshift.tasks CASCADE")
    for system in peers:
        results[system]["latency"] = peer(system, peers_url, "latency", args.latency_jobs)
        log(json.dumps(results[system]["latency"]))
    log(f"(c) nightshift sustained: {args.sustained_jobs} tasks at c16")
    results["sustained"] = await drain(url, args.sustained_jobs, 16)
    log(json.dumps(results["sustained"]))
    print(report(results, args.jobs, args.sustained_jobs))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", help="server to use (a role that may CREATE DATABASE); default: "
                        "an embedded cluster under .nightshift/bench-postgres")
    parser.add_argument("--port", type=int, default=54341, help="embedded cluster port (default 54341)")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each drain (c1, c16) per system, interleaved; the median is reported")
    parser.add_argument("--sustained-jobs", type=int, default=200_000)
    parser.add_argument("--latency-jobs", type=int, default=500)
    parser.add_argument("--pgbench-clients", type=int, default=4)
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write every measurement as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    eventloop.run(main_async(args))  # the loop `nightshift dispatcher run` uses


if __name__ == "__main__":
    main()
