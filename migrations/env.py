"""Alembic environment: one transaction for the whole upgrade, then the sql/ objects in it too."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from dispatcher.config import resolve_url
from dispatcher.db import sqlalchemy_url
from dispatcher.models import SCHEMA, metadata
from dispatcher.schema import apply_sql_objects

config = context.config


def _include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    # autogenerate looks at our schema only; pg_cron's "cron" schema and others are not ours
    if type_ == "schema":
        return name == SCHEMA
    return True


def run_migrations_online() -> None:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or resolve_url()
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=SCHEMA,
            include_schemas=True,
            include_name=_include_name,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            # Two dispatchers starting at once must not migrate concurrently.
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('nightshift.migrate'))"))
            # The version table lives in our schema, so the schema must exist before Alembic looks.
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            context.run_migrations()
            if getattr(config.cmd_opts, "autogenerate", False):
                return  # `alembic revision --autogenerate` only compares tables
            applied = apply_sql_objects(
                connection.connection.dbapi_connection, force=bool(config.attributes.get("force_sql"))
            )
            config.attributes["applied_sql"] = applied


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: sql/ objects are applied online")
run_migrations_online()
