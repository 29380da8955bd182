"""Connections: one place that turns a URL into a connection and database errors into ours."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from dispatcher.config import URL_ENV
from dispatcher.errors import DatabaseUnavailable, NightshiftError, StoreError
from dispatcher.redact import redact_url as redact

_DRIVER = re.compile(r"^postgres(?:ql)?(?:\+\w+)?://")


def libpq_url(url: str) -> str:
    """postgresql+psycopg:// and postgresql+pg8000:// URLs (SQLAlchemy style) as plain libpq URLs."""
    if not _DRIVER.match(url):
        raise NightshiftError(f"not a PostgreSQL URL: {redact(url)} (expected postgresql://user@host/db)")
    return _DRIVER.sub("postgresql://", url, count=1)


def sqlalchemy_url(url: str) -> str:
    """A URL with a driver for SQLAlchemy: psycopg 3 unless the user named one (pg8000 works too)."""
    if not _DRIVER.match(url):
        raise NightshiftError(f"not a PostgreSQL URL: {redact(url)} (expected postgresql://user@host/db)")
    if re.match(r"^postgres(?:ql)?\+\w+://", url):
        return url
    return _DRIVER.sub("postgresql+psycopg://", url, count=1)


@contextlib.contextmanager
def translate_errors(url: str | None = None) -> Iterator[None]:
    """psycopg's errors as ours, translated here and nowhere else. Connection trouble (server gone,
    connection killed, shutdown in progress) is DatabaseUnavailable: the daemon reconnects, the CLI
    says how to reach the database. Anything else the server refused is StoreError, with the
    server's message and hint."""
    try:
        yield
    except psycopg.OperationalError as exc:
        if url is None:
            raise DatabaseUnavailable(_message(exc)) from exc
        raise DatabaseUnavailable(describe_connect_error(url, exc)) from exc
    except psycopg.InterfaceError as exc:  # used after the connection was closed
        where = f" to {redact(url)}" if url else ""
        raise DatabaseUnavailable(f"connection{where} is closed: {exc}") from exc
    except psycopg.Error as exc:
        raise StoreError(_message(exc)) from exc


def _message(exc: psycopg.Error) -> str:
    message = exc.diag.message_primary or str(exc).strip() or type(exc).__name__
    if exc.diag.message_hint:
        message += f" (hint: {exc.diag.message_hint})"
    return message


def connect(url: str, *, autocommit: bool = False, **kwargs: object) -> psycopg.Connection:
    """A psycopg connection, with an unreachable server reported as DatabaseUnavailable."""
    kwargs.setdefault("connect_timeout", 10)
    with translate_errors(url):
        return psycopg.connect(libpq_url(url), autocommit=autocommit, **kwargs)  # type: ignore[arg-type]


def describe_connect_error(url: str, exc: BaseException) -> str:
    reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return (
        f"cannot connect to {redact(url)}: {reason}\n"
        "Start the embedded database with `nightshift db start`, or pass --database-url / "
        f"set {URL_ENV} to a reachable PostgreSQL."
    )


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(libpq_url(url))
    return urlunsplit(parts._replace(path=f"/{database}"))


def recreate_database(url: str, database: str) -> str:
    """Drop (if it exists) and create `database` on the server of `url`; return its URL."""
    drop_database(url, database)
    with connect(url, autocommit=True) as conn:
        conn.execute(quote_ident_sql("CREATE DATABASE {}", database))
    return with_database(url, database)


def drop_database(url: str, database: str) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute(quote_ident_sql("DROP DATABASE IF EXISTS {} WITH (FORCE)", database))


def quote_ident_sql(template: str, *identifiers: str) -> sql.Composed:
    """A statement with identifiers quoted by psycopg, never formatted in by hand."""
    return sql.SQL(template).format(*(sql.Identifier(i) for i in identifiers))
