"""Issue 2: the package, the embedded Postgres, the schema under Alembic, the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import psycopg
import pytest
import yaml
from sqlalchemy import create_engine, pool, text

from dispatcher import cron
from dispatcher.cli import build_parser
from dispatcher.db import sqlalchemy_url
from dispatcher.localpg import LocalCluster, shared_buffers_mb
from dispatcher.migrate import migrate
from dispatcher.models import metadata
from dispatcher.schema import apply_sql_objects, sql_files
from tests.support.catalog import differences, snapshot
from tests.support.pgserver import ROOT, PgServer

NIGHTSHIFT = [sys.executable, "-m", "dispatcher"]
TABLES = {
    "organizations", "repositories", "pipelines", "cloud_integrations", "schedules", "tasks", "scans",
    "findings", "suppressions", "notifications", "remediations", "webhook_deliveries",
}


def declared_schema(url: str) -> None:
    """Build the schema the way the code declares it: SQLAlchemy metadata, then sql/."""
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.begin() as connection:
        connection.execute(text("CREATE SCHEMA nightshift"))
        metadata.create_all(connection)
        apply_sql_objects(connection.connection.dbapi_connection)
    engine.dispose()


def test_migrating_from_empty_gives_the_declared_schema(pg_server: PgServer) -> None:
    with pg_server.database(template=None) as migrated, pg_server.database(template=None) as declared:
        migrate(migrated)
        declared_schema(declared)
        picture = snapshot(migrated)
        assert differences(picture, snapshot(declared)) == []
    tables = {key.split(".")[0] for key in picture["columns"]}
    assert TABLES <= tables
    # the sql/ objects are part of the comparison, not just the tables
    assert len(picture["functions"]) + len(picture["views"]) + len(picture["triggers"]) >= 1
    assert {"frequency", "task_status", "finding_status"} <= picture["enums"].keys()
    assert picture["enums"]["frequency"] == "UNMONITORED,HOURLY,DAILY,WEEKLY,MONTHLY"


def test_migrating_twice_changes_nothing(db_url: str) -> None:
    before = snapshot(db_url)
    again = migrate(db_url)
    assert again.applied_sql == []
    assert again.revision is not None
    forced = migrate(db_url, reapply_sql=True)
    assert len(forced.applied_sql) == len(list(sql_files()))
    assert differences(before, snapshot(db_url)) == []


def head_revision() -> str:
    """The newest migration (what `nightshift migrate` must reach), from migrations/versions."""
    from alembic.script import ScriptDirectory

    from dispatcher.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
    assert head is not None
    return head


@pytest.mark.parametrize("driver", ["psycopg", "pg8000"])
def test_both_drivers_migrate(pg_server: PgServer, driver: str) -> None:
    with pg_server.database(template=None) as url:
        result = migrate(url.replace("postgresql://", f"postgresql+{driver}://", 1))
        assert result.revision == head_revision()
        with psycopg.connect(url) as conn:
            count = conn.execute(
                "SELECT count(*) FROM nightshift.applied_sql"
            ).fetchone()
        assert count == (len(list(sql_files())),)


def test_in_flight_index_allows_one_queued_or_running_task_per_subject(conn: psycopg.Connection) -> None:
    insert = "INSERT INTO nightshift.tasks (kind, subject) VALUES ('drift-scan', 'pipeline/1') RETURNING id"
    (first,) = conn.execute(insert).fetchone()  # type: ignore[misc]
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(insert)
    conn.execute(
        "UPDATE nightshift.tasks SET status = 'running', locked_by = 'w', locked_until = now() WHERE id = %s",
        (first,),
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(insert)
    conn.execute("UPDATE nightshift.tasks SET status = 'done' WHERE id = %s", (first,))
    conn.execute(insert)  # finished tasks do not block the next run
    conn.execute("INSERT INTO nightshift.tasks (kind, subject) VALUES ('compliance-scan', 'pipeline/1')")
    assert conn.execute("SELECT count(*) FROM nightshift.tasks").fetchone() == (3,)


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*NIGHTSHIFT, *args], capture_output=True, text=True, timeout=120, cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
    )


def test_unreachable_database_is_one_clear_line() -> None:
    proc = run_cli("migrate", "--database-url", "postgresql://someone:s3cretpw@127.0.0.1:9/nowhere")
    assert proc.returncode == 3  # the exit-status table: 3 for a database that is not there
    assert proc.stderr.startswith("nightshift: error: cannot connect to postgresql://someone:***@127.0.0.1:9/")
    # the URL was given: the hint points at it, not at the embedded cluster (see test_newcomer_cli.py)
    assert "--database-url" in proc.stderr and "nightshift db start" not in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "s3cretpw" not in proc.stderr + proc.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_server_without_pg_cron_is_refused_with_the_fix(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = ROOT / ".nightshift" / "test-no-pg-cron"
    cluster = LocalCluster.from_env(data_dir=str(root), port=free_port())
    try:
        cluster.start(extra_settings={"shared_preload_libraries": "''", "fsync": "off"})
        proc = run_cli("migrate", "--database-url", cluster.url())
        assert proc.returncode == 1, proc.stderr
        assert "pg_cron is installed but not loaded" in proc.stderr
        assert "shared_preload_libraries = 'pg_cron'" in proc.stderr
        assert "Traceback" not in proc.stderr
        with psycopg.connect(cluster.url()) as conn:  # and nothing was created
            assert conn.execute("SELECT to_regnamespace('nightshift')").fetchone() == (None,)
            # a new cluster's shared_buffers follow the machine's memory, not PostgreSQL's 128 MB
            mb = conn.execute("SELECT setting::bigint * 8192 / (1024 * 1024) FROM pg_settings"
                              " WHERE name = 'shared_buffers'").fetchone()
            assert mb == (shared_buffers_mb(),)
    finally:
        cluster.stop(mode="immediate")
        subprocess.run(["rm", "-rf", str(cluster.root)], check=False)


def test_embedded_cluster_commands(pg_server: PgServer) -> None:
    if pg_server.cluster is None:
        pytest.skip(f"tests run against {pg_server.source}, not the embedded cluster")
    data_dir = str(ROOT / ".nightshift" / "test-postgres")
    where = ["db", "--data-dir", data_dir, "--port", str(pg_server.cluster.port)]
    status = run_cli(*where, "status")
    assert status.returncode == 0 and status.stdout.startswith("running: 127.0.0.1:")
    url = run_cli(*where, "url").stdout.strip()
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    # pg_stat_statements too since clusters are created with it (an older cluster keeps its settings)
    assert row is not None and "pg_cron" in row[0].split(",")
    again = run_cli(*where, "start")
    assert again.returncode == 0 and again.stdout.startswith("already running")
    psql = run_cli(*where, "psql", "--", "-Atc", "SELECT 40 + 2")
    assert psql.returncode == 0 and psql.stdout.strip() == "42"


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()

    def walk(p, path):  # type: ignore[no-untyped-def]
        yield path
        for action in p._actions:
            if getattr(action, "choices", None) and isinstance(action.choices, dict):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])

    paths = list(walk(parser, []))
    assert ["db", "start"] in paths and ["migrate"] in paths
    for path in paths:
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args([*path, "--help"])
        assert exit_.value.code == 0
        text_ = capsys.readouterr().out
        assert text_.startswith("usage: nightshift"), path
        assert len(text_.splitlines()) > 3, f"`nightshift {' '.join(path)} --help` says too little"


def test_compose_runs_postgres_migrate_and_dispatcher_from_the_dockerfile() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "dispatcher"} <= services.keys()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name in ("postgres", "migrate", "dispatcher"):
        build = services[name]["build"]
        assert f" AS {build['target']}" in dockerfile, f"{name}: no stage {build['target']!r} in Dockerfile"
    assert services["migrate"]["command"][0] == "migrate"  # tests/integration/test_deployment.py runs it
    assert services["dispatcher"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "shared_preload_libraries=pg_cron" in dockerfile


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_migrates(pg_server: PgServer, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("nightshift-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dispatcher/_bundled/sql/roles/roles.sql" in names
    assert "dispatcher/_bundled/migrations/env.py" in names
    assert any(n.startswith("dispatcher/_bundled/migrations/versions/0001") for n in names)

    venv.create(tmp_path / "venv", with_pip=True)
    pip = subprocess.run(
        [str(tmp_path / "venv/bin/python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True, text=True, timeout=600,
    )
    assert pip.returncode == 0, pip.stderr
    # the image's entrypoint is this `nightshift`; its migrate service runs the compose command with
    # the URL in the environment
    command = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["migrate"]["command"]
    with pg_server.database(template=None) as url:
        proc = subprocess.run(
            [str(tmp_path / "venv/bin/nightshift"), *command],
            capture_output=True, text=True, cwd=tmp_path, timeout=120,  # not the checkout
            env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                 "NIGHTSHIFT_DATABASE_URL": url},
        )
        try:
            assert proc.returncode == 0, proc.stderr
            assert f"at revision {head_revision()}" in proc.stdout
            assert "installed nightshift-enqueue-due" in proc.stdout  # pg_cron schedules under compose
            with psycopg.connect(url) as conn:
                tables = {r[0] for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'nightshift'")}
            assert TABLES <= tables
        finally:
            cron.uninstall(url)


def test_testcontainers_image_has_pg_cron_and_migrates() -> None:
    """The Docker path of the fixture: the Dockerfile's postgres stage must preload pg_cron."""
    from tests.support.pgserver import _start_container, docker_answers

    if not docker_answers():
        pytest.skip("no Docker engine answers on this machine: the testcontainers path cannot run here")
    server = _start_container()  # pragma: no cover - needs Docker
    try:
        with server.database(template=None) as url:
            assert migrate(url).revision == "0001"
    finally:
        for stop in server.cleanup:
            stop()


def test_shared_buffers_are_a_quarter_of_the_memory_within_bounds() -> None:
    gib = 1024 ** 3
    assert shared_buffers_mb(24 * gib) == 1024, "capped: several clusters share a machine"
    assert shared_buffers_mb(2 * gib) == 512
    assert shared_buffers_mb(256 * 1024 ** 2) == 128, "never below PostgreSQL's own default"
    assert shared_buffers_mb(0) == 128, "memory unknown"
