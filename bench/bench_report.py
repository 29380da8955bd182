"""Benchmark: the reporting views and the HTML report at 1,000,000 findings and 5,000,000 scans.

In a database of its own on the embedded cluster (or the server of $NIGHTSHIFT_DATABASE_URL) it
generates, set-based (generate_series, one statement per table), 200 organizations, each with 10
pipelines, 2 cloud integrations and its own cost analysis: 5,000,000 scans over 90 days (interleaved in
time, as a real history is), 1,000,000 findings (drift, compliance, cost; open, resolved, reopened,
suppressed) sharing cloud resources across domains, two days of tasks, and a 50-requirement framework.

Then, for one organization in the middle, it runs each reporting view 20 times
(SELECT * FROM <view> WHERE organization_id = X), prints the p95 and its ratio to the baseline, a bare
SELECT count(*) over the same organization's rows of the table the view reads (findings, scans or
tasks), and prints each view's EXPLAIN (ANALYZE, BUFFERS). Last it times `nightshift report --html` for
that organization. Targets: every view under 200 ms (p95), the HTML report under 5 s.

Run with `make bench-report` (a few minutes: most of it is generating the data). --keep keeps the
database (nightshift_bench_report) and --reuse times an existing one without generating it again.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from dispatcher.config import URL_ENV, resolve_url
from dispatcher.db import connect, drop_database, recreate_database, with_database
from dispatcher.migrate import migrate

DATABASE = "nightshift_bench_report"
VIEW_TARGET_MS = 200.0
HTML_TARGET_S = 5.0
RUNS = 20

# Each statement is set-based; the numbers are in the comments so the totals can be checked.
GENERATE = [
    ("organizations", """
     INSERT INTO nightshift.organizations (name, compliance_enabled, cost_optimization_enabled)
     SELECT 'org-' || lpad(o::text, 3, '0'), true, true FROM generate_series(1, %(orgs)s) AS o"""),
    ("repositories", """
     INSERT INTO nightshift.repositories (organization_id, name, url)
     SELECT o.id, 'infra-' || r, '/srv/' || o.name || '/infra-' || r
       FROM nightshift.organizations AS o CROSS JOIN generate_series(1, 2) AS r"""),
    ("pipelines", """
     INSERT INTO nightshift.pipelines (repository_id, name, working_directory)
     SELECT r.id, (ARRAY['network', 'compute', 'storage', 'iam', 'dns'])[p], 'envs/' || p
       FROM nightshift.repositories AS r CROSS JOIN generate_series(1, 5) AS p"""),
    ("cloud integrations", """
     INSERT INTO nightshift.cloud_integrations (organization_id, provider, account_id, frameworks,
                                               compliance_enabled)
     SELECT o.id, 'aws', lpad((o.id * 10 + i)::text, 12, '0'), '{CIS}', true
       FROM nightshift.organizations AS o CROSS JOIN generate_series(1, 2) AS i"""),
    ("schedules", """
     INSERT INTO nightshift.schedules (kind, pipeline_id, cloud_integration_id, organization_id, frequency)
     SELECT 'drift-scan', p.id, NULL::bigint, NULL::bigint, 'HOURLY'::nightshift.frequency
       FROM nightshift.pipelines AS p
     UNION ALL
     SELECT 'compliance-scan', NULL, c.id, NULL, 'DAILY' FROM nightshift.cloud_integrations AS c
     UNION ALL
     SELECT 'cost-analysis', NULL, NULL, o.id, 'DAILY' FROM nightshift.organizations AS o
     ON CONFLICT ON CONSTRAINT schedules_one_per_target DO UPDATE SET frequency = EXCLUDED.frequency"""),
    ("framework", """
     WITH r AS (
         INSERT INTO nightshift.compliance_requirements (framework, framework_version, provider, source_name,
                                                         requirement, title, section)
         SELECT 'CIS', '2.0', 'aws', 'cis_2.0_aws', '1.' || n, 'Requirement ' || n, 'Section ' || (n / 10)
           FROM generate_series(1, 50) AS n
         RETURNING id, requirement
     )
     INSERT INTO nightshift.compliance_check_mappings (requirement_id, scanner, check_id, source)
     SELECT r.id, 'checkov', 'CKV_AWS_' || split_part(r.requirement, '.', 2), 'bench' FROM r"""),
    # 13 scanned subjects per organization; %(scans)s scans spread evenly over 90 days, rows interleaved
    # in time. Pipelines drift now and then, 4% of scans fail, and the last 3 scans of every 7th
    # pipeline fail (an error streak).
    ("scans", """
     WITH subjects AS (
         SELECT row_number() OVER (ORDER BY subject) AS n, subject, kind,
                count(*) OVER () AS total
           FROM (SELECT 'pipeline/' || id AS subject, 'drift-scan' AS kind FROM nightshift.pipelines
                 UNION ALL
                 SELECT 'cloud_integration/' || id, 'compliance-scan' FROM nightshift.cloud_integrations
                 UNION ALL
                 SELECT 'organization/' || id, 'cost-analysis' FROM nightshift.organizations) AS s
     ), per AS (SELECT (%(scans)s / max(total))::integer AS each FROM subjects)
     INSERT INTO nightshift.scans (attempt, kind, subject, status, summary, error, started_at, finished_at)
     SELECT 1, s.kind, s.subject,
            CASE WHEN s.n %% 7 = 0 AND i <= 3 THEN 'ERROR'
                 WHEN (i * 31 + s.n) %% 25 = 0 THEN 'ERROR'
                 WHEN (i / 5 + s.n) %% 3 = 0 THEN
                      CASE s.kind WHEN 'drift-scan' THEN 'DRIFTED' ELSE 'FAILED_CHECKS' END
                 ELSE 'CLEAN' END::nightshift.scan_status,
            '{}', CASE WHEN (s.n %% 7 = 0 AND i <= 3) OR (i * 31 + s.n) %% 25 = 0
                       THEN 'terraform plan: exit status 1' END,
            t - interval '40 seconds', t
       FROM per CROSS JOIN generate_series(1, per.each) AS i
      CROSS JOIN subjects AS s
      CROSS JOIN LATERAL (SELECT now() - (i - 1) * interval '90 days' / per.each
                                 - s.n * interval '1 second' AS t) AS at
      ORDER BY t"""),
    # 5,000 findings per organization: 400 per pipeline (drift), 400 per integration (compliance), 200
    # cost. Resources: ids i-<org>-<k>, shared by the three domains (k < 300), and ARNs for compliance.
    ("findings", """
     WITH targets AS (
         SELECT 'pipeline/' || p.id AS subject, r.organization_id AS org, 'drift' AS kind, 400 AS each,
                p.id AS salt
           FROM nightshift.pipelines AS p JOIN nightshift.repositories AS r ON r.id = p.repository_id
         UNION ALL
         SELECT 'cloud_integration/' || c.id, c.organization_id, 'compliance', 400, c.id
           FROM nightshift.cloud_integrations AS c
         UNION ALL
         SELECT 'organization/' || o.id, o.id, 'cost', 200, o.id FROM nightshift.organizations AS o
     ), rows AS (
         SELECT t.*, i, ((i * 7919 + t.salt * 104729) %% 1000)::integer AS h,
                (i + t.salt * 13) %% 300 AS resource
           FROM targets AS t CROSS JOIN generate_series(1, t.each) AS i
     )
     INSERT INTO nightshift.findings (kind, subject, fingerprint, resource_address, resource_type,
                                      provider_id, change_type, check_id, severity, status, first_seen,
                                      last_seen, resolved_at, occurrences, reopened_count, details)
     SELECT kind, subject, md5(subject || '/' || i),
            CASE WHEN kind <> 'cost' THEN 'aws_instance.app_' || resource END, 'aws_instance',
            CASE kind WHEN 'compliance'
                      THEN 'arn:aws:ec2:eu-west-1:' || lpad(org::text, 12, '0')
                           || ':instance/i-' || org || '-' || resource
                      ELSE 'i-' || org || '-' || resource END,
            CASE kind WHEN 'drift' THEN 'update' WHEN 'cost' THEN 'stop' END,
            CASE kind WHEN 'compliance' THEN 'CKV_AWS_' || (1 + h %% 50)
                      WHEN 'cost' THEN (ARRAY['idle-resource', 'rightsizing', 'commitment'])[1 + h %% 3] END,
            (ARRAY['low', 'medium', 'medium', 'high', 'critical'])[1 + h %% 5],
            st.status::nightshift.finding_status,
            seen.first_seen, seen.last_seen,
            CASE WHEN st.status = 'RESOLVED' THEN seen.last_seen + interval '1 hour' END,
            1 + h %% 40, CASE WHEN h %% 9 = 0 THEN 1 ELSE 0 END,
            CASE WHEN kind = 'cost'
                 THEN jsonb_build_object('estimated_monthly_saving', ((h * 37) %% 2000)::text || '.50',
                                         'currency', 'USD', 'title', 'Idle instance')
                 ELSE '{}'::jsonb END
       FROM rows
      CROSS JOIN LATERAL (SELECT CASE WHEN h < 220 THEN 'OPEN' WHEN h < 240 THEN 'SUPPRESSED'
                                      ELSE 'RESOLVED' END AS status) AS st
      CROSS JOIN LATERAL (SELECT now() - (h %% 120) * interval '1 day' - i * interval '1 minute'
                                 AS first_seen) AS f
      CROSS JOIN LATERAL (SELECT f.first_seen,
                                 CASE WHEN st.status = 'RESOLVED'
                                      THEN f.first_seen + (h %% 13) * (now() - f.first_seen) / 13
                                      ELSE now() - interval '1 hour' END AS last_seen) AS seen"""),
    # two days of tasks: one an hour per subject (done, 3%% failed and 1%% dead), and one queued now
    ("tasks", """
     INSERT INTO nightshift.tasks (kind, subject, status, attempt, started_at, finished_at, run_after,
                                   last_error)
     SELECT s.kind, s.subject, st::nightshift.task_status, 1, t - interval '40 seconds', t,
            t - interval '1 minute',
            CASE WHEN st <> 'done' THEN 'terraform plan: exit status 1' END
       FROM (SELECT DISTINCT ON (subject) subject, kind FROM nightshift.scans
              WHERE finished_at > now() - interval '1 day') AS s
      CROSS JOIN generate_series(1, 48) AS h
      CROSS JOIN LATERAL (SELECT now() - h * interval '1 hour' AS t,
                                 CASE WHEN (h + length(s.subject)) %% 100 = 0 THEN 'dead'
                                      WHEN (h + length(s.subject)) %% 33 = 0 THEN 'failed'
                                      ELSE 'done' END AS st) AS x"""),
    ("queued tasks", """
     INSERT INTO nightshift.tasks (kind, subject, run_after)
     SELECT kind, subject, now() - interval '3 minutes' FROM nightshift.schedule_targets
      WHERE schedule_id %% 4 = 0"""),
    # what autovacuum would have done by now: hint bits, visibility map (index-only scans), statistics
    ("vacuum", "VACUUM (ANALYZE)"),
]

# each view, and the table its baseline counts (the organization's rows of it)
VIEWS = [
    ("target_status", "scans"),
    ("drift_status", "scans"),
    ("findings_open_summary", "findings"),
    ("findings_mttr", "findings"),
    ("findings_open_trend", "findings"),
    ("scan_history", "scans"),
    ("scan_error_streaks", "scans"),
    ("queue_health", "tasks"),
    ("queue_throughput", "tasks"),
    ("compliance_scores", "findings"),
    ("cost_savings", "findings"),
    ("resource_findings", "findings"),
]
# not a summary: every finding with its details (5,000 rows of JSON for one organization), timed for
# reference, outside the target
LISTINGS = [("findings_report", "findings")]
BASELINE = ("SELECT count(*) FROM nightshift.{table} AS x"
            " JOIN nightshift.subjects AS t ON t.subject = x.subject"
            " WHERE t.organization_id = %s")


def generate(url: str, orgs: int, scans: int) -> None:
    with connect(url, autocommit=True) as conn:
        for label, statement in GENERATE:
            started = time.perf_counter()
            cur = conn.execute(statement, {"orgs": orgs, "scans": scans})
            rows = f"{cur.rowcount:,} rows" if cur.rowcount and cur.rowcount > 0 else ""
            print(f"  generated {label:<20} {time.perf_counter() - started:6.1f} s  {rows}", flush=True)


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(conn, statement: str, params: tuple) -> list[float]:  # type: ignore[no-untyped-def]
    conn.execute(statement, params).fetchall()  # warm: plan, buffers
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        conn.execute(statement, params).fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--organizations", type=int, default=200)
    parser.add_argument("--scans", type=int, default=5_000_000)
    parser.add_argument("--keep", action="store_true", help=f"keep the {DATABASE} database afterwards")
    parser.add_argument("--reuse", action="store_true", help=f"time an existing {DATABASE} database")
    parser.add_argument("--no-plans", action="store_true", help="do not print the EXPLAIN (ANALYZE) plans")
    args = parser.parse_args()

    if not os.environ.get(URL_ENV):
        from dispatcher.localpg import LocalCluster

        LocalCluster.from_env().start()
    server_url = resolve_url(None)
    if args.reuse:
        url = with_database(server_url, DATABASE)
    else:
        url = recreate_database(server_url, DATABASE)
        migrate(url)
        print(f"generating {args.organizations} organizations, {args.scans:,} scans ...", flush=True)
        generate(url, args.organizations, args.scans)
    try:
        return measure(url, plans=not args.no_plans)
    finally:
        if not (args.keep or args.reuse):
            drop_database(server_url, DATABASE)


def measure(url: str, *, plans: bool) -> int:
    with connect(url, autocommit=True) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM nightshift.organizations),"
            " (SELECT count(*) FROM nightshift.findings),"
            " (SELECT count(*) FROM nightshift.scans), (SELECT count(*) FROM nightshift.tasks)").fetchone()
        assert counts is not None
        org = conn.execute("SELECT id FROM nightshift.organizations ORDER BY id"
                           " OFFSET (SELECT count(*) / 2 FROM nightshift.organizations) LIMIT 1").fetchone()
        assert org is not None, "no organizations: generate the data first"
        org_id = org[0]
        print(f"report bench: {counts[0]} organizations, {counts[1]:,} findings, {counts[2]:,} scans, "
              f"{counts[3]:,} tasks; organization {org_id}; p95 of {RUNS} runs ({os.cpu_count()} CPUs)")
        baselines = {table: p95(timed(conn, BASELINE.format(table=table), (org_id,)))
                     for table in sorted({table for _, table in VIEWS})}
        for table, ms in baselines.items():
            print(f"  baseline count(*) of the organization's {table:<9} {ms:8.1f} ms")
        explained: list[tuple[str, str]] = []
        slow = []
        for view, table in VIEWS + LISTINGS:
            statement = f"SELECT * FROM nightshift.{view} WHERE organization_id = %s"
            samples = timed(conn, statement, (org_id,))
            rows = len(conn.execute(statement, (org_id,)).fetchall())
            ms = p95(samples)
            print(f"  {view:<24} p95 {ms:8.1f} ms  median {statistics.median(samples):7.1f} ms  "
                  f"{ms / baselines[table]:5.1f}x count(*) of {table:<9} {rows:>6} rows", flush=True)
            if ms >= VIEW_TARGET_MS and (view, table) not in LISTINGS:
                slow.append(view)
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", (org_id,)).fetchall()
            explained.append((view, "\n".join(line for (line,) in plan)))

    html_seconds = time_html(url, org_id)
    print(f"  nightshift report --html (organization {org_id}) {html_seconds:6.2f} s")
    if plans:
        for view, plan in explained:
            print(f"\n--- EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM nightshift.{view}"
                  f" WHERE organization_id = {org_id}")
            print(plan)
    verdicts = [f"views under {VIEW_TARGET_MS:g} ms: " + (f"MISSED by {', '.join(slow)}" if slow else "met"),
                f"HTML report under {HTML_TARGET_S:g} s: "
                + ("met" if html_seconds < HTML_TARGET_S else "MISSED")]
    print("target: " + "; ".join(verdicts))
    return 1 if slow or html_seconds >= HTML_TARGET_S else 0


def time_html(url: str, org_id: int) -> float:
    from dispatcher.report.build import build_report
    from dispatcher.report.html import render_html

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with connect(url) as conn:
            report = build_report(conn, organization_ids=[org_id])
        Path(tmp, "report.html").write_text(render_html(report))
        return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())
