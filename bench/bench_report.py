"""Benchmark: the reporting views and the HTML report at 1,000,000 findings and 5,000,000 scans.

In a database of its own on the embedded cluster (or the server of $NIGHTSHIFT_DATABASE_URL) it
generates, set-based (generate_series, one statement per table), 200 organizations, each with 10
pipelines, 2 cloud integrations and its own cost analysis: 5,000,000 scans over 90 days (interleaved in
time, as a real history is), 1,000,000 findings (drift, compliance, cost; open, resolved, reopened,
suppressed) sharing cloud resources across domains, two days of tasks, and a 50-requirement framework.

Then, for one organization in the middle, it runs each reporting view 20 times
(SELECT * FROM <view> WHERE organization_id = X) twice: as the owner (a superuser: no row-level
security) and as nightshift_bench_reader, a member of nightshift_reader listed for that organization
only (row-level security applies, as for a tenant). A run is timed from the call until every row is
received (kept as the text the server sent, as psql shows it); printed: the p95 of each, the median and
the server's own time (EXPLAIN ANALYZE) of the reader's, its ratio to the baseline (a bare SELECT
count(*) over the organization's rows of the table the view reads, as the same reader), the p95 when
psycopg also decodes the rows into Python values (JSON parsed: the client's time), and the p95 of the
reader's bare SELECT * FROM <view> (no WHERE: row-level security alone narrows it). Then each view's
EXPLAIN (ANALYZE, BUFFERS) as the reader and as the owner (--no-plans leaves them out). Last it times
`nightshift report --html` for that organization, as the owner and as the reader, and the overview page
of every organization. Targets: every view under 200 ms (p95, as owner and as reader), the HTML report
under 5 s (one organization, and the overview of all).

Run with `make bench-report` (a few minutes: most of it is generating the data). --keep keeps the
database (nightshift_bench_report) and --reuse times an existing one without generating it again
(after migrating it: the views and indexes of the working tree).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from psycopg.types.string import TextLoader

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
    # a listing, not a summary: every finding of the organization (5,000 rows) with its details
    ("findings_report", "findings"),
]
BASELINE = ("SELECT count(*) FROM nightshift.{table} AS x"
            " JOIN nightshift.subjects AS t ON t.subject = x.subject"
            " WHERE t.organization_id = %s")
# The role the views are timed as, besides the owner: a member of nightshift_reader listed for the one
# organization in organization_members, so that row-level security applies as it does for a tenant.
# A superuser (the owner's timings) bypasses row-level security.
READER = "nightshift_bench_reader"


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


def timed(conn, statement: str, params: tuple, *, as_text: bool = True) -> list[float]:  # type: ignore[no-untyped-def]
    """Milliseconds to run statement and receive every row, RUNS times (after one warming run). as_text:
    the rows are kept as the text the server sent, as psql shows them; otherwise psycopg turns them
    into Python values (JSON parsed, times as datetimes), which is the client's time, not the view's."""
    cur = conn.cursor()
    cur.execute(statement, params).fetchall()  # warm: plan, buffers
    if as_text:
        for column in cur.description or []:
            cur.adapters.register_loader(column.type_code, TextLoader)
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        cur.execute(statement, params).fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--organizations", type=int, default=200)
    parser.add_argument("--scans", type=int, default=5_000_000)
    parser.add_argument("--keep", action="store_true", help=f"keep the {DATABASE} database afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help=f"time an existing {DATABASE} database (migrated first: sql/ as it is now)")
    parser.add_argument("--no-plans", action="store_true", help="do not print the EXPLAIN (ANALYZE) plans")
    parser.add_argument("--no-all", action="store_true",
                        help="do not time the HTML report of every organization")
    args = parser.parse_args()

    if not os.environ.get(URL_ENV):
        from dispatcher.localpg import LocalCluster

        LocalCluster.from_env().start()
    server_url = resolve_url(None)
    if args.reuse:
        url = with_database(server_url, DATABASE)
        started = time.perf_counter()
        migrate(url)
        print(f"migrated {DATABASE} in {time.perf_counter() - started:.1f} s", flush=True)
    else:
        url = recreate_database(server_url, DATABASE)
        migrate(url)
        print(f"generating {args.organizations} organizations, {args.scans:,} scans ...", flush=True)
        generate(url, args.organizations, args.scans)
    try:
        return measure(url, plans=not args.no_plans, all_organizations=not args.no_all)
    finally:
        if not (args.keep or args.reuse):
            drop_database(server_url, DATABASE)
            with connect(server_url, autocommit=True) as conn:
                conn.execute(f"DROP ROLE IF EXISTS {READER}")


def make_reader(conn, org_id: int) -> None:  # type: ignore[no-untyped-def]
    """READER: a nightshift_reader member of the organization org_id only."""
    conn.execute(f"""DO $$ BEGIN
                       IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER}') THEN
                           CREATE ROLE {READER} NOLOGIN;
                       END IF;
                     END $$""")
    conn.execute(f"GRANT nightshift_reader TO {READER}")
    conn.execute("DELETE FROM nightshift.organization_members WHERE member = %s", (READER,))
    conn.execute("INSERT INTO nightshift.organization_members (organization_id, member) VALUES (%s, %s)",
                 (org_id, READER))


def server_ms(conn, statement: str, params: tuple) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    """The server's execution time of statement (EXPLAIN ANALYZE), and the plan."""
    plan = "\n".join(line for (line,) in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params))
    executed = [line for line in plan.splitlines() if line.startswith("Execution Time:")]
    return float(executed[-1].split()[2]), plan


def measure(url: str, *, plans: bool, all_organizations: bool) -> int:
    with connect(url, autocommit=True) as owner, connect(url, autocommit=True) as reader:
        counts = owner.execute(
            "SELECT (SELECT count(*) FROM nightshift.organizations),"
            " (SELECT count(*) FROM nightshift.findings),"
            " (SELECT count(*) FROM nightshift.scans), (SELECT count(*) FROM nightshift.tasks)").fetchone()
        assert counts is not None
        org = owner.execute("SELECT id FROM nightshift.organizations ORDER BY id"
                            " OFFSET (SELECT count(*) / 2 FROM nightshift.organizations) LIMIT 1").fetchone()
        assert org is not None, "no organizations: generate the data first"
        org_id = org[0]
        make_reader(owner, org_id)
        reader.execute(f"SET ROLE {READER}")
        seen = reader.execute("SELECT nightshift.member_organizations()").fetchone()
        assert seen == ([org_id],), f"the reader should see organization {org_id} only, sees {seen}"
        print(f"report bench: {counts[0]} organizations, {counts[1]:,} findings, {counts[2]:,} scans, "
              f"{counts[3]:,} tasks; organization {org_id}; p95 of {RUNS} runs ({os.cpu_count()} CPUs,"
              f" load {os.getloadavg()[0]:.1f})")
        print(f"  as the owner (a superuser: no row-level security) and as {READER} (nightshift_reader,"
              f" member of organization {org_id}: row-level security applies)")
        baselines = {}
        for table in sorted({table for _, table in VIEWS}):
            statement = BASELINE.format(table=table)
            baselines[table] = (p95(timed(owner, statement, (org_id,))),
                                p95(timed(reader, statement, (org_id,))))
            print(f"  baseline count(*) of the organization's {table:<9}"
                  f" owner {baselines[table][0]:7.1f} ms   reader {baselines[table][1]:7.1f} ms")
        print(f"  {'view':<24} {'owner p95':>10} {'reader p95':>11} {'median':>8} {'in server':>10}"
              f" {'reader / count(*)':>18} {'rows':>6} {'decoded in Python':>18} {'no WHERE':>9}")
        explained: list[tuple[str, str, str]] = []
        slow = []
        for view, table in VIEWS:
            statement = f"SELECT * FROM nightshift.{view} WHERE organization_id = %s"
            as_owner = p95(timed(owner, statement, (org_id,)))
            samples = timed(reader, statement, (org_id,))
            as_reader = p95(samples)
            rows = len(reader.execute(statement, (org_id,)).fetchall())
            owner_rows = len(owner.execute(statement, (org_id,)).fetchall())
            assert rows == owner_rows, f"{view}: the reader sees {rows} of its rows, the owner {owner_rows}"
            decoded = p95(timed(reader, statement, (org_id,), as_text=False))
            # the reader's bare SELECT * FROM view: row-level security alone narrows it to its organization
            unfiltered = p95(timed(reader, f"SELECT * FROM nightshift.{view}", ()))
            in_server, reader_plan = server_ms(reader, statement, (org_id,))
            _, owner_plan = server_ms(owner, statement, (org_id,))
            print(f"  {view:<24} {as_owner:7.1f} ms {as_reader:8.1f} ms {statistics.median(samples):5.1f} ms"
                  f" {in_server:7.1f} ms {as_reader / baselines[table][1]:7.1f}x of {table:<9} {rows:>6}"
                  f" {decoded:15.1f} ms {unfiltered:6.1f} ms",
                  flush=True)
            if max(as_owner, as_reader, unfiltered) >= VIEW_TARGET_MS:
                slow.append(view)
            explained.append((view, reader_plan, owner_plan))

    html = {f"organization {org_id}, as the owner": time_html(url, [org_id]),
            f"organization {org_id}, as {READER}": time_html(url, [org_id], role=READER)}
    if all_organizations:
        html["every organization: the overview, as the owner"] = time_html(url, None)
    for label, seconds in html.items():
        print(f"  nightshift report --html ({label}) {seconds:6.2f} s")
    if plans:
        for view, reader_plan, owner_plan in explained:
            print(f"\n--- EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM nightshift.{view}"
                  f" WHERE organization_id = {org_id}  -- as {READER}")
            print(reader_plan)
            print(f"--- the same as the owner (no row-level security)\n{owner_plan}")
    slow_html = [label for label, seconds in html.items() if seconds >= HTML_TARGET_S]
    verdicts = [f"views under {VIEW_TARGET_MS:g} ms: " + (f"MISSED by {', '.join(slow)}" if slow else "met"),
                f"HTML report under {HTML_TARGET_S:g} s: "
                + (f"MISSED by {'; '.join(slow_html)}" if slow_html else "met")]
    print("target: " + "; ".join(verdicts))
    return 1 if slow or slow_html else 0


def time_html(url: str, org_ids: list[int] | None, *, role: str | None = None) -> float:
    """Seconds to read the views and write the page of the organizations org_ids (None: every one, the
    overview page)."""
    from dispatcher.report.build import build_report
    from dispatcher.report.html import render_html

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with connect(url) as conn:
            if role:
                conn.execute(f"SET ROLE {role}")
            # as `nightshift report --html` builds it: an overview when there are many organizations
            report = build_report(conn, organization_ids=org_ids, detail=None)
        Path(tmp, "report.html").write_text(render_html(report))
        return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())
