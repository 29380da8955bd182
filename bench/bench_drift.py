"""Benchmark: a plan of 10,000 drifted resources, parsed and recorded.

The plan is built from a real recorded one (tests/fixtures/plans/bucket_tags_changed.json): its drifted
bucket, with its resource_drift and resource_changes entries, copied 10,000 times under new addresses.
In a database of its own on the embedded cluster (or the server of $NIGHTSHIFT_DATABASE_URL) it times

  parse          dispatcher.drift.plan.parse_plan on the JSON bytes (what the drift-scan agent does),
                 with its CPU time, against a bare json.loads with the GC on (the machine may be shared);
  record, new    nightshift.record_scan of those findings: every finding inserted, one transaction;
  record, again  a rescan of the same plan: every finding updated (occurrences, last_seen), one transaction;
  record, clean  a clean rescan: every finding resolved, one transaction.

Each step runs --rounds times (a new pipeline per round) and the median is printed.
Target: under 3 s each. Run with `make bench-drift`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from dispatcher.config import URL_ENV, resolve_url
from dispatcher.db import connect, drop_database, recreate_database
from dispatcher.drift.plan import parse_plan
from dispatcher.migrate import migrate

DATABASE = "nightshift_bench_drift"
TARGET_SECONDS = 3.0
FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "plans" / "bucket_tags_changed.json"
ADDRESS = "aws_s3_bucket.logs"

SETUP = """
WITH org AS (
    INSERT INTO nightshift.organizations (name) VALUES ('bench-' || gen_random_uuid()) RETURNING id
), repo AS (
    INSERT INTO nightshift.repositories (organization_id, name, url) SELECT id, 'infra', '/srv/infra' FROM org
    RETURNING id
)
INSERT INTO nightshift.pipelines (repository_id, name) SELECT id, 'network' FROM repo RETURNING id
"""
CLAIMED = """
INSERT INTO nightshift.tasks (kind, subject, status, attempt, locked_by, locked_until, started_at)
VALUES ('drift-scan', %s, 'running', 1, 'bench', now() + interval '1 hour', now()) RETURNING id
"""
RECORD = "SELECT nightshift.record_scan(%s, 1, %s, %s, %s, '{}', NULL, now())"


def big_plan(resources: int) -> bytes:
    """The fixture's drifted bucket, `resources` times, as `terraform show -json` would print it."""
    plan = json.loads(FIXTURE.read_text())
    drift = next(entry for entry in plan["resource_drift"] if entry["address"] == ADDRESS)
    change = next(entry for entry in plan["resource_changes"] if entry["address"] == ADDRESS)
    plan["resource_drift"], plan["resource_changes"] = [], []
    for i in range(resources):
        for source, target in ((drift, plan["resource_drift"]), (change, plan["resource_changes"])):
            entry = copy.deepcopy(source)
            entry["address"], entry["name"] = f"aws_s3_bucket.logs_{i}", f"logs_{i}"
            for side in ("before", "after"):
                if isinstance(entry["change"].get(side), dict):
                    entry["change"][side]["bucket"] = entry["change"][side]["id"] = f"nightshift-logs-{i}"
            target.append(entry)
    return json.dumps(plan).encode()


def prepare(server_url: str) -> str:
    url = recreate_database(server_url, DATABASE)
    migrate(url)
    return url


def record(
    url: str, subject: str, status: str, findings: list[dict[str, Any]],
) -> tuple[float, dict[str, Any]]:
    """One scan result, one transaction, timed from the statement to the commit."""
    with connect(url) as conn:
        row = conn.execute(CLAIMED, (subject,)).fetchone()
        assert row is not None
        conn.commit()
        started = time.perf_counter()
        scan = conn.execute(RECORD, (row[0], status, Jsonb({}), Jsonb(findings))).fetchone()
        conn.commit()
        elapsed = time.perf_counter() - started
        assert scan is not None and scan[0] is not None
        summary = conn.execute("SELECT summary FROM nightshift.scans WHERE id = %s", (scan[0],)).fetchone()
        assert summary is not None
        return elapsed, summary[0]["findings"]


def timed_parse(data: bytes) -> tuple[float, float, float, list[dict[str, Any]]]:
    """(wall seconds, CPU seconds, findings) of one parse, and, as a baseline, the wall seconds of a
    bare json.loads of the same bytes with the garbage collector on (parse_plan pauses it)."""
    started, cpu = time.perf_counter(), time.process_time()
    findings = [finding.to_json() for finding in parse_plan(data)]
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    json.loads(data)
    return wall, cpu, time.perf_counter() - started, findings


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each step; the median is reported")
    parser.add_argument("--keep", action="store_true", help=f"keep the {DATABASE} database afterwards")
    args = parser.parse_args()

    if not os.environ.get(URL_ENV):
        from dispatcher.localpg import LocalCluster

        LocalCluster.from_env().start()
    server_url = resolve_url(None)
    data = big_plan(args.resources)
    url = prepare(server_url)
    try:
        parses = [timed_parse(data) for _ in range(args.rounds)]
        findings = parses[0][3]
        assert len(findings) == args.resources and {f["kind"] for f in findings} == {"drift"}
        wall, cpu, decode = (statistics.median(p[i] for p in parses) for i in range(3))
        results = [("parse plan", wall, f"{len(findings):,} drift findings from {len(data) / 1e6:.1f} MB of "
                    f"plan JSON; CPU {cpu:.3f} s (a bare json.loads with the GC on: {decode:.3f} s)")]

        steps = (("record scan, first (inserts)", "DRIFTED", findings, "new"),
                 ("record rescan (updates)", "DRIFTED", findings, "seen"),
                 ("record clean rescan (resolves)", "CLEAN", [], "resolved"))
        timings: dict[str, list[float]] = {label: [] for label, *_ in steps}
        notes: dict[str, str] = {}
        for _ in range(args.rounds):
            with connect(url, autocommit=True) as conn:  # a new pipeline: every round starts empty
                row = conn.execute(SETUP).fetchone()
                assert row is not None
            for label, status, payload, expect in steps:
                seconds, counts = record(url, f"pipeline/{row[0]}", status, payload)
                assert counts[expect] == args.resources, counts
                timings[label].append(seconds)
                notes[label] = ", ".join(f"{k} {v:,}" for k, v in counts.items() if v)
        results += [(label, statistics.median(timings[label]), notes[label]) for label in timings]

        print(f"drift bench: {args.resources:,} drifted resources, one transaction per scan, "
              f"median of {args.rounds} runs ({os.cpu_count()} CPUs)")
        for label, seconds, note in results:
            print(f"  {label:<32} {seconds:7.3f} s   {note}")
        slow = [label for label, seconds, _ in results if seconds >= TARGET_SECONDS]
        verdict = f"MISSED by {', '.join(slow)}" if slow else "met"
        print(f"target: under {TARGET_SECONDS:g} s each: {verdict}")
        return 1 if slow else 0
    finally:
        if not args.keep:
            drop_database(server_url, DATABASE)


if __name__ == "__main__":
    raise SystemExit(main())
