"""The pg_cron jobs of a Nightshift database: install, uninstall and status.

The jobs are defined once, in SQL: nightshift.cron_job_specs() (jobname, schedule, command, database).
pg_cron lives in one database of the server (cron.database_name), often not the Nightshift database, so
this module reads the specs from the Nightshift database, then connects to pg_cron's database — the same
URL with the database name swapped — and calls cron.schedule_in_database there. That works in both cases;
when pg_cron is in the Nightshift database, psql users can call nightshift.install_cron_jobs() instead.

Jobs run as the user of the URL: pg_cron runs each job as the user who scheduled it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from dispatcher.db import connect, translate_errors, with_database
from dispatcher.errors import PgCronMissing
from dispatcher.queries import load_queries

QUERIES = load_queries("cron")


@dataclass(frozen=True)
class JobSpec:
    jobname: str
    schedule: str
    command: str
    database: str


@dataclass(frozen=True)
class JobRun:
    jobname: str
    status: str | None
    start_time: datetime | None
    end_time: datetime | None
    return_message: str | None


@dataclass(frozen=True)
class InstalledJob:
    jobid: int
    jobname: str
    schedule: str
    command: str
    database: str
    username: str
    active: bool


@dataclass(frozen=True)
class JobStatus:
    spec: JobSpec
    installed: InstalledJob | None
    runs: tuple[JobRun, ...]

    @property
    def up_to_date(self) -> bool:
        job = self.installed
        return job is not None and job.active and (job.schedule, job.command, job.database) == (
            self.spec.schedule, self.spec.command, self.spec.database)


def job_specs(url: str) -> tuple[list[JobSpec], str]:
    """The jobs this Nightshift database needs, and the URL of pg_cron's database."""
    with connect(url, autocommit=True) as conn:
        location = conn.execute(QUERIES["cron_location"]).fetchone()
        assert location is not None
        database, cron_database = location
        if not cron_database:
            raise PgCronMissing(
                f"pg_cron is not loaded by the server of database {database}: add "
                "shared_preload_libraries = 'pg_cron' to postgresql.conf and restart"
            )
        with translate_errors(), conn.cursor(row_factory=class_row(JobSpec)) as cur:
            specs = cur.execute(QUERIES["cron_job_specs"]).fetchall()
    return specs, with_database(url, cron_database)


def install(url: str) -> list[tuple[JobSpec, int]]:
    """Create or update every job, in one transaction; return each spec with its pg_cron job id."""
    specs, cron_url = job_specs(url)
    installed = []
    with connect(cron_url) as conn, translate_errors():
        for spec in specs:
            row = conn.execute(QUERIES["cron_schedule"], vars(spec)).fetchone()
            assert row is not None
            installed.append((spec, int(row[0])))
    return installed


def uninstall(url: str) -> list[str]:
    """Remove exactly this database's Nightshift jobs (of the connecting user); return their names."""
    specs, cron_url = job_specs(url)
    with connect(cron_url) as conn, translate_errors():
        rows = conn.execute(QUERIES["cron_unschedule"], {"jobnames": [s.jobname for s in specs]}).fetchall()
    return sorted(r[0] for r in rows)


def status(url: str, runs: int = 5) -> list[JobStatus]:
    """Each job: its spec, what pg_cron has installed, and its last `runs` runs (newest first)."""
    specs, cron_url = job_specs(url)
    names = [s.jobname for s in specs]
    with connect(cron_url, autocommit=True) as conn, translate_errors():
        with conn.cursor(row_factory=class_row(InstalledJob)) as cur:
            installed = {j.jobname: j for j in cur.execute(QUERIES["cron_jobs"], {"jobnames": names})}
        with conn.cursor(row_factory=class_row(JobRun)) as cur:
            recent = cur.execute(QUERIES["cron_recent_runs"], {"jobnames": names, "runs": runs}).fetchall()
    return [
        JobStatus(spec=s, installed=installed.get(s.jobname),
                  runs=tuple(r for r in recent if r.jobname == s.jobname))
        for s in specs
    ]
