"""Connections: one place that turns a URL into a connection and database errors into ours.

URLs are parsed by SQLAlchemy's `make_url` (it knows driver suffixes, quoting and query options and
hides passwords); nothing here rewrites a URL by hand.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from dispatcher.config import URL_ENV, is_embedded_url
from dispatcher.errors import DatabaseUnavailable, InvalidInput, StoreError, UsageError
from dispatcher.redact import redact_url as redact

_POSTGRES_DRIVERS = ("postgresql", "postgres")


def parse_url(url: str) -> URL:
    """The URL as SQLAlchemy's URL object; anything but a PostgreSQL URL is a usage error."""
    problem = f"not a PostgreSQL URL: {redact(url)} (expected postgresql://user@host/db)"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(problem) from None
    if parsed.drivername.split("+")[0] not in _POSTGRES_DRIVERS:
        raise UsageError(problem)
    return parsed


def libpq_url(url: str) -> str:
    """postgresql+psycopg:// and postgresql+pg8000:// URLs (SQLAlchemy style) as plain libpq URLs."""
    return parse_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(url: str) -> str:
    """A URL with a driver for SQLAlchemy: psycopg 3 unless the user named one (pg8000 works too)."""
    parsed = parse_url(url)
    if "+" in parsed.drivername:
        return parsed.set(drivername=parsed.drivername.replace("postgres+", "postgresql+")) \
            .render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


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
        refused_input = (exc.sqlstate or "").startswith(_INPUT_ERROR_CLASSES)
        raise (InvalidInput if refused_input else StoreError)(_message(exc)) from exc


# SQLSTATE classes of input the server refused: 22 data exception, 23 integrity constraint,
# P0 a function's RAISE, 55 object not in prerequisite state
_INPUT_ERROR_CLASSES = ("22", "23", "P0", "55")


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


def first_line(exc: BaseException) -> str:
    """libpq's own first line ("connection to server at ... failed: Connection refused")."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def describe_connect_error(url: str, exc: BaseException) -> str:
    # an error with a SQLSTATE came from a server we were talking to (AdminShutdown when it stops,
    # pg_terminate_backend...); one without failed to reach it at all
    verb = "lost the connection to" if getattr(exc, "sqlstate", None) else "cannot connect to"
    message = f"{verb} {redact(url)}: {first_line(exc)}"
    if is_embedded_url(url):  # the hint helps only when the embedded cluster was meant
        message += " (start the embedded database with `nightshift db start`)"
    else:
        message += f" (check --database-url / {URL_ENV})"
    return message


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    return parse_url(libpq_url(url)).set(database=database).render_as_string(hide_password=False)


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
