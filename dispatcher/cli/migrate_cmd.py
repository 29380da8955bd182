"""`nightshift migrate`: schema, tables and sql/ objects, from empty to head."""

from __future__ import annotations

import argparse

from dispatcher.cli import add_database_url
from dispatcher.config import resolve_url
from dispatcher.db import redact
from dispatcher.migrate import migrate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="create or upgrade the nightshift schema (idempotent)",
        description="Bring the database to the latest schema: the pg_cron extension (in pg_cron's "
        "database), the nightshift schema and its tables (Alembic), then the functions, views, "
        "triggers and roles of sql/. Running it again changes nothing.",
    )
    add_database_url(parser)
    parser.add_argument("--revision", default="head", help="target Alembic revision (default: head)")
    parser.add_argument(
        "--reapply-sql", action="store_true", help="apply every sql/ file even if its checksum is unchanged"
    )
    parser.add_argument(
        "--install-cron", action="store_true",
        help="then install (or update) the pg_cron jobs, as `nightshift cron install` does: without them "
        "nothing is ever scheduled (docker-compose's migrate service uses this)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    url = resolve_url(args.database_url)
    result = migrate(url, revision=args.revision, reapply_sql=args.reapply_sql)
    print(f"database {result.database} at revision {result.revision} ({redact(url)})")
    print(f"sql objects applied: {len(result.applied_sql)} file(s)" if result.applied_sql
          else "sql objects: unchanged")
    if result.cron_database != result.database:
        print(f"note: pg_cron runs in database {result.cron_database!r}; "
              "`nightshift cron install` schedules the jobs there with cron.schedule_in_database")
    if args.install_cron:
        from dispatcher import cron

        for spec, jobid in cron.install(url):
            print(f"installed {spec.jobname} (job {jobid}): {spec.schedule!r} in {spec.database}")
    return 0
