"""`nightshift cron install|uninstall|status`: the pg_cron jobs that drive scheduling and maintenance."""

from __future__ import annotations

import argparse

from dispatcher import cron
from dispatcher.cli import add_database_url
from dispatcher.config import resolve_url


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cron",
        help="install, remove or inspect the pg_cron jobs (enqueue due scans, maintenance)",
        description="Nightshift's pg_cron jobs are defined in SQL (nightshift.cron_job_specs()): "
        "nightshift-enqueue-due every minute and nightshift-maintenance every five minutes. They are "
        "scheduled from pg_cron's database (cron.database_name) with cron.schedule_in_database, so the "
        "Nightshift database may be another database of the same server; then the job names end in "
        "'@<database>' and an hourly nightshift-purge-cron-history job prunes pg_cron's run log. "
        "Jobs run as the user of the database URL.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    install = actions.add_parser("install", help="create the jobs, or update them (never duplicates)")
    install.set_defaults(func=run_install)
    uninstall = actions.add_parser("uninstall", help="remove exactly this database's Nightshift jobs")
    uninstall.set_defaults(func=run_uninstall)
    status = actions.add_parser("status", help="each job's schedule and its last runs, failures included")
    status.add_argument("--runs", type=int, default=5, metavar="N", help="runs to show per job (default 5)")
    status.set_defaults(func=run_status)
    for action in (install, uninstall, status):
        add_database_url(action)


def run_install(args: argparse.Namespace) -> int:
    for spec, jobid in cron.install(resolve_url(args.database_url)):
        print(f"installed {spec.jobname} (job {jobid}): {spec.schedule!r} in {spec.database}: {spec.command}")
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    removed = cron.uninstall(resolve_url(args.database_url))
    print(f"removed {', '.join(removed)}" if removed else "no Nightshift jobs were installed")
    return 0


def run_status(args: argparse.Namespace) -> int:
    jobs = cron.status(resolve_url(args.database_url), runs=args.runs)
    for job in jobs:
        if job.installed is None:
            print(f"{job.spec.jobname}: NOT INSTALLED (run `nightshift cron install`)")
            continue
        state = "active" if job.installed.active else "INACTIVE"
        stale = "" if job.up_to_date else " — differs from cron_job_specs(): run `nightshift cron install`"
        print(f"{job.spec.jobname}: job {job.installed.jobid}, {state}, schedule {job.installed.schedule!r}, "
              f"database {job.installed.database}, runs as {job.installed.username}{stale}")
        if not job.runs:
            print("    no runs yet")
        for run in job.runs:
            started = f"{run.start_time:%Y-%m-%d %H:%M:%S}" if run.start_time else "not started"
            took = (
                f" in {(run.end_time - run.start_time).total_seconds():.3f}s"
                if run.start_time and run.end_time else ""
            )
            message = (run.return_message or "").strip().replace("\n", " ")
            print(f"    {started} UTC  {run.status or '?':<9}{took}  {message[:200]}")
    return 0 if all(j.up_to_date for j in jobs) else 3
