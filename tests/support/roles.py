"""Login roles for tests that act as the dispatcher, the scheduler or a reader."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql


@contextmanager
def login_role(admin_url: str, *member_of: str, options: str = "") -> Iterator[tuple[str, str]]:
    """A LOGIN role with a password (the test server may require one), dropped afterwards."""
    name, password = f"ns_test_{secrets.token_hex(4)}", secrets.token_hex(16)
    grants = sql.SQL("IN ROLE {}").format(sql.SQL(", ").join(map(sql.Identifier, member_of))) \
        if member_of else sql.SQL("")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} {} {}").format(
            sql.Identifier(name), sql.Literal(password), sql.SQL(options), grants))
    try:
        yield name, password
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@contextmanager
def group_role(admin_url: str) -> Iterator[str]:
    """A NOLOGIN role, as a DBA makes one per team, dropped afterwards."""
    name = f"ns_test_team_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
