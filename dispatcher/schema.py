"""Where sql/ and migrations/ are, and how the replaceable objects in sql/ are applied.

sql/ holds the current definition of every function, view, trigger and role, one concern per file,
each idempotent (CREATE OR REPLACE). Migrations apply them after the table DDL, in the same
transaction. A file whose checksum is already recorded in nightshift.applied_sql is skipped, so a
second `nightshift migrate` changes nothing. Last, every time, sql/ownership.sql gives
nightshift_owner whatever is not yet its own (tables a migration just created included), and
sql/row_security.sql puts every organization-owned table under row-level security.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent

# Applied in this order; files inside a folder alphabetically. Functions come before the views and
# triggers that use them; grants last, once every object exists.
SQL_FOLDERS = ("roles", "types", "functions", "views", "triggers", "data", "grants")
# Not a checksummed file: it runs at the end of every migration (a migration may add tables).
OWNERSHIP_FILE = "ownership.sql"
# Likewise, after it: row-level security on every organization-owned table, the reader's grants on
# them, security_invoker views (a migration may add tables and views).
ROW_SECURITY_FILE = "row_security.sql"


def _bundled_or_checkout(name: str) -> Path:
    bundled = _PACKAGE / "_bundled" / name  # inside an installed wheel
    if bundled.is_dir():
        return bundled
    checkout = _PACKAGE.parent / name  # a source checkout or editable install
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"cannot find the {name}/ folder (looked in {bundled} and {checkout})")


def sql_dir() -> Path:
    return _bundled_or_checkout("sql")


def migrations_dir() -> Path:
    return _bundled_or_checkout("migrations")


def sql_files() -> Iterator[tuple[str, str]]:
    """(relative path, text) of every sql/ object file, in application order."""
    root = sql_dir()
    for folder in SQL_FOLDERS:
        for path in sorted((root / folder).glob("*.sql")):
            yield f"{folder}/{path.name}", path.read_text()


def apply_sql_objects(dbapi_connection: Any, force: bool = False) -> list[str]:
    """Apply changed sql/ files through a DB-API connection (psycopg or pg8000); return their paths.
    Then hand every object of the schema to nightshift_owner (sql/ownership.sql) and put the
    organization-owned tables under row-level security (sql/row_security.sql).

    Runs inside the caller's transaction. Function bodies are checked when first called, not when
    created, so files need not be ordered by the functions they call.
    """
    cur = dbapi_connection.cursor()
    # Both drivers send a parameterless statement with the simple query protocol, which allows
    # several statements per file and leaves % signs alone.
    cur.execute("SET LOCAL check_function_bodies = off")
    cur.execute("SELECT path, sha256 FROM nightshift.applied_sql")
    applied = dict(cur.fetchall())
    done = []
    for path, text in sql_files():
        digest = hashlib.sha256(text.encode()).hexdigest()
        if not force and applied.get(path) == digest:
            continue
        cur.execute(text)
        done.append(path)
        _record(cur, path, digest)
    cur.execute((sql_dir() / OWNERSHIP_FILE).read_text())
    cur.execute((sql_dir() / ROW_SECURITY_FILE).read_text())
    return done


def _record(cur: Any, path: str, digest: str) -> None:
    # both drivers accept %s placeholders (pg8000's default paramstyle is "format")
    cur.execute(
        "INSERT INTO nightshift.applied_sql (path, sha256) VALUES (%s, %s) "
        "ON CONFLICT (path) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = now()",
        (path, digest),
    )
