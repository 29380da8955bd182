"""`nightshift demo`: the embedded Postgres, migrated, with a sample pipeline scheduled for drift scans."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from dispatcher import cron
from dispatcher.cli.output import print_table
from dispatcher.db import connect
from dispatcher.localpg import LocalCluster
from dispatcher.migrate import migrate

SAMPLE = """
WITH org AS (
    INSERT INTO nightshift.organizations (name) VALUES ('demo')
    ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id
), repo AS (
    INSERT INTO nightshift.repositories (organization_id, name, url)
    SELECT id, 'infra', %(repo_url)s FROM org
    ON CONFLICT (organization_id, name) DO UPDATE SET url = EXCLUDED.url RETURNING id
), pipe AS (
    INSERT INTO nightshift.pipelines (repository_id, name, working_directory)
    SELECT id, 'network', '.' FROM repo
    ON CONFLICT (repository_id, name) DO UPDATE SET working_directory = EXCLUDED.working_directory
    RETURNING id
)
-- the DBA API: registers the pipeline for DAILY drift scans; the first scan runs at its next daily
-- slot, or at once with nightshift.run_now('pipeline/<id>'). Only when it has no schedule yet: a
-- second demo never resets a frequency the user changed.
SELECT nightshift.set_frequency('pipeline/' || id, 'DAILY') FROM pipe
 WHERE NOT EXISTS (SELECT FROM nightshift.schedules AS s WHERE s.pipeline_id = pipe.id)
"""

# The demo organization's notifications go to a `log` channel: the dispatcher delivers them into its
# own log, and the drift demo prints what it logged. Only for schedules that name no channel yet (a
# user's choice stays).
DEMO_CHANNEL = """
INSERT INTO nightshift.notification_channels (name, kind, min_interval)
VALUES ('demo-log', 'log', interval '0')
ON CONFLICT (name) DO NOTHING;
UPDATE nightshift.schedules AS s
   SET notification_channel = 'demo-log'
  FROM nightshift.organizations AS o
 WHERE o.name = 'demo'
   AND (s.organization_id = o.id  -- the organization's own (cost analysis), and its pipelines'
        OR s.pipeline_id IN (SELECT p.id FROM nightshift.pipelines AS p
                               JOIN nightshift.repositories AS r ON r.id = p.repository_id
                              WHERE r.organization_id = o.id))
   AND s.notification_channel IS NULL
"""

SCHEDULED = """
SELECT s.kind, o.name || '/' || r.name || '/' || p.name AS target, s.frequency, s.next_run_at
FROM nightshift.schedules s
JOIN nightshift.pipelines p ON p.id = s.pipeline_id
JOIN nightshift.repositories r ON r.id = p.repository_id
JOIN nightshift.organizations o ON o.id = r.organization_id
ORDER BY s.next_run_at
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="start the embedded Postgres, migrate, schedule a sample pipeline and scan it for drift",
        description="A first look: starts the embedded PostgreSQL with pg_cron, migrates it, installs "
        "the pg_cron jobs, registers a sample organization/repository/pipeline with a DAILY drift "
        "schedule and prints what is scheduled. Then, where terraform, the AWS provider mirror and "
        "moto_server are available, applies the sample to a local moto AWS, changes it out of band, "
        "and runs drift scans through the real dispatcher: findings open, then resolve, each scan's "
        "notification delivered by the dispatcher to the log channel demo-log and printed. Where Checkov "
        "is installed (`make scanners`), a compliance scan of examples/compliance: failed checks, then an "
        "unchanged rescan that reuses them.",
    )
    parser.add_argument("--repo-url", default="examples/demo", help="repository of the sample pipeline")
    parser.add_argument("--no-drift", action="store_true",
                        help="skip the drift scan demo (Terraform against a local moto_server)")
    parser.add_argument("--no-compliance", action="store_true",
                        help="skip the compliance scan demo (Checkov over examples/compliance)")
    parser.set_defaults(func=run)


def _command_name() -> str:
    """How to run nightshift again from where the user is: `nightshift` when it is on PATH, else the
    path of the script that runs now (`.venv/bin/nightshift` only works from the checkout)."""
    script = Path(sys.argv[0])
    if script.name == "nightshift" and shutil.which("nightshift") == str(script.resolve()):
        return "nightshift"
    if script.name == "nightshift" and script.exists():
        return str(script.resolve())
    return "nightshift" if shutil.which("nightshift") else f"{sys.executable} -m dispatcher"


def run(args: argparse.Namespace) -> int:
    print("starting the embedded PostgreSQL (the first time: initdb, a few seconds)...", flush=True)
    cluster = LocalCluster.from_env()
    cluster.start()
    url = cluster.url()
    print("migrating...", flush=True)
    result = migrate(url)
    print(f"embedded PostgreSQL on 127.0.0.1:{cluster.live_port()}, schema at revision {result.revision}")
    # the scheduler runs inside Postgres from now on: enqueue_due() every minute, maintenance every 5
    for spec, jobid in cron.install(url):
        print(f"pg_cron job {jobid}: {spec.jobname:<24} {spec.schedule:<12} {spec.command}")
    with connect(url) as conn:
        conn.execute(SAMPLE, {"repo_url": args.repo_url})
        conn.execute(DEMO_CHANNEL)
        rows = conn.execute(SCHEDULED).fetchall()
    print_table(("kind", "target", "frequency", "next_run_utc"), [
        {"kind": kind, "target": target, "frequency": frequency, "next_run_utc": next_run_at}
        for kind, target, frequency, next_run_at in rows])
    if not args.no_drift:
        from dispatcher.demo import drift_demo as demo

        demo.run(url, cluster.root / "demo")
    if not args.no_compliance:
        from dispatcher.demo import compliance_demo

        compliance_demo.run(url, cluster.root / "demo")
    command = _command_name()
    print("\nThe embedded PostgreSQL keeps running, and pg_cron enqueues due scans every minute:")
    print(f"  {command} dispatcher run     # work them off")
    print(f"  {command} findings list      # what the scans found")
    print(f"  {command} db psql            # look around: SELECT * FROM nightshift.findings_report")
    print(f"  {command} db stop            # stop it")
    return 0
