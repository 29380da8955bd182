"""pg_cron jobs: installed from pg_cron's database for a Nightshift database that is not it, idempotently,
removed exactly, and — one slow test — pg_cron itself enqueueing a due drift scan."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from dispatcher import cron
from tests.support.pgserver import PgServer


@pytest.fixture
def cron_conn(pg_server: PgServer) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_server.url(pg_server.cron_database()), autocommit=True) as conn:
        yield conn


@pytest.fixture
def installed(db_url: str) -> Iterator[list[tuple[cron.JobSpec, int]]]:
    try:
        yield cron.install(db_url)
    finally:
        cron.uninstall(db_url)  # a job left behind would fail every minute against a dropped database


def enqueue_due_status(url: str) -> cron.JobStatus:
    [job] = [j for j in cron.status(url) if j.spec.jobname.startswith("nightshift-enqueue-due")]
    return job


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_job_names_carry_the_database_when_pg_cron_lives_elsewhere(db_url, pg_server):
    specs, cron_url = cron.job_specs(db_url)
    name = database_of(db_url)
    assert database_of(cron_url) == pg_server.cron_database() != name
    assert [(s.jobname, s.schedule, s.database) for s in specs] == [
        (f"nightshift-enqueue-due@{name}", "* * * * *", name),
        (f"nightshift-maintenance@{name}", "*/5 * * * *", name),
        (f"nightshift-purge-cron-history@{name}", "17 * * * *", pg_server.cron_database()),
    ]


def test_install_twice_updates_and_never_duplicates(db_url, installed, cron_conn):
    names = [spec.jobname for spec, _ in installed]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE nightshift.settings SET value = '*/10 * * * *' "
                     "WHERE key = 'cron.maintenance.schedule'")
    again = cron.install(db_url)
    assert [jobid for _, jobid in again] == [jobid for _, jobid in installed]
    rows = cron_conn.execute(
        "SELECT jobname, schedule FROM cron.job WHERE jobname = ANY(%s) ORDER BY jobname", (names,)
    ).fetchall()
    assert dict(rows)[f"nightshift-maintenance@{database_of(db_url)}"] == "*/10 * * * *"
    assert len(rows) == 3
    assert all(job.up_to_date for job in cron.status(db_url))


def test_uninstall_removes_exactly_nightshifts_jobs(db_url, cron_conn):
    cron_conn.execute("SELECT cron.schedule('someone-elses-job', '0 3 * * *', 'SELECT 1')")
    try:
        cron.install(db_url)
        removed = cron.uninstall(db_url)
        name = database_of(db_url)
        assert removed == sorted(f"{job}@{name}" for job in (
            "nightshift-enqueue-due", "nightshift-maintenance", "nightshift-purge-cron-history"))
        left = [r[0] for r in cron_conn.execute("SELECT jobname FROM cron.job").fetchall()]
        assert "someone-elses-job" in left
        assert not [j for j in left if j.endswith(f"@{name}")]
        assert cron.uninstall(db_url) == []
    finally:
        cron_conn.execute("SELECT cron.unschedule('someone-elses-job')")


def test_install_cron_jobs_in_sql_explains_where_pg_cron_is(conn):
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="pg_cron is not in this database"):
        conn.execute("SELECT * FROM nightshift.install_cron_jobs()")


@pytest.mark.slow
def test_pg_cron_enqueues_a_due_drift_scan(db_url, installed, conn):
    conn.execute("INSERT INTO nightshift.organizations (name) VALUES ('acme')")
    conn.execute("INSERT INTO nightshift.repositories (organization_id, name, url) SELECT id, 'infra', 'x' "
                 "FROM nightshift.organizations")
    conn.execute("INSERT INTO nightshift.pipelines (repository_id, name) SELECT id, 'network' "
                 "FROM nightshift.repositories")
    conn.execute("SELECT nightshift.set_frequency('pipeline/' || id, 'DAILY') FROM nightshift.pipelines")
    conn.execute("UPDATE nightshift.schedules SET next_run_at = now() - interval '1 minute' "
                 "WHERE kind = 'drift-scan'")

    deadline = time.monotonic() + 75  # pg_cron 1.4 wakes once a minute
    task = None
    while task is None and time.monotonic() < deadline:
        time.sleep(1)
        task = conn.execute("SELECT kind, subject FROM nightshift.tasks").fetchone()
    assert task is not None and task[0] == "drift-scan", "pg_cron did not enqueue the due drift scan in 75 s"
    assert conn.execute(
        "SELECT next_run_at > now() FROM nightshift.schedules WHERE kind = 'drift-scan'"
    ).fetchone() == (True,)

    enqueue_job = enqueue_due_status(db_url)
    deadline = time.monotonic() + 10  # pg_cron records the run's end just after its commit
    while not any(run.status == "succeeded" for run in enqueue_job.runs) and time.monotonic() < deadline:
        time.sleep(0.5)
        enqueue_job = enqueue_due_status(db_url)
    assert any(run.status == "succeeded" for run in enqueue_job.runs), enqueue_job.runs


def test_install_cron_jobs_in_sql_where_pg_cron_lives(pg_server: PgServer) -> None:
    """The SQL path (pg_cron in the Nightshift database, as in the embedded default): plain job
    names, installing twice keeps one job each, uninstalling removes them and nothing else."""
    from dispatcher.migrate import migrate

    if pg_server.cluster is None:  # never migrate the pg_cron database of a server that is not ours
        pytest.skip(f"needs the embedded test cluster (tests run against {pg_server.source})")
    cron_url = pg_server.url(pg_server.cron_database())
    migrate(cron_url)  # the cron database itself becomes a Nightshift database
    with psycopg.connect(cron_url, autocommit=True) as conn:
        conn.execute("SELECT cron.schedule('someone-elses-job', '0 3 * * *', 'SELECT 1')")
        try:
            first = conn.execute("SELECT jobname, jobid FROM nightshift.install_cron_jobs()").fetchall()
            again = conn.execute("SELECT jobname, jobid FROM nightshift.install_cron_jobs()").fetchall()
            assert sorted(first) == sorted(again)
            assert sorted(name for name, _ in first) == ["nightshift-enqueue-due", "nightshift-maintenance"]
            removed = conn.execute("SELECT jobname FROM nightshift.uninstall_cron_jobs()").fetchall()
            assert sorted(r[0] for r in removed) == ["nightshift-enqueue-due", "nightshift-maintenance"]
            left = [r[0] for r in conn.execute("SELECT jobname FROM cron.job")]
            assert "someone-elses-job" in left and not any(n.startswith("nightshift-") for n in left)
        finally:
            conn.execute("SELECT cron.unschedule('someone-elses-job')")
            conn.execute("SELECT nightshift.uninstall_cron_jobs()")
