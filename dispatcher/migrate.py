"""`nightshift migrate`: bring any database from empty to head, with clear errors for the usual traps."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool

from dispatcher.db import connect, sqlalchemy_url
from dispatcher.errors import PgCronMissing
from dispatcher.schema import migrations_dir

PG_CRON_FIX = (
    "add shared_preload_libraries = 'pg_cron' and cron.database_name = '<this database>' to "
    "postgresql.conf and restart (Debian: apt-get install postgresql-15-cron); on a managed service "
    "enable pg_cron in its parameter group. `nightshift db start` runs a local PostgreSQL that has it."
)


@dataclass(frozen=True)
class MigrateResult:
    revision: str | None
    applied_sql: list[str]
    cron_database: str
    database: str


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["url"] = url  # not through the ini option: '%' in passwords would be interpolated
    return cfg


def check_pg_cron(url: str) -> tuple[str, str]:
    """Fail with the fix when pg_cron is not preloaded; return (this database, pg_cron's database)."""
    with connect(url, autocommit=True) as conn:
        # A setting in postgresql.conf without the library loaded is only a placeholder, which
        # pg_settings does not list; a loaded pg_cron defines it for real.
        row = conn.execute(
            "SELECT current_database(),"
            " (SELECT setting FROM pg_settings WHERE name = 'cron.database_name'),"
            " EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_cron')"
        ).fetchone()
    assert row is not None
    database, cron_database, available = row
    if not available:
        raise PgCronMissing(f"the pg_cron extension is not installed on this server: {PG_CRON_FIX}")
    if not cron_database:
        raise PgCronMissing(f"pg_cron is installed but not loaded by this server: {PG_CRON_FIX}")
    return database, cron_database


def migrate(url: str, revision: str = "head", reapply_sql: bool = False) -> MigrateResult:
    database, cron_database = check_pg_cron(url)
    cfg = alembic_config(url)
    cfg.attributes["force_sql"] = reapply_sql
    try:
        command.upgrade(cfg, revision)
    except psycopg.errors.InsufficientPrivilege as exc:  # pragma: no cover - depends on the server
        raise PgCronMissing(f"not allowed to create the pg_cron extension: {exc}") from exc
    return MigrateResult(
        revision=current_revision(url),
        applied_sql=cfg.attributes.get("applied_sql", []),
        cron_database=cron_database,
        database=database,
    )


def current_revision(url: str) -> str | None:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(
                conn, opts={"version_table_schema": "nightshift"}
            ).get_current_revision()
    finally:
        engine.dispose()
