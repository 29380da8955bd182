"""The PostgreSQL server the tests run against, found in the order DESIGN.md gives:

1. NIGHTSHIFT_TEST_DATABASE_URL — any server with pg_cron preloaded and a role that may CREATE DATABASE;
2. testcontainers, when a Docker engine answers — an image built from this repository's Dockerfile;
3. the embedded cluster (`dispatcher.localpg`), under .nightshift/test-postgres on port 54339.

Each test gets its own database, copied from a migrated template (CREATE DATABASE ... TEMPLATE).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from dispatcher.db import drop_database, quote_ident_sql, with_database
from dispatcher.localpg import LocalCluster

ROOT = Path(__file__).resolve().parents[2]
TEST_PORT = int(os.environ.get("NIGHTSHIFT_TEST_PG_PORT", "54339"))
# One template per pytest process: two sessions on one server (developers running suites side by
# side) must not drop each other's template.
TEMPLATE_PREFIX = "nightshift_test_template_"
TEMPLATE = f"{TEMPLATE_PREFIX}{os.getpid()}"


@dataclass
class PgServer:
    """A server on which tests may create databases."""

    admin_url: str  # a URL to a database we can connect to for CREATE/DROP DATABASE
    source: str
    cluster: LocalCluster | None = None  # set when we run the server ourselves (restart tests)
    cleanup: list = field(default_factory=list)

    def url(self, database: str) -> str:
        return with_database(self.admin_url, database)

    def cron_database(self) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            row = conn.execute("SELECT current_setting('cron.database_name', true)").fetchone()
        assert row and row[0], "pg_cron is not preloaded on the test server"
        return str(row[0])

    def create_database(self, template: str | None = None) -> str:
        name = f"ns_test_{uuid.uuid4().hex[:12]}"
        statement = "CREATE DATABASE {} TEMPLATE {}" if template else "CREATE DATABASE {}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(quote_ident_sql(statement, name, *([template] if template else [])))
        return name

    def drop_stale_templates(self) -> None:
        """Templates left by test sessions that are gone (killed before their teardown)."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            names = [r[0] for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (TEMPLATE_PREFIX + "%",))]
        for name in names:
            pid = name.removeprefix(TEMPLATE_PREFIX)
            if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
                self.drop_database(name)

    def drop_database(self, name: str) -> None:
        drop_database(self.admin_url, name)

    @contextmanager
    def database(self, template: str | None = TEMPLATE) -> Iterator[str]:
        name = self.create_database(template)
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)


def docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
        return False
    import warnings

    import docker  # installed with testcontainers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the SDK leaks a socket when nobody answers
        try:
            client = docker.from_env(timeout=3)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server() -> PgServer:
    if url := os.environ.get("NIGHTSHIFT_TEST_DATABASE_URL"):
        return PgServer(admin_url=url, source="NIGHTSHIFT_TEST_DATABASE_URL")
    if os.environ.get("NIGHTSHIFT_TEST_DOCKER", "auto") != "off" and docker_answers():
        return _start_container()
    cluster = LocalCluster.from_env(data_dir=str(ROOT / ".nightshift" / "test-postgres"), port=TEST_PORT)
    if "NIGHTSHIFT_TEST_PG_PORT" not in os.environ and not cluster.running() and port_taken(TEST_PORT):
        # another server (another checkout's tests, a forgotten cluster) holds the default port:
        # the suite needs its own server, not that port
        cluster = LocalCluster.from_env(data_dir=str(cluster.root), port=free_port())
    # durability is irrelevant for a throwaway test cluster; speed is not
    started = cluster.start(
        extra_settings={"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    )
    server = PgServer(admin_url=cluster.url(), source=f"embedded cluster {cluster.root}", cluster=cluster)
    if started:  # leave no server running after `make test`; one that was already up stays up
        server.cleanup.append(cluster.stop)
    return server


def _start_container() -> PgServer:  # pragma: no cover - no Docker engine on the CI machines
    from testcontainers.core.image import DockerImage
    from testcontainers.postgres import PostgresContainer

    image = DockerImage(path=str(ROOT), tag="nightshift-postgres-test", dockerfile_path="Dockerfile",
                        target="postgres")
    image.build()
    container = PostgresContainer(str(image), username="nightshift", password="nightshift",
                                  dbname="nightshift", driver=None)
    container.start()
    server = PgServer(admin_url=container.get_connection_url(), source="testcontainers")
    server.cleanup.append(container.stop)
    return server
