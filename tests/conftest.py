"""Fixtures: a real PostgreSQL with pg_cron, and a fresh migrated database per test."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dispatcher.db import quote_ident_sql
from dispatcher.migrate import migrate
from tests.support.pgserver import TEMPLATE, PgServer, start_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = start_server()
    cron_db = server.cron_database()
    with psycopg.connect(server.url(cron_db), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    # The template is built anew every session (sql/ may have changed) and dropped at its end.
    server.drop_stale_templates()
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(quote_ident_sql("CREATE DATABASE {}", TEMPLATE))
    migrate(server.url(TEMPLATE))
    yield server
    server.drop_database(TEMPLATE)
    for stop in server.cleanup:
        stop()


@pytest.fixture
def db_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh database at schema head, dropped after the test."""
    with pg_server.database() as url:
        yield url


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test's database."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection
